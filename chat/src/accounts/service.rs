//! The login service: answers a server's login requests from the accounts
//! file, with password checks on a bounded pool of threads.
//!
//! [`LoginService::start`] subscribes to a server's events through its
//! [`ServerHandle`] (the server's configuration must say
//! `LoginMode::Application`) and runs one thread that reads them. For each
//! `LoginRequested` it asks the [`Directory`](super::Directory): a guest is answered at once;
//! a secret becomes a [`Check`](super::verify::Check) run on the [`BlockingPool`], whose thread
//! answers through the handle when the check is done. The server's loop
//! never waits for any of it: the handle queues the answer and wakes the
//! loop. The service works the same whichever transport serves.
//!
//! Past [`LoginOptions::max_pending`] checks running or queued, a login
//! with a secret is refused at once with
//! `err:retry-later:1:the server is busy checking passwords; retry in 1 s`
//! (not fatal: the client may try again on the same connection). Like any
//! refusal, that counts as a failed login for the name and the address.
//!
//! The service ends by itself when the server stops.

use std::thread::JoinHandle;

use chat_proto::{ConnId, ErrorCode, HubEvent};
use transport_common::ServerHandle;

use super::pool::{BlockingPool, Busy};
use super::verify::{AccountsSource, Decision, Next};

/// The answer to a secret when the pool is full.
pub const BUSY: &str = "1:the server is busy checking passwords; retry in 1 s";

/// How many password checks run at once, and how many may wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct LoginOptions {
    /// Threads checking passwords. Each argon2 check at the default cost
    /// takes 19 MiB while it runs. Default 2.
    pub verify_threads: usize,
    /// Checks running or queued beyond which a login with a secret is told
    /// `retry-later`. Default 64.
    pub max_pending: usize,
}

impl Default for LoginOptions {
    fn default() -> Self {
        LoginOptions {
            verify_threads: 2,
            max_pending: 64,
        }
    }
}

/// Where decisions go: the server's handle, or a test's recorder.
pub trait Answers: Clone + Send + 'static {
    /// Lets `conn` in.
    fn approve(&self, conn: ConnId);
    /// Refuses `conn` with `err:CODE:TEXT`.
    fn refuse(&self, conn: ConnId, code: ErrorCode, text: &str);

    /// Carries out `decision` for `conn`.
    fn answer(&self, conn: ConnId, decision: Decision) {
        match decision {
            Decision::Approve => self.approve(conn),
            Decision::Refuse { code, text } => self.refuse(conn, code, &text),
        }
    }
}

impl Answers for ServerHandle {
    fn approve(&self, conn: ConnId) {
        self.approve_login(conn);
    }

    fn refuse(&self, conn: ConnId, code: ErrorCode, text: &str) {
        if let Err(e) = self.refuse_login(conn, code, text) {
            // Our texts are short and valid: this is a bug, not input.
            tracing::error!(%text, "cannot refuse a login: {e}");
        }
    }
}

/// Turns login requests into decisions and checks.
#[derive(Debug)]
pub struct Dispatcher<A> {
    source: AccountsSource,
    pool: BlockingPool,
    answers: A,
}

impl<A: Answers> Dispatcher<A> {
    /// A dispatcher over `source`, answering through `answers`, with its
    /// pool of check threads.
    pub fn new(
        source: AccountsSource,
        answers: A,
        options: LoginOptions,
    ) -> std::io::Result<Dispatcher<A>> {
        let pool = BlockingPool::new("chat-verify", options.verify_threads, options.max_pending)?;
        Ok(Dispatcher {
            source,
            pool,
            answers,
        })
    }

    /// Handles one event; only login requests matter.
    pub fn on_event(&mut self, event: HubEvent) {
        if let HubEvent::LoginRequested { conn, name, secret } = event {
            self.on_request(conn, &name, secret);
        }
    }

    /// Decides (or starts checking) the login of `conn` as `name`.
    pub fn on_request(&mut self, conn: ConnId, name: &str, secret: Option<String>) {
        match self.source.directory().request(name, secret) {
            Next::Decided(decision) => self.answers.answer(conn, decision),
            Next::Check(check) => {
                let answers = self.answers.clone();
                let queued = self.pool.try_run(move || answers.answer(conn, check.run()));
                if let Err(Busy) = queued {
                    tracing::warn!(%conn, "password checks are all busy: retry-later");
                    self.answers.refuse(conn, ErrorCode::RetryLater, BUSY);
                }
            }
        }
    }

    /// The pool, for tests that fill it.
    #[cfg(test)]
    pub(crate) fn pool(&self) -> &BlockingPool {
        &self.pool
    }

    /// Lets the checks under way finish and answer.
    pub fn finish(self) {
        self.pool.join();
    }
}

/// A running login service; it ends when its server stops.
#[derive(Debug)]
pub struct LoginService {
    thread: JoinHandle<()>,
}

impl LoginService {
    /// Answers `handle`'s login requests from `source`. Call it before the
    /// server serves, so that no request comes before the subscription.
    pub fn start(
        handle: &ServerHandle,
        source: AccountsSource,
        options: LoginOptions,
    ) -> std::io::Result<LoginService> {
        let events = handle.events();
        let mut dispatcher = Dispatcher::new(source, handle.clone(), options)?;
        let thread = std::thread::Builder::new()
            .name("chat-logins".into())
            .spawn(move || {
                while let Some(event) = events.recv() {
                    dispatcher.on_event(event);
                }
                dispatcher.finish();
            })?;
        Ok(LoginService { thread })
    }

    /// Waits for the service to end (after its server stopped).
    pub fn join(self) {
        let _ = self.thread.join();
    }
}

#[cfg(test)]
mod tests {
    use super::super::file::Accounts;
    use super::super::password::{hash_password, tests::CHEAP};
    use super::super::verify::{ACCOUNTS_ONLY, WRONG_NAME_OR_PASSWORD};
    use super::*;
    use chat_proto::{Hub, ServerConfig};
    use std::sync::mpsc::{Receiver, Sender, channel, sync_channel};
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    /// Records answers on a channel.
    #[derive(Clone)]
    struct Recorder(Arc<Mutex<Sender<(ConnId, Decision)>>>);

    impl Answers for Recorder {
        fn approve(&self, conn: ConnId) {
            let _ = self.0.lock().unwrap().send((conn, Decision::Approve));
        }
        fn refuse(&self, conn: ConnId, code: ErrorCode, text: &str) {
            let decision = Decision::Refuse {
                code,
                text: text.into(),
            };
            let _ = self.0.lock().unwrap().send((conn, decision));
        }
    }

    struct Setup {
        dispatcher: Dispatcher<Recorder>,
        answers: Receiver<(ConnId, Decision)>,
        hub: Hub,
        _dir: tempfile::TempDir,
    }

    fn setup(require_account: bool, options: LoginOptions) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("accounts");
        let mut accounts = Accounts::new();
        accounts
            .add("zhangsan", &hash_password("correct horse", CHEAP).unwrap())
            .unwrap();
        accounts.save(&path).unwrap();
        let source = AccountsSource::open(&path, require_account).unwrap();
        let (tx, answers) = channel();
        let dispatcher =
            Dispatcher::new(source, Recorder(Arc::new(Mutex::new(tx))), options).unwrap();
        Setup {
            dispatcher,
            answers,
            hub: Hub::new(ServerConfig::default()).unwrap(),
            _dir: dir,
        }
    }

    impl Setup {
        fn conn(&mut self) -> ConnId {
            self.hub.accept(Instant::now(), None)
        }

        fn answer(&self) -> (ConnId, Decision) {
            self.answers.recv_timeout(Duration::from_secs(10)).unwrap()
        }
    }

    fn refused(code: ErrorCode, text: &str) -> Decision {
        Decision::Refuse {
            code,
            text: text.into(),
        }
    }

    #[test]
    fn guests_are_answered_and_secrets_checked_on_the_pool() {
        let mut s = setup(false, LoginOptions::default());
        let guest = s.conn();
        s.dispatcher.on_event(HubEvent::LoginRequested {
            conn: guest,
            name: "lisi".into(),
            secret: None,
        });
        assert_eq!(s.answer(), (guest, Decision::Approve));
        let (right, wrong, unknown) = (s.conn(), s.conn(), s.conn());
        s.dispatcher
            .on_request(right, "zhangsan", Some("correct horse".into()));
        s.dispatcher.on_request(wrong, "zhangsan", Some("x".into()));
        s.dispatcher.on_request(unknown, "wangwu", Some("x".into()));
        let mut answers: Vec<_> = (0..3).map(|_| s.answer()).collect();
        answers.sort_by_key(|(conn, _)| conn.index());
        let wrong_answer = refused(ErrorCode::LoginRefused, WRONG_NAME_OR_PASSWORD);
        assert_eq!(
            answers,
            [
                (right, Decision::Approve),
                (wrong, wrong_answer.clone()),
                (unknown, wrong_answer)
            ]
        );
        s.dispatcher.finish();
    }

    #[test]
    fn past_max_pending_checks_a_secret_is_told_to_retry_later() {
        let options = LoginOptions {
            verify_threads: 1,
            max_pending: 1,
        };
        let mut s = setup(true, options);
        // Hold the only place with a job that waits for us.
        let (release, gate) = sync_channel::<()>(0);
        s.dispatcher
            .pool()
            .try_run(move || gate.recv().unwrap())
            .unwrap();
        let conn = s.conn();
        s.dispatcher
            .on_request(conn, "zhangsan", Some("correct horse".into()));
        assert_eq!(s.answer(), (conn, refused(ErrorCode::RetryLater, BUSY)));
        // A guest needs no check: still answered at once (and refused, as
        // accounts are required).
        let guest = s.conn();
        s.dispatcher.on_request(guest, "lisi", None);
        assert_eq!(
            s.answer(),
            (guest, refused(ErrorCode::LoginRefused, ACCOUNTS_ONLY))
        );
        release.send(()).unwrap();
        s.dispatcher.finish();
        assert!(s.answers.try_recv().is_err(), "nothing else was answered");
    }

    #[test]
    fn other_events_are_ignored() {
        let mut s = setup(false, LoginOptions::default());
        let conn = s.conn();
        s.dispatcher.on_event(HubEvent::LoggedIn {
            conn,
            name: "lisi".into(),
        });
        s.dispatcher.finish();
        assert!(s.answers.try_recv().is_err());
    }
}
