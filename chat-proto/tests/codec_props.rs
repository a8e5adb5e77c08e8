//! Property tests of the codec: encode-then-decode gives back the frame, any
//! chunking of a stream gives the same frames and errors as one read, the
//! decoder's buffer stays bounded, and the validated types refuse exactly
//! what the grammar forbids.

use bytes::BytesMut;
use chat_proto::{ClientFrame, Code, Decoder, Name, NameList, PeerError, ServerFrame, Text, Token};
use proptest::prelude::*;

fn name() -> impl Strategy<Value = Name<'static>> {
    "[a-zA-Z0-9_.\\-张三李四é]{1,32}".prop_map(|s| Name::new(s).unwrap())
}

fn text() -> impl Strategy<Value = Text<'static>> {
    // Any characters but controls; TAB, ':' and non-ASCII included.
    "[^\\p{Cc}]{0,80}|[a\\t:你好]{0,20}".prop_map(|s| Text::new(s).unwrap())
}

fn token() -> impl Strategy<Value = Token<'static>> {
    "[!-~]{0,64}".prop_map(|s| Token::new(s).unwrap())
}

fn client_frame() -> impl Strategy<Value = ClientFrame<'static>> {
    prop_oneof![
        name().prop_map(ClientFrame::Iam),
        text().prop_map(ClientFrame::Msg),
        Just(ClientFrame::Who),
        token().prop_map(ClientFrame::Ping),
        token().prop_map(ClientFrame::Pong),
        text().prop_map(ClientFrame::Bye),
    ]
}

fn server_frame() -> impl Strategy<Value = ServerFrame<'static>> {
    let list = prop::collection::vec(name(), 0..6).prop_map(|names| {
        let joined: Vec<String> = names.into_iter().map(Name::into_string).collect();
        NameList::new(joined.join(",")).unwrap()
    });
    let code = "[a-z0-9\\-]{1,32}".prop_map(|s| Code::new(s).unwrap());
    prop_oneof![
        name().prop_map(ServerFrame::Ok),
        (name(), text()).prop_map(|(from, text)| ServerFrame::Msg { from, text }),
        name().prop_map(ServerFrame::Join),
        name().prop_map(ServerFrame::Left),
        list.prop_map(ServerFrame::Users),
        (code, text()).prop_map(|(code, text)| ServerFrame::Err { code, text }),
        token().prop_map(ServerFrame::Ping),
        token().prop_map(ServerFrame::Pong),
        text().prop_map(ServerFrame::Bye),
    ]
}

type Decoded = Vec<Result<(String, String), PeerError>>;

fn decode_chunks(max: usize, chunks: &[&[u8]]) -> (Decoded, usize) {
    let mut decoder = Decoder::new(max);
    let mut out = Vec::new();
    let mut most_buffered = 0;
    for chunk in chunks {
        decoder.decode(chunk, |r| {
            out.push(r.map(|f| (f.tag().to_owned(), f.payload().to_owned())))
        });
        most_buffered = most_buffered.max(decoder.buffered());
    }
    (out, most_buffered)
}

/// Bytes that look like a chat stream: frames, junk, CRs, overlong lines,
/// broken UTF-8.
fn stream() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        4 => "(iam|msg|who|ping|pong|bye|x-y):[a-z 你好\\t:]{0,40}\r?\n".prop_map(String::into_bytes),
        1 => prop::collection::vec(any::<u8>(), 0..40),
        1 => Just(b"\n".to_vec()),
        1 => Just(b"\r".to_vec()),
        1 => "msg:[a-z]{300,400}\n".prop_map(String::into_bytes),
        1 => Just(vec![0xe4, 0xbd]),
    ];
    prop::collection::vec(piece, 0..30).prop_map(|pieces| pieces.concat())
}

proptest! {
    #[test]
    fn client_frames_round_trip(frame in client_frame()) {
        let mut buf = BytesMut::new();
        frame.encode(&mut buf);
        prop_assert_eq!(buf.len(), frame.encoded_len());
        let mut decoded = Vec::new();
        Decoder::new(1 << 20).decode(&buf, |r| {
            decoded.push(r.and_then(ClientFrame::parse).map(ClientFrame::into_owned))
        });
        prop_assert_eq!(decoded, vec![Ok(frame)]);
    }

    #[test]
    fn server_frames_round_trip(frame in server_frame()) {
        let mut buf = BytesMut::new();
        frame.encode(&mut buf);
        prop_assert_eq!(buf.len(), frame.encoded_len());
        let mut decoded = Vec::new();
        Decoder::new(1 << 20).decode(&buf, |r| {
            decoded.push(r.and_then(ServerFrame::parse).map(ServerFrame::into_owned))
        });
        prop_assert_eq!(decoded, vec![Ok(frame)]);
    }

    #[test]
    fn any_chunking_gives_the_same_frames(
        input in stream(),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..12),
        max in prop_oneof![Just(256usize), 16usize..300],
    ) {
        let (whole, _) = decode_chunks(max, &[&input]);
        let mut points: Vec<usize> = cuts.iter().map(|c| c.index(input.len() + 1)).collect();
        points.sort_unstable();
        let mut chunks = Vec::new();
        let mut start = 0;
        for p in points {
            chunks.push(&input[start..p]);
            start = p;
        }
        chunks.push(&input[start..]);
        let (split, most_buffered) = decode_chunks(max, &chunks);
        prop_assert_eq!(&whole, &split);
        prop_assert!(most_buffered < max);
        let bytes: Vec<&[u8]> = input.chunks(1).collect();
        let (bytewise, _) = decode_chunks(max, &bytes);
        prop_assert_eq!(whole, bytewise);
    }

    #[test]
    fn decoded_lines_never_hold_controls_or_line_breaks(input in stream()) {
        let mut decoder = Decoder::new(256);
        decoder.decode(&input, |r| {
            if let Ok(f) = r {
                assert!(!f.payload().chars().any(|c| c.is_control() && c != '\t'), "{f:?}");
                assert!(!f.tag().is_empty() && f.tag().len() <= 16);
            }
        });
    }

    #[test]
    fn text_is_refused_exactly_when_it_holds_a_control(s in "\\PC{0,20}[\\x00-\\x1f\\x7f\\u{80}-\\u{9f}]?\\PC{0,20}") {
        let has_control = s.chars().any(|c| c.is_control() && c != '\t');
        prop_assert_eq!(Text::new(s.as_str()).is_err(), has_control);
    }

    #[test]
    fn names_are_refused_exactly_when_the_grammar_says(s in ".{0,40}") {
        let valid = (1..=32).contains(&s.chars().count())
            && s.chars().all(|c| c.is_alphanumeric() || "_-.".contains(c));
        prop_assert_eq!(Name::new(s.as_str()).is_ok(), valid);
    }
}
