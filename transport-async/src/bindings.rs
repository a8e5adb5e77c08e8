//! How a runtime crate gets its `Server` and `Client`: one macro call.
//!
//! [`Server`](crate::Server) and [`Client`](crate::Client) of this crate are
//! complete, but they take their runtime as an argument (`bind_on`,
//! `connect_on`). A runtime crate wants `Server::bind(addr, config)` with
//! its own runtime already chosen, as inherent methods a reader finds on
//! the type's page. [`runtime_api!`](crate::runtime_api) writes those two
//! newtypes, every method documented and forwarding to this crate, so the
//! forwarding is written once here rather than copied into each runtime
//! crate.

/// Defines `Server` and `Client` newtypes for a runtime crate, whose
/// `bind` and `connect` use the runtime given here and whose every other
/// method forwards to [`transport_async::Server`](crate::Server) and
/// [`transport_async::Client`](crate::Client).
///
/// Invoke it once, at the crate root:
///
/// ```ignore
/// transport_async::runtime_api!(runtime: crate::runtime::TokioRuntime, name: "tokio");
/// ```
///
/// `runtime` is an expression of a type implementing
/// [`Runtime`](crate::Runtime), evaluated at each `bind` and `connect`;
/// `name` is how the docs call the runtime. The generated types also have
/// `bind_on` and `connect_on`, which take any runtime, and `into_inner`,
/// which gives the runtime-neutral value for code shared across runtimes.
///
/// With this crate's feature `tls` they also have `bind_tls`,
/// `add_tls_listener` and `connect_tls` (and their `_on` forms): the
/// methods follow this crate's features, so a runtime crate's own `tls`
/// feature only needs to turn this crate's on.
#[macro_export]
macro_rules! runtime_api {
    (runtime: $rt:expr, name: $name:literal $(,)?) => {
        #[doc = concat!("A chat server on ", $name, ", bound and ready to serve.")]
        ///
        /// One task owns the hub; each connection has a task of its own
        /// that reads and writes without blocking the others. Graceful
        /// shutdown sends every client `bye:` and flushes it within the
        /// configuration's `shutdown_grace`.
        #[derive(Debug)]
        pub struct Server($crate::Server);

        impl Server {
            #[doc = concat!("Binds `addr` on ", $name, " (`\"host:port\"` or a `SocketAddr`;")]
            /// port 0 picks a free port) with a listen backlog of 1024.
            /// Fails with `InvalidInput` if `config` cannot work.
            pub async fn bind(
                addr: impl ::std::convert::Into<$crate::Address>,
                config: $crate::proto::ServerConfig,
            ) -> ::std::io::Result<Server> {
                $crate::Server::bind_on($rt, addr, config).await.map(Server)
            }

            /// [`bind`](Self::bind), on the given runtime.
            pub async fn bind_on(
                rt: impl $crate::Runtime,
                addr: impl ::std::convert::Into<$crate::Address>,
                config: $crate::proto::ServerConfig,
            ) -> ::std::io::Result<Server> {
                $crate::Server::bind_on(rt, addr, config).await.map(Server)
            }

            /// Replaces the transport options (accept pause, channel
            /// capacity, timer slack, bound on TLS handshakes).
            pub fn with_options(self, options: $crate::ServerOptions) -> Server {
                Server(self.0.with_options(options))
            }

            /// Listens on `addr` too (plain text), for the same hub;
            /// returns the address bound.
            pub async fn add_listener(
                &mut self,
                addr: impl ::std::convert::Into<$crate::Address>,
            ) -> ::std::io::Result<::std::net::SocketAddr> {
                self.0.add_listener(addr).await
            }

            $crate::__runtime_api_tls_server!(runtime: $rt, name: $name);

            /// Gives the server durable history from `store` (any
            /// `HistoryStore`): the rooms it holds are restored now, before
            /// anyone is accepted, and from then on a message is handed out
            /// only once the store has it, applied on a thread of its own.
            /// Needs `ServerConfig::history.durable` (`InvalidInput`
            /// without it); `Other` if the store cannot be read or
            /// restored. If the store fails later, the server shuts down
            /// gracefully and `serve` returns the error.
            pub fn with_history_store<S>(self, store: S) -> ::std::io::Result<Server>
            where
                S: $crate::proto::history::HistoryStore + ::std::marker::Send + 'static,
            {
                self.0.with_history_store(store).map(Server)
            }

            /// The address the server listens on (the first one, bound by
            /// `bind`).
            pub fn local_addr(&self) -> ::std::io::Result<::std::net::SocketAddr> {
                self.0.local_addr()
            }

            /// Every address the server listens on, in the order they were
            /// bound.
            pub fn local_addrs(&self) -> ::std::io::Result<::std::vec::Vec<::std::net::SocketAddr>> {
                self.0.local_addrs()
            }

            /// The application's handle on this server: decide logins, see
            /// events, kick, send notices, read who is logged in, shut
            /// down. Take it before serving; it works from any task or
            /// thread.
            pub fn handle(&self) -> $crate::ServerHandle {
                self.0.handle()
            }

            /// Hands this server streams that did not come from its
            /// listener (a WebSocket bridged to bytes, a TLS stream, a
            /// pipe); `via` names where they come from, in the logs. Take
            /// it before serving; it works from any task or thread.
            pub fn attacher(&self, via: &'static str) -> $crate::Attacher {
                self.0.attacher(via)
            }

            /// Serves until the future is dropped, or until the handle's
            /// `shutdown` and the graceful shutdown that follows.
            pub async fn serve(self) -> ::std::io::Result<()> {
                self.0.serve().await
            }

            /// Serves until `signal` completes (or the handle's `shutdown`
            /// is called), then shuts down gracefully:
            /// every client is sent `bye:server shutting down`, and this
            /// returns once all have been flushed and closed, or the grace
            /// period is over.
            pub async fn serve_with_shutdown(
                self,
                signal: impl ::std::future::Future<Output = ()> + ::std::marker::Send + 'static,
            ) -> ::std::io::Result<()> {
                self.0.serve_with_shutdown(signal).await
            }

            /// The runtime-neutral server inside.
            pub fn into_inner(self) -> $crate::Server {
                self.0
            }
        }

        #[doc = concat!("A connected, logged-in chat client on ", $name, ".")]
        ///
        /// Commands return at once (the `say` family waits while the
        /// outgoing buffer is full); what the server says arrives through
        /// [`next_event`](Client::next_event). Keepalive (and reconnects,
        /// with `ClientConfig::reconnect`) run in a background task.
        /// Dropping the client closes the session.
        #[derive(Debug)]
        pub struct Client($crate::Client);

        impl Client {
            /// Connects to `addr` (`"host:port"` or a `SocketAddr`) and logs
            /// in: as a guest with a plain name, to an account with
            /// `Login::with_secret`. Returns once the server answered `ok:`
            /// (or refused). Every resolved address is tried in order.
            pub async fn connect(
                addr: impl ::std::convert::Into<$crate::Address>,
                login: impl ::std::convert::Into<$crate::Login>,
                config: $crate::proto::ClientConfig,
            ) -> ::std::result::Result<Client, $crate::ConnectError> {
                Self::connect_with(addr, login, config, $crate::ClientOptions::default()).await
            }

            /// [`connect`](Self::connect) with transport options, such as a
            /// connect timeout or the bounds of the event and outgoing
            /// queues. (Reconnecting is the session's: set
            /// `ClientConfig::reconnect`.)
            pub async fn connect_with(
                addr: impl ::std::convert::Into<$crate::Address>,
                login: impl ::std::convert::Into<$crate::Login>,
                config: $crate::proto::ClientConfig,
                options: $crate::ClientOptions,
            ) -> ::std::result::Result<Client, $crate::ConnectError> {
                $crate::Client::connect_on($rt, addr, login, config, options)
                    .await
                    .map(Client)
            }

            /// [`connect_with`](Self::connect_with), on the given runtime.
            pub async fn connect_on(
                rt: impl $crate::Runtime,
                addr: impl ::std::convert::Into<$crate::Address>,
                login: impl ::std::convert::Into<$crate::Login>,
                config: $crate::proto::ClientConfig,
                options: $crate::ClientOptions,
            ) -> ::std::result::Result<Client, $crate::ConnectError> {
                $crate::Client::connect_on(rt, addr, login, config, options)
                    .await
                    .map(Client)
            }

            $crate::__runtime_api_tls_client!(runtime: $rt, name: $name);

            /// Says `text` in the default room, waiting while the outgoing
            /// buffer is full.
            pub async fn say(
                &self,
                text: &str,
            ) -> ::std::result::Result<(), $crate::proto::UsageError> {
                self.0.say(text).await
            }

            /// Says `text` in the default room, or fails with
            /// `UsageError::WouldBlock` if the outgoing buffer is full.
            pub fn try_say(
                &self,
                text: &str,
            ) -> ::std::result::Result<(), $crate::proto::UsageError> {
                self.0.try_say(text)
            }

            /// Says `text` in `room`, which the session joined, waiting
            /// while the outgoing buffer is full.
            pub async fn say_in(
                &self,
                room: &str,
                text: &str,
            ) -> ::std::result::Result<(), $crate::proto::UsageError> {
                self.0.say_in(room, text).await
            }

            /// Says `text` to the user `to` only, waiting while the outgoing
            /// buffer is full.
            pub async fn pm(
                &self,
                to: &str,
                text: &str,
            ) -> ::std::result::Result<(), $crate::proto::UsageError> {
                self.0.pm(to, text).await
            }

            /// Asks who is in the default room; the answer arrives as
            /// `Event::Users`.
            pub fn who(&self) -> ::std::result::Result<(), $crate::proto::UsageError> {
                self.0.who()
            }

            /// Asks who is in `room`; the answer arrives as `Event::Users`.
            pub fn who_in(
                &self,
                room: &str,
            ) -> ::std::result::Result<(), $crate::proto::UsageError> {
                self.0.who_in(room)
            }

            /// Joins `room` (created if it does not exist); the session joins
            /// it again after a reconnect.
            pub fn join(&self, room: &str) -> ::std::result::Result<(), $crate::proto::UsageError> {
                self.0.join(room)
            }

            /// Leaves `room`.
            pub fn part(&self, room: &str) -> ::std::result::Result<(), $crate::proto::UsageError> {
                self.0.part(room)
            }

            /// Asks which rooms exist; the answer arrives as `Event::Rooms`.
            pub fn rooms(&self) -> ::std::result::Result<(), $crate::proto::UsageError> {
                self.0.rooms()
            }

            /// Closes the session: `bye:REASON`; the events end with
            /// `Closed { reason: Local }` and then `None`.
            pub fn close(
                &self,
                reason: &str,
            ) -> ::std::result::Result<(), $crate::proto::UsageError> {
                self.0.close(reason)
            }

            /// The name logged in with.
            pub fn name(&self) -> ::std::option::Option<::std::string::String> {
                self.0.name()
            }

            /// The rooms joined besides the default one.
            pub fn joined_rooms(&self) -> ::std::vec::Vec<::std::string::String> {
                self.0.joined_rooms()
            }

            /// The next event; `None` once the connection is over for good.
            /// After `Event::Closed` (and no reconnect), `None` comes once
            /// the last bytes, such as the `bye:` of [`close`](Self::close),
            /// are flushed: wait for it before dropping the runtime, or they
            /// may be lost.
            pub async fn next_event(&self) -> ::std::option::Option<$crate::proto::Event> {
                self.0.next_event().await
            }

            /// The next event if one is waiting; `Poll::Ready(None)` once
            /// the connection is over.
            pub fn poll_event(
                &self,
                cx: &mut ::std::task::Context<'_>,
            ) -> ::std::task::Poll<::std::option::Option<$crate::proto::Event>> {
                self.0.poll_event(cx)
            }

            /// The runtime-neutral client inside.
            pub fn into_inner(self) -> $crate::Client {
                self.0
            }
        }
    };
}

/// The TLS methods of [`runtime_api!`](crate::runtime_api)'s `Server`
/// (feature `tls` of this crate). Not for direct use.
#[cfg(feature = "tls")]
#[doc(hidden)]
#[macro_export]
macro_rules! __runtime_api_tls_server {
    (runtime: $rt:expr, name: $name:literal) => {
        #[doc = concat!("Binds `addr` on ", $name, " like [`bind`](Self::bind), serving TLS")]
        /// with `tls`'s certificate. A connection is handed to the hub as
        /// soon as it is accepted; its handshake must end within the login
        /// timeout, and at most `ServerOptions::max_handshakes` are in
        /// progress at once.
        pub async fn bind_tls(
            addr: impl ::std::convert::Into<$crate::Address>,
            config: $crate::proto::ServerConfig,
            tls: &$crate::ServerTls,
        ) -> ::std::io::Result<Server> {
            $crate::Server::bind_tls_on($rt, addr, config, tls)
                .await
                .map(Server)
        }

        /// [`bind_tls`](Self::bind_tls), on the given runtime.
        pub async fn bind_tls_on(
            rt: impl $crate::Runtime,
            addr: impl ::std::convert::Into<$crate::Address>,
            config: $crate::proto::ServerConfig,
            tls: &$crate::ServerTls,
        ) -> ::std::io::Result<Server> {
            $crate::Server::bind_tls_on(rt, addr, config, tls)
                .await
                .map(Server)
        }

        /// Listens on `addr` too, serving TLS with `tls`'s certificate, for
        /// the same hub; returns the address bound.
        pub async fn add_tls_listener(
            &mut self,
            addr: impl ::std::convert::Into<$crate::Address>,
            tls: &$crate::ServerTls,
        ) -> ::std::io::Result<::std::net::SocketAddr> {
            self.0.add_tls_listener(addr, tls).await
        }
    };
}

/// Without feature `tls`: nothing.
#[cfg(not(feature = "tls"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __runtime_api_tls_server {
    (runtime: $rt:expr, name: $name:literal) => {};
}

/// The TLS methods of [`runtime_api!`](crate::runtime_api)'s `Client`
/// (feature `tls` of this crate). Not for direct use.
#[cfg(feature = "tls")]
#[doc(hidden)]
#[macro_export]
macro_rules! __runtime_api_tls_client {
    (runtime: $rt:expr, name: $name:literal) => {
        /// [`connect_with`](Self::connect_with) over TLS: verifies the
        /// server's certificate against `tls`'s roots, as the host of
        /// `addr` (or the name `tls` sets), which is also sent as SNI. The
        /// handshake counts in `ClientOptions::connect_timeout`; every
        /// reconnect is over TLS too.
        pub async fn connect_tls(
            addr: impl ::std::convert::Into<$crate::Address>,
            login: impl ::std::convert::Into<$crate::Login>,
            config: $crate::proto::ClientConfig,
            options: $crate::ClientOptions,
            tls: &$crate::ClientTls,
        ) -> ::std::result::Result<Client, $crate::ConnectError> {
            $crate::Client::connect_tls_on($rt, addr, login, config, options, tls)
                .await
                .map(Client)
        }

        /// [`connect_tls`](Self::connect_tls), on the given runtime.
        pub async fn connect_tls_on(
            rt: impl $crate::Runtime,
            addr: impl ::std::convert::Into<$crate::Address>,
            login: impl ::std::convert::Into<$crate::Login>,
            config: $crate::proto::ClientConfig,
            options: $crate::ClientOptions,
            tls: &$crate::ClientTls,
        ) -> ::std::result::Result<Client, $crate::ConnectError> {
            $crate::Client::connect_tls_on(rt, addr, login, config, options, tls)
                .await
                .map(Client)
        }
    };
}

/// Without feature `tls`: nothing.
#[cfg(not(feature = "tls"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __runtime_api_tls_client {
    (runtime: $rt:expr, name: $name:literal) => {};
}
