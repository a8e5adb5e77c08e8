//! Fuzzes encoding, parsing and the validated string types.
//!
//! Checks that:
//!
//! * an arbitrary valid `ClientFrame` and `ServerFrame` (feature
//!   `arbitrary`) encode to exactly `encoded_len()` bytes, and decode and
//!   parse back to the same frame; a decoder whose maximum is exactly that
//!   length accepts it and one byte less refuses it as `too-long`;
//! * `Name::new`, `Text::new`, `Token::new`, `Code::new` and `NameList::new`
//!   accept an arbitrary string exactly when an independent predicate
//!   written from the grammar of PROTOCOL.md section 2 does;
//! * any line the decoder lets through that parses as a frame of either
//!   direction encodes back to the very same line;
//! * `NameKey::of` and `is_mixed_script` take any string without panicking,
//!   give the same answer twice, and the same answer for the NFC and NFD
//!   spellings of it (canonically equivalent strings are one name).

#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use bytes::BytesMut;
use chat_proto::{
    ClientFrame, Code, Decoder, Name, NameKey, NameList, PeerError, RawFrame, ServerFrame, Text,
    Token, is_mixed_script,
};
use libfuzzer_sys::fuzz_target;
use unicode_normalization::UnicodeNormalization;

#[derive(Debug, Arbitrary)]
struct Input<'a> {
    client: ClientFrame<'a>,
    server: ServerFrame<'a>,
    strings: Vec<String>,
    line: &'a [u8],
}

fuzz_target!(|data: &[u8]| {
    let Ok(input) = Input::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };

    let line = encode(|dst| input.client.encode(dst));
    assert_eq!(line.len(), input.client.encoded_len(), "{:?}", input.client);
    let back = decode_one(&line, |raw| {
        ClientFrame::parse(raw).map(ClientFrame::into_owned)
    });
    assert_eq!(back, input.client.clone().into_owned());

    let line = encode(|dst| input.server.encode(dst));
    assert_eq!(line.len(), input.server.encoded_len(), "{:?}", input.server);
    let back = decode_one(&line, |raw| {
        ServerFrame::parse(raw).map(ServerFrame::into_owned)
    });
    assert_eq!(back, input.server.clone().into_owned());

    for s in &input.strings {
        check_validation(s);
    }

    reencode_decoded(input.line);
});

fn encode(f: impl FnOnce(&mut BytesMut)) -> BytesMut {
    let mut dst = BytesMut::new();
    f(&mut dst);
    dst
}

/// Decodes a single encoded frame with a decoder whose maximum is exactly
/// its length, then checks that one byte less is `too-long`.
fn decode_one<T>(line: &[u8], parse: impl Fn(RawFrame<'_>) -> Result<T, PeerError>) -> T {
    assert_eq!(line.last(), Some(&b'\n'));
    assert_eq!(line.iter().filter(|&&b| b == b'\n').count(), 1, "{line:?}");
    let mut frames = Vec::new();
    Decoder::new(line.len()).decode(line, |raw| frames.push(raw.and_then(&parse)));
    assert_eq!(frames.len(), 1, "{line:?}");
    let frame = frames
        .pop()
        .unwrap()
        .unwrap_or_else(|e| panic!("{e} in {line:?}"));

    let mut errors = Vec::new();
    Decoder::new(line.len() - 1).decode(line, |raw| errors.push(raw.map(|_| ())));
    assert_eq!(
        errors,
        [Err(PeerError::TooLong {
            limit: line.len() - 1
        })]
    );
    frame
}

/// Each constructor agrees with the grammar.
fn check_validation(s: &str) {
    assert_eq!(Name::new(s).is_ok(), is_name(s), "Name {s:?}");
    assert_eq!(Text::new(s).is_ok(), is_text(s), "Text {s:?}");
    assert_eq!(Token::new(s).is_ok(), is_token(s), "Token {s:?}");
    assert_eq!(Code::new(s).is_ok(), is_code(s), "Code {s:?}");
    let list = s.is_empty() || s.split(',').all(is_name);
    assert_eq!(NameList::new(s).is_ok(), list, "NameList {s:?}");
    if let Ok(name) = Name::new(s) {
        assert_eq!(name.as_str(), s);
    }
    check_name_key(s);
}

/// The look-alike key and the mixed-script test are total, deterministic
/// and blind to canonical equivalence.
fn check_name_key(s: &str) {
    let key = NameKey::of(s);
    assert_eq!(NameKey::of(s), key, "{s:?}");
    let mixed = is_mixed_script(s);
    assert_eq!(is_mixed_script(s), mixed, "{s:?}");
    for form in [s.nfc().collect::<String>(), s.nfd().collect()] {
        assert_eq!(NameKey::of(&form), key, "{s:?} and {form:?}");
        assert_eq!(is_mixed_script(&form), mixed, "{s:?} and {form:?}");
    }
}

/// `name = 1*32name-char`, counted in characters.
fn is_name(s: &str) -> bool {
    let count = s.chars().count();
    (1..=32).contains(&count)
        && s.chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '-' || c == '.')
}

/// `text = *text-char`: TAB or any scalar value not in category Cc.
fn is_text(s: &str) -> bool {
    s.chars().all(|c| c == '\t' || !c.is_control())
}

/// `token = *64( %x21-7E )`.
fn is_token(s: &str) -> bool {
    s.len() <= 64 && s.bytes().all(|b| (0x21..=0x7e).contains(&b))
}

/// `code = 1*32( %x61-7A / DIGIT / "-" )`.
fn is_code(s: &str) -> bool {
    (1..=32).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Every line the decoder passes that parses in either direction encodes
/// back to exactly that line (without any CR it arrived with).
fn reencode_decoded(bytes: &[u8]) {
    let mut decoder = Decoder::new(4096);
    decoder.decode(bytes, |raw| {
        let Ok(raw) = raw else { return };
        let line = format!("{}:{}\n", raw.tag(), raw.payload());
        if let Ok(frame) = ClientFrame::parse(raw) {
            assert_eq!(encode(|d| frame.encode(d)), line.as_bytes(), "{frame:?}");
            assert_eq!(frame.encoded_len(), line.len());
        }
        if let Ok(frame) = ServerFrame::parse(raw) {
            assert_eq!(encode(|d| frame.encode(d)), line.as_bytes(), "{frame:?}");
            assert_eq!(frame.encoded_len(), line.len());
        }
    });
}
