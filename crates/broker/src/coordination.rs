//! The coordinator runtime: drives the sans-IO `Coordinator` with requests, time
//! and storage.
//!
//! One task owns the coordinator and handles one input at a time. Each round it
//! takes every input waiting in its mailbox, handles them in order, appends the
//! records they emitted to the coordinator log, makes the log durable with one
//! fsync, and only then releases the replies of that round (group commit; no
//! reply before its records and all records before them are durable). Timers
//! come from `next_deadline()`. On startup the log is replayed to rebuild every
//! group, and it is compacted into a snapshot when it has grown well past it.

use crate::hold::HeldHeartbeats;
use cohort_coordinator::{Coordinator, CoordinatorConfig, Event, Input, Record, RequestId};
use cohort_log::batch::build_batch;
use cohort_log::{BatchHeader, LogStore};
use cohort_log_local::{LocalLog, LocalLogConfig};
use cohort_types::group::{GroupRequest, GroupResponse};
use cohort_types::ErrorCode;
use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use tokio::sync::{mpsc, oneshot};

type Reply = oneshot::Sender<GroupResponse>;

/// The topics that exist: name -> (id, partitions).
pub type TopicImage = std::collections::BTreeMap<String, (cohort_types::TopicId, i32)>;

enum Msg {
    /// A request, and the connection it came on.
    Request(GroupRequest, Reply, u64),
    Topics(TopicImage),
    /// The connection sent another request: answer what is held for it.
    Release(u64),
}

/// The handle the request path uses.
#[derive(Clone)]
pub struct CoordinatorHandle {
    tx: mpsc::Sender<Msg>,
}

impl CoordinatorHandle {
    /// Sends a request; the answer arrives once it is decided and durable.
    pub async fn call(&self, request: GroupRequest, connection: u64) -> Option<GroupResponse> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Msg::Request(request, tx, connection))
            .await
            .ok()?;
        rx.await.ok()
    }

    /// The connection has sent a request behind a held heartbeat.
    pub fn release(&self, connection: u64) {
        let _ = self.tx.try_send(Msg::Release(connection));
    }

    /// Tells the coordinator which topics exist now.
    pub fn topics_changed(&self, image: TopicImage) {
        // The mailbox is large; if it is full the coordinator is far behind and
        // the next change carries the whole image again anyway.
        if let Err(e) = self.tx.try_send(Msg::Topics(image)) {
            tracing::warn!("coordinator did not take a topic update: {e}");
        }
    }
}

/// Largest number of records written in one batch of the coordinator log.
const RECORDS_PER_BATCH: usize = 500;
/// How many inputs one round takes from the mailbox at most.
const INPUTS_PER_ROUND: usize = 1024;

struct Store {
    root: PathBuf,
    log: LocalLog,
    generation: u64,
    /// Records appended since the log was last compacted.
    appended: usize,
}

fn log_dir(root: &Path, generation: u64) -> PathBuf {
    root.join(format!("log-{generation:06}"))
}

impl Store {
    /// Opens the current log (named in `CURRENT`) and removes any other.
    fn open(root: &Path) -> io::Result<Store> {
        std::fs::create_dir_all(root)?;
        let current = root.join("CURRENT");
        let generation = match std::fs::read_to_string(&current) {
            Ok(s) => s
                .trim()
                .parse::<u64>()
                .map_err(|e| io::Error::other(format!("{current:?}: {e}")))?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => 0,
            Err(e) => return Err(e),
        };
        for entry in std::fs::read_dir(root)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().to_string();
            if name.starts_with("log-") && entry.path() != log_dir(root, generation) {
                // A compaction that did not finish, or an old log it replaced.
                std::fs::remove_dir_all(entry.path())?;
            }
        }
        let (log, _) = LocalLog::open(&log_dir(root, generation), LocalLogConfig::default())?;
        Ok(Store {
            root: root.to_path_buf(),
            log,
            generation,
            appended: 0,
        })
    }

    fn read_all(&self) -> io::Result<Vec<Record>> {
        let mut out = Vec::new();
        let bytes = self
            .log
            .read(self.log.start_offset(), self.log.end_offset(), usize::MAX)?;
        let mut at = 0;
        while at < bytes.len() {
            let h =
                BatchHeader::parse(&bytes[at..]).map_err(|e| io::Error::other(e.to_string()))?;
            for value in record_values(&bytes[at..at + h.size]) {
                out.push(Record::decode(value).map_err(io::Error::other)?);
            }
            at += h.size;
        }
        Ok(out)
    }

    fn append(&mut self, records: &[Record]) -> io::Result<()> {
        for chunk in records.chunks(RECORDS_PER_BATCH) {
            let encoded: Vec<Vec<u8>> = chunk.iter().map(Record::encode).collect();
            let values: Vec<&[u8]> = encoded.iter().map(|v| v.as_slice()).collect();
            let mut batch = build_batch(crate::now_ms(), &values, None);
            self.log.append(&mut batch)?;
        }
        self.appended += records.len();
        Ok(())
    }

    /// Writes `snapshot` as a new log, makes it durable, points CURRENT at it,
    /// and removes the old one. A crash at any point leaves one complete log.
    fn compact(&mut self, snapshot: &[Record]) -> io::Result<()> {
        let next = self.generation + 1;
        let dir = log_dir(&self.root, next);
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
        let (log, _) = LocalLog::open(&dir, LocalLogConfig::default())?;
        let mut fresh = Store {
            root: self.root.clone(),
            log,
            generation: next,
            appended: 0,
        };
        fresh.append(snapshot)?;
        (fresh.log.syncer()?)()?;
        fresh.appended = 0;
        crate::topics::write_atomically(&self.root.join("CURRENT"), next.to_string().as_bytes())?;
        let old = std::mem::replace(self, fresh);
        let old_dir = log_dir(&old.root, old.generation);
        drop(old);
        std::fs::remove_dir_all(old_dir)
    }
}

/// Reads the record values out of one v2 batch written by `build_batch`
/// (uncompressed; key null; no headers).
fn record_values(batch: &[u8]) -> Vec<&[u8]> {
    fn varint(b: &[u8], at: &mut usize) -> Option<i64> {
        let mut value: u64 = 0;
        for shift in (0..64).step_by(7) {
            let byte = *b.get(*at)?;
            *at += 1;
            value |= ((byte & 0x7f) as u64) << shift;
            if byte & 0x80 == 0 {
                return Some(((value >> 1) as i64) ^ -((value & 1) as i64));
            }
        }
        None
    }
    let mut out = Vec::new();
    let mut at = cohort_log::batch::HEADER_SIZE;
    while at < batch.len() {
        let Some(len) = varint(batch, &mut at) else {
            break;
        };
        let end = at + len.max(0) as usize;
        let mut p = at + 1; // attributes
        let (Some(_ts), Some(_od), Some(klen)) = (
            varint(batch, &mut p),
            varint(batch, &mut p),
            varint(batch, &mut p),
        ) else {
            break;
        };
        if klen > 0 {
            p += klen as usize;
        }
        let Some(vlen) = varint(batch, &mut p) else {
            break;
        };
        if vlen >= 0 && p + vlen as usize <= batch.len() {
            out.push(&batch[p..p + vlen as usize]);
        }
        at = end;
    }
    out
}

/// Starts the coordinator task: replays the log under `root`, then serves.
pub fn start(
    root: &Path,
    config: CoordinatorConfig,
    compact_after: usize,
    hold_ms: i64,
    topics: TopicImage,
) -> io::Result<CoordinatorHandle> {
    let mut store = Store::open(root)?;
    let records = store.read_all()?;
    let mut coordinator = Coordinator::new(config);
    for r in &records {
        coordinator.replay(r);
    }
    coordinator.handle(crate::now_ms(), Input::Topics(topics));
    coordinator.loaded(crate::now_ms());
    store.appended = records.len();
    tracing::info!(
        records = records.len(),
        groups = coordinator.groups().count(),
        "coordinator loaded"
    );
    let (tx, rx) = mpsc::channel(4096);
    let held = HeldHeartbeats::new(hold_ms, coordinator.config().consumer_heartbeat_interval_ms);
    tokio::spawn(run(coordinator, store, rx, compact_after, held));
    Ok(CoordinatorHandle { tx })
}

async fn run(
    mut coordinator: Coordinator,
    mut store: Store,
    mut rx: mpsc::Receiver<Msg>,
    compact_after: usize,
    mut held: HeldHeartbeats,
) {
    // Each reply's sender, connection, and group (for heartbeats).
    let mut waiting: HashMap<RequestId, (Reply, u64, Option<String>)> = HashMap::new();
    let mut next_id: RequestId = 1;
    let mut failed = false;
    loop {
        let mut inputs: Vec<Input> = Vec::new();
        let deadline = match (coordinator.next_deadline(), held.next_deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let sleep = async {
            match deadline {
                Some(at) => {
                    tokio::time::sleep(std::time::Duration::from_millis(
                        (at - crate::now_ms()).max(0) as u64,
                    ))
                    .await
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            msg = rx.recv() => {
                let Some(mut msg) = msg else { return };
                loop {
                    match msg {
                        Msg::Request(request, reply, connection) => {
                            held.release_connection(connection);
                            let id = next_id;
                            next_id += 1;
                            let group = match &request {
                                GroupRequest::ConsumerGroupHeartbeat(h) => Some(h.group_id.clone()),
                                _ => None,
                            };
                            waiting.insert(id, (reply, connection, group));
                            inputs.push(Input::Request { id, request, entropy: rand::random() });
                        }
                        Msg::Topics(image) => inputs.push(Input::Topics(image)),
                        Msg::Release(connection) => held.release_connection(connection),
                    }
                    if inputs.len() >= INPUTS_PER_ROUND {
                        break;
                    }
                    match rx.try_recv() {
                        Ok(m) => msg = m,
                        Err(_) => break,
                    }
                }
            },
            _ = sleep => inputs.push(Input::Tick),
        }
        let now = crate::now_ms();
        held.release_due(now);
        let mut replies = Vec::new();
        let mut records = Vec::new();
        // Members with something new to do: a held heartbeat of theirs goes now.
        let mut wake: Vec<(String, String, bool)> = Vec::new();
        for input in inputs {
            let effects = coordinator.handle(now, input);
            for e in &effects.events {
                tracing::debug!(?e, "coordinator event");
                match e {
                    Event::TargetChanged { group, member } => {
                        wake.push((group.clone(), member.clone(), false))
                    }
                    Event::MemberRemoved { group, member, .. } => {
                        wake.push((group.clone(), member.clone(), true))
                    }
                    _ => {}
                }
            }
            records.extend(effects.records);
            replies.extend(effects.replies);
        }
        if failed {
            // The log cannot be trusted: refuse rather than answer from state
            // that may not survive a restart.
            for (id, reply) in replies {
                if let Some((tx, _, _)) = waiting.remove(&id) {
                    let _ = tx.send(reply.with_error(ErrorCode::COORDINATOR_NOT_AVAILABLE));
                }
            }
            continue;
        }
        if !records.is_empty() {
            let durable = store.append(&records).and_then(|_| store.log.syncer());
            let durable = match durable {
                Ok(sync) => tokio::task::spawn_blocking(sync)
                    .await
                    .map_err(io::Error::other)
                    .and_then(|r| r),
                Err(e) => Err(e),
            };
            if let Err(e) = durable {
                tracing::error!(
                    "coordinator log write failed; refusing group requests from now on: {e}"
                );
                failed = true;
                for (id, reply) in replies {
                    if let Some((tx, _, _)) = waiting.remove(&id) {
                        let _ = tx.send(reply.with_error(ErrorCode::COORDINATOR_NOT_AVAILABLE));
                    }
                }
                continue;
            }
        }
        for (id, reply) in replies {
            if let Some((tx, connection, group)) = waiting.remove(&id) {
                if let Some((tx, reply)) = held.park(now, group.as_deref(), connection, tx, reply) {
                    // The client may have gone; nothing to do then.
                    let _ = tx.send(reply);
                }
            }
        }
        for (group, member, gone) in wake {
            if gone {
                held.forget(&group, &member);
            } else {
                held.release_member(&group, &member);
            }
        }
        // The snapshot copies the whole durable state: build it only once the
        // log is past the threshold, and only once.
        let snapshot = if store.appended > compact_after {
            Some(coordinator.snapshot())
        } else {
            None
        };
        if let Some(snapshot) = snapshot.filter(|s| store.appended > 2 * s.len()) {
            let snapshot_len = snapshot.len();
            let started = std::time::Instant::now();
            let moved = store;
            let (back, result) = tokio::task::spawn_blocking(move || {
                let mut s = moved;
                let r = s.compact(&snapshot);
                (s, r)
            })
            .await
            .expect("compaction task");
            store = back;
            match result {
                Ok(()) => tracing::info!(
                    records = snapshot_len,
                    ms = started.elapsed().as_millis() as u64,
                    "compacted coordinator log"
                ),
                Err(e) => tracing::warn!("coordinator log compaction failed (will retry): {e}"),
            }
        }
    }
}
