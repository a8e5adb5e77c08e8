//! Fuzzes the streaming `Decoder` with arbitrary bytes and arbitrary chunking.
//!
//! The first bytes of the input pick the maximum frame length (tiny values
//! that make every other line too long, or values in the protocol's range)
//! and the points where the stream is cut into reads; the rest is the stream.
//! Checks that:
//!
//! * one whole read, the fuzzer's chunking and a byte-by-byte read give the
//!   same frames and errors, and all equal an independent line-by-line
//!   reference written from PROTOCOL.md section 1;
//! * `buffered()` stays below `max_frame_len` after every read, and the
//!   buffer is released (`buffer_capacity() == 0`) when nothing is pending;
//! * every frame has a valid tag and no control character but TAB.

#![no_main]

use arbitrary::Unstructured;
use chat_proto::{Decoder, MAX_TAG_LEN, PeerError};
use libfuzzer_sys::fuzz_target;

type Out = Vec<Result<(String, String), PeerError>>;

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok((max, cuts)) = header(&mut u) else {
        return;
    };
    let input = u.take_rest();

    let expected = reference(max, input);
    assert_eq!(decode_chunks(max, [input]), expected, "one whole read");
    let bytes = input.chunks(1);
    assert_eq!(decode_chunks(max, bytes), expected, "byte by byte");
    assert_eq!(
        decode_chunks(max, split_at(input, &cuts)),
        expected,
        "cut at {cuts:?}"
    );
});

/// The maximum frame length and the cut points, from the head of the input.
fn header(u: &mut Unstructured<'_>) -> arbitrary::Result<(usize, Vec<usize>)> {
    let max = if u.ratio(1, 4)? {
        u.int_in_range(1..=64)?
    } else {
        u.int_in_range(256..=4096)?
    };
    let count = u.int_in_range(0..=16)?;
    let cuts = (0..count)
        .map(|_| u.arbitrary::<u16>().map(usize::from))
        .collect::<arbitrary::Result<_>>()?;
    Ok((max, cuts))
}

/// `input` cut at the given offsets (taken modulo its length, sorted).
fn split_at<'a>(input: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
    cuts.sort_unstable();
    let mut chunks = Vec::new();
    let mut start = 0;
    for cut in cuts {
        chunks.push(&input[start..cut]);
        start = cut;
    }
    chunks.push(&input[start..]);
    chunks
}

/// Feeds the chunks in order, checking the decoder's buffer promises after
/// each one and the shape of every frame.
fn decode_chunks<'a>(max: usize, chunks: impl IntoIterator<Item = &'a [u8]>) -> Out {
    let mut decoder = Decoder::new(max);
    let mut out = Vec::new();
    for chunk in chunks {
        decoder.decode(chunk, |frame| {
            if let Ok(frame) = &frame {
                check_frame(frame.tag(), frame.payload());
            }
            out.push(frame.map(|f| (f.tag().to_owned(), f.payload().to_owned())));
        });
        assert!(
            decoder.buffered() < max,
            "buffered {} bytes with max_frame_len {max}",
            decoder.buffered()
        );
        if decoder.buffered() == 0 {
            assert_eq!(decoder.buffer_capacity(), 0, "idle buffer not released");
        }
    }
    out
}

fn check_frame(tag: &str, payload: &str) {
    assert!(
        (1..=MAX_TAG_LEN).contains(&tag.len()) && tag.bytes().all(is_tag_byte),
        "bad tag {tag:?}"
    );
    assert!(
        !payload.chars().any(|c| c.is_control() && c != '\t'),
        "control character in payload {payload:?}"
    );
}

fn is_tag_byte(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'
}

/// PROTOCOL.md section 1, one line at a time, with no streaming at all.
///
/// A line of `max` bytes or more before its LF can never fit (the LF must
/// still come), so it is one `too-long`, whether or not its LF has arrived.
fn reference(max: usize, input: &[u8]) -> Out {
    let mut out = Vec::new();
    let mut lines = input.split(|&b| b == b'\n').peekable();
    while let Some(line) = lines.next() {
        let terminated = lines.peek().is_some();
        if line.len() >= max {
            out.push(Err(PeerError::TooLong { limit: max }));
            continue;
        }
        if !terminated {
            break; // an unfinished line that still fits: buffered
        }
        let Ok(line) = std::str::from_utf8(line) else {
            out.push(Err(PeerError::BadUtf8));
            continue;
        };
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        if line.chars().any(|c| c.is_control() && c != '\t') {
            out.push(Err(PeerError::ControlChar));
            continue;
        }
        let tag_len = line.bytes().take_while(|&b| is_tag_byte(b)).count();
        if (1..=MAX_TAG_LEN).contains(&tag_len) && line.as_bytes().get(tag_len) == Some(&b':') {
            out.push(Ok((line[..tag_len].into(), line[tag_len + 1..].into())));
        } else {
            out.push(Err(PeerError::MissingTag));
        }
    }
    out
}
