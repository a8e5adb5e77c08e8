//! A small, bounded pool of threads for blocking work (password checks).
//!
//! Plain std threads and a channel: it needs no async runtime, so the same
//! pool serves a server on tokio, on async-std or smol, or on blocking
//! threads. [`BlockingPool::try_run`] never blocks its caller: past
//! `max_pending` jobs (running and queued together) it refuses the job
//! with [`Busy`], and the caller answers something cheap instead (a login
//! is told `retry-later`). So a flood of logins costs at most
//! `max_pending` queued secrets and `threads` verifications at a time.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

type Job = Box<dyn FnOnce() + Send>;

/// The pool has `max_pending` jobs already; the job was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy;

/// Threads that run jobs, at most `max_pending` of them running or queued.
#[derive(Debug)]
pub struct BlockingPool {
    sender: Option<Sender<Job>>,
    pending: Arc<AtomicUsize>,
    max_pending: usize,
    threads: Vec<JoinHandle<()>>,
}

/// Counts a job as pending until it has run (or panicked).
struct PendingGuard(Arc<AtomicUsize>);

impl Drop for PendingGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl BlockingPool {
    /// Starts `threads` threads (at least one), named `name`, taking at
    /// most `max_pending` jobs (at least one) at a time.
    pub fn new(name: &str, threads: usize, max_pending: usize) -> std::io::Result<BlockingPool> {
        let (sender, receiver) = channel::<Job>();
        let receiver = Arc::new(Mutex::new(receiver));
        let pending = Arc::new(AtomicUsize::new(0));
        let mut pool = BlockingPool {
            sender: Some(sender),
            pending,
            max_pending: max_pending.max(1),
            threads: Vec::new(),
        };
        for i in 0..threads.max(1) {
            let receiver = receiver.clone();
            let thread = std::thread::Builder::new()
                .name(format!("{name}-{i}"))
                .spawn(move || work(&receiver))?;
            pool.threads.push(thread);
        }
        Ok(pool)
    }

    /// Queues `job`, or refuses it if `max_pending` jobs are running or
    /// queued. Never blocks.
    pub fn try_run(&self, job: impl FnOnce() + Send + 'static) -> Result<(), Busy> {
        let taken = self
            .pending
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max_pending).then_some(n + 1)
            });
        if taken.is_err() {
            return Err(Busy);
        }
        let guard = PendingGuard(self.pending.clone());
        let job: Job = Box::new(move || {
            let _guard = guard;
            if catch_unwind(AssertUnwindSafe(job)).is_err() {
                tracing::error!("a blocking job panicked; its thread goes on");
            }
        });
        match &self.sender {
            // The threads live as long as the sender: sending cannot fail
            // while `self` is alive, and if it did the guard in the
            // returned job is dropped, so the count stays right.
            Some(sender) => sender.send(job).map_err(|_| Busy),
            None => Err(Busy),
        }
    }

    /// Jobs running or queued now.
    pub fn pending(&self) -> usize {
        self.pending.load(Ordering::Acquire)
    }

    /// Lets the queued jobs run, then waits for every thread to end.
    pub fn join(mut self) {
        self.sender = None;
        for thread in std::mem::take(&mut self.threads) {
            let _ = thread.join();
        }
    }
}

fn work(receiver: &Mutex<Receiver<Job>>) {
    loop {
        // One thread waits in `recv` at a time; the others wait for the lock.
        let job = receiver
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .recv();
        match job {
            Ok(job) => job(),
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::sync_channel;
    use std::time::Duration;

    const WAIT: Duration = Duration::from_secs(10);

    #[test]
    fn jobs_run_on_the_pool_threads() {
        let pool = BlockingPool::new("test-pool", 2, 8).unwrap();
        let (tx, rx) = channel();
        for i in 0..8 {
            let tx = tx.clone();
            pool.try_run(move || {
                let name = std::thread::current().name().map(String::from);
                tx.send((i, name)).unwrap();
            })
            .unwrap();
        }
        let mut seen: Vec<usize> = (0..8)
            .map(|_| {
                let (i, name) = rx.recv_timeout(WAIT).unwrap();
                assert!(name.unwrap().starts_with("test-pool-"));
                i
            })
            .collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..8).collect::<Vec<_>>());
        pool.join();
    }

    #[test]
    fn past_max_pending_jobs_are_refused_until_one_finishes() {
        let pool = BlockingPool::new("test-pool", 1, 2).unwrap();
        let (release, gate) = sync_channel::<()>(0);
        let (done, finished) = channel::<u32>();
        // The first job holds the only thread; the second waits in the queue.
        let first_done = done.clone();
        pool.try_run(move || {
            gate.recv().unwrap();
            first_done.send(1).unwrap();
        })
        .unwrap();
        let second_done = done.clone();
        pool.try_run(move || second_done.send(2).unwrap()).unwrap();
        assert_eq!(pool.pending(), 2);
        assert_eq!(pool.try_run(|| {}), Err(Busy));
        assert_eq!(pool.pending(), 2);
        release.send(()).unwrap();
        assert_eq!(finished.recv_timeout(WAIT).unwrap(), 1);
        assert_eq!(finished.recv_timeout(WAIT).unwrap(), 2);
        // Room again once they are done (the count drops after each job).
        let deadline = std::time::Instant::now() + WAIT;
        while pool.pending() > 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "pending never drained"
            );
            std::thread::yield_now();
        }
        pool.try_run(move || done.send(3).unwrap()).unwrap();
        assert_eq!(finished.recv_timeout(WAIT).unwrap(), 3);
        pool.join();
    }

    #[test]
    fn a_panicking_job_frees_its_place_and_its_thread() {
        let pool = BlockingPool::new("test-pool", 1, 1).unwrap();
        pool.try_run(|| panic!("a job that panics")).unwrap();
        let (tx, rx) = channel();
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            let tx = tx.clone();
            match pool.try_run(move || tx.send(()).unwrap()) {
                Ok(()) => break,
                Err(Busy) => {
                    assert!(std::time::Instant::now() < deadline, "place never freed");
                    std::thread::yield_now();
                }
            }
        }
        rx.recv_timeout(WAIT).unwrap();
        pool.join();
    }
}
