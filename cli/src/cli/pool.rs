//! Worker threads for `serve`, kept for the next connection instead of one new thread each.
//!
//! Why: GnuTLS 3.7 gives every thread that draws random numbers a generator context of its own
//! and keeps each one in a process-wide list until the library is deinitialised, so a server
//! that starts a thread per connection grows by about 170 bytes for every connection it has ever
//! served (measured with `serve --backend gnutls`: ~250 bytes of RSS per connection, linear over
//! 40 000 connections; flat with OpenSSL and rustls). Reused threads make that a cost per
//! thread. A worker idle for [`IDLE`] ends, so a burst leaves no crowd of threads behind.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::Duration;

/// How long a worker waits for another connection before it ends.
pub const IDLE: Duration = Duration::from_secs(60);

type Job = Box<dyn FnOnce() + Send + 'static>;

/// A set of worker threads, grown on demand; the number of jobs running at once is bounded by
/// the caller (`serve`'s connection slots), so the workers are too.
#[derive(Debug, Clone)]
pub struct Pool {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    work: Condvar,
    ended: Condvar,
    idle_for: Duration,
}

#[derive(Default)]
struct State {
    /// Jobs handed to idle workers and not yet taken.
    queue: VecDeque<Job>,
    /// Workers waiting for a job.
    idle: usize,
    /// Workers alive.
    workers: usize,
    /// Threads ever started.
    started: u64,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("queued", &self.queue.len())
            .field("idle", &self.idle)
            .field("workers", &self.workers)
            .field("started", &self.started)
            .finish()
    }
}

impl Default for Pool {
    fn default() -> Self {
        Self::with_idle(IDLE)
    }
}

impl Pool {
    /// A pool whose workers end after `idle_for` without a job.
    pub fn with_idle(idle_for: Duration) -> Self {
        Self {
            shared: Arc::new(Shared {
                state: Mutex::new(State::default()),
                work: Condvar::new(),
                ended: Condvar::new(),
                idle_for,
            }),
        }
    }

    /// Runs `job` on an idle worker, or on a new one when none is idle. Fails only when no
    /// thread can be started (the job is then dropped, unrun).
    pub fn run(&self, job: impl FnOnce() + Send + 'static) -> std::io::Result<()> {
        let mut state = self.shared.lock();
        // Every queued job has an idle worker of its own: a worker gives up waiting only with
        // the queue empty, under this lock.
        if state.idle > state.queue.len() {
            state.queue.push_back(Box::new(job));
            drop(state);
            self.shared.work.notify_one();
            return Ok(());
        }
        state.workers += 1;
        state.started += 1;
        drop(state);
        let shared = self.shared.clone();
        let spawned = thread::Builder::new()
            .name("tlsresume-conn".into())
            .spawn(move || shared.work_from(Box::new(job)));
        if let Err(e) = spawned {
            let mut state = self.shared.lock();
            state.workers -= 1;
            drop(state);
            self.shared.ended.notify_all();
            return Err(e);
        }
        Ok(())
    }

    /// Blocks until every job handed to the pool has finished.
    pub fn wait(&self) {
        let mut state = self.shared.lock();
        while !state.queue.is_empty() || state.workers > state.idle {
            state = self
                .shared
                .ended
                .wait(state)
                .unwrap_or_else(|p| p.into_inner());
        }
    }

    /// How many threads the pool has started so far.
    #[cfg(test)]
    pub fn threads_started(&self) -> u64 {
        self.shared.lock().started
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A worker's life: `first`, then whatever is queued for it, until idle for too long.
    fn work_from(&self, first: Job) {
        // A job that panics ends its worker, which is then counted out (the guard).
        let _counted = WorkerGuard(self);
        first();
        let mut state = self.lock();
        loop {
            if let Some(job) = state.queue.pop_front() {
                drop(state);
                job();
                state = self.lock();
                continue;
            }
            state.idle += 1;
            self.ended.notify_all();
            let (guard, timeout) = self
                .work
                .wait_timeout(state, self.idle_for)
                .unwrap_or_else(|p| p.into_inner());
            state = guard;
            state.idle -= 1;
            if timeout.timed_out() && state.queue.is_empty() {
                return;
            }
        }
    }
}

/// Counts a worker out when it ends, however it ends.
struct WorkerGuard<'a>(&'a Shared);

impl Drop for WorkerGuard<'_> {
    fn drop(&mut self) {
        let mut state = self.0.lock();
        state.workers -= 1;
        drop(state);
        self.0.ended.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::sync::mpsc;

    #[test]
    fn one_job_after_another_runs_on_one_thread() {
        let pool = Pool::default();
        let (tx, rx) = mpsc::channel();
        for _ in 0..50 {
            let tx = tx.clone();
            pool.run(move || {
                let _ = tx.send(thread::current().id());
            })
            .expect("run");
            // The job has run; its worker is on its way back to waiting.
            rx.recv().expect("ran");
            pool.wait();
        }
        assert_eq!(pool.threads_started(), 1, "the worker was reused");
    }

    #[test]
    fn jobs_at_once_get_threads_of_their_own_and_all_run() {
        let pool = Pool::default();
        let gate = Arc::new(std::sync::Barrier::new(4));
        let (tx, rx) = mpsc::channel();
        for round in 0..3 {
            for _ in 0..4 {
                let (gate, tx) = (gate.clone(), tx.clone());
                // Four jobs that wait for each other: they must run at the same time.
                pool.run(move || {
                    gate.wait();
                    let _ = tx.send(thread::current().id());
                })
                .expect("run");
            }
            let ids: HashSet<_> = (0..4).map(|_| rx.recv().expect("ran")).collect();
            assert_eq!(ids.len(), 4, "round {round}: four threads");
            pool.wait();
        }
        assert_eq!(pool.threads_started(), 4, "later rounds reused the four");
    }

    #[test]
    fn idle_workers_end_and_new_jobs_still_run() {
        let pool = Pool::with_idle(Duration::from_millis(20));
        let (tx, rx) = mpsc::channel();
        let send = |tx: &mpsc::Sender<u32>, n| {
            let tx = tx.clone();
            move || {
                let _ = tx.send(n);
            }
        };
        pool.run(send(&tx, 1)).expect("run");
        assert_eq!(rx.recv().expect("ran"), 1);
        // Past the idle time the worker ends; the pool starts another for the next job.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while pool.shared.lock().workers > 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "the idle worker ended"
            );
            thread::sleep(Duration::from_millis(5));
        }
        pool.run(send(&tx, 2)).expect("run");
        assert_eq!(rx.recv().expect("ran"), 2);
        assert_eq!(pool.threads_started(), 2);
    }

    #[test]
    fn a_panicking_job_ends_only_its_worker() {
        let pool = Pool::default();
        pool.run(|| panic!("job failed")).expect("run");
        pool.wait();
        let (tx, rx) = mpsc::channel();
        pool.run(move || {
            let _ = tx.send(());
        })
        .expect("run");
        rx.recv().expect("ran");
        pool.wait();
        assert_eq!(pool.shared.lock().workers, 1);
    }
}
