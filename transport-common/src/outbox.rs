//! The outbox: where the hub's output for one connection waits for its
//! writer.
//!
//! The task (or thread) that owns the hub pushes each [`Transmit`]'s chunks
//! here and never waits, then wakes the writer once per batch of input; the
//! connection's writer takes everything queued at once and writes it in as
//! few syscalls as it can. An outbox wakes an async
//! writer through its `Waker` and a blocking writer through a `Condvar`, so
//! the same type serves all three transports. It also carries the hub's
//! word on the connection's input: paused (stop reading the socket) or
//! flowing.
//!
//! An outbox is unbounded on purpose: the hub bounds it. Every byte pushed
//! here counts against the connection's send window until the writer
//! reports it written, and the hub hands out no more meanwhile.
//!
//! **Writing through.** Most of the time a connection's output is small (a
//! message or two) and its socket has room. Then waking its writer (a task
//! poll, or a thread's futex and context switch) costs more than the write
//! itself, so at the end of a batch the hub's own task writes the queued
//! bytes straight to the socket ([`Outbox::flush_through`], through the
//! connection's [`TryWrite`]), without waiting: whatever the socket does
//! not take at once is left for the writer, which is woken for it. Bytes
//! are never written out of order: the hub's task writes only while the
//! writer holds nothing it took earlier, and it writes under the outbox's
//! lock, so the writer cannot take anything meanwhile.
//!
//! [`Transmit`]: chat_proto::Transmit

use std::fmt;
use std::io::{self, IoSlice};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::{Buf, Bytes};

/// The most chunks offered to one write through.
const THROUGH_SLICES: usize = 64;

/// A connection's socket as the hub's task may write to it: without ever
/// waiting.
pub trait TryWrite: Send + Sync + fmt::Debug {
    /// Writes what the socket takes at once, from the start of `bufs`;
    /// `WouldBlock` if it takes nothing now.
    fn try_write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize>;
}

/// What [`Outbox::flush_through`] did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Flushed {
    /// Bytes written to the socket (report them to the hub).
    pub written: usize,
    /// Bytes are left for the writer: wake it.
    pub wake: bool,
    /// The queue's buffer, emptied, to fill again (see
    /// [`Hub::recycle`](chat_proto::Hub::recycle)).
    pub spare: Option<Vec<Bytes>>,
}

/// What a writer takes from its outbox.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Taken {
    /// Bytes to write, in order.
    pub data: Vec<Bytes>,
    /// After writing `data`, close the connection (the hub asked).
    pub close: bool,
    /// Stop now without writing: the server is going away.
    pub abort: bool,
}

#[derive(Debug, Default)]
struct State {
    data: Vec<Bytes>,
    close: bool,
    abort: bool,
    /// `close` already handed to the writer.
    told_close: bool,
    /// `abort` already handed to the writer.
    told_abort: bool,
    waker: Option<Waker>,
    /// Blocking writers waiting on the condvar. Only they need it notified:
    /// `notify_one` is a system call even with nobody waiting, and async
    /// writers never wait on it.
    blocked: usize,
    /// The hub takes no input from this connection for now.
    input_paused: bool,
    /// The writer took bytes it has not finished writing: nobody else may
    /// write to the socket until it has.
    writer_busy: bool,
}

/// The mailbox between the hub and one connection's writer.
#[derive(Debug, Default)]
pub struct Outbox {
    state: Mutex<State>,
    ready: Condvar,
    /// Where a blocking reader waits while input is paused.
    resumed: Condvar,
}

impl Outbox {
    /// An empty outbox.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A writer that panicked leaves nothing half-done in the state.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn notify(&self, mut state: MutexGuard<'_, State>) {
        let waker = state.waker.take();
        let blocked = state.blocked > 0;
        drop(state);
        if let Some(waker) = waker {
            waker.wake();
        }
        if blocked {
            self.ready.notify_one();
        }
    }

    /// Queues chunks without waking the writer, taking them out of `data`
    /// (which is left empty, its buffer for the caller to reuse, or
    /// without one when the outbox kept it). Returns whether the outbox was
    /// empty: then the caller must [`flush_through`](Self::flush_through)
    /// or [`wake`](Self::wake) it once its batch of pushes is done, so that
    /// many pushes go out in one write.
    #[must_use = "an outbox that was empty needs a flush_through() or wake()"]
    pub fn push(&self, data: &mut Vec<Bytes>) -> bool {
        let mut state = self.lock();
        let was_empty = state.data.is_empty();
        if state.abort {
            data.clear();
        } else if was_empty && state.data.capacity() == 0 {
            std::mem::swap(&mut state.data, data);
        } else {
            state.data.append(data);
        }
        was_empty
    }

    /// Wakes the writer for what was pushed.
    pub fn wake(&self) {
        let state = self.lock();
        self.notify(state);
    }

    /// Asks the writer to close the connection once what is queued is
    /// written.
    pub fn close(&self) {
        let mut state = self.lock();
        state.close = true;
        self.notify(state);
    }

    /// Asks the writer to stop at once, dropping what is queued.
    pub fn abort(&self) {
        let mut state = self.lock();
        state.abort = true;
        state.data = Vec::new();
        self.notify(state);
        self.resumed.notify_all();
    }

    /// Whether the connection was aborted (a blocking writer checks it when
    /// a write times out).
    pub fn is_aborted(&self) -> bool {
        self.lock().abort
    }

    /// The hub takes no more input from this connection for now: stop
    /// reading its socket.
    pub fn pause_input(&self) {
        self.lock().input_paused = true;
    }

    /// Read the socket again; wakes a task or a reader thread waiting for
    /// this.
    pub fn resume_input(&self) {
        let mut state = self.lock();
        state.input_paused = false;
        self.notify(state);
        self.resumed.notify_all();
    }

    /// Whether input is paused. An async reader checks it before each read
    /// (it is woken when input resumes, if it polled
    /// [`poll_take`](Self::poll_take) since).
    pub fn input_paused(&self) -> bool {
        self.lock().input_paused
    }

    /// Blocks a reader thread while input is paused; returns false if the
    /// connection was aborted meanwhile.
    pub fn wait_for_input(&self) -> bool {
        let mut state = self.lock();
        while state.input_paused && !state.abort {
            state = self
                .resumed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
        !state.abort
    }

    /// Writes what is queued straight to the socket through `socket`, as
    /// much as it takes at once, if the writer holds nothing it took
    /// earlier, nothing more than `max` bytes is queued, and the connection
    /// is not closing. Says how much was written and whether the writer
    /// must be woken for the rest.
    pub fn flush_through(&self, socket: &dyn TryWrite, max: usize) -> Flushed {
        let mut state = self.lock();
        if state.data.is_empty() {
            return Flushed::default();
        }
        let queued: usize = state.data.iter().map(Bytes::len).sum();
        if state.writer_busy || state.close || state.abort || queued > max {
            return Flushed {
                wake: true,
                ..Flushed::default()
            };
        }
        let mut slices = [IoSlice::new(&[]); THROUGH_SLICES];
        let mut count = 0;
        for (slot, chunk) in slices.iter_mut().zip(&state.data) {
            *slot = IoSlice::new(chunk);
            count += 1;
        }
        // Would block, or failed: the writer finds out for itself.
        let written: usize = socket
            .try_write_vectored(&slices[..count])
            .unwrap_or_default();
        advance(&mut state.data, written);
        let wake = !state.data.is_empty();
        Flushed {
            written,
            wake,
            // Nothing held for an idle connection.
            spare: (!wake).then(|| std::mem::take(&mut state.data)),
        }
    }

    /// The writer wrote all it took: while it holds nothing, the hub's task
    /// may write through again.
    pub fn writer_drained(&self) {
        self.lock().writer_busy = false;
    }

    fn take_locked(state: &mut State) -> Option<Taken> {
        let news = !state.data.is_empty()
            || (state.close && !state.told_close)
            || (state.abort && !state.told_abort);
        if !news {
            return None;
        }
        state.writer_busy |= !state.data.is_empty();
        state.told_close |= state.close;
        state.told_abort |= state.abort;
        Some(Taken {
            data: std::mem::take(&mut state.data),
            close: state.close,
            abort: state.abort,
        })
    }

    /// Takes everything queued, or registers `cx` to be woken when there is
    /// something. After a close or abort has been handed out, only new data
    /// wakes the writer.
    pub fn poll_take(&self, cx: &mut Context<'_>) -> Poll<Taken> {
        let mut state = self.lock();
        match Self::take_locked(&mut state) {
            Some(taken) => Poll::Ready(taken),
            None => {
                if !state
                    .waker
                    .as_ref()
                    .is_some_and(|w| w.will_wake(cx.waker()))
                {
                    state.waker = Some(cx.waker().clone());
                }
                Poll::Pending
            }
        }
    }

    /// Takes everything queued, blocking up to `timeout` (forever if
    /// `None`) for something to arrive.
    pub fn take_blocking(&self, timeout: Option<Duration>) -> Option<Taken> {
        let mut state = self.lock();
        loop {
            if let Some(taken) = Self::take_locked(&mut state) {
                return Some(taken);
            }
            state.blocked += 1;
            let timed_out;
            (state, timed_out) = match timeout {
                None => (
                    self.ready
                        .wait(state)
                        .unwrap_or_else(PoisonError::into_inner),
                    false,
                ),
                Some(t) => {
                    let (state, result) = self
                        .ready
                        .wait_timeout(state, t)
                        .unwrap_or_else(PoisonError::into_inner);
                    (state, result.timed_out())
                }
            };
            state.blocked -= 1;
            if timed_out {
                return Self::take_locked(&mut state);
            }
        }
    }
}

/// Drops the first `n` bytes of `data`, partial chunks included.
fn advance(data: &mut Vec<Bytes>, mut n: usize) {
    let whole = data.iter().take_while(|chunk| {
        let fits = chunk.len() <= n;
        if fits {
            n -= chunk.len();
        }
        fits
    });
    let whole = whole.count();
    data.drain(..whole);
    if n > 0
        && let Some(first) = data.first_mut()
    {
        first.advance(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    struct Counter(AtomicUsize);
    impl Wake for Counter {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn pushes_wake_the_writer_only_when_asked_and_are_taken_together() {
        let outbox = Outbox::new();
        let counter = Arc::new(Counter(AtomicUsize::new(0)));
        let waker = Waker::from(counter.clone());
        let mut cx = Context::from_waker(&waker);
        assert!(outbox.poll_take(&mut cx).is_pending());
        assert!(outbox.push(&mut vec![Bytes::from_static(b"a")]));
        let mut more = vec![Bytes::from_static(b"b"), Bytes::from_static(b"c")];
        assert!(!outbox.push(&mut more));
        // Its chunks were taken, its buffer left to reuse.
        assert!(more.is_empty() && more.capacity() >= 2);
        assert_eq!(counter.0.load(Ordering::SeqCst), 0);
        outbox.wake();
        assert_eq!(counter.0.load(Ordering::SeqCst), 1);
        let Poll::Ready(taken) = outbox.poll_take(&mut cx) else {
            panic!()
        };
        assert_eq!(taken.data.concat(), b"abc");
        assert!(!taken.close);
        assert!(outbox.poll_take(&mut cx).is_pending());
        // Empty again: the next push asks for a wake-up again.
        assert!(outbox.push(&mut vec![Bytes::from_static(b"d")]));
    }

    #[test]
    fn close_is_handed_out_once_after_the_data() {
        let outbox = Outbox::new();
        assert!(outbox.push(&mut vec![Bytes::from_static(b"bye:\n")]));
        outbox.close();
        let taken = outbox.take_blocking(Some(Duration::ZERO)).unwrap();
        assert_eq!((taken.data.len(), taken.close), (1, true));
        assert_eq!(outbox.take_blocking(Some(Duration::from_millis(1))), None);
    }

    #[test]
    fn abort_drops_queued_data() {
        let outbox = Outbox::new();
        assert!(outbox.push(&mut vec![Bytes::from_static(b"x")]));
        outbox.abort();
        let _ = outbox.push(&mut vec![Bytes::from_static(b"y")]);
        let taken = outbox.take_blocking(None).unwrap();
        assert!(taken.abort && taken.data.is_empty());
    }

    #[test]
    fn a_paused_reader_thread_waits_until_input_resumes() {
        let outbox = Arc::new(Outbox::new());
        outbox.pause_input();
        assert!(outbox.input_paused());
        let reader = {
            let outbox = outbox.clone();
            std::thread::spawn(move || outbox.wait_for_input())
        };
        std::thread::sleep(Duration::from_millis(20));
        assert!(!reader.is_finished());
        outbox.resume_input();
        assert!(reader.join().unwrap());
        outbox.pause_input();
        outbox.abort();
        assert!(!outbox.wait_for_input());
    }

    /// A socket that takes at most `room` bytes in all.
    #[derive(Debug)]
    struct Socket {
        room: Mutex<usize>,
        got: Mutex<Vec<u8>>,
    }

    impl Socket {
        fn with_room(room: usize) -> Socket {
            Socket {
                room: Mutex::new(room),
                got: Mutex::new(Vec::new()),
            }
        }
    }

    impl TryWrite for Socket {
        fn try_write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
            let mut room = self.room.lock().unwrap();
            if *room == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let mut n = 0;
            for buf in bufs {
                let take = buf.len().min(*room - n);
                self.got.lock().unwrap().extend_from_slice(&buf[..take]);
                n += take;
            }
            *room -= n;
            Ok(n)
        }
    }

    fn chunks(parts: &[&'static [u8]]) -> Vec<Bytes> {
        parts.iter().map(|p| Bytes::from_static(p)).collect()
    }

    #[test]
    fn the_hubs_task_writes_through_what_the_socket_takes_and_leaves_the_rest() {
        let outbox = Outbox::new();
        let socket = Socket::with_room(5);
        assert_eq!(outbox.flush_through(&socket, 1024), Flushed::default());
        assert!(outbox.push(&mut chunks(&[b"abc", b"def", b"gh"])));
        let flushed = outbox.flush_through(&socket, 1024);
        assert_eq!((flushed.written, flushed.wake), (5, true));
        assert_eq!(*socket.got.lock().unwrap(), b"abcde");
        // The writer gets the rest, from where the socket stopped.
        let taken = outbox.take_blocking(Some(Duration::ZERO)).unwrap();
        assert_eq!(taken.data.concat(), b"fgh");
        // It holds bytes now: nothing is written past them.
        *socket.room.lock().unwrap() = 100;
        assert!(outbox.push(&mut chunks(&[b"ij"])));
        assert_eq!(outbox.flush_through(&socket, 1024).written, 0);
        outbox.writer_drained();
        let flushed = outbox.flush_through(&socket, 1024);
        assert_eq!((flushed.written, flushed.wake), (2, false));
        // The emptied buffer comes back, for the hub to fill again.
        assert!(
            flushed
                .spare
                .is_some_and(|v| v.is_empty() && v.capacity() > 0)
        );
        assert_eq!(*socket.got.lock().unwrap(), b"abcdeij");
    }

    #[test]
    fn nothing_is_written_through_when_too_big_closing_or_blocked() {
        let socket = Socket::with_room(100);
        let outbox = Outbox::new();
        assert!(outbox.push(&mut chunks(&[b"0123456789"])));
        let wake = Flushed {
            wake: true,
            ..Flushed::default()
        };
        assert_eq!(outbox.flush_through(&socket, 9), wake);
        outbox.close();
        assert_eq!(outbox.flush_through(&socket, 1024), wake);
        let outbox = Outbox::new();
        let full = Socket::with_room(0);
        assert!(outbox.push(&mut chunks(&[b"x"])));
        assert_eq!(outbox.flush_through(&full, 1024), wake);
        assert!(socket.got.lock().unwrap().is_empty());
    }

    #[test]
    fn advancing_drops_whole_chunks_then_part_of_one() {
        let mut data = chunks(&[b"ab", b"", b"cd", b"ef"]);
        advance(&mut data, 3);
        assert_eq!(data.concat(), b"def");
        assert_eq!(data.len(), 2);
        advance(&mut data, 3);
        assert!(data.is_empty());
    }

    #[test]
    fn a_blocked_writer_thread_wakes_on_wake() {
        let outbox = Arc::new(Outbox::new());
        let writer = {
            let outbox = outbox.clone();
            std::thread::spawn(move || outbox.take_blocking(Some(Duration::from_secs(10))))
        };
        assert!(outbox.push(&mut vec![Bytes::from_static(b"hi")]));
        outbox.wake();
        let taken = writer.join().unwrap().unwrap();
        assert_eq!(taken.data.concat(), b"hi");
    }
}
