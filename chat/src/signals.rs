//! The signals that ask `chat connect` to leave, full-screen or line by
//! line: SIGINT (Ctrl-C; the full-screen client gets it as a key in raw
//! mode, so there it is `kill -INT`), SIGTERM, and SIGHUP (the terminal
//! closed). Listened to once for the whole session, so that none that
//! comes while the client is busy with something else is lost.
//!
//! And those that stop `chat serve` gracefully, the same three
//! ([`StopSignal`], and [`spawn_signal_thread`] for a server not on tokio).

#[cfg(unix)]
use std::task::Poll;

/// SIGINT, SIGTERM and SIGHUP, listened to.
pub(crate) struct Signals {
    #[cfg(unix)]
    kinds: Vec<tokio::signal::unix::Signal>,
}

impl Signals {
    /// Listens from now on: a signal that comes before the first
    /// [`recv`](Self::recv) is kept for it.
    pub(crate) fn new() -> std::io::Result<Signals> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let kinds = [
                SignalKind::interrupt(),
                SignalKind::terminate(),
                SignalKind::hangup(),
            ]
            .into_iter()
            .map(signal)
            .collect::<std::io::Result<Vec<_>>>()?;
            Ok(Signals { kinds })
        }
        #[cfg(not(unix))]
        Ok(Signals {})
    }

    /// Waits for the next of them.
    pub(crate) async fn recv(&mut self) {
        #[cfg(unix)]
        std::future::poll_fn(|cx| {
            for signal in &mut self.kinds {
                if signal.poll_recv(cx).is_ready() {
                    return Poll::Ready(());
                }
            }
            Poll::Pending
        })
        .await;
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Runs `on_signal` on Ctrl-C, SIGTERM or SIGHUP, from a thread with a
/// small tokio runtime for the signal handling.
pub(crate) fn spawn_signal_thread(on_signal: impl FnOnce() + Send + 'static) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the signal thread: {e}"))?;
    // Handlers are installed before the server starts, so that a signal
    // that comes early is not the default action (for SIGHUP: death).
    let stop = runtime.block_on(async { StopSignal::install() });
    std::thread::Builder::new()
        .name("chat-signals".into())
        .spawn(move || {
            runtime.block_on(stop.recv());
            on_signal();
        })
        .map_err(|e| format!("cannot start the signal thread: {e}"))?;
    Ok(())
}

/// The stop signals, their handlers installed: Ctrl-C (SIGINT), and on
/// Unix SIGTERM and SIGHUP ([`Signals`]). Each asks for a graceful
/// shutdown. SIGHUP comes when the terminal the server runs in closes; its
/// default action would kill the process without a `bye:` to anyone.
///
/// Handlers are installed before the server says it listens, so that no
/// signal arriving after that meets the default action.
pub(crate) struct StopSignal(Option<Signals>);

impl StopSignal {
    /// Installs the handlers (inside a tokio runtime). If they cannot be
    /// installed, Ctrl-C alone stops the server, with a warning.
    pub(crate) fn install() -> StopSignal {
        match Signals::new() {
            Ok(signals) => StopSignal(Some(signals)),
            Err(e) => {
                tracing::warn!(error = %e, "cannot handle SIGTERM and SIGHUP");
                StopSignal(None)
            }
        }
    }

    /// Waits for any of them.
    pub(crate) async fn recv(self) {
        match self.0 {
            Some(mut signals) => signals.recv().await,
            None => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
        tracing::info!("stop signal received");
    }
}
