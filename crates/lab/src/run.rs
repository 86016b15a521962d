//! One lab run: a topic, a probe, a group of real members brought to a steady
//! state, a trigger at t0, and everything observed until the group is steady
//! again and the probe's last records are drained.

use crate::broker::Broker;
use crate::measure::{self, Figures, Micros, Recording, Timeline};
use crate::member::{self, now_us, Collector, Line, MemberSpec, Sink};
use crate::probe::Probe;
use rand::{Rng, SeedableRng};
use rdkafka::admin::{AdminClient, AdminOptions, NewPartitions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal, Write};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    /// Members join a steady group (--delta of them).
    ScaleOut,
    /// Members leave a steady group gracefully (--delta of them).
    ScaleIn,
    /// A member is killed (SIGKILL): its partitions wait for the session timeout.
    Crash,
    /// Every member in turn: graceful close, --down-ms down, restart, wait for
    /// the group to be steady again. --static for static members.
    Rolling,
    /// The topic grows from --partitions to --to-partitions.
    Partitions,
    /// One member's revocation callback takes --revoke-ms, and as many members
    /// join as there are, so every member must give partitions up.
    Slow,
    /// A whole new group of --members starts at once.
    NewGroup,
    /// A group on a classic protocol (--protocol eager or cooperative) is
    /// rolled onto the consumer protocol, one member at a time (graceful
    /// close, --down-ms down, restart with group.protocol=consumer, wait for
    /// a steady group), then rolled back the same way.
    Upgrade,
}

impl Scenario {
    pub fn name(self) -> &'static str {
        match self {
            Scenario::ScaleOut => "scale-out",
            Scenario::ScaleIn => "scale-in",
            Scenario::Crash => "crash",
            Scenario::Rolling => "rolling",
            Scenario::Partitions => "partitions",
            Scenario::Slow => "slow",
            Scenario::NewGroup => "new-group",
            Scenario::Upgrade => "upgrade",
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunSpec {
    pub scenario: Scenario,
    /// eager | cooperative | consumer
    pub protocol: String,
    pub assignor: String,
    pub members: u32,
    pub partitions: u32,
    /// Members added (scale-out) or removed (scale-in).
    pub delta: u32,
    pub to_partitions: u32,
    pub probe_interval_ms: u64,
    pub revoke_ms: u64,
    pub static_members: bool,
    pub down_ms: u64,
    pub client_config: Vec<(String, String)>,
    /// Give up waiting for a steady group after this long.
    pub timeout_s: u64,
    /// The group counts as steady once nothing moved for this long (longer
    /// than the members' heartbeat interval: an owner may hear of a change
    /// only at its next heartbeat).
    pub quiet_ms: u64,
    /// Silences shorter than this are jitter, not unavailability.
    pub stall_ms: u64,
    pub seed: u64,
    /// librdkafka (in process) or java (kafka-clients, one JVM per member).
    #[serde(default = "default_client")]
    pub client: String,
}

fn default_client() -> String {
    "librdkafka".into()
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Machine {
    pub cpus: usize,
    pub cpu: String,
    pub os: String,
    pub kernel: String,
}

impl Machine {
    pub fn read() -> Machine {
        let file = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
        let cpu = file("/proc/cpuinfo")
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split(':').nth(1))
            .unwrap_or("")
            .trim()
            .to_string();
        let os = file("/etc/os-release")
            .lines()
            .find(|l| l.starts_with("PRETTY_NAME="))
            .map(|l| l[12..].trim_matches('"').to_string())
            .unwrap_or_default();
        Machine {
            cpus: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            cpu,
            os,
            kernel: file("/proc/sys/kernel/osrelease").trim().to_string(),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunResult {
    pub spec: RunSpec,
    /// cohort | kafka | external
    pub broker: String,
    #[serde(default)]
    pub broker_version: String,
    pub bootstrap: String,
    /// Which client ran the members.
    pub client: String,
    pub machine: Machine,
    pub started_unix_ms: i64,
    /// The group was steady again before the timeout.
    pub converged: bool,
    /// Why probe records went unacknowledged (they do not count as lost).
    #[serde(default)]
    pub probe_errors: std::collections::BTreeMap<String, u64>,
    pub figures: Figures,
    pub timeline: Timeline,
}

impl RunResult {
    /// `broker-protocol-scenario`, for file names.
    pub fn slug(&self) -> String {
        let proto = if self.spec.protocol == "consumer" {
            format!("consumer-{}", self.spec.assignor)
        } else {
            self.spec.protocol.clone()
        };
        let client = if self.spec.client == "librdkafka" {
            String::new()
        } else {
            format!("-{}", self.spec.client)
        };
        format!(
            "{}-{}-{}{client}",
            self.broker,
            proto,
            self.spec.scenario.name()
        )
    }
}

pub fn client_version(client: &str) -> String {
    if client == "java" {
        let cp = java_classpath().unwrap_or_default();
        let v = cp
            .split(':')
            .filter_map(|j| j.rsplit('/').next())
            .find_map(|f| {
                f.strip_prefix("kafka-clients-")
                    .and_then(|v| v.strip_suffix(".jar"))
            })
            .unwrap_or("?")
            .to_string();
        return format!("Java kafka-clients {v} (one JVM per member)");
    }
    let (_, v) = rdkafka::util::get_rdkafka_version();
    format!("librdkafka {v} (rdkafka crate, in process)")
}

/// The Java harness (interop/java, built by `mvn compile`).
pub fn java_classpath() -> Result<String, String> {
    let root =
        std::env::var("COHORT_JAVA_HARNESS").unwrap_or_else(|_| "interop/java/target".into());
    let deps = std::fs::read_to_string(format!("{root}/classpath.txt")).map_err(|e| {
        format!("{root}/classpath.txt: {e} (build it: mvn -f interop/java/pom.xml compile)")
    })?;
    Ok(format!("{root}/classes:{}", deps.trim()))
}

/// Progress on stderr: one updating line on a terminal, phase changes otherwise.
pub struct Progress {
    label: String,
    tty: bool,
    started: Instant,
}

impl Progress {
    pub fn new(label: String) -> Progress {
        Progress {
            label,
            tty: std::io::stderr().is_terminal(),
            started: Instant::now(),
        }
    }

    pub fn phase(&self, what: &str) {
        let line = format!(
            "[{}] {:6.1}s {}",
            self.label,
            self.started.elapsed().as_secs_f64(),
            what
        );
        let mut e = std::io::stderr();
        if self.tty {
            let _ = write!(e, "\r\x1b[2K{line}");
        } else {
            let _ = writeln!(e, "{line}");
        }
        let _ = e.flush();
    }

    pub fn done(&self, what: &str) {
        self.phase(what);
        if self.tty {
            eprintln!();
        }
    }
}

enum Handle {
    Thread {
        stop: Arc<AtomicBool>,
        join: std::thread::JoinHandle<()>,
    },
    Process {
        child: Child,
        reader: std::thread::JoinHandle<()>,
    },
}

struct Group {
    template: MemberSpec,
    collector: Arc<Collector>,
    handles: BTreeMap<u32, Handle>,
    lifetimes: Arc<Mutex<BTreeMap<u32, Vec<(Micros, Option<Micros>)>>>>,
    names: BTreeMap<u32, String>,
}

impl Group {
    fn spec(&self, id: u32, static_member: bool, revoke_ms: u64) -> MemberSpec {
        let name = format!("member-{id}");
        MemberSpec {
            id,
            name: name.clone(),
            instance_id: static_member.then(|| name.clone()),
            revoke_sleep_ms: revoke_ms,
            ..self.template.clone()
        }
    }

    fn start(&mut self, spec: MemberSpec, in_process: bool) -> Result<(), String> {
        let id = spec.id;
        self.names.insert(id, spec.name.clone());
        self.lifetimes
            .lock()
            .unwrap()
            .entry(id)
            .or_default()
            .push((now_us(), None));
        let handle = if in_process {
            let stop = Arc::new(AtomicBool::new(false));
            let m = member::create(&spec, self.collector.clone() as Arc<dyn Sink>)?;
            let s = stop.clone();
            let join = std::thread::spawn(move || m.poll_until(s));
            Handle::Thread { stop, join }
        } else {
            let mut cmd = if spec.client == "java" {
                let mut c = Command::new("java");
                c.args(["-cp", &java_classpath()?, "cohort.interop.LabMember"]);
                c.args([
                    &spec.bootstrap,
                    &spec.group,
                    &spec.topic,
                    &spec.protocol,
                    &spec.assignor,
                    &spec.id.to_string(),
                    &spec.name,
                ]);
                c.arg(spec.instance_id.clone().unwrap_or_default())
                    .arg(spec.revoke_sleep_ms.to_string());
                c.args(spec.client_config.iter().map(|(k, v)| format!("{k}={v}")));
                c
            } else {
                let mut c = Command::new(std::env::current_exe().map_err(|e| e.to_string())?);
                c.args([
                    "lab",
                    "member",
                    "--spec",
                    &serde_json::to_string(&spec).unwrap(),
                ]);
                c
            };
            let mut child = cmd
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .map_err(|e| e.to_string())?;
            let out = child.stdout.take().unwrap();
            let c = self.collector.clone();
            let reader = std::thread::spawn(move || {
                for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                    match serde_json::from_str::<Line>(&line) {
                        Ok(Line::D(partition, seq, produced, t)) => c.delivery(measure::Delivery {
                            member: id,
                            partition,
                            seq,
                            produced,
                            t,
                        }),
                        Ok(Line::O(e)) => c.own(e),
                        Err(_) => {}
                    }
                }
            });
            Handle::Process { child, reader }
        };
        self.handles.insert(id, handle);
        Ok(())
    }

    fn mark_stopped(&self, id: u32, t: Micros) {
        if let Some(l) = self
            .lifetimes
            .lock()
            .unwrap()
            .get_mut(&id)
            .and_then(|l| l.last_mut())
        {
            l.1.get_or_insert(t);
        }
    }

    /// Graceful close of several members at once.
    fn stop(&mut self, ids: &[u32]) {
        let mut waiting = Vec::new();
        for id in ids {
            match self.handles.remove(id) {
                Some(Handle::Thread { stop, join }) => {
                    stop.store(true, Ordering::Relaxed);
                    waiting.push((*id, Some(join), None::<Child>));
                }
                Some(Handle::Process { mut child, reader }) => {
                    // Closing stdin asks the member to close gracefully.
                    drop(child.stdin.take());
                    waiting.push((*id, Some(reader), Some(child)));
                }
                None => {}
            }
        }
        for (id, join, child) in waiting {
            if let Some(mut c) = child {
                let _ = c.wait();
            }
            if let Some(j) = join {
                let _ = j.join();
            }
            self.mark_stopped(id, now_us());
        }
    }

    /// SIGKILL: the member is gone at once, owning nothing from then on.
    fn kill(&mut self, id: u32) {
        if let Some(Handle::Process { mut child, reader }) = self.handles.remove(&id) {
            let _ = child.kill();
            let t = now_us();
            let _ = child.wait();
            let _ = reader.join();
            self.collector.forget(id, t);
            self.mark_stopped(id, t);
        }
    }
}

fn admin(bootstrap: &str) -> Result<AdminClient<DefaultClientContext>, String> {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .map_err(|e| e.to_string())
}

fn create_topic(bootstrap: &str, topic: &str, partitions: u32) -> Result<(), String> {
    let a = admin(bootstrap)?;
    let t = NewTopic::new(topic, partitions as i32, TopicReplication::Fixed(1));
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let r = futures::executor::block_on(a.create_topics([&t], &opts)).map_err(|e| e.to_string())?;
    for x in r {
        x.map_err(|(t, e)| format!("creating {t}: {e}"))?;
    }
    Ok(())
}

fn grow_topic(bootstrap: &str, topic: &str, to: u32) -> Result<(), String> {
    let a = admin(bootstrap)?;
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let r = futures::executor::block_on(
        a.create_partitions([&NewPartitions::new(topic, to as usize)], &opts),
    )
    .map_err(|e| e.to_string())?;
    for x in r {
        x.map_err(|(t, e)| format!("growing {t}: {e}"))?;
    }
    Ok(())
}

fn wait_converged(
    g: &Group,
    partitions: u32,
    since: Micros,
    timeout: Duration,
    quiet: Micros,
    p: &Progress,
    what: &str,
) -> bool {
    let until = Instant::now() + timeout;
    let started = Instant::now();
    let running: Vec<u32> = g.handles.keys().copied().collect();
    while Instant::now() < until {
        if g.collector.steady(partitions, &running, since, quiet) {
            return true;
        }
        let owned = g.collector.owners.lock().unwrap().len();
        p.phase(&format!(
            "{what}: {:.1}s, {owned}/{partitions} partitions owned",
            started.elapsed().as_secs_f64()
        ));
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

pub fn run(spec: &RunSpec, broker: &Broker) -> Result<RunResult, String> {
    if spec.scenario == Scenario::Upgrade && spec.protocol == "consumer" {
        return Err(
            "an upgrade starts from a classic protocol: --protocol eager or cooperative".into(),
        );
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(spec.seed);
    let tag: u32 = rng.gen();
    let topic = format!("lab-{}-{tag:08x}", spec.scenario.name());
    let progress = Progress::new(format!(
        "{} {} {}",
        broker.kind,
        spec.protocol,
        spec.scenario.name()
    ));
    let started_unix_ms = now_us() / 1000;
    progress.phase("creating topic");
    create_topic(&broker.bootstrap, &topic, spec.partitions)?;
    let template = MemberSpec {
        id: 0,
        name: String::new(),
        bootstrap: broker.bootstrap.clone(),
        group: format!("lab-group-{tag:08x}"),
        topic: topic.clone(),
        protocol: spec.protocol.clone(),
        assignor: spec.assignor.clone(),
        instance_id: None,
        revoke_sleep_ms: 0,
        client_config: spec.client_config.clone(),
        client: spec.client.clone(),
    };
    let mut g = Group {
        template,
        collector: Arc::new(Collector::default()),
        handles: BTreeMap::new(),
        lifetimes: Arc::default(),
        names: BTreeMap::new(),
    };
    let interval = Duration::from_millis(spec.probe_interval_ms.max(1));
    let mut probe = Probe::start(&broker.bootstrap, &topic, spec.partitions, interval)?;
    let timeout = Duration::from_secs(spec.timeout_s);
    let quiet = spec.quiet_ms as Micros * 1000;
    let mut partitions = spec.partitions;

    // Steady state first (a new group starts from nothing).
    let warm = now_us();
    if spec.scenario != Scenario::NewGroup {
        for id in 0..spec.members {
            // The crash victim runs in its own process, so it can be killed.
            let in_process =
                !(spec.scenario == Scenario::Crash && id == 0) && spec.client != "java";
            let revoke = if spec.scenario == Scenario::Slow && id == 0 {
                spec.revoke_ms
            } else {
                0
            };
            g.start(g.spec(id, spec.static_members, revoke), in_process)?;
        }
        if !wait_converged(
            &g,
            partitions,
            warm,
            timeout,
            quiet,
            &progress,
            "warming up",
        ) {
            return Err("the group never reached a steady state before the trigger".into());
        }
    }
    let window_start = now_us();
    // Randomise the trigger against the members' heartbeat timers.
    std::thread::sleep(Duration::from_millis(rng.gen_range(0..1000)));
    let t0 = now_us();
    progress.phase("trigger");
    let mut converged = true;
    match spec.scenario {
        Scenario::ScaleOut | Scenario::Slow => {
            // A slow run doubles the group, so every member (the slow one
            // too) must give partitions up.
            let joining = if spec.scenario == Scenario::Slow {
                spec.members
            } else {
                spec.delta.max(1)
            };
            for id in spec.members..spec.members + joining {
                g.start(g.spec(id, spec.static_members, 0), spec.client != "java")?;
            }
        }
        Scenario::ScaleIn => {
            let ids: Vec<u32> =
                (spec.members.saturating_sub(spec.delta.max(1))..spec.members).collect();
            g.stop(&ids);
        }
        Scenario::Crash => g.kill(0),
        Scenario::Partitions => {
            grow_topic(&broker.bootstrap, &topic, spec.to_partitions)?;
            probe
                .partitions
                .store(spec.to_partitions, Ordering::Relaxed);
            partitions = spec.to_partitions;
        }
        Scenario::NewGroup => {
            for id in 0..spec.members {
                g.start(g.spec(id, spec.static_members, 0), spec.client != "java")?;
            }
        }
        Scenario::Rolling | Scenario::Upgrade => {
            // A rolling restart brings each member back on its own protocol;
            // an upgrade rolls the group onto the consumer protocol, then back.
            let passes = if spec.scenario == Scenario::Upgrade {
                vec!["consumer", spec.protocol.as_str()]
            } else {
                vec![spec.protocol.as_str()]
            };
            for to in passes {
                for id in 0..spec.members {
                    let ti = now_us();
                    progress.phase(&format!("restarting member-{id} on {to}"));
                    g.stop(&[id]);
                    std::thread::sleep(Duration::from_millis(spec.down_ms));
                    let mut m = g.spec(id, spec.static_members, 0);
                    m.protocol = to.to_string();
                    g.start(m, spec.client != "java")?;
                    converged &= wait_converged(
                        &g,
                        partitions,
                        ti,
                        timeout,
                        quiet,
                        &progress,
                        &format!("member-{id} restarted on {to}"),
                    );
                }
            }
        }
    }
    converged &= wait_converged(&g, partitions, t0, timeout, quiet, &progress, "rebalancing");
    progress.phase("draining");
    probe.stop();
    let probe_stopped = now_us();
    let probe_errors = probe.errors.lock().unwrap().clone();
    if !probe_errors.is_empty() {
        progress.phase(&format!("probe records not acknowledged: {probe_errors:?}"));
    }
    std::thread::sleep(Duration::from_millis(3000));
    let end = now_us();
    let ids: Vec<u32> = g.handles.keys().copied().collect();
    progress.phase("closing members");
    g.stop(&ids);

    let recording = Recording {
        interval: interval.as_micros() as Micros,
        stall: spec.stall_ms as Micros * 1000,
        t0,
        window_start,
        probe_stopped,
        end,
        produced: std::mem::take(&mut *probe.acked.lock().unwrap()),
        deliveries: std::mem::take(&mut *g.collector.deliveries.lock().unwrap()),
        ownership: std::mem::take(&mut *g.collector.ownership.lock().unwrap()),
        lifetimes: g.lifetimes.lock().unwrap().clone(),
        member_names: g.names.clone(),
    };
    if let Ok(path) = std::env::var("COHORT_LAB_RECORDING") {
        // Everything observed, for re-analysis.
        let _ = std::fs::write(path, serde_json::to_vec(&recording).unwrap());
    }
    let figures = measure::figures(&recording);
    let timeline = measure::timeline(&recording);
    progress.done(&match figures.jts_ms {
        Some(j) => format!(
            "steady after {:.0} ms, {:.2} partition-s unavailable",
            j, figures.unavailability_partition_s
        ),
        None => format!(
            "not steady: {} partitions never delivered to their owner",
            figures.unconverged_partitions
        ),
    });
    Ok(RunResult {
        spec: spec.clone(),
        broker: broker.kind.clone(),
        broker_version: broker.version.clone(),
        bootstrap: broker.bootstrap.clone(),
        client: client_version(&spec.client),
        machine: Machine::read(),
        started_unix_ms,
        converged,
        probe_errors,
        figures,
        timeline,
    })
}
