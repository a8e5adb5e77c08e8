//! Accounts against a real server over loopback sockets: the blocking
//! transport's server in this process, with the accounts service of `chat
//! serve --accounts` deciding its logins, spoken to in raw protocol bytes
//! and with the client library.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::thread::JoinHandle;
use std::time::Duration;

use chat::accounts::verify::ACCOUNTS_ONLY;
use chat::accounts::{
    Accounts, AccountsSource, HashCost, LoginOptions, LoginService, WRONG_NAME_OR_PASSWORD,
    hash_password,
};
use chat_conformance::wire::RawConn;
use chat_proto::{ClientConfig, ErrorCode, LoginMode, ServerConfig};
use transport_std::{ConnectError, Login, ServerHandle};

/// argon2's smallest cost: hashing is not what these tests look at.
const CHEAP: HashCost = HashCost {
    memory_kib: 8,
    iterations: 1,
    lanes: 1,
};

const PASSWORD: &str = "correct horse";

struct Running {
    addr: SocketAddr,
    path: PathBuf,
    handle: ServerHandle,
    server: Option<JoinHandle<()>>,
    service: Option<LoginService>,
    _dir: tempfile::TempDir,
}

/// A server whose one account is `zhangsan`, password [`PASSWORD`].
fn start(require_account: bool) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("accounts");
    let mut accounts = Accounts::new();
    accounts
        .add("zhangsan", &hash_password(PASSWORD, CHEAP).unwrap())
        .unwrap();
    accounts.save(&path).unwrap();
    let source = AccountsSource::open(&path, require_account).unwrap();

    let mut config = ServerConfig::default();
    config.login = LoginMode::Application;
    // Failed logins still slow the next attempt down; briefly, here.
    config.failed_logins.first_delay = Duration::from_millis(10);
    let server = transport_std::Server::bind("127.0.0.1:0", config).unwrap();
    let addr = server.local_addr().unwrap();
    let handle = server.handle();
    let service = LoginService::start(&handle, source, LoginOptions::default()).unwrap();
    let server = std::thread::spawn(move || server.serve().unwrap());
    Running {
        addr,
        path,
        handle,
        server: Some(server),
        service: Some(service),
        _dir: dir,
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.handle.shutdown();
        if let Some(server) = self.server.take() {
            let _ = server.join();
        }
        // The service ends once the server has stopped.
        if let Some(service) = self.service.take() {
            service.join();
        }
    }
}

impl Running {
    /// A new connection's answer to `frame`.
    fn answer(&self, frame: &str) -> String {
        let mut conn = RawConn::connect(self.addr);
        conn.send(format!("{frame}\n").as_bytes());
        conn.line()
    }
}

fn refused(text: &str) -> String {
    format!("err:login-refused:{text}")
}

#[test]
fn a_guest_cannot_take_a_registered_name_or_a_look_alike() {
    let server = start(false);
    let taken = refused("zhangsan is registered: log in with its password");
    assert_eq!(server.answer("iam:zhangsan"), taken);
    assert_eq!(server.answer("iam:ZhangSan"), taken);
    assert_eq!(server.answer("iam:lisi"), "ok:lisi");
}

#[test]
fn a_wrong_password_is_refused_and_the_right_one_accepted() {
    let server = start(false);
    let mut conn = RawConn::connect(server.addr);
    conn.send(b"iam:zhangsan:battery staple\n");
    conn.expect(&refused(WRONG_NAME_OR_PASSWORD));
    // The refusal is not fatal: the same connection tries again.
    conn.send(format!("iam:zhangsan:{PASSWORD}\n").as_bytes());
    conn.expect("ok:zhangsan");
    // The name is now held: a second login with the password is told so.
    assert_eq!(
        server.answer(&format!("iam:zhangsan:{PASSWORD}")),
        "err:name-taken:zhangsan is taken"
    );
}

#[test]
fn an_unknown_name_and_a_wrong_password_get_the_same_refusal() {
    let server = start(false);
    let wrong = server.answer("iam:zhangsan:battery staple");
    let unknown = server.answer(&format!("iam:wangwu:{PASSWORD}"));
    assert_eq!(wrong, refused(WRONG_NAME_OR_PASSWORD));
    assert_eq!(unknown, wrong);
}

#[test]
fn require_account_refuses_guests_and_lets_accounts_in() {
    let server = start(true);
    assert_eq!(server.answer("iam:lisi"), refused(ACCOUNTS_ONLY));
    assert_eq!(server.answer("iam:zhangsan"), refused(ACCOUNTS_ONLY));
    assert_eq!(
        server.answer(&format!("iam:zhangsan:{PASSWORD}")),
        "ok:zhangsan"
    );
}

#[test]
fn a_running_server_follows_edits_of_the_accounts_file() {
    let server = start(false);
    assert_eq!(server.answer("iam:lisi"), "ok:lisi");
    let mut accounts = Accounts::load(&server.path).unwrap();
    accounts
        .add("lisi", &hash_password("lisi's", CHEAP).unwrap())
        .unwrap();
    accounts.save(&server.path).unwrap();
    assert_eq!(
        server.answer("iam:lisi"),
        refused("lisi is registered: log in with its password")
    );
    assert_eq!(server.answer("iam:lisi:lisi's"), "ok:lisi");
    accounts.remove("lisi").unwrap();
    accounts.save(&server.path).unwrap();
    assert_eq!(
        server.answer("iam:lisi:lisi's"),
        refused(WRONG_NAME_OR_PASSWORD)
    );
}

#[test]
fn the_client_library_logs_in_with_a_secret() {
    let server = start(false);
    let client = transport_std::Client::connect(
        server.addr,
        Login::with_secret("zhangsan", PASSWORD),
        ClientConfig::default(),
    )
    .unwrap();
    assert_eq!(client.name().as_deref(), Some("zhangsan"));
    drop(client);
    let wrong = transport_std::Client::connect(
        server.addr,
        Login::with_secret("lisi", PASSWORD),
        ClientConfig::default(),
    );
    match wrong {
        Err(ConnectError::Rejected { code, text }) => {
            assert_eq!(code, ErrorCode::LoginRefused);
            assert_eq!(text, WRONG_NAME_OR_PASSWORD);
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}
