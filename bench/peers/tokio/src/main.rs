//! Tokio's side of the scheduler benchmarks run by bench/compare.sh: the
//! same workloads as bench/sched.c, multi-thread runtime with 2 workers.
//! Prints "RESULT <workload> tokio <median> <unit>".

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;
use tokio::sync::oneshot;

mod sync_bench;

const RUNS: usize = 5;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap()
}

fn report(workload: &str, mut v: Vec<f64>, unit: &str) {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!("RESULT {} tokio {:.1} {}", workload, v[v.len() / 2], unit);
}

fn spawn_many_local(rt: &tokio::runtime::Runtime) {
    const N: usize = 1_000_000;
    let mut v = Vec::new();
    for _ in 0..RUNS {
        let ns = rt.block_on(async {
            let rem = Arc::new(AtomicUsize::new(N));
            let (tx, rx) = oneshot::channel::<()>();
            let tx = Arc::new(std::sync::Mutex::new(Some(tx)));
            let t0 = Instant::now();
            for _ in 0..N {
                let rem = rem.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    if rem.fetch_sub(1, Ordering::AcqRel) == 1 {
                        tx.lock().unwrap().take().unwrap().send(()).unwrap();
                    }
                });
            }
            rx.await.unwrap();
            t0.elapsed().as_nanos() as f64
        });
        v.push(ns / N as f64);
    }
    report("spawn_many_local", v, "ns/task");
}

fn spawn_join_remote(rt: &tokio::runtime::Runtime) {
    const N: usize = 100_000;
    let mut v = Vec::new();
    for _ in 0..RUNS {
        let t0 = Instant::now();
        for i in 0..N {
            let h = rt.spawn(async move { i });
            rt.block_on(h).unwrap();
        }
        v.push(t0.elapsed().as_nanos() as f64 / N as f64);
    }
    report("spawn_join_remote", v, "ns/task");
}

fn yield_many(rt: &tokio::runtime::Runtime) {
    const TASKS: usize = 200;
    const YIELDS: usize = 10_000;
    let mut v = Vec::new();
    for _ in 0..RUNS {
        let ns = rt.block_on(async {
            let t0 = Instant::now();
            let handles: Vec<_> = (0..TASKS)
                .map(|_| {
                    tokio::spawn(async {
                        for _ in 0..YIELDS {
                            tokio::task::yield_now().await;
                        }
                    })
                })
                .collect();
            for h in handles {
                h.await.unwrap();
            }
            t0.elapsed().as_nanos() as f64
        });
        v.push(ns / (TASKS * YIELDS) as f64);
    }
    report("yield_many", v, "ns/yield");
}

fn ping_pong(rt: &tokio::runtime::Runtime) {
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
                            let (tx1, rx1) = oneshot::channel::<()>();
                            let (tx2, rx2) = oneshot::channel::<()>();
                            tokio::spawn(async move {
                                rx1.await.unwrap();
                                tx2.send(()).unwrap();
                            });
                            tx1.send(()).unwrap();
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
    report("ping_pong", v, "us/round");
}

fn chained_spawn(rt: &tokio::runtime::Runtime) {
    const DEPTH: usize = 1_000;
    fn iter(done: oneshot::Sender<()>, n: usize) {
        if n == 0 {
            done.send(()).unwrap();
        } else {
            tokio::spawn(async move { iter(done, n - 1) });
        }
    }
    let mut v = Vec::new();
    for _ in 0..RUNS {
        let mut total = 0f64;
        for _ in 0..100 {
            total += rt.block_on(async {
                let (tx, rx) = oneshot::channel::<()>();
                let t0 = Instant::now();
                tokio::spawn(async move { iter(tx, DEPTH) });
                rx.await.unwrap();
                t0.elapsed().as_nanos() as f64
            });
        }
        v.push(total / 100.0 / 1000.0);
    }
    report("chained_spawn", v, "us/chain");
}

fn timers(rt: &tokio::runtime::Runtime) {
    const N: usize = 100_000;
    let (mut total, mut p50, mut p99) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..RUNS {
        let (ms, mut late) = rt.block_on(async {
            let t0 = Instant::now();
            let handles: Vec<_> = (0..N)
                .map(|i| {
                    let x = (i as u32).wrapping_mul(2654435761u32);
                    let d = std::time::Duration::from_millis(1 + ((x >> 8) % 50) as u64);
                    tokio::spawn(async move {
                        let deadline = tokio::time::Instant::now() + d;
                        tokio::time::sleep_until(deadline).await;
                        (tokio::time::Instant::now() - deadline).as_nanos() as i64
                    })
                })
                .collect();
            let mut late = Vec::with_capacity(N);
            for h in handles {
                late.push(h.await.unwrap());
            }
            (t0.elapsed().as_nanos() as f64 / 1e6, late)
        });
        late.sort();
        total.push(ms);
        p50.push(late[N / 2] as f64 / 1e3);
        p99.push(late[N * 99 / 100] as f64 / 1e3);
    }
    report("timers_total", total, "ms");
    report("timers_late_p50", p50, "us");
    report("timers_late_p99", p99, "us");
}

fn rss_bytes() -> f64 {
    let s = std::fs::read_to_string("/proc/self/statm").unwrap();
    let resident: f64 = s.split_whitespace().nth(1).unwrap().parse().unwrap();
    resident * 4096.0
}

/// Pending forever after counting its first poll.
struct Idle {
    polled: bool,
    parked: Arc<AtomicUsize>,
}

impl Future for Idle {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<()> {
        if !self.polled {
            self.polled = true;
            self.parked.fetch_add(1, Ordering::AcqRel);
        }
        Poll::Pending
    }
}

fn idle_memory(n: usize) -> f64 {
    // A child process per measurement, like the other implementations.
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new(exe)
        .arg("idle-child")
        .arg(n.to_string())
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().parse().unwrap()
}

fn idle_child(n: usize) {
    let rt = rt();
    let parked = Arc::new(AtomicUsize::new(0));
    let before = rss_bytes();
    for _ in 0..n {
        let p = parked.clone();
        rt.spawn(Idle { polled: false, parked: p });
    }
    while parked.load(Ordering::Acquire) < n {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    println!("{}", (rss_bytes() - before) / n as f64);
    std::process::exit(0);
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() > 2 && args[1] == "idle-child" {
        idle_child(args[2].parse().unwrap());
        return;
    }
    let only = args.get(1).cloned();
    let want = |name: &str| only.as_deref().map_or(true, |o| o == name);
    let rt = rt();
    if want("spawn_many_local") { spawn_many_local(&rt); }
    if want("spawn_join_remote") { spawn_join_remote(&rt); }
    if want("yield_many") { yield_many(&rt); }
    if want("ping_pong") { ping_pong(&rt); }
    if want("chained_spawn") { chained_spawn(&rt); }
    if want("timers") { timers(&rt); }
    if want("mpsc_bounded") { sync_bench::mpsc_bounded(&rt); }
    if want("mpsc_unbounded") { sync_bench::mpsc_unbounded(&rt); }
    if want("ping_pong_oneshot") { sync_bench::ping_pong_oneshot(&rt); }
    if want("mutex_contention") { sync_bench::mutex_contention(&rt); }
    drop(rt);
    if want("idle_memory") {
        let v: Vec<f64> = (0..RUNS).map(|_| idle_memory(1_000_000)).collect();
        report("idle_memory_1m", v, "bytes/task");
        let v: Vec<f64> = (0..RUNS).map(|_| idle_memory(100_000)).collect();
        report("idle_memory_100k", v, "bytes/task");
    }
}
