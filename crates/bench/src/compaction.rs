//! Log compaction throughput: a log of keyed records is written to disk, then
//! one cleaning pass runs over its sealed segments. Prints the bytes read and
//! written per second, the records removed, and how long installing the
//! cleaned segments held the log (the only time produce and fetch could wait).

use clap::Parser;
use cohort_log::LogStore;
use cohort_log_local::compact::{clean, CleanSettings};
use cohort_log_local::{LocalLog, LocalLogConfig};
use cohort_records::build::BatchBuilder;
use cohort_records::Compression;
use std::time::Instant;

#[derive(Parser)]
#[command(about = "Log compaction: one cleaning pass over a log of keyed records")]
struct Args {
    /// Megabytes of records to write before cleaning.
    #[arg(long, default_value_t = 256)]
    megabytes: u64,
    /// Distinct keys (each rewritten many times).
    #[arg(long, default_value_t = 10_000)]
    keys: u64,
    /// Value size in bytes.
    #[arg(long, default_value_t = 100)]
    value_bytes: usize,
    /// Records per batch.
    #[arg(long, default_value_t = 100)]
    batch: usize,
    /// none, gzip, snappy, lz4 or zstd.
    #[arg(long, default_value = "none")]
    compression: String,
}

fn main() {
    let a = Args::parse();
    let codec = match a.compression.as_str() {
        "gzip" => Compression::Gzip,
        "snappy" => Compression::Snappy,
        "lz4" => Compression::Lz4,
        "zstd" => Compression::Zstd,
        _ => Compression::None,
    };
    let dir = tempfile::tempdir().unwrap();
    let config = LocalLogConfig {
        segment_bytes: 64 << 20,
        segment_ms: i64::MAX / 2,
        index_interval_bytes: 4096,
    };
    let (mut log, _) = LocalLog::open(dir.path(), config).unwrap();
    let value = vec![b'v'; a.value_bytes];
    let mut n = 0u64;
    let write_started = Instant::now();
    while log.size_bytes() < a.megabytes << 20 {
        let mut b = BatchBuilder::new(1_700_000_000_000).compression(codec);
        for _ in 0..a.batch {
            let key = format!("key-{:08}", (n * 7919) % a.keys);
            b = b.record(Some(key.as_bytes()), Some(&value));
            n += 1;
        }
        let mut bytes = b.build();
        log.append(&mut bytes).unwrap();
    }
    let syncer = log.syncer().unwrap();
    syncer().unwrap();
    let sealed = log.sealed_segments(log.end_offset());
    let sealed_bytes: u64 = sealed.iter().map(|s| s.size).sum();
    println!(
        "wrote {n} records ({} MiB, {} keys, {}-byte values, {} per batch, {}) in {:.1} s; {} sealed segments ({} MiB) to clean",
        log.size_bytes() >> 20,
        a.keys,
        a.value_bytes,
        a.batch,
        a.compression,
        write_started.elapsed().as_secs_f64(),
        sealed.len(),
        sealed_bytes >> 20
    );
    let settings = CleanSettings {
        now_ms: 1_800_000_000_000,
        delete_retention_ms: 86_400_000,
        max_map_bytes: 128 << 20,
    };
    let started = Instant::now();
    let out = clean(&sealed, 0, settings).unwrap();
    let work = started.elapsed();
    let install_started = Instant::now();
    let mut longest = std::time::Duration::ZERO;
    for (base, size, path) in &out.files {
        let segment = sealed
            .iter()
            .find(|s| s.base == *base)
            .unwrap()
            .path
            .clone();
        cohort_log_local::compact::prepare_install(&segment).unwrap();
        let one = Instant::now();
        assert!(log.install_cleaned(*base, *size, path).unwrap());
        longest = longest.max(one.elapsed());
        cohort_log_local::compact::finish_install(&segment).unwrap();
    }
    let install = install_started.elapsed();
    println!(
        "cleaned in {:.2} s: read {} MiB ({:.0} MiB/s), wrote {} MiB, removed {} records; {} segments installed in {:.1} ms (longest hold of the log {:.2} ms)",
        work.as_secs_f64(),
        out.bytes_read >> 20,
        out.bytes_read as f64 / (1 << 20) as f64 / work.as_secs_f64(),
        out.bytes_written >> 20,
        out.records_removed,
        out.files.len(),
        install.as_secs_f64() * 1e3,
        longest.as_secs_f64() * 1e3
    );
}
