//! What every TLS server and client must do beyond the plain suite: bound
//! the handshakes in progress, close a connection that never finishes its
//! handshake like one that never logs in, hand a secret sent over TLS to
//! the application, and refuse a server its CA does not vouch for.
//!
//! The server cases take a [`StartWith`], which also sets the transport
//! options (the handshake bound is one); the client case takes a
//! [`TestClient`] that trusts a CA other than the servers' (the
//! [`Untrusted`](crate::tls::Untrusted) wire).

use std::io::Read;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use chat_proto::{ClientConfig, HubCloseReason, HubEvent, LoginMode, ServerConfig};
use transport_common::{ClientOptions, ServerOptions};

use crate::wire::{PATIENCE, RawConn, try_tls_handshake};
use crate::{TestClient, TestServer};

/// How a transport starts a TLS server with transport options too.
pub type StartWith<'a> = &'a dyn Fn(ServerConfig, ServerOptions) -> TestServer;

/// A TCP connection that never starts a TLS handshake.
fn silent_tcp(server: &TestServer) -> TcpStream {
    let tcp = TcpStream::connect_timeout(&server.addr(), PATIENCE).expect("connect");
    tcp.set_read_timeout(Some(PATIENCE)).expect("timeout");
    tcp
}

/// Waits until the server closes `tcp` (EOF or reset), within `patience`.
fn expect_closed(tcp: &mut TcpStream, patience: Duration) {
    let deadline = Instant::now() + patience;
    let mut buf = [0u8; 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "the server did not close within {patience:?}"
        );
        tcp.set_read_timeout(Some(left)).expect("timeout");
        match tcp.read(&mut buf) {
            Ok(0) => return,
            // Nothing the server says before its handshake can be read by
            // a peer that never sent a ClientHello.
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return,
        }
    }
}

/// A connection that never finishes its handshake is closed at the login
/// timeout, like one that never logs in, and gives its handshake slot
/// back.
pub fn tls_handshake_timeout(start: StartWith<'_>) {
    let mut config = ServerConfig::default();
    config.login_timeout = Duration::from_millis(300);
    config.close_linger = Duration::from_millis(200);
    let mut options = ServerOptions::default();
    options.max_handshakes = 1;
    let server = start(config, options);
    let mut stalled = silent_tcp(&server);
    expect_closed(&mut stalled, Duration::from_secs(10));
    assert_eq!(
        server.handle().stats().closes(HubCloseReason::LoginTimeout),
        1
    );
    // The only slot came back: a handshake goes through.
    RawConn::login(server.target(), "after");
}

/// With every handshake slot taken, a TLS listener stops accepting: a
/// client's handshake gets no answer, and the hub does not see it, until
/// a slot comes back.
pub fn tls_handshake_bound(start: StartWith<'_>) {
    let mut options = ServerOptions::default();
    options.max_handshakes = 1;
    let server = start(ServerConfig::default(), options);
    let holder = silent_tcp(&server);
    // The holder's connection reached the hub (at once, before any
    // handshake).
    let deadline = Instant::now() + PATIENCE;
    while server.handle().stats().accepted < 1 {
        assert!(
            Instant::now() < deadline,
            "the first connection was not accepted"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // A client cannot finish a handshake while the holder keeps the slot
    // (for the whole login timeout, 10 s).
    let refused = try_tls_handshake(server.addr(), Duration::from_millis(500));
    assert!(refused.is_err(), "a handshake went through past the bound");
    assert_eq!(
        server.handle().stats().accepted,
        1,
        "accepted past the bound"
    );
    // The holder leaves: its slot comes back, and handshakes go on.
    drop(holder);
    let mut late = RawConn::login(server.target(), "late");
    late.send(b"ping:p\n");
    late.expect("pong:p");
}

/// A secret sent over TLS reaches the application with the login request
/// (the hub takes secrets over encrypted connections).
pub fn tls_secret_reaches_the_application(start: StartWith<'_>) {
    let mut config = ServerConfig::default();
    config.login = LoginMode::Application;
    let server = start(config, ServerOptions::default());
    let events = server.handle().events();
    let mut a = RawConn::connect(server.target());
    a.send(b"iam:zhangsan:hunter2\n");
    let deadline = Instant::now() + PATIENCE;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match events.recv_timeout(left) {
            Ok(Some(HubEvent::LoginRequested { conn, name, secret })) => {
                assert_eq!(
                    (name.as_str(), secret.as_deref()),
                    ("zhangsan", Some("hunter2"))
                );
                server.handle().approve_login(conn);
                break;
            }
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => panic!("no login request within {PATIENCE:?}"),
        }
    }
    a.expect("ok:zhangsan");
}

/// A client that trusts another CA refuses the server, and says why.
pub fn tls_client_refuses_an_unknown_ca<C: TestClient>(start: StartWith<'_>) {
    let server = start(ServerConfig::default(), ServerOptions::default());
    let Err(err) = C::connect(
        &[server.addr()],
        "trusting",
        ClientConfig::default(),
        ClientOptions::default(),
    ) else {
        panic!("connected to a server whose CA it does not trust");
    };
    assert!(
        err.contains("certificate") && err.contains("UnknownIssuer"),
        "{err}"
    );
    assert_eq!(server.handle().stats().logins, 0);
}

/// Expands to one `#[test]` per TLS server behaviour, run against
/// `$start` (a `Fn(ServerConfig, ServerOptions) -> TestServer` serving TLS
/// with the test CA's certificate), and the unknown-CA case for
/// `$untrusting`, a client that trusts another CA.
#[macro_export]
macro_rules! tls_suite {
    ($start:expr, $untrusting:ty) => {
        $crate::tls_suite!(@cases $start;
            tls_handshake_timeout, tls_handshake_bound, tls_secret_reaches_the_application);
        #[test]
        fn tls_client_refuses_an_unknown_ca() {
            $crate::tls_cases::tls_client_refuses_an_unknown_ca::<$untrusting>(&$start);
        }
    };
    (@cases $start:expr; $($case:ident),*) => {
        $(
            #[test]
            fn $case() {
                $crate::tls_cases::$case(&$start);
            }
        )*
    };
}
