//! PROTOCOL.md shows two sessions byte for byte; they are the outputs of
//! the `session` and `rooms_session` examples. This checks the document and
//! the code still agree, so the seed's session stays what the seed's
//! clients expect.

#[allow(dead_code)]
#[path = "../examples/rooms_session.rs"]
mod rooms_session;

const PROTOCOL: &str = include_str!("../../PROTOCOL.md");

fn assert_shown(what: &str, text: &str) {
    let block = format!("```text\n{text}```");
    assert!(
        PROTOCOL.contains(&block),
        "PROTOCOL.md no longer shows the {what} as the code plays it:\n{text}"
    );
}

#[test]
fn the_seed_session_is_byte_for_byte_what_protocol_md_shows() {
    let (_, text, _) = rooms_session::session::play().unwrap();
    assert_shown("seed's session", &text);
}

#[test]
fn the_rooms_session_is_byte_for_byte_what_protocol_md_shows() {
    let (_, text, _) = rooms_session::play().unwrap();
    assert_shown("rooms session", &text);
}
