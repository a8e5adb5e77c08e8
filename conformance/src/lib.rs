//! The conformance suite every chat transport must pass.
//!
//! It is black-box: it starts a server through a function the transport
//! provides, and speaks raw bytes to it over loopback with `std::net`
//! ([`wire`]), checking every behaviour PROTOCOL.md promises. A client-side
//! part checks the transport's client through the [`TestClient`] trait,
//! against a real server and against scripted fake servers. All waits are
//! bounded; nothing binds outside 127.0.0.1.
//!
//! A transport runs it with two macros in one test file:
//!
//! ```ignore
//! fn start(config: ServerConfig) -> chat_conformance::TestServer { /* ... */ }
//! chat_conformance::server_suite!(start);
//! chat_conformance::hardening_suite!(start);
//! chat_conformance::client_suite!(start, MyTestClient);
//! fn start_stored(config: ServerConfig, store: DynStore) -> chat_conformance::TestServer { /* ... */ }
//! chat_conformance::history_suite!(start, start_stored);
//! ```
//!
//! A client case that needs its connection lost without the server's help
//! (a kick is final, a restart loses in-memory history) puts a [`relay`]
//! between them and cuts it.
//!
//! An async transport needs not even that: [`async_harness`] starts a
//! `transport_async::Server` and wraps a `transport_async::Client` on any
//! runtime, given an [`Executor`](async_harness::Executor) to block on.
//!
//! The same cases run over TLS: a `start` function that serves TLS with the
//! test CA's certificate ([`tls::test_ca`]) makes a [`TestServer`] with
//! [`TestServer::new_tls`], which the raw connections of the server cases
//! then speak TLS to; a [`TestClient`] whose `TLS` is true connects with
//! TLS, and the client cases' scripted servers speak TLS to it. So a
//! transport runs the suite over TLS with the same two macros, once more,
//! in a module of its own:
//!
//! ```ignore
//! mod over_tls {
//!     fn start(config: ServerConfig) -> chat_conformance::TestServer { /* bind_tls */ }
//!     chat_conformance::server_suite!(start);
//!     chat_conformance::client_suite!(start, MyTlsTestClient);
//! }
//! ```

#![allow(clippy::missing_panics_doc)]

pub mod async_harness;
pub mod client_cases;
pub mod flow_cases;
pub mod hardening_cases;
pub mod history_cases;
pub mod relay;
pub mod room_cases;
pub mod room_handle_cases;
pub mod server_cases;
pub mod tls;
pub mod tls_cases;
pub mod wire;

use std::net::SocketAddr;
use std::time::Duration;

use chat_proto::{ClientConfig, Event, ServerConfig};
use transport_common::{ClientOptions, DynStore, ServerHandle};

use crate::wire::Target;

/// How a transport starts a server for one test.
pub type Start<'a> = &'a dyn Fn(ServerConfig) -> TestServer;

/// How a transport starts a server with a history store attached
/// (`with_history_store`) for one test.
pub type StartStored<'a> = &'a dyn Fn(ServerConfig, DynStore) -> TestServer;

/// A running server under test. Dropping it shuts the server down.
pub struct TestServer {
    addr: SocketAddr,
    /// It serves TLS with the test CA's certificate.
    tls: bool,
    handle: ServerHandle,
    stop: Option<Box<dyn FnOnce() + Send>>,
}

impl std::fmt::Debug for TestServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestServer")
            .field("addr", &self.addr)
            .finish()
    }
}

impl TestServer {
    /// A server listening on `addr`, reached by the application through
    /// `handle`; `stop` must start a graceful shutdown and return once the
    /// server has finished.
    pub fn new(
        addr: SocketAddr,
        handle: ServerHandle,
        stop: impl FnOnce() + Send + 'static,
    ) -> Self {
        TestServer {
            addr,
            tls: false,
            handle,
            stop: Some(Box::new(stop)),
        }
    }

    /// [`new`](Self::new) for a server that serves TLS on `addr` with the
    /// certificate of [`tls::test_ca`].
    pub fn new_tls(
        addr: SocketAddr,
        handle: ServerHandle,
        stop: impl FnOnce() + Send + 'static,
    ) -> Self {
        let mut server = Self::new(addr, handle, stop);
        server.tls = true;
        server
    }

    /// Where the server listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where the server listens, and whether it speaks TLS there: what
    /// [`RawConn`](wire::RawConn) connects to.
    pub fn target(&self) -> Target {
        Target {
            addr: self.addr,
            tls: self.tls,
        }
    }

    /// The server's handle, as an embedding application holds it.
    pub fn handle(&self) -> &ServerHandle {
        &self.handle
    }

    /// Shuts the server down gracefully and waits until it has finished.
    pub fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            stop();
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            stop();
        }
    }
}

/// A transport's client, seen through a blocking facade.
pub trait TestClient: Sized {
    /// It connects with TLS, trusting the test CA ([`tls::test_ca`]) only;
    /// the scripted servers of the client cases then speak TLS too.
    const TLS: bool = false;
    /// Connects to the first of `addrs` that accepts (trying each in
    /// order) and logs in; `Err` carries the error's text (a refused login
    /// must mention the error code).
    fn connect(
        addrs: &[SocketAddr],
        name: &str,
        config: ClientConfig,
        options: ClientOptions,
    ) -> Result<Self, String>;
    /// Says `text`; panics if the client refuses.
    fn say(&self, text: &str);
    /// Asks who is there.
    fn who(&self);
    /// Joins `room`; panics if the client refuses.
    fn join(&self, room: &str);
    /// Says `text` in `room`; panics if the client refuses.
    fn say_in(&self, room: &str, text: &str);
    /// Says `text` to the user `to` only; panics if the client refuses.
    fn pm(&self, to: &str, text: &str);
    /// Closes with `bye:`.
    fn close(&self);
    /// The next event, waiting up to `timeout`; `None` on timeout or after
    /// the last event.
    fn next_event(&self, timeout: Duration) -> Option<Event>;
}

/// Expands to one `#[test]` per server behaviour, run against `$start`:
/// the cases of [`server_cases`], [`room_cases`] and
/// [`room_handle_cases`], over plain text or TLS alike.
#[macro_export]
macro_rules! server_suite {
    ($start:expr) => {
        $crate::server_suite!(@cases $start;
            login_ok, login_name_taken, login_invalid_names, login_unicode_name,
            messages_echo_in_one_order, busy_room_loses_nothing, frame_byte_by_byte, many_frames_in_one_write,
            crlf_is_accepted, overlong_frame_then_normal, invalid_utf8, control_characters,
            unknown_tag, ping_pong, who_lists_users, bye_closes_and_others_see_left,
            disconnect_sends_left, login_state_errors, bad_payloads, relayed_message_too_long,
            presence_limit, rate_limit_counts_who, frames_before_bye_are_answered,
            keepalive_ping_and_drop, login_timeout,
            slow_consumer_is_dropped, server_full, rate_limit, graceful_shutdown,
            late_arrival_during_shutdown_gets_bye, handle_kick, handle_notices,
            handle_login_approved, handle_login_refused_frees_the_name,
            handle_logged_in_and_stats, handle_shutdown);
        $crate::server_suite!(@in room_cases, $start;
            room_capability_is_answered, room_join_and_part, room_persistent_rooms_keep_their_log,
            room_say_reaches_every_member, room_who_lists_members, room_list_names_every_room,
            room_private_messages, room_default_room_in_both_forms, room_seed_session_is_unchanged,
            room_errors_are_answered, room_frames_need_a_login_and_a_grammar,
            room_names_and_look_alikes, room_isolation, room_order_is_one_order,
            room_presence_limit, room_leaving_the_server_leaves_every_room);
        $crate::server_suite!(@in room_handle_cases, $start;
            room_handle_sees_room_activity, room_handle_notice_reaches_the_rooms_members_only,
            room_handle_removes_a_member_from_a_room, room_handle_lists_rooms_and_members);
    };
    (@cases $start:expr; $($case:ident),*) => {
        $crate::server_suite!(@in server_cases, $start; $($case),*);
    };
    // One test per case, each calling `$crate::$module::$case`.
    (@in $module:ident, $start:expr; $($case:ident),*) => {
        $(
            #[test]
            fn $case() {
                $crate::$module::$case(&$start);
            }
        )*
    };
}

/// Expands to one `#[test]` per flow-control behaviour ([`flow_cases`]),
/// run against `$start`. Plain text only: the cases read and write one
/// connection from two threads ([`RawConn::writer`](wire::RawConn::writer))
/// or shrink its receive buffer, which a TLS session does not allow.
#[macro_export]
macro_rules! flow_suite {
    ($start:expr) => {
        $crate::server_suite!(@in flow_cases, $start;
            burst_while_all_read, never_reading_client_is_closed,
            slow_reader_in_a_busy_room_is_closed, flooder_is_slowed_not_refused);
    };
}

/// Expands to one `#[test]` per hardening behaviour (half-closed
/// connections, per-address limits, look-alike names), run against
/// `$start`.
#[macro_export]
macro_rules! hardening_suite {
    ($start:expr) => {
        $crate::hardening_suite!(@cases $start;
            half_close_gets_every_answer, half_close_after_bye_gets_every_answer,
            half_close_after_many_frames, half_close_while_input_is_paused, half_close_inside_a_frame,
            per_address_connection_limit, per_address_connect_rate, per_address_login_rate,
            loopback_is_exempt_by_default, look_alike_names_are_taken,
            mixed_script_names_are_refused, names_are_shown_as_typed);
    };
    (@cases $start:expr; $($case:ident),*) => {
        $crate::server_suite!(@in hardening_cases, $start; $($case),*);
    };
}

/// Expands to one `#[test]` per history behaviour, run against `$start`
/// and, for durable history, `$start_stored`.
#[macro_export]
macro_rules! history_suite {
    ($start:expr, $start_stored:expr) => {
        $crate::history_suite!(@cases $start;
            history_capability_is_answered, history_on_join_is_marked_by_room,
            resume_after_reconnect_has_no_gap_and_no_duplicate,
            history_gap_says_how_many_are_missing, resume_without_the_capability_is_refused);
        $crate::history_suite!(@cases $start_stored;
            durable_message_is_echoed_only_once_stored,
            durable_restart_resumes_with_the_same_epoch);
    };
    (@cases $start:expr; $($case:ident),*) => {
        $(
            #[test]
            fn $case() {
                $crate::history_cases::$case(&$start);
            }
        )*
    };
}

/// Expands to one `#[test]` per client behaviour, for client type `$client`.
#[macro_export]
macro_rules! client_suite {
    ($start:expr, $client:ty) => {
        $crate::client_suite!(@cases $start, $client;
            client_chats, client_login_refused, client_keepalive_keeps_idle_session,
            client_answers_pings_while_idle, client_detects_silent_server, client_reconnects,
            client_tries_every_address, client_connect_times_out, client_speaks_in_rooms,
            client_resumes_what_it_missed_once_in_order);
    };
    (@cases $start:expr, $client:ty; $($case:ident),*) => {
        $(
            #[test]
            fn $case() {
                $crate::client_cases::$case::<$client>(&$start);
            }
        )*
    };
}
