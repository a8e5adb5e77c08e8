//! Accounts through the `chat` program: `chat account` with the password
//! piped in, `chat serve --accounts` (on every `--runtime`) and
//! `--require-account`, and `chat connect --password-stdin`.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use chat::accounts::{Accounts, verify_password};
use chat_conformance::wire::RawConn;
use common::Serve;

/// Runs `chat ARGS...` with `stdin` piped in.
fn chat(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_chat"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run chat");
    // A command that fails before reading stdin closes it: a broken pipe
    // here is not the test's business.
    let _ = child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes());
    child.wait_with_output().expect("chat ends")
}

/// `chat account ACTION NAME --accounts FILE`, which must succeed; its
/// stdout.
fn account_ok(action: &str, name: &str, file: &Path, stdin: &str) -> String {
    let output = chat(&account_args(action, name, file), stdin);
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout).expect("utf-8")
}

/// The same, which must fail; its stderr.
fn account_err(action: &str, name: &str, file: &Path, stdin: &str) -> String {
    let output = chat(&account_args(action, name, file), stdin);
    assert!(!output.status.success(), "{output:?}");
    String::from_utf8(output.stderr).expect("utf-8")
}

fn account_args<'a>(action: &'a str, name: &'a str, file: &'a Path) -> Vec<&'a str> {
    let file = file.to_str().expect("a UTF-8 path");
    vec!["account", action, name, "--accounts", file]
}

#[test]
fn account_add_passwd_remove_with_the_password_piped_in() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("accounts");

    let out = account_ok("add", "zhangsan", &file, "first pass\n");
    assert!(out.contains("added zhangsan"), "{out}");
    let accounts = Accounts::load(&file).unwrap();
    let (_, phc) = accounts.get("zhangsan").unwrap();
    assert!(phc.starts_with("$argon2id$"), "{phc}");
    assert!(verify_password(phc, "first pass"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    // Only the first line is the password; CRLF is a line end too.
    account_ok("add", "lisi", &file, "lisi pass\r\nnot this\n");
    let err = account_err("add", "ZhangSan", &file, "x\n");
    assert!(
        err.contains("ZhangSan is already registered (as zhangsan"),
        "{err}"
    );
    let err = account_err("add", "wangwu", &file, "\n");
    assert!(err.contains("the password is empty"), "{err}");
    let err = account_err("add", "wangwu", &file, "");
    assert!(err.contains("no password on stdin"), "{err}");
    let err = account_err("add", "bad:name", &file, "x\n");
    assert!(err.contains("cannot be registered"), "{err}");

    let out = account_ok("passwd", "ZHANGSAN", &file, "second pass\n");
    assert!(out.contains("changed the password of zhangsan"), "{out}");
    let accounts = Accounts::load(&file).unwrap();
    let (_, phc) = accounts.get("zhangsan").unwrap();
    assert!(verify_password(phc, "second pass") && !verify_password(phc, "first pass"));
    let err = account_err("passwd", "wangwu", &file, "x\n");
    assert!(err.contains("wangwu has no account"), "{err}");

    let out = account_ok("remove", "lisi", &file, "");
    assert!(out.contains("removed lisi"), "{out}");
    let err = account_err("remove", "lisi", &file, "");
    assert!(err.contains("lisi has no account"), "{err}");
    let accounts = Accounts::load(&file).unwrap();
    assert_eq!(accounts.len(), 1);
    assert!(accounts.get("lisi").is_none());

    // A malformed file is named with its line, and left alone.
    std::fs::write(&file, "# accounts\nnot an account\n").unwrap();
    let err = account_err("add", "wangwu", &file, "x\n");
    assert!(err.contains(":2: expected NAME:PHC"), "{err}");
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "# accounts\nnot an account\n"
    );
}

/// An accounts file with `zhangsan`, password `correct horse`.
fn one_account(dir: &Path) -> String {
    let file = dir.join("accounts");
    account_ok("add", "zhangsan", &file, "correct horse\n");
    file.to_str().unwrap().to_owned()
}

fn answer(server: &Serve, frame: &str) -> String {
    let mut conn = RawConn::connect(server.addr);
    conn.send(format!("{frame}\n").as_bytes());
    conn.line()
}

fn serves_accounts(runtime: &str) {
    let dir = tempfile::tempdir().unwrap();
    let file = one_account(dir.path());
    let server = Serve::start(&["--accounts", &file, "--runtime", runtime]);
    assert_eq!(
        answer(&server, "iam:zhangsan"),
        "err:login-refused:zhangsan is registered: log in with its password"
    );
    assert_eq!(answer(&server, "iam:lisi"), "ok:lisi");
    assert_eq!(
        answer(&server, "iam:wangwu:correct horse"),
        "err:login-refused:wrong name or password"
    );
    let mut owner = RawConn::connect(server.addr);
    owner.send(b"iam:zhangsan:wrong\n");
    owner.expect("err:login-refused:wrong name or password");
    owner.send(b"iam:zhangsan:correct horse\n");
    owner.expect("ok:zhangsan");
}

#[test]
fn tokio_serves_accounts() {
    serves_accounts("tokio");
}

#[test]
fn async_std_serves_accounts() {
    serves_accounts("async-std");
}

#[test]
fn std_serves_accounts() {
    serves_accounts("std");
}

#[test]
fn require_account_refuses_guests() {
    let dir = tempfile::tempdir().unwrap();
    let file = one_account(dir.path());
    let server = Serve::start(&["--accounts", &file, "--require-account"]);
    let accounts_only =
        "err:login-refused:this server takes accounts only: log in with iam:NAME:PASSWORD";
    assert_eq!(answer(&server, "iam:lisi"), accounts_only);
    assert_eq!(answer(&server, "iam:zhangsan"), accounts_only);
    assert_eq!(answer(&server, "iam:zhangsan:correct horse"), "ok:zhangsan");
}

#[test]
fn serve_refuses_a_bad_accounts_setup() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing");
    let run = |args: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_chat"))
            .args(["serve", "--addr", "127.0.0.1:0"])
            .args(args)
            .output()
            .expect("run chat serve");
        assert!(!output.status.success(), "{output:?}");
        String::from_utf8(output.stderr).unwrap()
    };
    let err = run(&["--accounts", missing.to_str().unwrap()]);
    assert!(err.contains("No such file"), "{err}");
    let broken = dir.path().join("broken");
    std::fs::write(&broken, "zhangsan:not-a-hash\n").unwrap();
    let err = run(&["--accounts", broken.to_str().unwrap()]);
    assert!(err.contains(":1: zhangsan: not a PHC string"), "{err}");
    let err = run(&["--require-account"]);
    assert!(err.contains("--accounts"), "{err}");
    let file = one_account(dir.path());
    let err = run(&["--accounts", &file, "--verify-threads", "0"]);
    assert!(err.contains("--verify-threads must be at least 1"), "{err}");
}

#[test]
fn connect_logs_in_with_a_password_from_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let file = one_account(dir.path());
    let server = Serve::start(&["--accounts", &file]);
    let mut watcher = RawConn::login(server.addr, "watcher");
    let addr = server.addr.to_string();
    let connect = [
        "connect",
        "--name",
        "zhangsan",
        "--addr",
        &addr,
        "--password-stdin",
        "--no-reconnect",
    ];
    let output = chat(&connect, "correct horse\ndid you have dinner\n");
    assert!(output.status.success(), "{output:?}");
    watcher.expect("join:zhangsan");
    // The password line is not a message; the line after it is.
    watcher.expect("msg:zhangsan:did you have dinner");
    watcher.expect("left:zhangsan");

    let output = chat(&connect, "battery staple\nhello\n");
    assert!(!output.status.success());
    let err = String::from_utf8(output.stderr).unwrap();
    assert!(err.contains("wrong name or password"), "{err}");
}
