//! Write reports: how the writer threads tell the hub thread what they
//! flushed, promptly and without waiting behind input.
//!
//! The hub hands a connection at most `send_window` bytes at a time and
//! hands it more only once the adapter reports them written; its write
//! timeout also counts from the last report. So a report must reach the
//! hub soon, even when no input arrives: a room whose senders are paused
//! has nothing else to wake the hub thread. Reports take a channel of
//! their own (behind queued input they would arrive late), and the first
//! report after the hub last took them wakes its thread with one
//! [`Event::Wake`] on the main channel; later ones ride along until the
//! hub takes them all. If the main channel is full the hub is busy, and it
//! takes the reports before handling each event anyway.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender, TrySendError};
use std::time::Instant;

use chat_proto::ConnId;
use transport_common::{HubDriver, HubMsg};

use crate::server::Event;

/// The writers' end: cloned into every connection.
#[derive(Debug, Clone)]
pub(crate) struct ReportSender {
    reports: Sender<(ConnId, usize)>,
    /// Set by the first report since the hub last took them.
    pending: Arc<AtomicBool>,
    wake: SyncSender<Event>,
}

/// The hub thread's end.
#[derive(Debug)]
pub(crate) struct ReportReceiver {
    reports: Receiver<(ConnId, usize)>,
    pending: Arc<AtomicBool>,
}

/// A channel for write reports that wakes the hub thread through `wake`.
pub(crate) fn channel(wake: SyncSender<Event>) -> (ReportSender, ReportReceiver) {
    let (tx, rx) = mpsc::channel();
    let pending = Arc::new(AtomicBool::new(false));
    (
        ReportSender {
            reports: tx,
            pending: pending.clone(),
            wake,
        },
        ReportReceiver {
            reports: rx,
            pending,
        },
    )
}

impl ReportSender {
    /// Reports `n` bytes of `id` written; false if the hub thread is gone.
    pub(crate) fn send(&self, id: ConnId, n: usize) -> bool {
        if self.reports.send((id, n)).is_err() {
            return false;
        }
        if !self.pending.swap(true, Ordering::AcqRel) {
            match self.wake.try_send(Event::Wake) {
                // Full: the hub thread is busy, and takes the reports
                // before its next event.
                Ok(()) | Err(TrySendError::Full(_)) => {}
                Err(TrySendError::Disconnected(_)) => return false,
            }
        }
        true
    }
}

impl ReportReceiver {
    /// Hands the hub every report that has arrived, so that whatever it
    /// decides next (on input or on a timer) sees what is really unflushed,
    /// and connections with room in their window are handed more.
    pub(crate) fn take(&self, driver: &mut HubDriver, now: Instant) {
        // Cleared before taking: a report sent after this wakes the thread
        // again, one sent before is taken below.
        self.pending.store(false, Ordering::Release);
        for (id, n) in self.reports.try_iter() {
            driver.handle(HubMsg::Written(id, n), now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_first_report_wakes_the_hub_thread_once() {
        let now = Instant::now();
        let (wake, events) = mpsc::sync_channel(4);
        let (tx, rx) = channel(wake);
        let mut driver =
            HubDriver::new(chat_proto::ServerConfig::default(), Duration::ZERO).unwrap();
        let (id, _outbox) = driver.accept(now, "127.0.0.1:1".parse().unwrap());
        assert!(tx.send(id, 0));
        assert!(tx.send(id, 0));
        assert!(matches!(events.try_recv(), Ok(Event::Wake)));
        assert!(events.try_recv().is_err(), "one wake-up for both");
        rx.take(&mut driver, now);
        assert!(rx.reports.try_recv().is_err(), "both taken");
        // Taken: the next report wakes the thread again.
        assert!(tx.send(id, 0));
        assert!(matches!(events.try_recv(), Ok(Event::Wake)));
    }
}
