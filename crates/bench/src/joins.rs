//! `cohort-join-bench`: what a KIP-848 join costs as a group grows. Members of
//! one group join one after another (each waits for its first answer), all
//! subscribing to one topic; the time per join is reported for each step of
//! `--step` joins, so the cost of a join at 100 members sits beside its cost
//! at 10,000. Joined members send nothing more, so the in-process broker gives
//! them a long session (members expiring would measure something else).
//! Prints figures only; asserts nothing about time.

mod common;

use clap::Parser;
use cohort_broker::FsyncPolicy;
use cohort_protocol::client::{self, Heartbeat};
use common::{percentile, start_in_process_with, Conn};
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(about = "Time per KIP-848 join as one group grows")]
struct Args {
    /// Broker to measure; without it an in-process Cohort is started on a temp dir.
    #[arg(long)]
    bootstrap: Option<String>,
    #[arg(long, default_value_t = 10_000)]
    members: usize,
    /// Partitions of the topic the members subscribe to.
    #[arg(long, default_value_t = 1000)]
    partitions: i32,
    /// Joins per reported step.
    #[arg(long, default_value_t = 250)]
    step: usize,
    /// The in-process broker's group.consumer.assignment.interval.ms.
    #[arg(long, default_value_t = 100)]
    assignment_interval_ms: i64,
    /// Joins in flight at once (1: each join waits for the previous answer).
    #[arg(long, default_value_t = 1)]
    in_flight: usize,
}

fn main() {
    let args = Args::parse();
    let (addr, _dir) = match &args.bootstrap {
        Some(a) => (a.clone(), None),
        None => {
            let (a, d) = start_in_process_with(FsyncPolicy::Always, |c| {
                c.coordinator.consumer_session_timeout_ms = 3_600_000;
                c.coordinator.consumer_assignment_interval_ms = args.assignment_interval_ms;
            });
            (a, Some(d))
        }
    };
    let topic = format!("joins-{}", std::process::id());
    let mut conn = Conn::connect(&addr);
    conn.send(&client::create_topic_request(1, &topic, args.partitions));
    client::create_topic_response(conn.recv()).expect("create topic");
    let topics = [topic.clone()];
    let group = format!("g-{}", std::process::id());
    let mut corr = 1;
    let started = Instant::now();
    println!("members_before_step, joins, ms_per_join_mean, p50_ms, p99_ms, max_ms");
    let mut joined = 0;
    while joined < args.members {
        let n = args.step.min(args.members - joined);
        let mut latencies = Vec::with_capacity(n);
        let step_started = Instant::now();
        let mut sent_at = std::collections::VecDeque::new();
        let (mut sent, mut answered) = (0, 0);
        while answered < n {
            while sent < n && sent - answered < args.in_flight.max(1) {
                corr += 1;
                let id = format!("member-{:06}", joined + sent);
                let h = Heartbeat {
                    group_id: &group,
                    member_id: &id,
                    member_epoch: 0,
                    join_topics: Some(&topics),
                    owned: None,
                };
                conn.send(&client::consumer_group_heartbeat_request(corr, &h));
                sent_at.push_back(Instant::now());
                sent += 1;
            }
            let a = client::consumer_group_heartbeat_response(conn.recv()).expect("answer");
            assert_eq!(a.error, 0, "join refused with error {}", a.error);
            latencies.push(sent_at.pop_front().unwrap().elapsed());
            answered += 1;
        }
        let took = step_started.elapsed();
        latencies.sort();
        println!(
            "{joined}, {n}, {:.3}, {:.3}, {:.3}, {:.3}",
            took.as_secs_f64() * 1000.0 / n as f64,
            percentile(&latencies, 0.5),
            percentile(&latencies, 0.99),
            latencies
                .last()
                .copied()
                .unwrap_or(Duration::ZERO)
                .as_secs_f64()
                * 1000.0
        );
        joined += n;
    }
    println!(
        "# {} members joined in {:.2} s",
        args.members,
        started.elapsed().as_secs_f64()
    );
}
