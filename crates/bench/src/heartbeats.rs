//! `cohort-heartbeat-bench` (benchmark D's first cut): how many steady-state
//! KIP-848 heartbeats a broker answers per second, at what latency, and what
//! each costs in broker CPU. Members of `--groups` groups all subscribe to one
//! topic and are driven to a settled assignment first; then `--connections`
//! connections keep `--in-flight` heartbeats each in flight, every one for the
//! next member in turn, as a settled member sends them (its epoch, nothing
//! else). Prints figures only; asserts nothing about time.

mod common;

use clap::Parser;
use cohort_broker::FsyncPolicy;
use cohort_protocol::client::{self, Heartbeat};
use cohort_types::TopicId;
use common::{percentile, start_in_process, Conn};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

#[derive(Parser, Clone)]
#[command(about = "Steady-state ConsumerGroupHeartbeat throughput and cost")]
struct Args {
    /// Broker to measure; without it an in-process Cohort is started on a temp dir.
    #[arg(long)]
    bootstrap: Option<String>,
    /// The measured broker's process id, to read its CPU time from /proc
    /// (without it, and in-process, the figure is this whole process's).
    #[arg(long)]
    broker_pid: Option<u32>,
    #[arg(long, default_value_t = 10)]
    groups: usize,
    /// Members per group.
    #[arg(long, default_value_t = 100)]
    members: usize,
    /// Partitions of the one topic every member subscribes to.
    #[arg(long, default_value_t = 100)]
    partitions: i32,
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Heartbeats each connection keeps in flight.
    #[arg(long, default_value_t = 16)]
    in_flight: usize,
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Send at this many heartbeats per second in all, on a schedule, however
    /// slowly answers come (latency counts from the scheduled time, so a
    /// broker falling behind shows); 0 keeps `--in-flight` outstanding instead.
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Isolation: one more group of this many members churns while the others
    /// are measured (a member leaves and rejoins, again and again, each time
    /// bumping that group's epoch and recomputing its target).
    #[arg(long, default_value_t = 0)]
    churn_members: usize,
    /// Every member heartbeats at the interval the broker last gave it, as
    /// clients do (instead of `--in-flight` or `--rate`): shows what a
    /// heartbeat budget chooses and what it costs.
    #[arg(long)]
    follow: bool,
}

struct Member {
    group: String,
    id: String,
    epoch: i32,
    owned: Vec<(TopicId, Vec<i32>)>,
    /// The interval the broker last gave.
    interval_ms: i32,
}

/// CPU seconds (user + system) used so far by a process, from /proc (in
/// USER_HZ ticks, 100 per second on Linux).
fn cpu_seconds(pid: Option<u32>) -> Option<f64> {
    let path = match pid {
        Some(p) => format!("/proc/{p}/stat"),
        None => "/proc/self/stat".to_string(),
    };
    let stat = std::fs::read_to_string(path).ok()?;
    // Fields after the command name (which may hold spaces) start at state.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// One heartbeat from every member, pipelined (answers come in order), each
/// member then taking what its answer says.
fn round(conn: &mut Conn, corr: &mut i32, members: &mut [Member], join: Option<&[String]>) -> bool {
    const WINDOW: usize = 64;
    let mut changed = false;
    let (mut sent, mut answered) = (0, 0);
    while answered < members.len() {
        while sent < members.len() && sent - answered < WINDOW {
            let m = &members[sent];
            *corr += 1;
            let h = Heartbeat {
                group_id: &m.group,
                member_id: &m.id,
                member_epoch: m.epoch,
                join_topics: join,
                owned: join.is_none().then_some(m.owned.as_slice()),
            };
            conn.send(&client::consumer_group_heartbeat_request(*corr, &h));
            sent += 1;
        }
        let a = client::consumer_group_heartbeat_response(conn.recv()).expect("heartbeat answer");
        assert_eq!(a.error, 0, "heartbeat refused with error {}", a.error);
        let m = &mut members[answered];
        changed |=
            a.member_epoch != m.epoch || a.assignment.as_ref().is_some_and(|x| *x != m.owned);
        m.epoch = a.member_epoch;
        m.interval_ms = a.heartbeat_interval_ms;
        if let Some(x) = a.assignment {
            m.owned = x;
        }
        answered += 1;
    }
    changed
}

/// Joins every member, then heartbeats round after round, each member owning
/// what it was last given, until nothing has changed for a while: the broker
/// computes a group's target at most once per assignment interval
/// (`group.consumer.assignment.interval.ms`, 100 ms), so a burst of joins is
/// assigned once more after the first answers settle; a member still at the
/// earlier epoch would then be fenced.
fn settle(addr: &str, topic: &str, members: &mut [Member]) -> usize {
    const QUIET: Duration = Duration::from_millis(500);
    let mut conn = Conn::connect(addr);
    let mut corr = 0;
    round(&mut conn, &mut corr, members, Some(&[topic.to_string()]));
    let mut quiet_since = Instant::now();
    for rounds in 1..=1000 {
        if round(&mut conn, &mut corr, members, None) {
            quiet_since = Instant::now();
        } else if quiet_since.elapsed() >= QUIET {
            return rounds;
        } else {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    panic!("the groups did not settle in 1000 rounds");
}

/// A settled member's heartbeat: its epoch and nothing else.
fn steady<'a>(group: &'a str, id: &'a str, epoch: i32) -> Heartbeat<'a> {
    Heartbeat {
        group_id: group,
        member_id: id,
        member_epoch: epoch,
        join_topics: None,
        owned: None,
    }
}

/// Connection c drives members c, c + connections, ...: what each
/// connection's thread needs of them.
fn by_connection<T>(
    members: &[Member],
    connections: usize,
    each: impl Fn(&Member) -> T,
) -> Vec<Vec<T>> {
    (0..connections)
        .map(|c| {
            members
                .iter()
                .skip(c)
                .step_by(connections)
                .map(&each)
                .collect()
        })
        .collect()
}

/// Open loop: one thread sends on schedule, this one reads the answers.
fn paced(
    addr: &str,
    share: &[(String, String, i32)],
    rate: f64,
    start: Instant,
    deadline: Instant,
) -> (Vec<Duration>, usize) {
    let mut conn = Conn::connect(addr);
    let mut sender = conn.try_clone();
    let (tx, rx) = std::sync::mpsc::channel::<Instant>();
    let share = share.to_vec();
    let sending = std::thread::spawn(move || {
        for k in 0u64.. {
            let due = start + Duration::from_secs_f64(k as f64 / rate);
            if due >= deadline || share.is_empty() {
                break;
            }
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            let (group, id, epoch) = &share[k as usize % share.len()];
            let h = steady(group, id, *epoch);
            sender.send(&client::consumer_group_heartbeat_request(k as i32 + 1, &h));
            if tx.send(due).is_err() {
                break;
            }
        }
    });
    let (mut latencies, mut errors) = (Vec::new(), 0usize);
    // Answers come in order: each belongs to the oldest unanswered send.
    for due in rx {
        let a = client::consumer_group_heartbeat_response(conn.recv()).expect("heartbeat answer");
        latencies.push(due.elapsed());
        errors += usize::from(a.error != 0);
    }
    sending.join().unwrap();
    (latencies, errors)
}

/// Closed loop at the broker's cadence: each member of `share` heartbeats
/// when the interval from its last answer is up (the first ones spread over
/// the first interval); returns latencies, errors and every interval given.
fn follow(
    addr: &str,
    share: &[(String, String, i32, i32)],
    deadline: Instant,
) -> (Vec<Duration>, usize, Vec<i32>) {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;
    const WINDOW: usize = 64;
    let mut conn = Conn::connect(addr);
    let start = Instant::now();
    let mut due: BinaryHeap<(Reverse<Instant>, usize)> = share
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let spread = m.3.max(1) as u64 * i as u64 / share.len().max(1) as u64;
            (Reverse(start + Duration::from_millis(spread)), i)
        })
        .collect();
    let mut in_flight: VecDeque<(usize, Instant)> = VecDeque::new();
    // Each member moves to the epoch its answers carry, as a client does.
    let mut epochs: Vec<i32> = share.iter().map(|m| m.2).collect();
    let (mut latencies, mut errors, mut intervals, mut corr) = (Vec::new(), 0usize, Vec::new(), 0);
    loop {
        let now = Instant::now();
        while in_flight.len() < WINDOW && now < deadline {
            match due.peek() {
                Some((Reverse(at), i)) if *at <= now => {
                    let i = *i;
                    due.pop();
                    let (group, id, _, _) = &share[i];
                    corr += 1;
                    let h = steady(group, id, epochs[i]);
                    conn.send(&client::consumer_group_heartbeat_request(corr, &h));
                    in_flight.push_back((i, now));
                }
                _ => break,
            }
        }
        if let Some((i, sent)) = in_flight.pop_front() {
            let a =
                client::consumer_group_heartbeat_response(conn.recv()).expect("heartbeat answer");
            let answered = Instant::now();
            latencies.push(answered - sent);
            // An error is counted and retried a second later (a client backs off).
            let wait = if a.error != 0 {
                errors += 1;
                1000
            } else {
                epochs[i] = a.member_epoch;
                intervals.push(a.heartbeat_interval_ms);
                a.heartbeat_interval_ms.max(1) as u64
            };
            due.push((Reverse(answered + Duration::from_millis(wait)), i));
            continue;
        }
        let next = due.peek().map(|(Reverse(at), _)| *at);
        match next {
            Some(at) if at < deadline && Instant::now() < deadline => {
                std::thread::sleep(at.saturating_duration_since(Instant::now()))
            }
            _ => break,
        }
    }
    (latencies, errors, intervals)
}

/// Leaves and rejoins the churn group's members in turn until `deadline`;
/// returns how many leave-and-rejoin cycles were answered.
fn churn(addr: &str, topic: &str, members: Vec<Member>, deadline: Instant) -> usize {
    let mut conn = Conn::connect(addr);
    let mut corr = 0;
    let topics = [topic.to_string()];
    let mut cycles = 0;
    while Instant::now() < deadline {
        let m = &members[cycles % members.len()];
        for (epoch, join) in [(-1, None), (0, Some(&topics[..]))] {
            corr += 1;
            let owned: &[(TopicId, Vec<i32>)] = &[];
            let h = Heartbeat {
                group_id: &m.group,
                member_id: &m.id,
                member_epoch: epoch,
                join_topics: join,
                owned: join.is_none().then_some(owned),
            };
            conn.send(&client::consumer_group_heartbeat_request(corr, &h));
            let a = client::consumer_group_heartbeat_response(conn.recv()).expect("churn answer");
            assert_eq!(a.error, 0, "churn heartbeat refused with error {}", a.error);
        }
        cycles += 1;
    }
    cycles
}

fn main() {
    let args = Args::parse();
    let (addr, _dir) = match &args.bootstrap {
        Some(b) => (b.clone(), None),
        None => {
            let (a, d) = start_in_process(FsyncPolicy::Always);
            (a, Some(d))
        }
    };
    let topic = "heartbeat-bench";
    let mut admin = Conn::connect(&addr);
    admin.send(&client::create_topic_request(1, topic, args.partitions));
    let code = client::create_topic_response(admin.recv()).expect("create topic");
    assert!(
        code == 0 || code == 36,
        "create topic failed with error {code}"
    );

    let run = std::process::id();
    let mut members: Vec<Member> = (0..args.groups)
        .flat_map(|g| {
            (0..args.members).map(move |i| Member {
                group: format!("hb-bench-{run}-{g}"),
                id: format!("member-{run}-{g}-{i:05}"),
                epoch: 0,
                owned: vec![],
                interval_ms: 0,
            })
        })
        .collect();
    let started = Instant::now();
    let rounds = settle(&addr, topic, &mut members);
    println!(
        "target={} groups={} members/group={} partitions={} connections={} {}: settled in {} rounds, {:.1} s",
        args.bootstrap.as_deref().unwrap_or("in-process cohort"),
        args.groups,
        args.members,
        args.partitions,
        args.connections,
        if args.rate > 0 { format!("rate={}/s", args.rate) } else { format!("in_flight={}", args.in_flight) },
        rounds,
        started.elapsed().as_secs_f64()
    );

    if args.follow {
        return follow_run(&args, &addr, &members);
    }
    let shares = by_connection(&members, args.connections, |m| {
        (m.group.clone(), m.id.clone(), m.epoch)
    });
    let churning: Vec<Member> = (0..args.churn_members)
        .map(|i| Member {
            group: format!("hb-bench-{run}-churn"),
            id: format!("churn-{run}-{i:05}"),
            epoch: 0,
            owned: vec![],
            interval_ms: 0,
        })
        .collect();
    let churning = if churning.is_empty() {
        None
    } else {
        let mut churning = churning;
        settle(&addr, topic, &mut churning);
        Some(churning)
    };
    let cpu_before = cpu_seconds(args.broker_pid);
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.seconds);
    let handles: Vec<_> = shares
        .into_iter()
        .map(|share| {
            let (addr, in_flight) = (addr.clone(), args.in_flight);
            let per_connection = args.rate as f64 / args.connections as f64;
            std::thread::spawn(move || {
                if per_connection > 0.0 {
                    return paced(&addr, &share, per_connection, started, deadline);
                }
                let mut conn = Conn::connect(&addr);
                let mut window: VecDeque<Instant> = VecDeque::new();
                let (mut latencies, mut errors, mut corr, mut next) = (Vec::new(), 0usize, 0, 0);
                loop {
                    while window.len() < in_flight && Instant::now() < deadline && !share.is_empty()
                    {
                        let (group, id, epoch) = &share[next % share.len()];
                        let h = steady(group, id, *epoch);
                        next += 1;
                        corr += 1;
                        conn.send(&client::consumer_group_heartbeat_request(corr, &h));
                        window.push_back(Instant::now());
                    }
                    let Some(sent) = window.pop_front() else {
                        break;
                    };
                    let a = client::consumer_group_heartbeat_response(conn.recv())
                        .expect("heartbeat answer");
                    latencies.push(sent.elapsed());
                    errors += usize::from(a.error != 0);
                }
                (latencies, errors)
            })
        })
        .collect();
    let churner = churning.map(|members| {
        let addr = addr.clone();
        std::thread::spawn(move || churn(&addr, topic, members, deadline))
    });
    let mut latencies = Vec::new();
    let mut errors = 0;
    for h in handles {
        let (l, e) = h.join().unwrap();
        latencies.extend(l);
        errors += e;
    }
    let elapsed = started.elapsed().as_secs_f64();
    if let Some(c) = churner {
        let cycles = c.join().unwrap();
        println!(
            "churn: a group of {} members left and rejoined {} times ({:.0}/s) meanwhile",
            args.churn_members,
            cycles,
            cycles as f64 / elapsed
        );
    }
    let cpu = cpu_before
        .zip(cpu_seconds(args.broker_pid))
        .map(|(a, b)| b - a);
    latencies.sort();
    let n = latencies.len();
    println!(
        "steady heartbeats: {:.0}/s ({} in {:.1} s, {} errors); latency p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
        n as f64 / elapsed,
        n,
        elapsed,
        errors,
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
        percentile(&latencies, 1.0)
    );
    if let Some(cpu) = cpu {
        let whose = match (args.broker_pid, &args.bootstrap) {
            (Some(_), _) => "broker",
            (None, None) => "broker and load generator together",
            (None, Some(_)) => "load generator only",
        };
        println!(
            "cpu ({whose}): {:.2} s over {:.1} s = {:.0}% of one core, {:.1} us per heartbeat",
            cpu,
            elapsed,
            cpu / elapsed * 100.0,
            cpu / n.max(1) as f64 * 1e6
        );
    }
}

/// `--follow`: every member at the broker's cadence for `--seconds`.
fn follow_run(args: &Args, addr: &str, members: &[Member]) {
    let shares = by_connection(members, args.connections, |m| {
        (m.group.clone(), m.id.clone(), m.epoch, m.interval_ms)
    });
    let cpu_before = cpu_seconds(args.broker_pid);
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.seconds);
    let handles: Vec<_> = shares
        .into_iter()
        .map(|share| {
            let addr = addr.to_string();
            std::thread::spawn(move || follow(&addr, &share, deadline))
        })
        .collect();
    let (mut latencies, mut errors, mut intervals) = (Vec::new(), 0, Vec::new());
    for h in handles {
        let (l, e, i) = h.join().unwrap();
        latencies.extend(l);
        errors += e;
        intervals.extend(i);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = cpu_before
        .zip(cpu_seconds(args.broker_pid))
        .map(|(a, b)| b - a);
    latencies.sort();
    intervals.sort();
    let n = latencies.len();
    println!(
        "members at the broker's cadence: {} members, {:.0} heartbeats/s ({} in {:.1} s, {} errors); interval given min {} ms, p50 {} ms, max {} ms; latency p50 {:.3} ms, p99 {:.3} ms",
        members.len(),
        n as f64 / elapsed,
        n,
        elapsed,
        errors,
        intervals.first().copied().unwrap_or(0),
        intervals.get(intervals.len() / 2).copied().unwrap_or(0),
        intervals.last().copied().unwrap_or(0),
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
    );
    if let Some(cpu) = cpu {
        let whose = if args.broker_pid.is_some() {
            "broker"
        } else {
            "broker and load generator together"
        };
        println!(
            "cpu ({whose}): {:.2} s over {:.1} s = {:.1}% of one core, {:.1} us per heartbeat",
            cpu,
            elapsed,
            cpu / elapsed * 100.0,
            cpu / n.max(1) as f64 * 1e6
        );
    }
}
