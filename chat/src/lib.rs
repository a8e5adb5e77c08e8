//! The `chat` package is the `chat` program (`src/main.rs`). Its library
//! holds what the program is built from and tests reach in-process:
//! [`accounts`] (the accounts file and the login service of `chat serve
//! --accounts`). It also makes `cargo test` compile and run the README's
//! Rust examples as doctests, keeping them true.

pub mod accounts;

#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeExamples;
