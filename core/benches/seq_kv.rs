//! `seq-kv` under a large store: one small write (a changed value of one
//! key) to a store already holding many large values, with the window of
//! past states full. Copying the store on each write makes this cost grow
//! with the data held; sharing structure between states keeps it at a
//! path of the tree.
//!
//! ```sh
//! cargo bench -p gcounter-core --bench seq_kv
//! ```
//!
//! With `--memory` (`cargo bench -p gcounter-core --bench seq_kv --
//! --memory`) it instead fills a store with 20 MB of values, makes 100
//! small writes, and prints the peak RSS of the process.

use criterion::{criterion_group, BatchSize, Criterion};
use gcounter_core::protocol::Payload;
use gcounter_core::service::{SeqKv, SEQ_KV_WINDOW};
use serde_json::Value;
use std::hint::black_box;

fn write(key: &str, value: Value) -> Payload {
    Payload::Write {
        key: key.into(),
        value,
    }
}

/// A store of `keys` values of `size` bytes each, then enough small
/// writes to fill the window with states that all hold the large values.
fn large_store(keys: usize, size: usize) -> SeqKv {
    let mut kv = SeqKv::new(1);
    for i in 0..keys {
        // Each value differs, so no write is a no-op.
        let mut s = "x".repeat(size);
        s.replace_range(..8.min(size), &format!("{i:08}")[..8.min(size)]);
        kv.handle("filler", &write(&format!("big-{i}"), Value::String(s)));
    }
    for i in 0..SEQ_KV_WINDOW as u64 {
        kv.handle("filler", &write("small", i.into()));
    }
    kv
}

fn seq_kv(c: &mut Criterion) {
    let mut group = c.benchmark_group("seq_kv/small_write");
    // (keys, bytes per value): 20 MB in few large values, and many keys.
    for (keys, size) in [(200, 100_000), (10_000, 100)] {
        let kv = large_store(keys, size);
        let mut n = 1_000_000u64;
        group.bench_function(format!("{keys}x{size}B"), |b| {
            b.iter_batched_ref(
                || kv.clone(),
                |kv| {
                    n += 1;
                    black_box(kv.handle("writer", &write("small", n.into())))
                },
                BatchSize::SmallInput,
            );
        });
    }
    group.finish();
}

/// Peak resident set of this process, from `/proc/self/status`.
fn peak_rss_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn memory() {
    let (keys, size) = (200, 100_000);
    let rss_start = peak_rss_kb().unwrap_or(0);
    let mut kv = large_store(keys, size);
    let start = std::time::Instant::now();
    for i in 0..100u64 {
        kv.handle("writer", &write("small", (i + 1000).into()));
    }
    let per_write = start.elapsed() / 100;
    let rss = peak_rss_kb().unwrap_or(0);
    eprintln!(
        "seq-kv memory: {keys} values of {size} B ({} MB of values), window {SEQ_KV_WINDOW}: \
         peak RSS {} MB (process at start {} MB), {per_write:?} per small write",
        keys * size / 1_000_000,
        rss / 1024,
        rss_start / 1024,
    );
    black_box(kv);
}

criterion_group!(benches, seq_kv);

fn main() {
    if std::env::args().any(|a| a == "--memory") {
        return memory();
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
