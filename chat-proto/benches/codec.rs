//! Benchmarks of the codec and of the hub's broadcast.
//!
//! * `decode/{ascii,chinese}/{64,128,1024}`: decoding about 1 MiB of `msg:`
//!   frames of that many bytes (LF included), in printable ASCII or in chat
//!   text where about a third of the characters are Chinese. Each stream is
//!   fed whole (one call) and as 4 KiB reads whose boundaries all fall inside
//!   a frame (the first read is 45 bytes short), as a socket would deliver
//!   it. Side by side: our [`Decoder`] (every frame `black_box`ed; `ours+parse`
//!   also applies [`ClientFrame::parse`] as the hub does), tokio-util's
//!   `LinesCodec` producing `String`s, and three "floors" that only split
//!   lines with `memchr` and check UTF-8: `std::str::from_utf8` per line,
//!   `simdutf8` per line, and `simdutf8` once per read (all complete lines of
//!   a read in one call, as our decoder does). Throughput is in decimal MB/s;
//!   frames/s is MB/s divided by the frame length.
//! * `encode/{ascii,chinese}/{64,128,1024}`: encoding `ServerFrame::Msg`
//!   frames of that many bytes into a `BytesMut`.
//! * `hub/broadcast/{1,100,10000}`: one `msg:` from a member of a room of N
//!   logged-in connections, relayed to all N (one encode, a `Bytes` clone per
//!   recipient), with every transmit drained and reported written. The
//!   throughput is recipients per second.
//!
//! Run with `cargo bench -p chat-proto --bench codec` (add `-- decode/chinese`
//! to run one group). Criterion writes an HTML report to
//! `target/criterion/report/index.html`. Results are in BENCHMARKS.md.

use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use chat_proto::{
    ClientFrame, ConnId, Decoder, Hub, Name, Output, ServerConfig, ServerFrame, Text,
};
use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use memchr::{memchr, memchr_iter, memrchr};
use tokio_util::codec::{Decoder as _, LinesCodec};

/// The size of each decoded or encoded stream.
const STREAM_BYTES: usize = 1 << 20;
/// The size of a socket read.
const READ: usize = 4096;
/// The first read is this much shorter, so no read ends on a frame boundary.
const SKEW: usize = 45;
/// The maximum frame length given to every decoder.
const MAX_FRAME_LEN: usize = 4096;
/// Frame lengths in bytes, LF included.
const SIZES: [usize; 3] = [64, 128, 1024];

#[derive(Clone, Copy)]
enum Kind {
    Ascii,
    Chinese,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Ascii => "ascii",
            Kind::Chinese => "chinese",
        }
    }
}

const ASCII: &[u8] = b"abcdefghijklmnopqrstuvwxyz    ABCDEFGHIJ0123456789,.?!'()-:;";
const HANZI: &str = "的一是不了人我在有他这中大来上个国说们为子和你地出道也时年得就那要下以\
    生会自着去之过家学对可里后小么心多天而能好都然没日于起还发成事只作当想看文无开手十用主行\
    方又如前所本见经头面公同已老从动两长知民样现分将外但身些与高意进把法此实回理美点月明其种\
    声全工己话儿者向情部正名定女问力机给等几很最间新什打吃饭晚饺，。？！";

/// A small deterministic generator (xorshift64*), so every run measures the
/// same bytes.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % n
    }
}

/// Chat text of exactly `len` bytes: printable ASCII, or (Chinese) about one
/// character in three a 3-byte Chinese character.
fn text(rng: &mut Rng, kind: Kind, len: usize) -> String {
    let hanzi: Vec<char> = HANZI.chars().filter(|c| c.len_utf8() == 3).collect();
    let mut s = String::with_capacity(len);
    while s.len() < len {
        let left = len - s.len();
        if matches!(kind, Kind::Chinese) && left >= 3 && rng.below(3) == 0 {
            s.push(hanzi[rng.below(hanzi.len())]);
        } else {
            s.push(char::from(ASCII[rng.below(ASCII.len())]));
        }
    }
    s
}

/// About 1 MiB of `msg:TEXT\n` frames of exactly `frame_len` bytes each.
fn stream(kind: Kind, frame_len: usize) -> Vec<u8> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ frame_len as u64);
    let mut out = Vec::with_capacity(STREAM_BYTES);
    for _ in 0..STREAM_BYTES / frame_len {
        out.extend_from_slice(b"msg:");
        out.extend_from_slice(text(&mut rng, kind, frame_len - 5).as_bytes());
        out.push(b'\n');
    }
    out
}

/// The stream cut as 4 KiB socket reads, every boundary inside a frame.
fn reads(stream: &[u8]) -> Vec<&[u8]> {
    let (first, rest) = stream.split_at(READ - SKEW);
    std::iter::once(first).chain(rest.chunks(READ)).collect()
}

fn std_utf8(line: &[u8]) -> Option<&str> {
    std::str::from_utf8(line).ok()
}

fn simd_utf8(line: &[u8]) -> Option<&str> {
    simdutf8::basic::from_utf8(line).ok()
}

/// The floor: `memchr` line splitting and a UTF-8 check of each line, with
/// an unfinished line carried over to the next read. No CR, control
/// character, tag or length handling.
#[derive(Default)]
struct Floor {
    carry: Vec<u8>,
}

impl Floor {
    /// Finishes the carried line, if any; returns what follows it.
    fn finish_carry<'a, F>(&mut self, input: &'a [u8], utf8: F) -> Option<&'a [u8]>
    where
        F: Fn(&[u8]) -> Option<&str>,
    {
        if self.carry.is_empty() {
            return Some(input);
        }
        let Some(lf) = memchr(b'\n', input) else {
            self.carry.extend_from_slice(input);
            return None;
        };
        self.carry.extend_from_slice(&input[..lf]);
        black_box(utf8(&self.carry));
        self.carry.clear();
        Some(&input[lf + 1..])
    }

    /// Checks each line on its own.
    fn per_line<F>(&mut self, input: &[u8], utf8: F)
    where
        F: Fn(&[u8]) -> Option<&str> + Copy,
    {
        let Some(input) = self.finish_carry(input, utf8) else {
            return;
        };
        let mut start = 0;
        for lf in memchr_iter(b'\n', input) {
            black_box(utf8(&input[start..lf]));
            start = lf + 1;
        }
        self.carry.extend_from_slice(&input[start..]);
    }

    /// Checks all the complete lines of a read in one `simdutf8` call.
    fn per_read(&mut self, input: &[u8]) {
        let Some(input) = self.finish_carry(input, simd_utf8) else {
            return;
        };
        let Some(last) = memrchr(b'\n', input) else {
            self.carry.extend_from_slice(input);
            return;
        };
        let (lines, tail) = input.split_at(last + 1);
        match simd_utf8(lines) {
            Some(text) => {
                let mut start = 0;
                for lf in memchr_iter(b'\n', lines) {
                    black_box(&text[start..lf]);
                    start = lf + 1;
                }
            }
            None => self.per_line(lines, simd_utf8),
        }
        self.carry.extend_from_slice(tail);
    }
}

fn lines_codec(buf: &mut BytesMut, codec: &mut LinesCodec) {
    while let Some(line) = codec.decode(buf).expect("valid lines") {
        black_box(line);
    }
}

/// Every contender sees every frame of the stream, whole and in reads.
fn check_stream(stream: &[u8], reads: &[&[u8]], len: usize) {
    let frames = stream.len() / len;
    assert!(reads[..reads.len() - 1].iter().all(|r| !r.ends_with(b"\n")));
    for input in [&[stream][..], reads] {
        let mut decoder = Decoder::new(MAX_FRAME_LEN);
        let mut ours = 0;
        for read in input {
            decoder.decode(read, |frame| {
                let frame = ClientFrame::parse(frame.expect("a valid frame"));
                assert!(matches!(frame, Ok(ClientFrame::Msg(_))));
                ours += 1;
            });
        }
        let mut codec = LinesCodec::new_with_max_length(MAX_FRAME_LEN - 1);
        let mut buf = BytesMut::new();
        let mut theirs = 0;
        for read in input {
            buf.extend_from_slice(read);
            while let Some(line) = codec.decode(&mut buf).expect("valid lines") {
                assert_eq!(line.len(), len - 1);
                theirs += 1;
            }
        }
        assert_eq!((ours, theirs), (frames, frames));
    }
}

fn bench_decode(c: &mut Criterion) {
    for kind in [Kind::Ascii, Kind::Chinese] {
        for len in SIZES {
            let stream = stream(kind, len);
            let reads = reads(&stream);
            check_stream(&stream, &reads, len);
            let mut group = c.benchmark_group(format!("decode/{}/{len}", kind.label()));
            group.throughput(Throughput::BytesDecimal(stream.len() as u64));
            group.sample_size(40);

            group.bench_function(BenchmarkId::new("ours", "whole"), |b| {
                b.iter(|| {
                    let mut decoder = Decoder::new(MAX_FRAME_LEN);
                    decoder.decode(&stream, |frame| {
                        let _ = black_box(frame);
                    });
                })
            });
            group.bench_function(BenchmarkId::new("ours", "reads"), |b| {
                b.iter(|| {
                    let mut decoder = Decoder::new(MAX_FRAME_LEN);
                    for read in &reads {
                        decoder.decode(read, |frame| {
                            let _ = black_box(frame);
                        });
                    }
                })
            });
            group.bench_function(BenchmarkId::new("ours+parse", "whole"), |b| {
                b.iter(|| {
                    let mut decoder = Decoder::new(MAX_FRAME_LEN);
                    decoder.decode(&stream, |frame| {
                        let _ = black_box(frame.and_then(ClientFrame::parse));
                    });
                })
            });
            group.bench_function(BenchmarkId::new("ours+parse", "reads"), |b| {
                b.iter(|| {
                    let mut decoder = Decoder::new(MAX_FRAME_LEN);
                    for read in &reads {
                        decoder.decode(read, |frame| {
                            let _ = black_box(frame.and_then(ClientFrame::parse));
                        });
                    }
                })
            });

            group.bench_function(BenchmarkId::new("lines-codec", "whole"), |b| {
                b.iter_batched(
                    || BytesMut::from(&stream[..]),
                    |mut buf| {
                        let mut codec = LinesCodec::new_with_max_length(MAX_FRAME_LEN - 1);
                        lines_codec(&mut buf, &mut codec);
                        buf
                    },
                    BatchSize::LargeInput,
                )
            });
            group.bench_function(BenchmarkId::new("lines-codec", "reads"), |b| {
                b.iter(|| {
                    let mut codec = LinesCodec::new_with_max_length(MAX_FRAME_LEN - 1);
                    let mut buf = BytesMut::with_capacity(2 * READ);
                    for read in &reads {
                        buf.extend_from_slice(read);
                        lines_codec(&mut buf, &mut codec);
                    }
                })
            });

            for (name, input) in [("whole", vec![&stream[..]]), ("reads", reads.clone())] {
                group.bench_function(BenchmarkId::new("floor-std-line", name), |b| {
                    b.iter(|| {
                        let mut floor = Floor::default();
                        for read in &input {
                            floor.per_line(read, std_utf8);
                        }
                    })
                });
                group.bench_function(BenchmarkId::new("floor-simd-line", name), |b| {
                    b.iter(|| {
                        let mut floor = Floor::default();
                        for read in &input {
                            floor.per_line(read, simd_utf8);
                        }
                    })
                });
                group.bench_function(BenchmarkId::new("floor-simd-read", name), |b| {
                    b.iter(|| {
                        let mut floor = Floor::default();
                        for read in &input {
                            floor.per_read(read);
                        }
                    })
                });
            }
            group.finish();
        }
    }
}

fn bench_encode(c: &mut Criterion) {
    let from = Name::new("zhangsan").expect("a valid name");
    let overhead = "msg:zhangsan:\n".len();
    for kind in [Kind::Ascii, Kind::Chinese] {
        for len in SIZES {
            let mut rng = Rng(0x2545_f491_4f6c_dd1d ^ len as u64);
            let texts: Vec<String> = (0..STREAM_BYTES / len)
                .map(|_| text(&mut rng, kind, len - overhead))
                .collect();
            let frames: Vec<ServerFrame<'_>> = texts
                .iter()
                .map(|t| ServerFrame::Msg {
                    from: from.clone(),
                    text: Text::new(t.as_str()).expect("text without controls"),
                })
                .collect();
            let total: usize = frames.iter().map(ServerFrame::encoded_len).sum();
            assert_eq!(total, frames.len() * len);
            let mut group = c.benchmark_group(format!("encode/{}/{len}", kind.label()));
            group.throughput(Throughput::BytesDecimal(total as u64));
            group.sample_size(40);
            let mut dst = BytesMut::with_capacity(total);
            group.bench_function("ours", |b| {
                b.iter(|| {
                    dst.clear();
                    for frame in &frames {
                        frame.encode(&mut dst);
                    }
                    black_box(&dst);
                })
            });
            group.finish();
        }
    }
}

/// Hands every queued transmit to a pretend socket that writes it all.
fn drain(hub: &mut Hub, now: Instant) {
    while let Some(output) = hub.poll_output() {
        if let Output::Transmit(t) = &output {
            hub.written(t.conn, now, t.len());
        }
        black_box(output);
    }
}

fn bench_broadcast(c: &mut Criterion) {
    let mut group = c.benchmark_group("hub/broadcast");
    let now = Instant::now();
    let msg =
        b"msg:did you have dinner? \xe6\x88\x91\xe4\xbb\xac\xe5\x90\x83\xe9\xa5\xba\xe5\xad\x90\n";
    for n in [1usize, 100, 10_000] {
        let mut config = ServerConfig::default();
        config.max_connections = n;
        // No presence frames while the room fills up: they are not measured.
        config.presence_limit = 0;
        let mut hub = Hub::new(config).expect("a valid config");
        let conns: Vec<ConnId> = (0..n)
            .map(|i| {
                let conn = hub.accept(now, None);
                hub.handle_input(conn, now, format!("iam:user{i}\n").as_bytes());
                drain(&mut hub, now);
                conn
            })
            .collect();
        assert_eq!(hub.members(), n);
        group.throughput(Throughput::Elements(n as u64));
        group.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter(|| {
                hub.handle_input(conns[0], now, msg);
                drain(&mut hub, now);
            })
        });
        assert_eq!(hub.members(), n, "nobody was dropped");
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = bench_decode, bench_encode, bench_broadcast
}
criterion_main!(benches);
