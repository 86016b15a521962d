//! `cohort`: the Cohort broker.

use clap::{Parser, Subcommand};
use cohort_broker::server::Server;
use cohort_broker::{BrokerConfig, FsyncPolicy};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "cohort",
    version,
    about = "A Kafka-wire-compatible broker built around fast, safe consumer-group rebalancing"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a single broker with the embedded log.
    Serve(ServeArgs),
    /// Repair a stopped broker's damaged data directory: cut each damaged log
    /// at its first damage (moving what is cut aside, never deleting it) and
    /// rebuild a lost topics.json from the partitions' own metadata.
    Repair(RepairArgs),
    /// Run the deterministic group simulator over many seeds (or replay one).
    Sim(SimArgs),
    /// The rebalance lab: scenarios with real clients against any broker,
    /// every pause measured and drawn.
    #[command(subcommand)]
    Lab(cohort_lab::cli::LabCommand),
}

#[derive(Parser)]
struct RepairArgs {
    /// The data directory of a stopped broker.
    #[arg(long, env = "COHORT_DATA_DIR", default_value = "./data")]
    data_dir: PathBuf,
    /// Only report what would be cut.
    #[arg(long)]
    dry_run: bool,
    /// Which coordinator log generation (log-NNNNNN) is live, when CURRENT is
    /// lost and more than one exists.
    #[arg(long)]
    coordinator_generation: Option<u64>,
}

#[derive(Parser)]
struct SimArgs {
    /// Replay exactly this seed.
    #[arg(long)]
    seed: Option<u64>,
    /// How many seeds to run, starting at --first-seed.
    #[arg(long, default_value_t = 100)]
    seeds: u64,
    #[arg(long, default_value_t = 0)]
    first_seed: u64,
    #[arg(long, default_value_t = 300)]
    members: usize,
    #[arg(long, default_value_t = 200)]
    partitions: i32,
    /// Eager (range), Cooperative (cooperative-sticky) or Consumer (KIP-848).
    #[arg(long, default_value = "Eager", value_parser = parse_style)]
    style: cohort_sim::client::Style,
    /// Chance that a coordinator log write fails (default: the simulator's).
    #[arg(long)]
    write_failure_rate: Option<f64>,
    /// Chance that a restart finds unacknowledged records in the log.
    #[arg(long)]
    torn_tail_rate: Option<f64>,
    /// Chance per second that a member is rolled onto the other protocol
    /// (it leaves; one speaking the other protocol starts in its place), so
    /// the group moves between the classic and the consumer protocol and
    /// back. --style names the classic members' flavour (Consumer: start
    /// on the consumer protocol, roll back to cooperative classic members).
    #[arg(long, default_value_t = 0.0)]
    rollout_rate: f64,
}

fn parse_style(s: &str) -> Result<cohort_sim::client::Style, String> {
    match s.to_ascii_lowercase().as_str() {
        "eager" => Ok(cohort_sim::client::Style::Eager),
        "cooperative" => Ok(cohort_sim::client::Style::Cooperative),
        "consumer" => Ok(cohort_sim::client::Style::Consumer),
        other => Err(format!(
            "style must be Eager, Cooperative or Consumer, not {other}"
        )),
    }
}

fn sim(args: SimArgs) -> std::process::ExitCode {
    let seeds: Vec<u64> = match args.seed {
        Some(s) => vec![s],
        None => (args.first_seed..args.first_seed + args.seeds).collect(),
    };
    let mut failed = 0;
    for seed in seeds {
        let mut cfg = cohort_sim::SimConfig::new(args.members, args.partitions, args.style);
        if let Some(r) = args.write_failure_rate {
            cfg.write_failure_rate = r;
        }
        if let Some(r) = args.torn_tail_rate {
            cfg.torn_tail_rate = r;
        }
        cfg.rollout_rate = args.rollout_rate;
        let started = std::time::Instant::now();
        match cohort_sim::run(seed, cfg) {
            Ok(r) => println!(
                "seed {seed}: ok in {:.1} s: {} steps, generation {}, {} crashes, {} rolled ({} upgrades, {} downgrades), {} reconnects, {} coordinator restarts ({} unacknowledged records survived one, {} found a corrupted record), {} failed log writes, {} answers dropped, {} SyncGroups held ({} rounds with carried members), stable {} ms after faults stopped",
                started.elapsed().as_secs_f64(), r.steps, r.generations, r.crashes, r.rolled, r.upgrades, r.downgrades, r.reconnects, r.restarts, r.unacknowledged_survivors, r.corrupted_loads, r.failed_writes, r.dropped, r.held_syncs, r.carried_rounds, r.converged_after_ms
            ),
            Err(f) => {
                failed += 1;
                println!("{f}");
            }
        }
    }
    if failed > 0 {
        println!("{failed} seed(s) failed");
        std::process::ExitCode::FAILURE
    } else {
        std::process::ExitCode::SUCCESS
    }
}

#[derive(Parser)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "COHORT_LISTEN", default_value = "127.0.0.1:9092")]
    listen: String,
    /// Address clients are told to connect to (defaults to --listen).
    #[arg(long, env = "COHORT_ADVERTISE")]
    advertise: Option<String>,
    /// Where topics, logs and metadata are kept.
    #[arg(long, env = "COHORT_DATA_DIR", default_value = "./data")]
    data_dir: PathBuf,
    /// This broker's node id.
    #[arg(long, env = "COHORT_NODE_ID", default_value_t = 0)]
    node_id: i32,
    /// When data reaches disk: `always` (acks=1/-1 answered after fsync, group
    /// commit), `interval:<ms>` (synced every interval, answered at once) or `never`.
    #[arg(long, env = "COHORT_FSYNC", default_value = "always", value_parser = FsyncPolicy::parse)]
    fsync: FsyncPolicy,
    /// Largest request accepted, in bytes (socket.request.max.bytes).
    #[arg(long, env = "COHORT_MAX_REQUEST_SIZE", default_value_t = 100 * 1024 * 1024)]
    max_request_size: usize,
    /// Bytes all clients' requests may hold in memory together, from the first
    /// byte read until answered; past it the broker stops reading from
    /// connections until requests complete (queued.max.request.bytes). -1 for
    /// no limit.
    #[arg(long, env = "COHORT_QUEUED_MAX_REQUEST_BYTES", default_value_t = 512 << 20, allow_negative_numbers = true)]
    queued_max_request_bytes: i64,
    /// Close a connection that has nothing in flight and no traffic for this
    /// long, in ms (connections.max.idle.ms).
    #[arg(
        long,
        env = "COHORT_CONNECTIONS_MAX_IDLE_MS",
        default_value_t = 600_000
    )]
    connections_max_idle_ms: u64,
    /// Close a connection whose request frame has not arrived whole this long
    /// after its first byte, in ms.
    #[arg(long, env = "COHORT_FRAME_READ_TIMEOUT_MS", default_value_t = 60_000)]
    frame_read_timeout_ms: u64,
    /// Create topics on Metadata requests for unknown names (auto.create.topics.enable).
    #[arg(long, env = "COHORT_AUTO_CREATE_TOPICS", default_value_t = true, action = clap::ArgAction::Set)]
    auto_create_topics: bool,
    /// Partitions of auto-created topics (num.partitions).
    #[arg(long, env = "COHORT_NUM_PARTITIONS", default_value_t = 1)]
    num_partitions: i32,
    /// The most partitions this broker holds; CreateTopics and
    /// CreatePartitions past it get POLICY_VIOLATION.
    #[arg(long, env = "COHORT_MAX_PARTITIONS", default_value_t = 200_000)]
    max_partitions: usize,
    /// Segment files kept open at most (others are opened when used). 0: half
    /// the process's open-file limit, which is first raised to its hard limit.
    #[arg(long, env = "COHORT_MAX_OPEN_FILES", default_value_t = 0)]
    max_open_files: usize,
    /// Default retention per partition in ms, -1 forever (log.retention.ms).
    #[arg(long, env = "COHORT_RETENTION_MS", default_value_t = 7 * 24 * 3600 * 1000)]
    retention_ms: i64,
    /// Default retention per partition in bytes, -1 unlimited (log.retention.bytes).
    #[arg(long, env = "COHORT_RETENTION_BYTES", default_value_t = -1)]
    retention_bytes: i64,
    /// Segment size in bytes (log.segment.bytes).
    #[arg(long, env = "COHORT_SEGMENT_BYTES", default_value_t = 1 << 30)]
    segment_bytes: u64,
    /// Roll a segment once its first batch is this old, in ms (log.roll.ms).
    #[arg(long, env = "COHORT_SEGMENT_MS", default_value_t = 7 * 24 * 3600 * 1000)]
    segment_ms: i64,
    /// Refuse produced records whose timestamp is more than this many ms in the
    /// past (log.message.timestamp.before.max.ms; Kafka's default: unbounded).
    #[arg(long, env = "COHORT_MESSAGE_TIMESTAMP_BEFORE_MAX_MS", default_value_t = i64::MAX)]
    message_timestamp_before_max_ms: i64,
    /// Refuse produced records whose timestamp is more than this many ms in the
    /// future (log.message.timestamp.after.max.ms; Kafka 4's default: one hour).
    #[arg(
        long,
        env = "COHORT_MESSAGE_TIMESTAMP_AFTER_MAX_MS",
        default_value_t = 3_600_000
    )]
    message_timestamp_after_max_ms: i64,
    /// How often retention runs, in ms (log.retention.check.interval.ms).
    #[arg(
        long,
        env = "COHORT_RETENTION_CHECK_INTERVAL_MS",
        default_value_t = 300_000
    )]
    retention_check_interval_ms: u64,
    /// How long the log cleaner rests between passes over compacted topics, in
    /// ms (log.cleaner.backoff.ms).
    #[arg(long, env = "COHORT_LOG_CLEANER_BACKOFF_MS", default_value_t = 15_000)]
    log_cleaner_backoff_ms: u64,
    /// Key bytes one cleaning pass may hold in memory (log.cleaner.dedupe.buffer.size);
    /// a pass stops at the segment that would pass it and the next goes on.
    #[arg(long, env = "COHORT_LOG_CLEANER_DEDUPE_BUFFER_SIZE", default_value_t = 128 << 20)]
    log_cleaner_dedupe_buffer_size: usize,
    /// How often every log's recovery point is written, in ms
    /// (log.flush.offset.checkpoint.interval.ms). After a crash, only data
    /// written since the last one may be cut as a torn tail; damage anywhere
    /// else takes the partition offline instead.
    #[arg(
        long,
        env = "COHORT_RECOVERY_POINT_CHECKPOINT_INTERVAL_MS",
        default_value_t = 5000
    )]
    recovery_point_checkpoint_interval_ms: u64,
    /// Delay of the first rebalance of an empty classic group (group.initial.rebalance.delay.ms).
    #[arg(
        long,
        env = "COHORT_GROUP_INITIAL_REBALANCE_DELAY_MS",
        default_value_t = 3000
    )]
    group_initial_rebalance_delay_ms: i32,
    /// End an empty classic group's first rebalance once this many ms pass
    /// without another member joining, instead of waiting out the whole
    /// initial delay (0: only the delay ends it, as in Kafka).
    #[arg(
        long,
        env = "COHORT_GROUP_INITIAL_REBALANCE_QUIET_MS",
        default_value_t = 0
    )]
    group_initial_rebalance_quiet_ms: i64,
    /// Smallest session timeout a member may ask for (group.min.session.timeout.ms).
    #[arg(
        long,
        env = "COHORT_GROUP_MIN_SESSION_TIMEOUT_MS",
        default_value_t = 6000
    )]
    group_min_session_timeout_ms: i32,
    /// Largest session timeout a member may ask for (group.max.session.timeout.ms).
    #[arg(
        long,
        env = "COHORT_GROUP_MAX_SESSION_TIMEOUT_MS",
        default_value_t = 1_800_000
    )]
    group_max_session_timeout_ms: i32,
    /// Most members a group may have (group.max.size).
    #[arg(long, env = "COHORT_GROUP_MAX_SIZE", default_value_t = i32::MAX as usize)]
    group_max_size: usize,
    /// How long committed offsets of an empty group are kept (offsets.retention.minutes).
    #[arg(
        long,
        env = "COHORT_OFFSETS_RETENTION_MINUTES",
        default_value_t = 10080
    )]
    offsets_retention_minutes: i64,
    /// How often expired offsets are removed, in ms (offsets.retention.check.interval.ms).
    #[arg(
        long,
        env = "COHORT_OFFSETS_RETENTION_CHECK_INTERVAL_MS",
        default_value_t = 600_000
    )]
    offsets_retention_check_interval_ms: i64,
    /// Compact the coordinator log once it holds this many records (and more
    /// than twice the live state).
    #[arg(
        long,
        env = "COHORT_COORDINATOR_COMPACT_AFTER",
        default_value_t = 10_000
    )]
    coordinator_compact_after: usize,
    /// Session timeout of consumer-protocol members (group.consumer.session.timeout.ms).
    #[arg(
        long,
        env = "COHORT_GROUP_CONSUMER_SESSION_TIMEOUT_MS",
        default_value_t = 45_000
    )]
    group_consumer_session_timeout_ms: i32,
    /// The longest heartbeat interval a settled consumer-protocol member is
    /// given (group.consumer.heartbeat.interval.ms; Kafka gives every member
    /// this, 5000 by default). With a heartbeat budget, members get less.
    #[arg(
        long,
        env = "COHORT_GROUP_CONSUMER_HEARTBEAT_INTERVAL_MS",
        default_value_t = 5_000
    )]
    group_consumer_heartbeat_interval_ms: i32,
    /// Heartbeats per second that settled consumer-protocol members of every
    /// group may spend together: each is given the shortest interval this
    /// allows (members x 1000 / budget ms), between
    /// --group-consumer-heartbeat-interval-floor-ms and
    /// --group-consumer-heartbeat-interval-ms. An owner hears that it must
    /// give a partition up at its next heartbeat, so a shorter interval is a
    /// faster rebalance. 0 gives everyone the fixed interval, as Kafka does.
    #[arg(
        long,
        env = "COHORT_GROUP_CONSUMER_HEARTBEAT_BUDGET",
        default_value_t = 2_000
    )]
    group_consumer_heartbeat_budget: u32,
    /// The shortest interval the heartbeat budget gives a settled member.
    #[arg(
        long,
        env = "COHORT_GROUP_CONSUMER_HEARTBEAT_INTERVAL_FLOOR_MS",
        default_value_t = 50
    )]
    group_consumer_heartbeat_interval_floor_ms: i32,
    /// Heartbeat interval given to members with reconciliation pending (revoke,
    /// pick up released partitions, move to a new epoch).
    #[arg(
        long,
        env = "COHORT_GROUP_CONSUMER_RECONCILE_HEARTBEAT_INTERVAL_MS",
        default_value_t = 50
    )]
    group_consumer_reconcile_heartbeat_interval_ms: i32,
    /// A consumer group's target assignment is computed at most once per
    /// this many ms (group.consumer.assignment.interval.ms, Kafka 4.3): a
    /// change after a quiet interval is assigned at once, a burst of joins
    /// shares one computation. 0 computes on every change.
    #[arg(
        long,
        env = "COHORT_GROUP_CONSUMER_ASSIGNMENT_INTERVAL_MS",
        default_value_t = 100
    )]
    group_consumer_assignment_interval_ms: i64,
    /// A dynamic group member (classic or consumer protocol) whose connection
    /// ends is removed once this many ms pass without a request from it on
    /// any connection: a killed member's partitions move at once instead of
    /// after its session timeout. Static members keep their session timeout.
    /// -1 waits for the session timeout, as Kafka does.
    #[arg(
        long,
        env = "COHORT_GROUP_MEMBER_DISCONNECT_GRACE_MS",
        default_value_t = 500,
        allow_hyphen_values = true
    )]
    group_member_disconnect_grace_ms: i64,
    /// Hold a classic member's Heartbeat answer in a stable group up to this
    /// long and answer it REBALANCE_IN_PROGRESS the moment a rebalance starts
    /// (a long poll; any later request on the same connection releases it,
    /// and it is kept a second inside the member's session). 2500 stays
    /// inside every tested client's heartbeat timeout. While it is on, a
    /// commit between a member's JoinGroup and SyncGroup is accepted (Kafka
    /// answers REBALANCE_IN_PROGRESS), because a member told at once may
    /// rejoin before its revocation callback commits. 0 answers at once and
    /// keeps Kafka's commit rule.
    #[arg(
        long,
        env = "COHORT_GROUP_CLASSIC_HOLD_HEARTBEAT_MS",
        default_value_t = 2500
    )]
    group_classic_hold_heartbeat_ms: i64,
    /// In a cooperative round that takes partitions from some members (so a
    /// second round must follow), hold the SyncGroup answers of the members
    /// with nothing to do (up to --group-classic-hold-heartbeat-ms) and
    /// count them as joined in the second round, answering them its
    /// assignment: the second round need not wait for them to hear of it
    /// and rejoin (librdkafka rejoins at most once a second). Members see
    /// one rebalance callback fewer (the first round's empty assignment).
    #[arg(
        long,
        env = "COHORT_GROUP_CLASSIC_FOLLOW_UP_HOLD",
        default_value_t = false,
        action = clap::ArgAction::Set
    )]
    group_classic_follow_up_hold: bool,
    /// Which live groups may move between the classic and the consumer
    /// protocol (group.consumer.migration.policy): bidirectional, upgrade,
    /// downgrade or disabled. Empty groups always may.
    #[arg(
        long,
        env = "COHORT_GROUP_CONSUMER_MIGRATION_POLICY",
        default_value = "bidirectional"
    )]
    group_consumer_migration_policy: cohort_broker::MigrationPolicy,
    /// Most members a consumer group may have (group.consumer.max.size).
    #[arg(long, env = "COHORT_GROUP_CONSUMER_MAX_SIZE", default_value_t = i32::MAX as usize)]
    group_consumer_max_size: usize,
    /// Server assignors offered, the first being the default (group.consumer.assignors).
    #[arg(
        long,
        env = "COHORT_GROUP_CONSUMER_ASSIGNORS",
        default_value = "uniform,range"
    )]
    group_consumer_assignors: String,
    /// Least time between two resolutions of one consumer group's regex
    /// subscriptions, so topics created together join in one rebalance (Kafka:
    /// a fixed 10 s).
    #[arg(
        long,
        env = "COHORT_GROUP_CONSUMER_REGEX_REFRESH_MIN_INTERVAL_MS",
        default_value_t = 1_000
    )]
    group_consumer_regex_refresh_min_interval_ms: i64,
    /// Re-resolve regex subscriptions at least this often even when no topic
    /// was created (group.consumer.regex.refresh.interval.ms).
    #[arg(
        long,
        env = "COHORT_GROUP_CONSUMER_REGEX_REFRESH_INTERVAL_MS",
        default_value_t = 600_000
    )]
    group_consumer_regex_refresh_interval_ms: i64,
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("COHORT_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        // Colours only on a terminal: log files and journald get plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve(args),
        Command::Repair(args) => repair(args),
        Command::Sim(args) => sim(args),
        Command::Lab(cmd) => match cohort_lab::cli::main(cmd) {
            Ok(true) => std::process::ExitCode::SUCCESS,
            Ok(false) => std::process::ExitCode::FAILURE,
            Err(e) => {
                eprintln!("lab: {e}");
                std::process::ExitCode::FAILURE
            }
        },
    }
}

/// Raises the soft limit on open files to the hard limit (as Kafka's docs ask
/// operators to) and returns it: partitions' files and connections share it.
fn raise_open_file_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write `lim`.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 1024;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim.rlim_cur = lim.rlim_max;
            }
        }
    }
    lim.rlim_cur.min(1 << 20)
}

fn repair(args: RepairArgs) -> std::process::ExitCode {
    let options = cohort_broker::repair::RepairOptions {
        dry_run: args.dry_run,
        coordinator_generation: args.coordinator_generation,
    };
    match cohort_broker::repair::repair(&args.data_dir, &options) {
        Ok(report) => {
            for line in report.lines {
                println!("{line}");
            }
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("repair: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn serve(args: ServeArgs) -> std::process::ExitCode {
    let mut config = BrokerConfig::new(args.data_dir);
    config.advertise = args.advertise.unwrap_or_else(|| args.listen.clone());
    config.listen = args.listen;
    config.node_id = args.node_id;
    config.fsync = args.fsync;
    config.max_request_size = args.max_request_size;
    config.queued_max_request_bytes = usize::try_from(args.queued_max_request_bytes).ok();
    config.connections_max_idle = Duration::from_millis(args.connections_max_idle_ms.max(1));
    config.frame_read_timeout = Duration::from_millis(args.frame_read_timeout_ms.max(1));
    config.auto_create_topics = args.auto_create_topics;
    config.default_partitions = args.num_partitions.max(1);
    config.max_partitions = args.max_partitions;
    let limit = raise_open_file_limit();
    let open_files = match args.max_open_files {
        0 => (limit / 2) as usize,
        n => n,
    };
    cohort_log_local::set_max_open_files(open_files);
    config.retention_ms = args.retention_ms;
    config.retention_bytes = args.retention_bytes;
    config.segment_bytes = args.segment_bytes;
    config.segment_ms = args.segment_ms;
    config.message_timestamp_before_max_ms = args.message_timestamp_before_max_ms.max(0);
    config.message_timestamp_after_max_ms = args.message_timestamp_after_max_ms.max(0);
    config.retention_check_interval =
        Duration::from_millis(args.retention_check_interval_ms.max(1));
    config.log_cleaner_backoff = Duration::from_millis(args.log_cleaner_backoff_ms.max(1));
    config.log_cleaner_dedupe_buffer_size = args.log_cleaner_dedupe_buffer_size.max(1 << 10);
    config.recovery_point_checkpoint_interval =
        Duration::from_millis(args.recovery_point_checkpoint_interval_ms.max(1));
    config.coordinator.initial_rebalance_delay_ms = args.group_initial_rebalance_delay_ms.max(0);
    config.coordinator.initial_rebalance_quiet_ms = args.group_initial_rebalance_quiet_ms.max(0);
    config.coordinator.min_session_timeout_ms = args.group_min_session_timeout_ms;
    config.coordinator.max_session_timeout_ms = args.group_max_session_timeout_ms;
    config.coordinator.max_group_size = args.group_max_size.max(1);
    config.coordinator.offsets_retention_ms = args.offsets_retention_minutes * 60_000;
    config.coordinator.offsets_retention_check_interval_ms =
        args.offsets_retention_check_interval_ms.max(1);
    config.coordinator_compact_after = args.coordinator_compact_after;
    config.coordinator.consumer_session_timeout_ms = args.group_consumer_session_timeout_ms;
    config.coordinator.consumer_heartbeat_interval_ms =
        args.group_consumer_heartbeat_interval_ms.max(1);
    config.coordinator.consumer_assignment_interval_ms =
        args.group_consumer_assignment_interval_ms.max(0);
    config.coordinator.consumer_reconcile_heartbeat_interval_ms =
        args.group_consumer_reconcile_heartbeat_interval_ms.max(1);
    config.coordinator.consumer_heartbeat_budget_per_s = args.group_consumer_heartbeat_budget;
    config.coordinator.consumer_heartbeat_interval_floor_ms =
        args.group_consumer_heartbeat_interval_floor_ms.max(1);
    config.coordinator.member_disconnect_grace_ms = args.group_member_disconnect_grace_ms.max(-1);
    config.coordinator.classic_hold_heartbeat_ms = args.group_classic_hold_heartbeat_ms.max(0);
    config.coordinator.classic_follow_up_hold = args.group_classic_follow_up_hold;
    config.coordinator.consumer_migration_policy = args.group_consumer_migration_policy;
    config.coordinator.consumer_regex_refresh_min_interval_ms =
        args.group_consumer_regex_refresh_min_interval_ms.max(0);
    config.coordinator.consumer_regex_refresh_interval_ms =
        args.group_consumer_regex_refresh_interval_ms.max(1);
    config.coordinator.consumer_max_group_size = args.group_consumer_max_size.max(1);
    let assignors: Vec<String> = args
        .group_consumer_assignors
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    for a in &assignors {
        if !["uniform", "range"].contains(&a.as_str()) {
            eprintln!("unknown server assignor {a:?}: choose from uniform, range");
            return std::process::ExitCode::FAILURE;
        }
    }
    if !assignors.is_empty() {
        config.coordinator.consumer_assignors = assignors;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let result = runtime.block_on(async move {
        let server = Server::bind(config.clone()).await?;
        tracing::info!(
            listen = %server.local_addr()?,
            advertise = %server.broker().config().advertise,
            data_dir = %config.data_dir.display(),
            fsync = %config.fsync,
            cluster_id = server.broker().cluster_id(),
            max_open_files = open_files,
            "cohort serving"
        );
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("shutting down: finishing in-flight requests and syncing");
            let _ = stop_tx.send(true);
        });
        server.run(stop_rx).await
    });
    match result {
        Ok(()) => {
            tracing::info!("stopped cleanly");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!("{e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
