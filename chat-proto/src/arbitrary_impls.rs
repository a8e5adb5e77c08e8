//! `arbitrary::Arbitrary` for the validated string types (feature
//! `arbitrary`), so fuzz targets can derive valid frames.
//!
//! Each implementation builds only values the grammar allows, by mapping
//! whatever the fuzzer supplies onto allowed characters; the frame enums
//! derive their implementations from these.

use std::borrow::Cow;

use arbitrary::{Arbitrary, Result, Unstructured};

use crate::ErrorCode;
use crate::text::{
    CapList, Code, MAX_NAME_CHARS, MAX_TOKEN_LEN, Name, NameList, RoomList, Text, Token,
};

/// Characters that make interesting names: ASCII, CJK, accents, digits of
/// other scripts, and the three punctuation marks allowed.
const NAME_CHARS: &[char] = &[
    'a', 'z', 'A', 'Z', '0', '9', '_', '-', '.', '张', '三', '李', '四', 'é', 'Ж', '٣', 'ß',
];

fn name_string(u: &mut Unstructured<'_>) -> Result<String> {
    let len = u.int_in_range(1..=MAX_NAME_CHARS)?;
    let mut s = String::new();
    for _ in 0..len {
        let c: char = u.arbitrary()?;
        if c.is_alphanumeric() || matches!(c, '_' | '-' | '.') {
            s.push(c);
        } else {
            s.push(*u.choose(NAME_CHARS)?);
        }
    }
    Ok(s)
}

impl<'a> Arbitrary<'a> for Name<'a> {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        Ok(Name(Cow::Owned(name_string(u)?)))
    }
}

impl<'a> Arbitrary<'a> for Text<'a> {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        let raw: String = u.arbitrary()?;
        let s: String = raw
            .chars()
            .map(|c| if c.is_control() && c != '\t' { ' ' } else { c })
            .collect();
        Ok(Text(Cow::Owned(s)))
    }
}

impl<'a> Arbitrary<'a> for Token<'a> {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        let len = u.int_in_range(0..=MAX_TOKEN_LEN)?;
        let mut s = String::with_capacity(len);
        for _ in 0..len {
            s.push(char::from(u.int_in_range(b'!'..=b'~')?));
        }
        Ok(Token(Cow::Owned(s)))
    }
}

impl<'a> Arbitrary<'a> for Code<'a> {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        if u.arbitrary()? {
            let code: ErrorCode = u.arbitrary()?;
            return Ok(Code::from(code));
        }
        let len = u.int_in_range(1..=crate::text::MAX_CODE_LEN)?;
        let mut s = String::with_capacity(len);
        for _ in 0..len {
            s.push(char::from(
                *u.choose(b"abcdefghijklmnopqrstuvwxyz0123456789-")?,
            ));
        }
        Ok(Code(Cow::Owned(s)))
    }
}

impl<'a> Arbitrary<'a> for NameList<'a> {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        let count = u.int_in_range(0..=8)?;
        let names = (0..count)
            .map(|_| name_string(u))
            .collect::<Result<Vec<_>>>()?;
        Ok(NameList(Cow::Owned(names.join(","))))
    }
}

impl<'a> Arbitrary<'a> for CapList<'a> {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        let count = u.int_in_range(0..=3)?;
        let caps = (0..count)
            .map(|_| {
                let known: bool = u.arbitrary()?;
                if known {
                    Ok("rooms".to_string())
                } else {
                    Code::arbitrary(u).map(Code::into_string)
                }
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(CapList(Cow::Owned(caps.join(","))))
    }
}

impl<'a> Arbitrary<'a> for RoomList<'a> {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        let count = u.int_in_range(0..=6)?;
        let entries = (0..count)
            .map(|_| Ok(format!("{}={}", name_string(u)?, u64::arbitrary(u)?)))
            .collect::<Result<Vec<_>>>()?;
        Ok(RoomList(Cow::Owned(entries.join(","))))
    }
}
