//! `cohort lab ...`: the command line of the lab.

use crate::broker::Broker;
use crate::run::{self, RunResult, RunSpec, Scenario};
use clap::{Args, Subcommand};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

#[derive(Subcommand)]
pub enum LabCommand {
    /// Run a scenario against each broker and protocol given; write a JSON
    /// result and an SVG timeline per run, and an HTML report.
    Run(RunArgs),
    /// Write the HTML report (and print the table) for a results directory.
    Report {
        dir: PathBuf,
        /// Fold trials of the same setup into one row (p50 and max).
        #[arg(long)]
        summary: bool,
    },
    /// One member in its own process (used by the lab for members it kills).
    #[command(hide = true)]
    Member {
        #[arg(long)]
        spec: String,
    },
}

#[derive(Args)]
pub struct RunArgs {
    pub scenario: Scenario,
    /// Protocols to run, comma-separated: eager (classic, range),
    /// cooperative (classic, cooperative-sticky), consumer (KIP-848).
    #[arg(long, default_value = "consumer", value_delimiter = ',')]
    pub protocol: Vec<String>,
    /// Server assignor for the consumer protocol: uniform or range.
    #[arg(long, default_value = "uniform")]
    pub assignor: String,
    /// Brokers to run against, comma-separated: cohort (a fresh one, started
    /// by this command) and kafka (Apache Kafka, via --kafka-script).
    #[arg(long, default_value = "cohort", value_delimiter = ',')]
    pub broker: Vec<String>,
    /// Run against this broker instead (any Kafka-compatible broker).
    #[arg(long)]
    pub bootstrap: Option<String>,
    #[arg(long, default_value_t = 10)]
    pub members: u32,
    #[arg(long, default_value_t = 100)]
    pub partitions: u32,
    /// Members added (scale-out) or removed (scale-in): a count, or a
    /// percentage of --members such as 10%.
    #[arg(long, default_value = "1")]
    pub delta: String,
    /// Partition count after a partition increase (default 10 x --partitions).
    #[arg(long)]
    pub to_partitions: Option<u32>,
    /// The probe writes one record per partition this often.
    #[arg(long, default_value_t = 10)]
    pub probe_interval_ms: u64,
    /// How long the slow member's revocation callback takes.
    #[arg(long, default_value_t = 5000)]
    pub revoke_ms: u64,
    /// Static members (group.instance.id).
    #[arg(long = "static")]
    pub static_members: bool,
    /// How long each member stays down in a rolling restart.
    #[arg(long, default_value_t = 2000)]
    pub down_ms: u64,
    /// Extra client settings for every member, key=value (repeatable).
    #[arg(long = "client-config", value_parser = parse_kv)]
    pub client_config: Vec<(String, String)>,
    /// Give up waiting for a steady group after this many seconds.
    #[arg(long, default_value_t = 120)]
    pub timeout_s: u64,
    /// Steady means nothing moved for this long (keep it above the members'
    /// heartbeat interval).
    #[arg(long, default_value_t = 6000)]
    pub quiet_ms: u64,
    /// A partition silent for longer than this counts as unavailable (for
    /// all of the silence beyond the probe interval); shorter silences are
    /// delivery jitter.
    #[arg(long, default_value_t = 250)]
    pub stall_ms: u64,
    /// The members' client: librdkafka (in this process) or java (the Java
    /// kafka-clients through interop/java, one JVM per member).
    #[arg(long, default_value = "librdkafka")]
    pub client: String,
    /// Trials of each run.
    #[arg(long, default_value_t = 1)]
    pub trials: u32,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Extra arguments for the Cohort broker this command starts (repeatable).
    #[arg(long = "cohort-arg", allow_hyphen_values = true)]
    pub cohort_args: Vec<String>,
    /// Starts Apache Kafka: called with a port and a data directory.
    #[arg(long, default_value = "scripts/kafka-reference")]
    pub kafka_script: PathBuf,
    /// Where results go (default lab-results/<time>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Exit non-zero if any run lost a record, had a partition owned twice,
    /// or never became steady.
    #[arg(long)]
    pub check: bool,
}

fn parse_kv(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("expected key=value, got {s}"))
}

pub fn main(cmd: LabCommand) -> Result<bool, String> {
    match cmd {
        LabCommand::Member { spec } => {
            let spec: crate::member::MemberSpec =
                serde_json::from_str(&spec).map_err(|e| e.to_string())?;
            let stop = Arc::new(AtomicBool::new(false));
            // Closing our stdin asks for a graceful close.
            let s = stop.clone();
            std::thread::spawn(move || {
                let mut sink = Vec::new();
                let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink);
                s.store(true, std::sync::atomic::Ordering::Relaxed);
            });
            let out = Arc::new(crate::member::StdoutSink(Mutex::new(
                std::io::BufWriter::new(std::io::stdout()),
            )));
            crate::member::run(&spec, out.clone(), stop)?;
            let _ = std::io::Write::flush(&mut *out.0.lock().unwrap());
            Ok(true)
        }
        LabCommand::Report { dir, summary } => {
            let runs = load(&dir)?;
            std::fs::write(dir.join("report.html"), crate::report::html(&runs))
                .map_err(|e| e.to_string())?;
            if summary {
                print!("{}", crate::report::summary_markdown(&runs));
            } else {
                print!("{}", crate::report::markdown(&runs));
            }
            Ok(true)
        }
        LabCommand::Run(a) => run_all(a),
    }
}

pub fn load(dir: &PathBuf) -> Result<Vec<RunResult>, String> {
    let mut runs = Vec::new();
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    paths.sort();
    for p in paths {
        if p.extension().is_some_and(|e| e == "json") {
            let text = std::fs::read_to_string(&p).map_err(|e| e.to_string())?;
            runs.push(serde_json::from_str(&text).map_err(|e| format!("{}: {e}", p.display()))?);
        }
    }
    Ok(runs)
}

fn run_all(a: RunArgs) -> Result<bool, String> {
    let delta = match a.delta.strip_suffix('%') {
        Some(pct) => ((a.members as f64 * pct.parse::<f64>().map_err(|e| e.to_string())? / 100.0)
            .round() as u32)
            .max(1),
        None => a.delta.parse().map_err(|e| format!("--delta: {e}"))?,
    };
    let out = a.out.clone().unwrap_or_else(|| {
        PathBuf::from(format!(
            "lab-results/{}",
            crate::member::now_us() / 1_000_000
        ))
    });
    std::fs::create_dir_all(&out).map_err(|e| e.to_string())?;
    let brokers: Vec<String> = if a.bootstrap.is_some() {
        vec!["external".into()]
    } else {
        a.broker.clone()
    };
    let mut results = Vec::new();
    let mut ok = true;
    for b in &brokers {
        for protocol in &a.protocol {
            for trial in 0..a.trials {
                // A fresh broker per run: no run inherits another's groups.
                let broker = match (b.as_str(), &a.bootstrap) {
                    (_, Some(bs)) => Broker::external(bs),
                    ("cohort", _) => Broker::cohort(&a.cohort_args)?,
                    ("kafka", _) => Broker::kafka(&a.kafka_script)?,
                    (other, _) => return Err(format!("unknown broker {other}: cohort or kafka")),
                };
                let spec = RunSpec {
                    scenario: a.scenario,
                    protocol: protocol.clone(),
                    assignor: a.assignor.clone(),
                    members: a.members,
                    partitions: a.partitions,
                    delta,
                    to_partitions: a.to_partitions.unwrap_or(a.partitions * 10),
                    probe_interval_ms: a.probe_interval_ms,
                    revoke_ms: a.revoke_ms,
                    static_members: a.static_members,
                    down_ms: a.down_ms,
                    client_config: a.client_config.clone(),
                    timeout_s: a.timeout_s,
                    quiet_ms: a.quiet_ms,
                    stall_ms: a.stall_ms,
                    client: a.client.clone(),
                    seed: a.seed + trial as u64,
                };
                let mut r = run::run(&spec, &broker)?;
                if let Some(n) = broker.stop() {
                    let s = r.figures.member_seconds;
                    r.figures.group_requests_per_member_s = (s > 0.0).then(|| n as f64 / s);
                }
                let name = if a.trials > 1 {
                    format!("{}-{trial}", r.slug())
                } else {
                    r.slug()
                };
                std::fs::write(
                    out.join(format!("{name}.json")),
                    serde_json::to_string_pretty(&r).unwrap(),
                )
                .map_err(|e| e.to_string())?;
                std::fs::write(out.join(format!("{name}.svg")), crate::svg::render(&r))
                    .map_err(|e| e.to_string())?;
                let f = &r.figures;
                if f.missing > 0 || f.double_ownership > 0 || !r.converged {
                    ok = false;
                    eprintln!(
                        "{name}: missing {}, double ownership {} {:?}, steady {}",
                        f.missing, f.double_ownership, f.double_ownership_examples, r.converged
                    );
                }
                results.push(r);
            }
        }
    }
    std::fs::write(out.join("report.html"), crate::report::html(&results))
        .map_err(|e| e.to_string())?;
    print!("{}", crate::report::markdown(&results));
    println!("results: {}", out.display());
    Ok(ok || !a.check)
}
