//! The `chat` package is the `chat` program (`src/main.rs`). This library
//! target exists only so that `cargo test` compiles and runs the README's
//! Rust examples as doctests, keeping them true.

#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeExamples;
