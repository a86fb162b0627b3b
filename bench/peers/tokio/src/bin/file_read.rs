//! Tokio's random 4 KiB file reads for bench/io_compare.sh: COUNT reads of
//! 4 KiB-aligned blocks of PATH (written by bench/file_blocks.c), at random
//! offsets (the same sequence in every implementation, see file_blocks.c),
//! CONCURRENCY reads in flight, on a multi-thread runtime with 2 workers.
//!
//!     file_read PATH COUNT CONCURRENCY [fs|pread]
//!
//! fs (default), the idiomatic one: CONCURRENCY tasks, each with its own
//! tokio::fs::File, doing seek + read_exact (Tokio runs each on its blocking
//! pool). Prints "RESULT file_rand_read_4k tokio <reads/s> reads/s".
//! pread: CONCURRENCY tasks sharing one std::fs::File, each read one
//! spawn_blocking(read_exact_at). Prints "RESULT file_rand_read_4k_pread ...".
//! Every block read is checked against its stamp (its index at the start,
//! its complement at the end); a wrong block is a hard error.

use std::convert::TryInto;
use std::io::SeekFrom;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

const BLOCK: u64 = 4096;

fn offsets(count: usize, blocks: u64) -> Vec<u64> {
    let mut s: u64 = 42;
    (0..count)
        .map(|_| {
            s = s.wrapping_add(0x9e3779b97f4a7c15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d049bb133111eb);
            z ^= z >> 31;
            (z % blocks) * BLOCK
        })
        .collect()
}

fn check(buf: &[u8], off: u64) {
    let idx = off / BLOCK;
    let head = u64::from_le_bytes(buf[..8].try_into().unwrap());
    let tail = u64::from_le_bytes(buf[BLOCK as usize - 8..].try_into().unwrap());
    if head != idx || tail != !idx {
        eprintln!("file_read: block {} read back as {} / {}", idx, head, !tail);
        println!("ERROR file_rand_read_4k tokio");
        std::process::exit(1);
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 || args.len() > 5 {
        eprintln!("usage: file_read PATH COUNT CONCURRENCY [fs|pread]");
        std::process::exit(2);
    }
    let path = args[1].clone();
    let count: usize = args[2].parse().expect("COUNT");
    let conc: usize = args[3].parse().expect("CONCURRENCY");
    let mode = args.get(4).map(|s| s.as_str()).unwrap_or("fs").to_string();
    assert!(
        count > 0 && conc > 0,
        "COUNT and CONCURRENCY must be positive"
    );
    let blocks = std::fs::metadata(&path).expect("PATH").len() / BLOCK;
    assert!(blocks > 0, "the file holds no whole block");
    let offs = Arc::new(offsets(count, blocks));
    let next = Arc::new(AtomicUsize::new(0));

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let secs = rt.block_on(async move {
        let mut tasks = Vec::with_capacity(conc);
        match mode.as_str() {
            "fs" => {
                let mut files = Vec::with_capacity(conc);
                for _ in 0..conc {
                    files.push(tokio::fs::File::open(&path).await.expect("open"));
                }
                let t0 = Instant::now();
                for mut f in files {
                    let (offs, next) = (offs.clone(), next.clone());
                    tasks.push(tokio::spawn(async move {
                        let mut buf = vec![0u8; BLOCK as usize];
                        loop {
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            if i >= offs.len() {
                                break;
                            }
                            f.seek(SeekFrom::Start(offs[i])).await.expect("seek");
                            f.read_exact(&mut buf).await.expect("read");
                            check(&buf, offs[i]);
                        }
                    }));
                }
                for t in tasks {
                    t.await.unwrap();
                }
                t0.elapsed().as_secs_f64()
            }
            "pread" => {
                let file = Arc::new(std::fs::File::open(&path).expect("open"));
                let t0 = Instant::now();
                for _ in 0..conc {
                    let (offs, next, file) = (offs.clone(), next.clone(), file.clone());
                    tasks.push(tokio::spawn(async move {
                        let mut buf = vec![0u8; BLOCK as usize];
                        loop {
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            if i >= offs.len() {
                                break;
                            }
                            let (off, f) = (offs[i], file.clone());
                            buf = tokio::task::spawn_blocking(move || {
                                f.read_exact_at(&mut buf, off).expect("pread");
                                buf
                            })
                            .await
                            .unwrap();
                            check(&buf, off);
                        }
                    }));
                }
                for t in tasks {
                    t.await.unwrap();
                }
                t0.elapsed().as_secs_f64()
            }
            m => {
                eprintln!("file_read: unknown mode '{}' (fs or pread)", m);
                std::process::exit(2);
            }
        }
    });
    let wl = if args.get(4).map(|s| s.as_str()) == Some("pread") {
        "file_rand_read_4k_pread"
    } else {
        "file_rand_read_4k"
    };
    println!("RESULT {} tokio {:.0} reads/s", wl, count as f64 / secs);
}
