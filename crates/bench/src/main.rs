//! `cohort-bench`: produce and fetch throughput, and produce latency, against an
//! in-process Cohort (default) or any broker (`--bootstrap`). Each producer is
//! one connection writing to its own partition with a window of requests in
//! flight, as a Kafka client with max.in.flight does. Prints figures only; it
//! asserts nothing about time.

mod common;

use bytes::Bytes;
use clap::Parser;
use cohort_broker::FsyncPolicy;
use cohort_protocol::client;
use common::{percentile, start_in_process, Conn};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

#[derive(Parser, Clone)]
#[command(about = "Cohort data-plane throughput bench")]
struct Args {
    /// Broker to measure; without it an in-process Cohort is started on a temp dir.
    #[arg(long)]
    bootstrap: Option<String>,
    /// Fsync policy of the in-process broker.
    #[arg(long, default_value = "always", value_parser = FsyncPolicy::parse)]
    fsync: FsyncPolicy,
    /// Producer connections, each to its own partition.
    #[arg(long, default_value_t = 8)]
    producers: usize,
    /// Produce requests each producer keeps in flight.
    #[arg(long, default_value_t = 5)]
    in_flight: usize,
    #[arg(long, default_value_t = 100)]
    records_per_batch: usize,
    #[arg(long, default_value_t = 100)]
    record_bytes: usize,
    /// How long the produce phase runs, in seconds.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    #[arg(long, default_value_t = -1)]
    acks: i16,
    #[arg(long, default_value = "bench")]
    topic: String,
}

fn main() {
    let args = Args::parse();
    let (addr, _dir) = match &args.bootstrap {
        Some(b) => (b.clone(), None),
        None => {
            let (a, d) = start_in_process(args.fsync);
            (a, Some(d))
        }
    };
    let mut admin = Conn::connect(&addr);
    admin.send(&client::create_topic_request(
        1,
        &args.topic,
        args.producers as i32,
    ));
    let code = client::create_topic_response(admin.recv()).expect("create topic");
    assert!(
        code == 0 || code == 36,
        "create topic failed with error {code}"
    );

    let value = vec![b'x'; args.record_bytes];
    let values: Vec<&[u8]> = (0..args.records_per_batch)
        .map(|_| value.as_slice())
        .collect();
    let batch = Bytes::from(cohort_log::batch::build_batch(0, &values, None));
    let batch_bytes = batch.len();
    println!(
        "target={} fsync={} producers={} in_flight={} batch={} records x {} B ({} B on the wire) acks={} seconds={}",
        args.bootstrap.as_deref().unwrap_or("in-process cohort"),
        if args.bootstrap.is_some() { "n/a".to_string() } else { args.fsync.to_string() },
        args.producers, args.in_flight, args.records_per_batch, args.record_bytes, batch_bytes, args.acks, args.seconds
    );

    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let started = Instant::now();
    let handles: Vec<_> = (0..args.producers)
        .map(|p| {
            let (addr, topic, batch, a) = (
                addr.clone(),
                args.topic.clone(),
                batch.clone(),
                args.clone(),
            );
            std::thread::spawn(move || {
                let mut conn = Conn::connect(&addr);
                let mut window: VecDeque<Instant> = VecDeque::new();
                let mut latencies = Vec::new();
                let mut corr = 0;
                loop {
                    while window.len() < a.in_flight && Instant::now() < deadline {
                        corr += 1;
                        conn.send(&client::produce_request(
                            corr,
                            &topic,
                            p as i32,
                            batch.clone(),
                            a.acks,
                        ));
                        window.push_back(Instant::now());
                    }
                    let Some(sent) = window.pop_front() else {
                        break;
                    };
                    if a.acks == 0 {
                        continue;
                    }
                    let (_, parts) = client::produce_response(conn.recv()).expect("produce answer");
                    assert!(parts.iter().all(|x| x.1 == 0), "produce error {parts:?}");
                    latencies.push(sent.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut latencies: Vec<Duration> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort();
    let requests = latencies.len();
    let mb = (requests * batch_bytes) as f64 / 1e6;
    println!(
        "produce: {:.1} MB/s, {:.0} records/s, {} requests in {:.1} s; latency p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms",
        mb / elapsed,
        (requests * args.records_per_batch) as f64 / elapsed,
        requests,
        elapsed,
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
        percentile(&latencies, 0.999)
    );

    // Fetch everything back, one connection per partition, 1 MiB per request.
    let fetch_started = Instant::now();
    let readers: Vec<_> = (0..args.producers)
        .map(|p| {
            let (addr, topic) = (addr.clone(), args.topic.clone());
            std::thread::spawn(move || {
                let mut conn = Conn::connect(&addr);
                let (mut offset, mut bytes, mut corr) = (0i64, 0usize, 0);
                loop {
                    corr += 1;
                    conn.send(&client::fetch_request(
                        corr,
                        &topic,
                        p as i32,
                        offset,
                        1 << 20,
                        0,
                    ));
                    let (_, parts) = client::fetch_response(conn.recv()).expect("fetch answer");
                    let part = &parts[0];
                    assert_eq!(part.error, 0, "fetch error");
                    if part.records.is_empty() {
                        if offset >= part.high_watermark {
                            return bytes;
                        }
                        continue;
                    }
                    bytes += part.records.len();
                    // Advance past the last whole batch returned.
                    let mut at = 0;
                    while at < part.records.len() {
                        let h = cohort_log::BatchHeader::parse(&part.records[at..]).expect("batch");
                        offset = h.next_offset() as i64;
                        at += h.size;
                    }
                }
            })
        })
        .collect();
    let fetched: usize = readers.into_iter().map(|h| h.join().unwrap()).sum();
    let fetch_elapsed = fetch_started.elapsed().as_secs_f64();
    println!(
        "fetch: {:.1} MB/s ({:.1} MB in {:.2} s)",
        fetched as f64 / 1e6 / fetch_elapsed,
        fetched as f64 / 1e6,
        fetch_elapsed
    );
}
