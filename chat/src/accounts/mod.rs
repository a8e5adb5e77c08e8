//! Accounts: registered names, each reserved for whoever knows its
//! password.
//!
//! * [`file`](mod@file): the accounts file, `NAME:PHC` per line, names compared as
//!   the server compares them ([`NameKey`](chat_proto::NameKey)), written
//!   atomically with mode 0600;
//! * [`password`]: which passwords an account may have, argon2id hashes
//!   as PHC strings, checking a password against one;
//! * [`verify`]: deciding a login from the accounts (a guest at once, a
//!   secret by a check), with the same answer and the same cost for a wrong
//!   password and an unknown name;
//! * [`pool`]: a bounded pool of threads for the checks;
//! * [`service`]: the glue to a running server's
//!   [`ServerHandle`](transport_common::ServerHandle), for any transport.
//!
//! `chat account add|passwd|remove` edits the file; `chat serve --accounts
//! FILE` runs the service.
//!
//! # Why argon2id, and the `argon2` crate
//!
//! Argon2id won the Password Hashing Competition and is OWASP's first
//! choice for password storage: memory-hard (a guess costs memory as well
//! as time, which blunts GPUs and ASICs) with memory and time tunable
//! apart. Two Rust implementations were compared:
//!
//! * `argon2` (RustCrypto): pure Rust, `no_std`-capable, maintained with
//!   the other RustCrypto password hashes, and built on the `password-hash`
//!   traits and PHC strings, so a stored hash says its own algorithm and
//!   cost and hashes of different costs can live in one file. Chosen.
//! * `rust-argon2` (sru-systems): also pure Rust and correct, but with its
//!   own encoded-string API outside the `password-hash` ecosystem and
//!   fewer releases in recent years.
//!
//! `scrypt` (also RustCrypto, the same traits) would fit the same file
//! format, but OWASP ranks it after argon2id and its cost parameters are
//! harder to set well (memory and time are coupled).
//!
//! Reading a password without echo uses `rpassword` (small: `libc` on
//! Unix); `crossterm` could do it too, but is a full terminal library the
//! `chat` program does not otherwise need.

pub mod file;
pub mod password;
pub mod pool;
pub mod service;
pub mod verify;

pub use file::{Accounts, AccountsError};
pub use password::{HashCost, PasswordError, check_password, hash_password, verify_password};
pub use service::{LoginOptions, LoginService};
pub use verify::{AccountsSource, Decision, Directory, WRONG_NAME_OR_PASSWORD};
