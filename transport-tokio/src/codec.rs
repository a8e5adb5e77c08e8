//! A tokio-util codec for those who want `Framed` rather than the
//! [`Server`](crate::Server) and [`Client`](crate::Client).
//!
//! [`ChatCodec`] is the core's decoder and encoder behind tokio-util's
//! `Decoder` and `Encoder` traits, in one of two directions:
//! [`ChatCodec::server`] reads client frames and writes server frames,
//! [`ChatCodec::client`] the other way round. A frame the peer got wrong is
//! not an error of the stream: it is yielded as `Ok(Err(PeerError))` and
//! decoding goes on at the next line, as the protocol requires. Only I/O
//! errors end the stream. Decoded frames own their strings (they outlive the
//! read buffer); the state machines in `chat-proto` avoid that copy.
//!
//! ```
//! use futures_util::{SinkExt, StreamExt};
//! use chat_proto::{ClientFrame, Name, ServerFrame};
//! use tokio_util::codec::Framed;
//! use transport_tokio::ChatCodec;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let (a, b) = tokio::io::duplex(1024);
//! let mut client = Framed::new(a, ChatCodec::client());
//! let mut server = Framed::new(b, ChatCodec::server());
//!
//! client.send(ClientFrame::Iam(Name::new("zhangsan").unwrap())).await.unwrap();
//! let frame = server.next().await.unwrap().unwrap().unwrap();
//! assert_eq!(frame, ClientFrame::Iam(Name::new("zhangsan").unwrap()));
//!
//! server.send(ServerFrame::Ok(Name::new("zhangsan").unwrap())).await.unwrap();
//! assert_eq!(client.next().await.unwrap().unwrap().unwrap().tag(), "ok");
//! # }
//! ```

use std::collections::VecDeque;
use std::io;
use std::marker::PhantomData;

use bytes::BytesMut;
use chat_proto::{
    ClientFrame, DEFAULT_MAX_FRAME_LEN, Decoder as FrameDecoder, PeerError, RawFrame, ServerFrame,
};
use tokio_util::codec::{Decoder, Encoder};

/// The frames one side of the codec reads.
pub trait Inbound: Sized + sealed::Sealed {
    /// Applies this direction's grammar to a decoded line.
    fn parse(raw: RawFrame<'_>) -> Result<Self, PeerError>;
}

impl Inbound for ClientFrame<'static> {
    fn parse(raw: RawFrame<'_>) -> Result<Self, PeerError> {
        ClientFrame::parse(raw).map(ClientFrame::into_owned)
    }
}

impl Inbound for ServerFrame<'static> {
    fn parse(raw: RawFrame<'_>) -> Result<Self, PeerError> {
        ServerFrame::parse(raw).map(ServerFrame::into_owned)
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for chat_proto::ClientFrame<'static> {}
    impl Sealed for chat_proto::ServerFrame<'static> {}
}

/// The chat framing as a tokio-util codec, reading frames of type `In`.
#[derive(Debug)]
pub struct ChatCodec<In> {
    decoder: FrameDecoder,
    ready: VecDeque<Result<In, PeerError>>,
    _in: PhantomData<fn() -> In>,
}

impl ChatCodec<ClientFrame<'static>> {
    /// The server's side: reads [`ClientFrame`]s, writes [`ServerFrame`]s.
    pub fn server() -> Self {
        Self::with_max_frame_len(DEFAULT_MAX_FRAME_LEN)
    }
}

impl ChatCodec<ServerFrame<'static>> {
    /// The client's side: reads [`ServerFrame`]s, writes [`ClientFrame`]s.
    pub fn client() -> Self {
        Self::with_max_frame_len(DEFAULT_MAX_FRAME_LEN)
    }
}

impl<In: Inbound> ChatCodec<In> {
    /// A codec with the given maximum frame length, LF included, for both
    /// directions.
    pub fn with_max_frame_len(max_frame_len: usize) -> Self {
        ChatCodec {
            decoder: FrameDecoder::new(max_frame_len),
            ready: VecDeque::new(),
            _in: PhantomData,
        }
    }

    fn check_len(&self, len: usize) -> io::Result<()> {
        let limit = self.decoder.max_frame_len();
        if len > limit {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("frame of {len} bytes exceeds the maximum of {limit}"),
            ));
        }
        Ok(())
    }
}

impl<In: Inbound> Decoder for ChatCodec<In> {
    type Item = Result<In, PeerError>;
    type Error = io::Error;

    fn decode(&mut self, src: &mut BytesMut) -> io::Result<Option<Self::Item>> {
        if self.ready.is_empty() && !src.is_empty() {
            // The core decoder keeps any unfinished line itself, so all of
            // `src` can be taken, and nothing is ever scanned twice.
            let chunk = src.split();
            let ready = &mut self.ready;
            self.decoder
                .decode(&chunk, |frame| ready.push_back(frame.and_then(In::parse)));
        }
        Ok(self.ready.pop_front())
    }
}

impl<'a> Encoder<ServerFrame<'a>> for ChatCodec<ClientFrame<'static>> {
    type Error = io::Error;

    fn encode(&mut self, frame: ServerFrame<'a>, dst: &mut BytesMut) -> io::Result<()> {
        self.check_len(frame.encoded_len())?;
        frame.encode(dst);
        Ok(())
    }
}

impl<'a> Encoder<ClientFrame<'a>> for ChatCodec<ServerFrame<'static>> {
    type Error = io::Error;

    fn encode(&mut self, frame: ClientFrame<'a>, dst: &mut BytesMut) -> io::Result<()> {
        self.check_len(frame.encoded_len())?;
        frame.encode(dst);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chat_proto::{Name, Text};

    #[test]
    fn peer_errors_do_not_end_the_stream() {
        let mut codec = ChatCodec::server();
        let mut src = BytesMut::from(&b"msg:hi\nbogus\nmsg:\xff\nwho:\nmsg:par"[..]);
        let mut items = Vec::new();
        while let Some(item) = codec.decode(&mut src).unwrap() {
            items.push(item);
        }
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
            codec.decode(&mut src).unwrap(),
            Some(Ok(ClientFrame::Msg(Text::new("partial").unwrap())))
        );
    }

    #[test]
    fn encoder_refuses_frames_over_the_limit() {
        let mut codec = ChatCodec::<ServerFrame<'static>>::with_max_frame_len(256);
        let mut dst = BytesMut::new();
        let long = Text::new("x".repeat(300)).unwrap();
        assert!(codec.encode(ClientFrame::Msg(long), &mut dst).is_err());
        assert!(dst.is_empty());
        let name = Name::new("lisi").unwrap();
        codec.encode(ClientFrame::Iam(name), &mut dst).unwrap();
        assert_eq!(&dst[..], b"iam:lisi\n");
    }
}
