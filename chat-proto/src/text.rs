//! Validated strings: names, text, ping tokens, error codes, name lists.
//!
//! Each type can only hold a value its grammar in PROTOCOL.md allows, so an
//! encoder that takes them cannot write a frame that breaks framing or forges
//! another frame: validation happens once, when the value is built, and the
//! decoder builds them from bytes it has already checked. Each borrows its
//! string where it can (`Cow`) and `into_owned` gives a `'static` copy.
//!
//! The character classes live here too: the control-character test of
//! [`Text`], and `special_mask`, which the decoder uses to find the line ends
//! and the control characters of many lines in one pass.

use std::borrow::Cow;
use std::fmt;

use crate::error::{InvalidName, InvalidText, InvalidToken};

/// The most characters (not bytes) a name may have.
pub const MAX_NAME_CHARS: usize = 32;
/// The most bytes a ping token may have.
pub const MAX_TOKEN_LEN: usize = 64;
/// The most bytes an error code may have.
pub const MAX_CODE_LEN: usize = 32;

macro_rules! validated_str {
    ($(#[$doc:meta])* $ty:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $ty<'a>(pub(crate) Cow<'a, str>);

        impl<'a> $ty<'a> {
            /// The validated string.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// A copy that owns its string.
            pub fn into_owned(self) -> $ty<'static> {
                $ty(Cow::Owned(self.0.into_owned()))
            }

            /// The validated string, owned.
            pub fn into_string(self) -> String {
                self.0.into_owned()
            }

            /// Wraps a string the caller has already validated.
            #[allow(dead_code)]
            pub(crate) fn trusted(s: &'a str) -> Self {
                debug_assert!($ty::new(s).is_ok(), "trusted {} is not valid: {s:?}", stringify!($ty));
                $ty(Cow::Borrowed(s))
            }
        }

        impl std::ops::Deref for $ty<'_> {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $ty<'_> {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $ty<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $ty<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&*self.0, f)
            }
        }

        impl PartialEq<str> for $ty<'_> {
            fn eq(&self, other: &str) -> bool {
                *self.0 == *other
            }
        }

        impl PartialEq<&str> for $ty<'_> {
            fn eq(&self, other: &&str) -> bool {
                *self.0 == **other
            }
        }
    };
}

validated_str!(
    /// A user name: 1 to 32 characters, each a Unicode letter or digit, `_`,
    /// `-` or `.`. `zhangsan` and `张三` are both names; names compare
    /// exactly (no case folding).
    ///
    /// ```
    /// use chat_proto::Name;
    /// assert!(Name::new("张三").is_ok());
    /// assert!(Name::new("zhang san").is_err());
    /// ```
    Name
);

validated_str!(
    /// Text: any Unicode string without control characters other than TAB.
    /// It is always a single line and cannot drive a terminal. It may be
    /// empty and may hold `:`.
    ///
    /// ```
    /// use chat_proto::Text;
    /// assert!(Text::new("did you have dinner?\t:)").is_ok());
    /// assert!(Text::new("two\nlines").is_err());
    /// ```
    Text
);

validated_str!(
    /// A ping token: 0 to 64 bytes of visible ASCII (`!` to `~`). A pong
    /// echoes the token of the ping it answers.
    Token
);

validated_str!(
    /// An error code as carried on the wire: 1 to 32 of `a-z`, `0-9`, `-`.
    /// Codes this version knows map to [`ErrorCode`](crate::ErrorCode) with
    /// [`Code::known`]; a newer peer may send others.
    Code
);

validated_str!(
    /// The payload of a `users:` frame: names separated by `,`, or empty for
    /// the frame that ends a listing.
    NameList
);

validated_str!(
    /// The payload of a `cap:` frame: capability names (each 1 to 32 of
    /// `a-z`, `0-9`, `-`) separated by `,`; may be empty.
    ///
    /// ```
    /// use chat_proto::CapList;
    /// let caps = CapList::new("rooms,future-thing")?;
    /// assert!(caps.contains("rooms"));
    /// assert!(CapList::new("Rooms").is_err());
    /// # Ok::<(), chat_proto::InvalidToken>(())
    /// ```
    CapList
);

validated_str!(
    /// The payload of a `rooms:` frame: `ROOM=COUNT` entries (a room name
    /// and its number of members) separated by `,`, or empty for the frame
    /// that ends a listing.
    ///
    /// ```
    /// use chat_proto::RoomList;
    /// let list = RoomList::new("lobby=12,rust=3")?;
    /// assert_eq!(list.entries().collect::<Vec<_>>(), [("lobby", 12), ("rust", 3)]);
    /// # Ok::<(), chat_proto::InvalidName>(())
    /// ```
    RoomList
);

impl<'a> Name<'a> {
    /// Validates a name.
    pub fn new(s: impl Into<Cow<'a, str>>) -> Result<Self, InvalidName> {
        let s = s.into();
        validate_name(&s)?;
        Ok(Name(s))
    }
}

impl<'a> Text<'a> {
    /// Validates text.
    pub fn new(s: impl Into<Cow<'a, str>>) -> Result<Self, InvalidText> {
        let s = s.into();
        if has_control(s.as_bytes()) {
            return Err(InvalidText::ControlChar);
        }
        Ok(Text(s))
    }
}

impl<'a> Token<'a> {
    /// Validates a ping token.
    pub fn new(s: impl Into<Cow<'a, str>>) -> Result<Self, InvalidToken> {
        let s = s.into();
        if s.len() > MAX_TOKEN_LEN {
            return Err(InvalidToken::TooLong);
        }
        if !s.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(InvalidToken::BadChar);
        }
        Ok(Token(s))
    }

    /// The token for a counter value, as the core's pings use.
    pub(crate) fn from_counter(n: u64) -> Token<'static> {
        Token(Cow::Owned(format!("{n:x}")))
    }
}

impl<'a> Code<'a> {
    /// Validates an error code.
    pub fn new(s: impl Into<Cow<'a, str>>) -> Result<Self, InvalidToken> {
        let s = s.into();
        if s.is_empty() {
            return Err(InvalidToken::Empty);
        }
        if s.len() > MAX_CODE_LEN {
            return Err(InvalidToken::TooLong);
        }
        if !s.bytes().all(is_tag_byte) {
            return Err(InvalidToken::BadChar);
        }
        Ok(Code(s))
    }

    /// The known code this is, if this version knows it.
    pub fn known(&self) -> Option<crate::ErrorCode> {
        crate::ErrorCode::from_wire(&self.0)
    }
}

impl From<crate::ErrorCode> for Code<'static> {
    fn from(code: crate::ErrorCode) -> Self {
        Code(Cow::Borrowed(code.as_str()))
    }
}

impl PartialEq<crate::ErrorCode> for Code<'_> {
    fn eq(&self, other: &crate::ErrorCode) -> bool {
        *self.0 == *other.as_str()
    }
}

impl<'a> NameList<'a> {
    /// Validates a name list: empty, or valid names separated by `,`.
    pub fn new(s: impl Into<Cow<'a, str>>) -> Result<Self, InvalidName> {
        let s = s.into();
        if !s.is_empty() {
            for name in s.split(',') {
                validate_name(name)?;
            }
        }
        Ok(NameList(s))
    }

    /// The names in the list, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.split(',').filter(|n| !n.is_empty())
    }

    /// Whether this is the empty list that ends a `who:` answer.
    pub fn is_end(&self) -> bool {
        self.0.is_empty()
    }
}

impl<'a> CapList<'a> {
    /// Validates a capability list.
    pub fn new(s: impl Into<Cow<'a, str>>) -> Result<Self, InvalidToken> {
        let s = s.into();
        if !s.is_empty() {
            for cap in s.split(',') {
                Code::new(cap)?;
            }
        }
        Ok(CapList(s))
    }

    /// The capabilities, in order.
    pub fn caps(&self) -> impl Iterator<Item = &str> {
        self.0.split(',').filter(|c| !c.is_empty())
    }

    /// Whether the list names `cap`.
    pub fn contains(&self, cap: &str) -> bool {
        self.caps().any(|c| c == cap)
    }
}

impl<'a> RoomList<'a> {
    /// Validates a room listing.
    pub fn new(s: impl Into<Cow<'a, str>>) -> Result<Self, InvalidName> {
        let s = s.into();
        if !s.is_empty() {
            for entry in s.split(',') {
                let (name, count) = entry.split_once('=').ok_or(InvalidName::BadChar)?;
                validate_name(name)?;
                if count.is_empty()
                    || count.len() > 20
                    || !count.bytes().all(|b| b.is_ascii_digit())
                    || count.parse::<u64>().is_err()
                {
                    return Err(InvalidName::BadChar);
                }
            }
        }
        Ok(RoomList(s))
    }

    /// The rooms and their member counts, in order.
    pub fn entries(&self) -> impl Iterator<Item = (&str, u64)> {
        self.0.split(',').filter(|e| !e.is_empty()).map(|e| {
            let (name, count) = e.split_once('=').unwrap_or((e, "0"));
            (name, count.parse().unwrap_or(0))
        })
    }

    /// Whether this is the empty list that ends a `rooms:` answer.
    pub fn is_end(&self) -> bool {
        self.0.is_empty()
    }
}

/// Whether `b` may appear in a tag or an error code: `a-z`, `0-9`, `-`.
pub(crate) fn is_tag_byte(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'
}

fn validate_name(s: &str) -> Result<(), InvalidName> {
    if s.is_empty() {
        return Err(InvalidName::Empty);
    }
    let mut count = 0;
    for c in s.chars() {
        count += 1;
        if count > MAX_NAME_CHARS {
            return Err(InvalidName::TooLong);
        }
        if !(c.is_alphanumeric() || matches!(c, '_' | '-' | '.')) {
            return Err(InvalidName::BadChar);
        }
    }
    Ok(())
}

/// Whether UTF-8 `bytes` hold a control character other than TAB: C0
/// controls, DEL, or C1 controls (U+0080 to U+009F, encoded `C2 80` to
/// `C2 9F`).
///
/// The first pass is branch-free so the compiler vectorises it; only input
/// that holds a suspicious byte (a C0 byte, DEL or `C2`) is looked at
/// closely. Chat text, Chinese included, never takes the slow path.
pub(crate) fn has_control(bytes: &[u8]) -> bool {
    if !any_suspicious(bytes, b'\t') {
        return false;
    }
    control_exact(bytes)
}

/// Branch-free pre-filter: any byte below 0x20 other than `allowed`, DEL, or
/// the lead byte `C2` of the C1 controls.
fn any_suspicious(bytes: &[u8], allowed: u8) -> bool {
    let flag = |b: u8| ((b < 0x20) & (b != allowed)) | (b == 0x7f) | (b == 0xc2);
    let mut chunks = bytes.chunks_exact(32);
    for chunk in &mut chunks {
        let mut hit = false;
        for &b in chunk {
            hit |= flag(b);
        }
        if hit {
            return true;
        }
    }
    chunks
        .remainder()
        .iter()
        .fold(false, |hit, &b| hit | flag(b))
}

/// The size of the blocks [`special_mask`] looks at.
pub(crate) const BLOCK: usize = 64;

/// The special bytes of a 64-byte block of valid UTF-8: the bytes a decoder
/// must look at to find the line ends and the control characters. They are
/// the C0 controls (LF, CR and TAB included), DEL, and `C2`, the lead byte of
/// the C1 controls (and of U+00A0 to U+00BF). Bit `i` of the result is set
/// when byte `i` is special.
///
/// The code is branch-free but for one test, and the compiler vectorises
/// it: a flag byte per byte (a saturating subtraction finds the C0
/// controls), then a block without special bytes (most of a long line) is
/// done; otherwise each 8 flags become 8 bits with a multiplication.
#[inline(always)]
pub(crate) fn special_mask(block: &[u8; BLOCK]) -> u64 {
    let mut flags = [0u8; BLOCK];
    for (flag, &b) in flags.iter_mut().zip(block) {
        *flag = 0x20u8.saturating_sub(b) | if b == 0x7f || b == 0xc2 { 0xff } else { 0 };
    }
    if flags.iter().fold(0, |any, &flag| any | flag) == 0 {
        return 0;
    }
    for flag in &mut flags {
        *flag = (*flag).min(1);
    }
    // With each byte of `eight` 0 or 1, the product holds byte `i`'s bit at
    // bit `56 + i`: the partial products are distinct powers of two, so
    // nothing carries.
    flags
        .chunks_exact(8)
        .enumerate()
        .fold(0, |mask, (i, eight)| {
            let eight = u64::from_le_bytes(eight.try_into().expect("8 bytes"));
            mask | (eight.wrapping_mul(0x0102_0408_1020_4080) >> 56) << (8 * i)
        })
}

/// The exact control-character test, byte by byte.
fn control_exact(bytes: &[u8]) -> bool {
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if (b < 0x20 && b != b'\t') || b == 0x7f {
            return true;
        }
        if b == 0xc2 && matches!(bytes.get(i + 1), Some(0x80..=0x9f)) {
            return true;
        }
        i += 1;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["zhangsan", "张三", "a", "x_y-z.0", "Ünïcödé", "٣٤"] {
            assert!(Name::new(ok).is_ok(), "{ok}");
        }
        assert_eq!(Name::new(""), Err(InvalidName::Empty));
        assert_eq!(Name::new("a b"), Err(InvalidName::BadChar));
        assert_eq!(Name::new("a:b"), Err(InvalidName::BadChar));
        assert_eq!(Name::new("a,b"), Err(InvalidName::BadChar));
        assert_eq!(Name::new("a\n"), Err(InvalidName::BadChar));
        assert!(Name::new("张".repeat(32)).is_ok());
        assert_eq!(Name::new("张".repeat(33)), Err(InvalidName::TooLong));
        assert_eq!(Name::new("a".repeat(33)), Err(InvalidName::TooLong));
    }

    #[test]
    fn text_rejects_every_control_but_tab() {
        assert!(Text::new("").is_ok());
        assert!(Text::new("a\tb: c 你好").is_ok());
        for c in (0u32..0x20).chain(0x7f..0xa0).filter(|&c| c != 9) {
            let c = char::from_u32(c).unwrap();
            let s = format!("long enough to reach the vector loop {c} and more text here");
            assert_eq!(Text::new(s), Err(InvalidText::ControlChar), "{c:?}");
            assert_eq!(Text::new(c.to_string()), Err(InvalidText::ControlChar));
        }
        // U+00A0 and above start with C2 but are not controls.
        assert!(Text::new("\u{a0}\u{a9}\u{bf}").is_ok());
        assert!(Text::new("\u{2028}").is_ok());
    }

    #[test]
    fn special_mask_flags_exactly_the_special_bytes() {
        for b in 0..=255u8 {
            let special = b < 0x20 || b == 0x7f || b == 0xc2;
            for at in [0, 1, 7, 8, 15, 16, 31, 32, 55, 63] {
                let mut block = [b'a'; BLOCK];
                block[at] = b;
                let want = if special { 1 << at } else { 0 };
                assert_eq!(special_mask(&block), want, "{b:#x} at {at}");
            }
        }
        let block: [u8; BLOCK] = std::array::from_fn(|i| [b'\n', b'x', 0xc2, 0x7f][i % 4]);
        assert_eq!(special_mask(&block), 0xdddd_dddd_dddd_dddd);
        assert_eq!(special_mask(&[0; BLOCK]), u64::MAX);
        assert_eq!(special_mask(&[0xe4; BLOCK]), 0);
    }

    #[test]
    fn tokens_and_codes() {
        assert!(Token::new("").is_ok());
        assert!(Token::new("abc-123!~").is_ok());
        assert_eq!(Token::new("a b"), Err(InvalidToken::BadChar));
        assert_eq!(Token::new("é"), Err(InvalidToken::BadChar));
        assert_eq!(Token::new("x".repeat(65)), Err(InvalidToken::TooLong));
        assert!(Code::new("name-taken").is_ok());
        assert_eq!(Code::new(""), Err(InvalidToken::Empty));
        assert_eq!(Code::new("Name"), Err(InvalidToken::BadChar));
        let code = Code::from(crate::ErrorCode::ServerFull);
        assert_eq!(code.known(), Some(crate::ErrorCode::ServerFull));
        assert!(code == crate::ErrorCode::ServerFull);
        assert_eq!(Code::new("from-the-future").unwrap().known(), None);
    }

    #[test]
    fn name_lists() {
        let list = NameList::new("a,张三,b").unwrap();
        assert_eq!(list.names().collect::<Vec<_>>(), ["a", "张三", "b"]);
        assert!(!list.is_end());
        assert!(NameList::new("").unwrap().is_end());
        assert!(NameList::new("a,,b").is_err());
        assert!(NameList::new("a,").is_err());
        assert!(NameList::new("a b").is_err());
    }

    #[test]
    fn cap_and_room_lists() {
        assert!(CapList::new("").unwrap().caps().next().is_none());
        assert!(CapList::new("a,b-1").unwrap().contains("b-1"));
        assert!(CapList::new("a,,b").is_err());
        assert!(CapList::new("a b").is_err());
        let rooms = RoomList::new("lobby=0,张三=18446744073709551615").unwrap();
        assert_eq!(
            rooms.entries().collect::<Vec<_>>(),
            [("lobby", 0), ("张三", u64::MAX)]
        );
        assert!(RoomList::new("").unwrap().is_end());
        for bad in [
            "lobby",
            "lobby=",
            "lobby=x",
            "=3",
            "a b=1",
            "a=1,",
            "a=18446744073709551616",
        ] {
            assert!(RoomList::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn owned_copies_compare_equal() {
        let s = String::from("lisi");
        let borrowed = Name::new(s.as_str()).unwrap();
        let owned: Name<'static> = borrowed.clone().into_owned();
        assert_eq!(borrowed, owned);
        assert_eq!(owned, "lisi");
        assert_eq!(format!("{owned} {owned:?}"), "lisi \"lisi\"");
    }
}
