//! Several worlds at once: [`run_many`] and [`run_many_each`] spread independent jobs
//! (one world each, typically) over threads and hand the results back in input order.
//!
//! A world is single-threaded and owns all its state (turmoil's simulation is
//! thread-local, so is the log capture's subscriber), so worlds on different threads
//! cannot see each other: the same scenario and seed give the same bytes whatever the
//! number of jobs.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

/// Stack of each worker thread: a world's futures are deep in debug builds, and the
/// main thread's 8 MiB is what a world has always run on.
const STACK: usize = 8 << 20;

/// The number of jobs `--jobs` means by default: the cores this process may use.
pub fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

/// Runs `f` on every item, on up to `jobs` threads, and returns the results in the
/// order of `items`. With one job (or one item) everything runs on the calling thread.
pub fn run_many<T: Send, R: Send>(jobs: usize, items: Vec<T>, f: impl Fn(T) -> R + Sync) -> Vec<R> {
    let mut out = Vec::with_capacity(items.len());
    run_many_each(jobs, items, f, |_, r| out.push(r));
    out
}

/// Like [`run_many`], handing each result to `each` (on the calling thread) as soon as
/// it and every result before it are done: `each` sees indices 0, 1, 2... in order.
pub fn run_many_each<T: Send, R: Send>(
    jobs: usize,
    items: Vec<T>,
    f: impl Fn(T) -> R + Sync,
    mut each: impl FnMut(usize, R),
) {
    let total = items.len();
    let jobs = jobs.clamp(1, total.max(1));
    if jobs == 1 {
        for (i, item) in items.into_iter().enumerate() {
            each(i, f(item));
        }
        return;
    }
    // Each slot is taken exactly once, by the worker that drew its index.
    let slots: Vec<std::sync::Mutex<Option<T>>> = items
        .into_iter()
        .map(|t| std::sync::Mutex::new(Some(t)))
        .collect();
    let next = AtomicUsize::new(0);
    let (done_tx, done_rx) = mpsc::channel::<(usize, R)>();
    std::thread::scope(|scope| {
        for k in 0..jobs {
            let (slots, next, f, done_tx) = (&slots, &next, &f, done_tx.clone());
            let worker = move || {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(slot) = slots.get(i) else { break };
                    let item = slot.lock().ok().and_then(|mut s| s.take());
                    let Some(item) = item else { break };
                    if done_tx.send((i, f(item))).is_err() {
                        break;
                    }
                }
            };
            let spawned = std::thread::Builder::new()
                .name(format!("world-{k}"))
                .stack_size(STACK)
                .spawn_scoped(scope, worker);
            if spawned.is_err() {
                // No thread to be had: the others (or this one, below) do the work.
                continue;
            }
        }
        drop(done_tx);
        let mut pending = std::collections::BTreeMap::new();
        let mut emitted = 0;
        for (i, r) in &done_rx {
            pending.insert(i, r);
            while let Some(r) = pending.remove(&emitted) {
                each(emitted, r);
                emitted += 1;
            }
        }
        // If no worker could be spawned, run what is left here.
        while emitted < total {
            let item = slots[emitted].lock().ok().and_then(|mut s| s.take());
            match item {
                Some(item) => each(emitted, f(item)),
                None => break,
            }
            emitted += 1;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_come_back_in_input_order() {
        let items: Vec<u64> = (0..40).collect();
        // Later items finish first: the order must still be the input's.
        let slow_first = |n: u64| {
            std::thread::sleep(std::time::Duration::from_millis(40 - n));
            n * n
        };
        let expected: Vec<u64> = (0..40).map(|n| n * n).collect();
        for jobs in [1, 2, 3, 8] {
            assert_eq!(
                run_many(jobs, items.clone(), slow_first),
                expected,
                "{jobs}"
            );
        }
        let mut seen = Vec::new();
        run_many_each(4, items, |n| n + 1, |i, r| seen.push((i, r)));
        let want: Vec<(usize, u64)> = (0..40).map(|n| (n as usize, n as u64 + 1)).collect();
        assert_eq!(seen, want);
    }

    #[test]
    fn jobs_really_run_at_once() {
        // Two jobs that each wait for the other can only finish side by side.
        let barrier = std::sync::Barrier::new(2);
        let out = run_many(2, vec![1, 2], |n| {
            barrier.wait();
            n
        });
        assert_eq!(out, vec![1, 2]);
        assert!(default_jobs() >= 1);
    }
}
