//! The framing as a codec, for the `Framed` types of tokio-util and
//! asynchronous-codec.
//!
//! [`FrameCodec`] holds the core's decoder and encoder in one direction:
//! [`FrameCodec::server`] reads client frames and writes server frames,
//! [`FrameCodec::client`] the other way round. It implements the codec
//! traits of tokio-util (feature `tokio-codec`) and of asynchronous-codec
//! (feature `futures-codec`); the transports re-export it as `ChatCodec`. A frame the peer got wrong is not an error of the
//! stream: it is an item, `Err(PeerError)`, and decoding goes on at the next
//! line, as the protocol requires. Decoded frames own their strings, since
//! they outlive the read buffer.

use std::collections::VecDeque;
use std::io;

use bytes::BytesMut;
use chat_proto::{ClientFrame, DEFAULT_MAX_FRAME_LEN, Decoder, PeerError, RawFrame, ServerFrame};

/// The frames one side of a codec reads, and those it writes.
pub trait Inbound: Sized + sealed::Sealed {
    /// The frames written the other way.
    type Out<'a>: Outbound;

    /// Applies this direction's grammar to a decoded line.
    fn parse(raw: RawFrame<'_>) -> Result<Self, PeerError>;
}

impl Inbound for ClientFrame<'static> {
    type Out<'a> = ServerFrame<'a>;

    fn parse(raw: RawFrame<'_>) -> Result<Self, PeerError> {
        ClientFrame::parse(raw).map(ClientFrame::into_owned)
    }
}

impl Inbound for ServerFrame<'static> {
    type Out<'a> = ClientFrame<'a>;

    fn parse(raw: RawFrame<'_>) -> Result<Self, PeerError> {
        ServerFrame::parse(raw).map(ServerFrame::into_owned)
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for chat_proto::ClientFrame<'static> {}
    impl Sealed for chat_proto::ServerFrame<'static> {}
}

/// A frame that can be written: [`ClientFrame`] or [`ServerFrame`].
pub trait Outbound {
    /// Its encoded length, LF included.
    fn encoded_len(&self) -> usize;
    /// Appends it to `dst`.
    fn encode(&self, dst: &mut BytesMut);
}

impl Outbound for ClientFrame<'_> {
    fn encoded_len(&self) -> usize {
        ClientFrame::encoded_len(self)
    }
    fn encode(&self, dst: &mut BytesMut) {
        ClientFrame::encode(self, dst);
    }
}

impl Outbound for ServerFrame<'_> {
    fn encoded_len(&self) -> usize {
        ServerFrame::encoded_len(self)
    }
    fn encode(&self, dst: &mut BytesMut) {
        ServerFrame::encode(self, dst);
    }
}

/// Decodes frames of type `In` from a growing buffer; encodes frames with
/// a length check.
#[derive(Debug)]
pub struct FrameCodec<In> {
    decoder: Decoder,
    ready: VecDeque<Result<In, PeerError>>,
}

impl FrameCodec<ClientFrame<'static>> {
    /// The server's side: reads [`ClientFrame`]s, writes [`ServerFrame`]s.
    pub fn server() -> Self {
        Self::new(DEFAULT_MAX_FRAME_LEN)
    }
}

impl FrameCodec<ServerFrame<'static>> {
    /// The client's side: reads [`ServerFrame`]s, writes [`ClientFrame`]s.
    pub fn client() -> Self {
        Self::new(DEFAULT_MAX_FRAME_LEN)
    }
}

impl<In: Inbound> FrameCodec<In> {
    /// A codec for frames of at most `max_frame_len` bytes, LF included,
    /// both ways.
    pub fn new(max_frame_len: usize) -> Self {
        FrameCodec {
            decoder: Decoder::new(max_frame_len),
            ready: VecDeque::new(),
        }
    }

    /// The next frame or peer error, taking all of `src`: the core decoder
    /// keeps any unfinished line itself, so nothing is scanned twice.
    pub fn decode(&mut self, src: &mut BytesMut) -> Option<Result<In, PeerError>> {
        if self.ready.is_empty() && !src.is_empty() {
            let chunk = src.split();
            let ready = &mut self.ready;
            self.decoder
                .decode(&chunk, |frame| ready.push_back(frame.and_then(In::parse)));
        }
        self.ready.pop_front()
    }

    /// Appends `frame` to `dst`, or refuses it if it is longer than the
    /// maximum frame length.
    pub fn encode(&self, frame: &In::Out<'_>, dst: &mut BytesMut) -> io::Result<()> {
        let len = frame.encoded_len();
        let limit = self.decoder.max_frame_len();
        if len > limit {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("frame of {len} bytes exceeds the maximum of {limit}"),
            ));
        }
        frame.encode(dst);
        Ok(())
    }
}

#[cfg(feature = "tokio-codec")]
mod tokio_codec {
    use super::*;
    use tokio_util::codec::{Decoder, Encoder};

    impl<In: Inbound> Decoder for FrameCodec<In> {
        type Item = Result<In, PeerError>;
        type Error = io::Error;

        fn decode(&mut self, src: &mut BytesMut) -> io::Result<Option<Self::Item>> {
            Ok(FrameCodec::decode(self, src))
        }
    }

    impl<'a, In: Inbound> Encoder<In::Out<'a>> for FrameCodec<In> {
        type Error = io::Error;

        fn encode(&mut self, frame: In::Out<'a>, dst: &mut BytesMut) -> io::Result<()> {
            FrameCodec::encode(self, &frame, dst)
        }
    }
}

#[cfg(feature = "futures-codec")]
mod futures_codec {
    use super::*;
    use asynchronous_codec::{Decoder, Encoder};

    impl<In: Inbound> Decoder for FrameCodec<In> {
        type Item = Result<In, PeerError>;
        type Error = io::Error;

        fn decode(&mut self, src: &mut BytesMut) -> io::Result<Option<Self::Item>> {
            Ok(FrameCodec::decode(self, src))
        }
    }

    impl<In: Inbound> Encoder for FrameCodec<In> {
        type Item<'a> = In::Out<'a>;
        type Error = io::Error;

        fn encode(&mut self, frame: In::Out<'_>, dst: &mut BytesMut) -> io::Result<()> {
            FrameCodec::encode(self, &frame, dst)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chat_proto::{Name, Text};

    #[test]
    fn peer_errors_are_items_and_decoding_resumes() {
        let mut codec = FrameCodec::<ClientFrame<'static>>::new(4096);
        let mut src = BytesMut::from(&b"msg:hi\nbogus\nmsg:\xff\nwho:\nmsg:par"[..]);
        let items: Vec<_> = std::iter::from_fn(|| codec.decode(&mut src)).collect();
        assert_eq!(
            items,
            [
                Ok(ClientFrame::Msg(Text::new("hi").unwrap())),
                Err(PeerError::MissingTag),
                Err(PeerError::BadUtf8),
                Ok(ClientFrame::Who),
            ]
        );
        assert!(src.is_empty());
        src.extend_from_slice(b"tial\n");
        assert_eq!(
            codec.decode(&mut src),
            Some(Ok(ClientFrame::Msg(Text::new("partial").unwrap())))
        );
    }

    #[test]
    fn encoding_refuses_frames_over_the_limit() {
        let codec = FrameCodec::<ServerFrame<'static>>::new(256);
        let mut dst = BytesMut::new();
        let long = ClientFrame::Msg(Text::new("x".repeat(300)).unwrap());
        assert!(codec.encode(&long, &mut dst).is_err());
        assert!(dst.is_empty());
        let iam = ClientFrame::Iam(Name::new("lisi").unwrap());
        codec.encode(&iam, &mut dst).unwrap();
        assert_eq!(&dst[..], b"iam:lisi\n");
    }
}
