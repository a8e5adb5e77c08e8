//! The runtime-free example (examples/nonblocking_server.rs), run: the hub
//! in a hand-written loop over non-blocking std sockets serves two `nc`-like
//! clients on loopback, the seed's session byte for byte, and shuts down
//! gracefully when told to.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chat_proto::ServerConfig;

#[allow(dead_code)]
#[path = "../examples/nonblocking_server.rs"]
mod example;

struct Line(BufReader<TcpStream>);

impl Line {
    fn connect(addr: std::net::SocketAddr) -> (TcpStream, Line) {
        let stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let reader = BufReader::new(stream.try_clone().unwrap());
        (stream, Line(reader))
    }

    fn next(&mut self) -> String {
        let mut line = String::new();
        self.0
            .read_line(&mut line)
            .expect("a line within the timeout");
        line
    }
}

#[test]
fn the_hand_written_loop_serves_the_seed_session_and_shuts_down() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        let server = s.spawn(|| example::serve(listener, ServerConfig::default(), &stop));
        let (mut a, mut ar) = Line::connect(addr);
        let (mut b, mut br) = Line::connect(addr);
        a.write_all(b"iam:zhangsan\n").unwrap();
        assert_eq!(ar.next(), "ok:zhangsan\n");
        b.write_all(b"iam:lisi\n").unwrap();
        assert_eq!(br.next(), "ok:lisi\n");
        assert_eq!(ar.next(), "join:lisi\n");
        a.write_all(b"msg:did you have dinner\n").unwrap();
        assert_eq!(ar.next(), "msg:zhangsan:did you have dinner\n");
        assert_eq!(br.next(), "msg:zhangsan:did you have dinner\n");
        b.write_all(b"who:\n").unwrap();
        assert_eq!(br.next(), "users:zhangsan,lisi\n");
        assert_eq!(br.next(), "users:\n");
        // A bad frame is answered and the connection goes on.
        b.write_all(b"nonsense\nping:x\n").unwrap();
        assert!(br.next().starts_with("err:"));
        assert_eq!(br.next(), "pong:x\n");
        stop.store(true, Ordering::Relaxed);
        assert_eq!(ar.next(), "bye:server shutting down\n");
        assert_eq!(br.next(), "bye:server shutting down\n");
        server.join().unwrap().unwrap();
    });
}
