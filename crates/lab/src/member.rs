//! A group member: a real librdkafka consumer (through the `rdkafka` crate)
//! whose application records every probe record it receives and every
//! partition it is given or gives up. Runs on its own thread in the lab's
//! process, or alone in a child process (`cohort lab member`) when the
//! scenario must kill it.

use crate::measure::{Delivery, Micros, OwnEvent, OwnKind};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::message::Message;
use rdkafka::ClientContext;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub fn now_us() -> Micros {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as Micros
}

/// Where a member's observations go.
pub trait Sink: Send + Sync + 'static {
    fn delivery(&self, d: Delivery);
    fn own(&self, e: OwnEvent);
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MemberSpec {
    pub id: u32,
    pub name: String,
    pub bootstrap: String,
    pub group: String,
    pub topic: String,
    /// eager | cooperative | consumer
    pub protocol: String,
    /// Server assignor for the consumer protocol.
    pub assignor: String,
    /// group.instance.id, for static membership.
    pub instance_id: Option<String>,
    /// How long the revocation callback takes.
    pub revoke_sleep_ms: u64,
    /// Extra client settings, key=value.
    pub client_config: Vec<(String, String)>,
    /// librdkafka or java.
    pub client: String,
}

impl MemberSpec {
    pub fn config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.bootstrap)
            .set("group.id", &self.group)
            .set("client.id", &self.name)
            .set("auto.offset.reset", "earliest")
            .set("enable.partition.eof", "false");
        match self.protocol.as_str() {
            "consumer" => {
                c.set("group.protocol", "consumer")
                    .set("group.remote.assignor", &self.assignor);
            }
            "cooperative" => {
                c.set("group.protocol", "classic")
                    .set("partition.assignment.strategy", "cooperative-sticky");
            }
            _ => {
                c.set("group.protocol", "classic")
                    .set("partition.assignment.strategy", "range");
            }
        }
        if let Some(i) = &self.instance_id {
            c.set("group.instance.id", i);
        }
        for (k, v) in &self.client_config {
            // The broker owns these under the consumer protocol; librdkafka
            // refuses them there. One settings list serves every protocol.
            let classic_only = [
                "session.timeout.ms",
                "heartbeat.interval.ms",
                "partition.assignment.strategy",
            ];
            if self.protocol == "consumer" && classic_only.contains(&k.as_str()) {
                continue;
            }
            c.set(k, v);
        }
        c
    }
}

struct Ctx {
    id: u32,
    sink: Arc<dyn Sink>,
    revoke_sleep: Duration,
}

impl ClientContext for Ctx {}

fn partitions(tpl: &rdkafka::TopicPartitionList) -> Vec<u32> {
    tpl.elements()
        .iter()
        .map(|e| e.partition() as u32)
        .collect()
}

impl ConsumerContext for Ctx {
    fn pre_rebalance(&self, c: &BaseConsumer<Self>, r: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = r {
            let ps = partitions(tpl);
            if c.assignment_lost() {
                return;
            }
            self.sink.own(OwnEvent {
                member: self.id,
                t: now_us(),
                kind: OwnKind::RevokeStarted,
                partitions: ps.clone(),
            });
            if !self.revoke_sleep.is_zero() && !ps.is_empty() {
                std::thread::sleep(self.revoke_sleep);
            }
        }
    }

    fn post_rebalance(&self, c: &BaseConsumer<Self>, r: &Rebalance<'_>) {
        let (kind, tpl) = match r {
            Rebalance::Assign(tpl) => (OwnKind::Assigned, tpl),
            Rebalance::Revoke(tpl) if c.assignment_lost() => (OwnKind::Lost, tpl),
            Rebalance::Revoke(tpl) => (OwnKind::Revoked, tpl),
            Rebalance::Error(_) => return,
        };
        self.sink.own(OwnEvent {
            member: self.id,
            t: now_us(),
            kind,
            partitions: partitions(tpl),
        });
    }
}

pub struct Member {
    consumer: BaseConsumer<Ctx>,
    id: u32,
    sink: Arc<dyn Sink>,
}

/// Creates the consumer and subscribes (a bad setting fails here, at once).
pub fn create(spec: &MemberSpec, sink: Arc<dyn Sink>) -> Result<Member, String> {
    let ctx = Ctx {
        id: spec.id,
        sink: sink.clone(),
        revoke_sleep: Duration::from_millis(spec.revoke_sleep_ms),
    };
    let consumer: BaseConsumer<Ctx> = spec
        .config()
        .create_with_context(ctx)
        .map_err(|e| format!("{}: {e}", spec.name))?;
    consumer
        .subscribe(&[&spec.topic])
        .map_err(|e| e.to_string())?;
    Ok(Member {
        consumer,
        id: spec.id,
        sink,
    })
}

/// Runs the member until `stop` is set, then closes it gracefully (the
/// revocation callbacks run and it leaves the group).
pub fn run(spec: &MemberSpec, sink: Arc<dyn Sink>, stop: Arc<AtomicBool>) -> Result<(), String> {
    create(spec, sink)?.poll_until(stop);
    Ok(())
}

impl Member {
    pub fn poll_until(self, stop: Arc<AtomicBool>) {
        let Member { consumer, id, sink } = self;
        poll_loop(consumer, id, sink, stop)
    }
}

fn poll_loop(consumer: BaseConsumer<Ctx>, id: u32, sink: Arc<dyn Sink>, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::Relaxed) {
        match consumer.poll(Duration::from_millis(50)) {
            Some(Ok(m)) => {
                if let Some(d) = decode(id, m.partition() as u32, m.payload()) {
                    sink.delivery(d);
                }
            }
            Some(Err(_)) | None => {}
        }
    }
    // Close: revocations run, then it leaves. Records handed out while
    // closing reach the application too (their offsets get committed), so
    // they are recorded like any other.
    if consumer.close_queue().is_ok() {
        let until = std::time::Instant::now() + Duration::from_secs(30);
        while !consumer.closed() && std::time::Instant::now() < until {
            if let Some(Ok(m)) = consumer.poll(Duration::from_millis(50)) {
                if let Some(d) = decode(id, m.partition() as u32, m.payload()) {
                    sink.delivery(d);
                }
            }
        }
    }
    drop(consumer);
}

/// The probe's value: sequence number and produce time, 8 bytes each.
pub fn encode(seq: u64, produced: Micros) -> [u8; 16] {
    let mut v = [0u8; 16];
    v[..8].copy_from_slice(&seq.to_be_bytes());
    v[8..].copy_from_slice(&produced.to_be_bytes());
    v
}

fn decode(member: u32, partition: u32, payload: Option<&[u8]>) -> Option<Delivery> {
    let p = payload?;
    if p.len() != 16 {
        return None;
    }
    let seq = u64::from_be_bytes(p[..8].try_into().ok()?);
    let produced = i64::from_be_bytes(p[8..].try_into().ok()?);
    Some(Delivery {
        member,
        partition,
        seq,
        produced,
        t: now_us(),
    })
}

/// Observations kept in memory by the lab.
#[derive(Default)]
pub struct Collector {
    pub deliveries: Mutex<Vec<Delivery>>,
    pub ownership: Mutex<Vec<OwnEvent>>,
    /// partition -> (member, newest produce time it delivered to that member).
    pub freshest: Mutex<std::collections::HashMap<u32, (u32, Micros)>>,
    /// partition -> current owner.
    pub owners: Mutex<std::collections::HashMap<u32, u32>>,
}

impl Sink for Collector {
    fn delivery(&self, d: Delivery) {
        self.freshest
            .lock()
            .unwrap()
            .insert(d.partition, (d.member, d.produced));
        self.deliveries.lock().unwrap().push(d);
    }

    fn own(&self, e: OwnEvent) {
        {
            let mut owners = self.owners.lock().unwrap();
            for p in &e.partitions {
                match e.kind {
                    OwnKind::Assigned => {
                        owners.insert(*p, e.member);
                    }
                    OwnKind::Revoked | OwnKind::Lost => {
                        if owners.get(p) == Some(&e.member) {
                            owners.remove(p);
                        }
                    }
                    OwnKind::RevokeStarted => {}
                }
            }
        }
        self.ownership.lock().unwrap().push(e);
    }
}

impl Collector {
    /// Every one of `partitions` is owned, and has delivered to its owner a
    /// record produced after `t0`.
    pub fn converged(&self, partitions: u32, t0: Micros) -> bool {
        let owners = self.owners.lock().unwrap();
        let fresh = self.freshest.lock().unwrap();
        (0..partitions).all(|p| match (owners.get(&p), fresh.get(&p)) {
            (Some(o), Some((m, t))) => o == m && *t > t0,
            _ => false,
        })
    }

    /// The group is steady: every partition is owned and has delivered to its
    /// owner a record produced after `since` (and after the last ownership
    /// change), every running member has a partition when there are enough to
    /// go round, and nothing moved for `quiet`.
    pub fn steady(&self, partitions: u32, running: &[u32], since: Micros, quiet: Micros) -> bool {
        let last_change = self
            .ownership
            .lock()
            .unwrap()
            .last()
            .map(|e| e.t)
            .unwrap_or(0);
        let now = now_us();
        if now - last_change < quiet || !self.converged(partitions, since.max(last_change)) {
            return false;
        }
        if partitions as usize >= running.len() {
            let owners = self.owners.lock().unwrap();
            let holding: std::collections::HashSet<u32> = owners.values().copied().collect();
            return running.iter().all(|m| holding.contains(m));
        }
        true
    }

    /// A member (e.g. one just killed) no longer owns anything.
    pub fn forget(&self, member: u32, t: Micros) {
        let owned: Vec<u32> = self
            .owners
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, m)| **m == member)
            .map(|(p, _)| *p)
            .collect();
        if !owned.is_empty() {
            self.own(OwnEvent {
                member,
                t,
                kind: OwnKind::Lost,
                partitions: owned,
            });
        }
    }
}

/// A child process's member writes its observations as JSON lines.
pub struct StdoutSink(pub Mutex<std::io::BufWriter<std::io::Stdout>>);

#[derive(Serialize, Deserialize)]
pub enum Line {
    D(u32, u64, Micros, Micros),
    O(OwnEvent),
}

impl Sink for StdoutSink {
    fn delivery(&self, d: Delivery) {
        use std::io::Write;
        let mut w = self.0.lock().unwrap();
        let _ = serde_json::to_writer(&mut *w, &Line::D(d.partition, d.seq, d.produced, d.t));
        let _ = w.write_all(b"\n");
        // A kill must not swallow what the application already received.
        let _ = w.flush();
    }

    fn own(&self, e: OwnEvent) {
        use std::io::Write;
        let mut w = self.0.lock().unwrap();
        let _ = serde_json::to_writer(&mut *w, &Line::O(e));
        let _ = w.write_all(b"\n");
        // Ownership must reach the lab before a kill can come.
        let _ = w.flush();
    }
}
