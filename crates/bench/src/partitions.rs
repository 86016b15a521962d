//! `cohort-partitions-bench`: a broker holding many partitions. Creates
//! `--partitions` partitions in topics of `--per-topic` (one CreateTopics each)
//! while a producer keeps writing acks=-1 batches to another topic, then writes
//! one batch to every partition and reads a sample back. Reports the time to
//! create, the produce latency on the other topic before and during creation,
//! the descriptors and memory the broker holds, and the time to write every
//! partition. In-process by default (the figures are then this process's);
//! `--bootstrap` and `--broker-pid` measure a running broker. Prints figures
//! only; asserts nothing about time.

mod common;

use bytes::Bytes;
use clap::Parser;
use cohort_broker::FsyncPolicy;
use cohort_protocol::client;
use common::{percentile, start_in_process_with, Conn};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(
    about = "Many partitions on one broker: creation, descriptors, memory, produce meanwhile"
)]
struct Args {
    #[arg(long)]
    bootstrap: Option<String>,
    #[arg(long)]
    broker_pid: Option<u32>,
    #[arg(long, default_value_t = 100_000)]
    partitions: usize,
    /// Partitions per topic (one CreateTopics request each; Kafka caps a
    /// request at 10,000).
    #[arg(long, default_value_t = 10_000)]
    per_topic: usize,
    /// Fsync policy of the in-process broker.
    #[arg(long, default_value = "always", value_parser = FsyncPolicy::parse)]
    fsync: FsyncPolicy,
    /// The in-process broker's --max-open-files.
    #[arg(long, default_value_t = 1024)]
    max_open_files: usize,
}

fn proc_status(pid: Option<u32>, field: &str) -> u64 {
    let path = pid.map_or("/proc/self/status".to_string(), |p| {
        format!("/proc/{p}/status")
    });
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn open_fds(pid: Option<u32>) -> usize {
    let path = pid.map_or("/proc/self/fd".to_string(), |p| format!("/proc/{p}/fd"));
    std::fs::read_dir(path).map(|d| d.count()).unwrap_or(0)
}

fn batch() -> Bytes {
    Bytes::from(cohort_log::batch::build_batch(0, &[&[7u8; 100]], None))
}

/// Produces one batch at a time to partition 0 of `topic` until `stop`,
/// recording each latency with the time it was sent.
fn steady_producer(
    addr: String,
    topic: String,
    stop: Arc<AtomicBool>,
    out: Arc<Mutex<Vec<(Instant, Duration)>>>,
) {
    let mut conn = Conn::connect(&addr);
    let mut corr = 0;
    while !stop.load(Ordering::Relaxed) {
        corr += 1;
        let sent = Instant::now();
        conn.send(&client::produce_request(corr, &topic, 0, batch(), -1));
        let (_, parts) = client::produce_response(conn.recv()).expect("produce answer");
        assert_eq!(parts[0].1, 0, "steady produce refused: {}", parts[0].1);
        out.lock().unwrap().push((sent, sent.elapsed()));
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn latencies(all: &[(Instant, Duration)], from: Instant, to: Instant) -> String {
    let mut v: Vec<Duration> = all
        .iter()
        .filter(|(t, _)| *t >= from && *t < to)
        .map(|(_, d)| *d)
        .collect();
    v.sort();
    format!(
        "{} produces, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        v.len(),
        percentile(&v, 0.5),
        percentile(&v, 0.99),
        v.last().map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    )
}

fn main() {
    let args = Args::parse();
    let open_files = args.max_open_files;
    let (addr, _dir) = match &args.bootstrap {
        Some(a) => (a.clone(), None),
        None => {
            cohort_log_local::set_max_open_files(open_files);
            let (a, d) = start_in_process_with(args.fsync, |c| c.max_partitions = 1_000_000);
            (a, Some(d))
        }
    };
    let pid = args.broker_pid;
    let mut admin = Conn::connect(&addr);
    admin.send(&client::create_topic_request(1, "steady", 1));
    assert_eq!(client::create_topic_response(admin.recv()).unwrap(), 0);
    let stop = Arc::new(AtomicBool::new(false));
    let lat = Arc::new(Mutex::new(Vec::new()));
    let producer = {
        let (addr, stop, lat) = (addr.clone(), stop.clone(), lat.clone());
        std::thread::spawn(move || steady_producer(addr, "steady".into(), stop, lat))
    };
    std::thread::sleep(Duration::from_secs(2));
    let before = (proc_status(pid, "VmRSS:"), open_fds(pid));
    let quiet_from = Instant::now() - Duration::from_secs(2);
    let create_from = Instant::now();
    let topics = args.partitions.div_ceil(args.per_topic);
    let mut corr = 1;
    for t in 0..topics {
        let n = args.per_topic.min(args.partitions - t * args.per_topic) as i32;
        let started = Instant::now();
        corr += 1;
        admin.send(&client::create_topic_request(corr, &format!("wide-{t}"), n));
        let code = client::create_topic_response(admin.recv()).unwrap();
        assert_eq!(code, 0, "creating wide-{t}: error {code}");
        println!(
            "created wide-{t} ({n} partitions) in {:.2} s; broker holds {} descriptors, {} MiB resident",
            started.elapsed().as_secs_f64(),
            open_fds(pid),
            proc_status(pid, "VmRSS:") / 1024
        );
    }
    let create_to = Instant::now();
    std::thread::sleep(Duration::from_secs(1));
    stop.store(true, Ordering::Relaxed);
    producer.join().unwrap();
    let all = lat.lock().unwrap().clone();
    println!(
        "# {} partitions created in {:.1} s",
        args.partitions,
        (create_to - create_from).as_secs_f64()
    );
    println!(
        "# produce to another topic before creating: {}",
        latencies(&all, quiet_from, create_from)
    );
    println!(
        "# produce to another topic while creating:  {}",
        latencies(&all, create_from, create_to)
    );

    // One batch to every partition, pipelined per topic, then a sample read back.
    let started = Instant::now();
    let mut conn = Conn::connect(&addr);
    for t in 0..topics {
        let n = args.per_topic.min(args.partitions - t * args.per_topic);
        let topic = format!("wide-{t}");
        let window = 64;
        let (mut sent, mut answered) = (0, 0);
        while answered < n {
            while sent < n && sent - answered < window {
                corr += 1;
                conn.send(&client::produce_request(
                    corr,
                    &topic,
                    sent as i32,
                    batch(),
                    -1,
                ));
                sent += 1;
            }
            let (_, parts) = client::produce_response(conn.recv()).unwrap();
            assert_eq!(parts[0].1, 0, "produce to {topic} refused: {}", parts[0].1);
            answered += 1;
        }
    }
    println!(
        "# one acks=-1 batch written to each of {} partitions in {:.1} s; broker holds {} descriptors (was {} before creating), {} MiB resident (was {}), peak {} MiB",
        args.partitions,
        started.elapsed().as_secs_f64(),
        open_fds(pid),
        before.1,
        proc_status(pid, "VmRSS:") / 1024,
        before.0 / 1024,
        proc_status(pid, "VmHWM:") / 1024
    );
    let mut read = 0;
    for t in 0..topics {
        for p in (0..args.per_topic as i32).step_by(997) {
            corr += 1;
            conn.send(&client::fetch_request(
                corr,
                &format!("wide-{t}"),
                p,
                0,
                1 << 20,
                0,
            ));
            let (_, fetched) = client::fetch_response(conn.recv()).unwrap();
            assert!(
                fetched
                    .iter()
                    .any(|f| f.error == 0 && !f.records.is_empty()),
                "wide-{t}/{p} read back nothing"
            );
            read += 1;
        }
    }
    println!(
        "# {read} sampled partitions read back; {} open_files allowed",
        open_files
    );
}
