//! The signals that ask `chat connect` to leave, full-screen or line by
//! line: SIGINT (Ctrl-C; the full-screen client gets it as a key in raw
//! mode, so there it is `kill -INT`), SIGTERM, and SIGHUP (the terminal
//! closed). Listened to once for the whole session, so that none that
//! comes while the client is busy with something else is lost.

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
