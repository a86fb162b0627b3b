//! Tokio's side of the channel and lock benchmarks (bench/sync.c): the
//! same workloads on tokio::sync, multi-thread runtime with 2 workers.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{mpsc, oneshot, Mutex};

use crate::{report, RUNS};

/// 5 producers x 200,000 u64 through the channel `$make` creates, each
/// message sent with `$send`; RUNS times, reported as `$name`.
macro_rules! mpsc_workload {
    ($rt:expr, $name:expr, $make:expr, |$tx:ident, $i:ident| $send:expr) => {{
        const PRODUCERS: u64 = 5;
        const PER: u64 = 200_000;
        let mut v = Vec::new();
        for _ in 0..RUNS {
            let ms = $rt.block_on(async {
                let t0 = Instant::now();
                let (tx, mut rx) = $make;
                for _ in 0..PRODUCERS {
                    let $tx = tx.clone();
                    tokio::spawn(async move {
                        for $i in 0..PER {
                            $send;
                        }
                    });
                }
                drop(tx);
                let (mut n, mut sum) = (0u64, 0u64);
                while let Some(x) = rx.recv().await {
                    n += 1;
                    sum += x;
                }
                assert_eq!(n, PRODUCERS * PER);
                assert_eq!(sum, PRODUCERS * (PER * (PER - 1) / 2));
                t0.elapsed().as_nanos() as f64 / 1e6
            });
            v.push(ms);
        }
        report($name, v, "ms");
    }};
}

/// Through a bounded channel of 1,024.
pub fn mpsc_bounded(rt: &tokio::runtime::Runtime) {
    mpsc_workload!(rt, "mpsc_bounded", mpsc::channel::<u64>(1024), |tx, i| {
        tx.send(i).await.unwrap()
    });
}

/// Through an unbounded channel.
pub fn mpsc_unbounded(rt: &tokio::runtime::Runtime) {
    mpsc_workload!(rt, "mpsc_unbounded", mpsc::unbounded_channel::<u64>(), |tx, i| {
        tx.send(i).unwrap()
    });
}

/// The scheduler benchmark's ping_pong (1,000 pairs exchanging a ping and
/// a pong over oneshot channels), under the name bench/sync.c uses for it
/// with zokio's channels.
pub fn ping_pong_oneshot(rt: &tokio::runtime::Runtime) {
    const PAIRS: usize = 1_000;
    let mut v = Vec::new();
    for _ in 0..RUNS {
        let mut total = 0f64;
        for _ in 0..20 {
            total += rt.block_on(async {
                let rem = Arc::new(AtomicUsize::new(PAIRS));
                let (done_tx, done_rx) = oneshot::channel::<()>();
                let done_tx = Arc::new(std::sync::Mutex::new(Some(done_tx)));
                let t0 = Instant::now();
                tokio::spawn(async move {
                    for _ in 0..PAIRS {
                        let rem = rem.clone();
                        let done_tx = done_tx.clone();
                        tokio::spawn(async move {
                            let (tx1, rx1) = oneshot::channel::<u8>();
                            let (tx2, rx2) = oneshot::channel::<u8>();
                            tokio::spawn(async move {
                                let x = rx1.await.unwrap();
                                tx2.send(x).unwrap();
                            });
                            tx1.send(1).unwrap();
                            rx2.await.unwrap();
                            if rem.fetch_sub(1, Ordering::AcqRel) == 1 {
                                done_tx.lock().unwrap().take().unwrap().send(()).unwrap();
                            }
                        });
                    }
                });
                done_rx.await.unwrap();
                t0.elapsed().as_nanos() as f64
            });
        }
        v.push(total / 20.0 / 1000.0);
    }
    report("ping_pong_oneshot", v, "us/round");
}

/// 4 tasks x 250,000 lock / increment / unlock of one tokio Mutex.
pub fn mutex_contention(rt: &tokio::runtime::Runtime) {
    const LOCKERS: usize = 4;
    const ITERS: usize = 250_000;
    let mut v = Vec::new();
    for _ in 0..RUNS {
        let ms = rt.block_on(async {
            let m = Arc::new(Mutex::new(0usize));
            let t0 = Instant::now();
            let hs: Vec<_> = (0..LOCKERS)
                .map(|_| {
                    let m = m.clone();
                    tokio::spawn(async move {
                        for _ in 0..ITERS {
                            *m.lock().await += 1;
                        }
                    })
                })
                .collect();
            for h in hs {
                h.await.unwrap();
            }
            let ms = t0.elapsed().as_nanos() as f64 / 1e6;
            assert_eq!(*m.lock().await, LOCKERS * ITERS);
            ms
        });
        v.push(ms);
    }
    report("mutex_contention", v, "ms");
}
