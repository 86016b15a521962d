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

use crate::coordinator_log::{LoadError, Store};
use cohort_coordinator::{Coordinator, CoordinatorConfig, Event, Input, RequestId};
use cohort_log::LogStore;
use cohort_log_local::Checkpoint;
use cohort_types::group::{GroupRequest, GroupResponse};
use cohort_types::ErrorCode;
use std::collections::HashMap;
use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex};
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
    /// The connection ended.
    Closed(u64),
    /// Finish the round, then stop; answers with the log's final checkpoint.
    Stop(std::sync::mpsc::Sender<(String, Checkpoint)>),
}

/// The handle the request path uses.
#[derive(Clone)]
pub struct CoordinatorHandle {
    tx: mpsc::Sender<Msg>,
    /// Why the coordinator is not serving (its log could not be loaded).
    offline: Option<Arc<String>>,
    /// The log's latest durable checkpoint, for the broker's checkpoint file.
    checkpoint: Arc<Mutex<Option<(String, Checkpoint)>>>,
}

impl CoordinatorHandle {
    /// A coordinator that refuses every request: its log is damaged. The
    /// rest of the broker serves; `cohort repair` makes the log loadable.
    pub fn offline(why: String) -> CoordinatorHandle {
        let (tx, mut rx) = mpsc::channel::<Msg>(1024);
        tokio::spawn(async move {
            while let Some(msg) = rx.recv().await {
                match msg {
                    Msg::Request(request, reply, _) => {
                        let _ = reply.send(request.refused(ErrorCode::COORDINATOR_NOT_AVAILABLE));
                    }
                    Msg::Stop(_) => return,
                    _ => {}
                }
            }
        });
        CoordinatorHandle {
            tx,
            offline: Some(Arc::new(why)),
            checkpoint: Default::default(),
        }
    }

    pub fn offline_reason(&self) -> Option<&str> {
        self.offline.as_deref().map(String::as_str)
    }

    /// The coordinator log's latest durable checkpoint.
    pub fn checkpoint(&self) -> Option<(String, Checkpoint)> {
        self.checkpoint.lock().unwrap().clone()
    }

    /// Stops the coordinator after its current round (from a thread that may
    /// block); returns the log's final checkpoint.
    pub fn stop(&self) -> Option<(String, Checkpoint)> {
        let (tx, rx) = std::sync::mpsc::channel();
        self.tx.blocking_send(Msg::Stop(tx)).ok()?;
        rx.recv().ok()
    }

    /// Puts a request in the mailbox now, while the connection's later
    /// requests are not yet read: the coordinator must see a connection's
    /// requests (and the activity that releases a held heartbeat) in the
    /// order they arrived, or a heartbeat read together with a commit could
    /// be held after the commit came in, and the commit's answer wait behind
    /// it. The answer arrives once it is decided and durable. Only a full
    /// mailbox (the coordinator far behind) waits for room, in any order.
    pub fn submit(
        &self,
        request: GroupRequest,
        connection: u64,
    ) -> impl std::future::Future<Output = Option<GroupResponse>> + Send + 'static {
        let (tx, rx) = oneshot::channel();
        let waiting = match self.tx.try_send(Msg::Request(request, tx, connection)) {
            Err(mpsc::error::TrySendError::Full(msg)) => Some((self.tx.clone(), msg)),
            // Sent; or the coordinator has stopped, and the dropped sender
            // makes `rx` fail.
            _ => None,
        };
        async move {
            if let Some((mailbox, msg)) = waiting {
                mailbox.send(msg).await.ok()?;
            }
            rx.await.ok()
        }
    }

    /// The connection has sent a request behind a held heartbeat.
    pub fn release(&self, connection: u64) {
        let _ = self.tx.try_send(Msg::Release(connection));
    }

    /// A client connection ended.
    pub fn connection_closed(&self, connection: u64) {
        if self.offline.is_some() {
            return;
        }
        // A full mailbox means the coordinator is far behind; the member's
        // session timeout still removes it.
        let _ = self.tx.try_send(Msg::Closed(connection));
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

/// How many inputs one round takes from the mailbox at most.
const INPUTS_PER_ROUND: usize = 1024;

/// Where the coordinator keeps its log, and how it was left.
pub struct LogPlace<'a> {
    pub root: &'a Path,
    /// `root` relative to the data directory (the checkpoint file's key).
    pub name: &'a str,
    pub clean_shutdown: bool,
    pub checkpoints: &'a crate::checkpoints::Entries,
}

/// Starts the coordinator task: replays the log, then serves.
pub fn start(
    place: LogPlace<'_>,
    config: CoordinatorConfig,
    compact_after: usize,
    topics: TopicImage,
) -> Result<CoordinatorHandle, LoadError> {
    let (mut store, records) = Store::open(
        place.root,
        place.name,
        place.clean_shutdown,
        place.checkpoints,
    )?;
    let mut coordinator = Coordinator::new(config);
    for r in &records {
        coordinator.replay(r);
    }
    let topics_now = topics.clone();
    coordinator.handle(crate::now_ms(), Input::Topics(topics));
    coordinator.loaded(crate::now_ms());
    store.appended = records.len();
    tracing::info!(
        records = records.len(),
        groups = coordinator.groups().count(),
        "coordinator loaded"
    );
    let (tx, rx) = mpsc::channel(4096);
    let checkpoint = Arc::new(Mutex::new(Some(store.checkpoint())));
    tokio::spawn(run(
        coordinator,
        store,
        rx,
        compact_after,
        checkpoint.clone(),
        topics_now,
    ));
    Ok(CoordinatorHandle {
        tx,
        offline: None,
        checkpoint,
    })
}

async fn run(
    mut coordinator: Coordinator,
    mut store: Store,
    mut rx: mpsc::Receiver<Msg>,
    compact_after: usize,
    checkpoint: Arc<Mutex<Option<(String, Checkpoint)>>>,
    mut topics: TopicImage,
) {
    let mut stopping: Option<std::sync::mpsc::Sender<(String, Checkpoint)>> = None;
    // Everything below this offset of the log is durable.
    let mut durable_end = store.log.end_offset();
    // Records in the last snapshot built (compacted or not).
    let mut last_snapshot_len = 0usize;
    // Each parked request's reply sender.
    let mut waiting: HashMap<RequestId, Reply> = HashMap::new();
    let mut next_id: RequestId = 1;
    let mut failed = false;
    loop {
        if let Some(ack) = stopping.take() {
            // Every round ends durable: the log is complete as it stands.
            let _ = ack.send(store.checkpoint());
            return;
        }
        let mut inputs: Vec<Input> = Vec::new();
        if failed {
            // A write failed: the live state may be ahead of the log. Rebuild it
            // from the log (cut back to what was durable) before serving again.
            match reload(
                &mut store,
                coordinator.config().clone(),
                &topics,
                durable_end,
            ) {
                Ok(fresh) => {
                    tracing::info!(
                        "coordinator reloaded from its log after a failed write; serving again"
                    );
                    coordinator = fresh;
                    failed = false;
                }
                Err(e) => tracing::debug!("coordinator log still failing: {e}"),
            }
        }
        let deadline = coordinator.next_deadline();
        // While failed, wake every second to try again.
        let deadline = if failed {
            Some(crate::now_ms() + 1000)
        } else {
            deadline
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
                            let id = next_id;
                            next_id += 1;
                            waiting.insert(id, reply);
                            inputs.push(Input::Request { id, request, entropy: rand::random(), connection });
                        }
                        Msg::Topics(image) => {
                            topics = image.clone();
                            inputs.push(Input::Topics(image));
                        }
                        Msg::Release(connection) => {
                            inputs.push(Input::ConnectionActivity(connection));
                        }
                        Msg::Closed(connection) => {
                            inputs.push(Input::ConnectionClosed(connection));
                        }
                        Msg::Stop(ack) => {
                            stopping = Some(ack);
                            break;
                        }
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
        let mut replies = Vec::new();
        let mut records = Vec::new();
        for input in inputs {
            let effects = coordinator.handle(now, input);
            for e in &effects.events {
                tracing::debug!(?e, "coordinator event");
                match e {
                    // Removals a client did not ask for are worth a line.
                    Event::MemberRemoved {
                        group,
                        member,
                        reason,
                    } if reason != "left the group" => {
                        tracing::info!(%group, %member, %reason, "member removed")
                    }
                    Event::GroupConverted { group, to, members } => {
                        tracing::info!(%group, %to, members, "group converted to the {to} protocol")
                    }
                    Event::ConversionRefused { group, reason } => {
                        tracing::info!(%group, %reason, "group not converted")
                    }
                    _ => {}
                }
            }
            if !effects.records.is_empty() {
                records.push(effects.records);
            }
            replies.extend(effects.replies);
        }
        if failed {
            // The log cannot be trusted: refuse rather than answer from state
            // that may not survive a restart.
            for (id, reply) in replies {
                if let Some(tx) = waiting.remove(&id) {
                    let _ = tx.send(reply.with_error(ErrorCode::COORDINATOR_NOT_AVAILABLE));
                }
            }
            refuse_all(&mut waiting);
            continue;
        }
        if !records.is_empty() {
            let durable = store
                .append_units(&records)
                .and_then(|_| store.log.syncer());
            let durable = match durable {
                Ok(sync) => tokio::task::spawn_blocking(sync)
                    .await
                    .map_err(io::Error::other)
                    .and_then(|r| r),
                Err(e) => Err(e),
            };
            if let Err(e) = durable {
                tracing::error!(
                    "coordinator log write failed; group requests are refused until it is reloaded from its log: {e}"
                );
                failed = true;
                for (id, reply) in replies {
                    if let Some(tx) = waiting.remove(&id) {
                        let _ = tx.send(reply.with_error(ErrorCode::COORDINATOR_NOT_AVAILABLE));
                    }
                }
                // Parked requests belong to the state being discarded.
                refuse_all(&mut waiting);
                continue;
            }
            durable_end = store.log.end_offset();
            *checkpoint.lock().unwrap() = Some(store.checkpoint());
        }
        for (id, reply) in replies {
            if let Some(tx) = waiting.remove(&id) {
                // The client may have gone; nothing to do then.
                let _ = tx.send(reply);
            }
        }
        // The snapshot copies the whole durable state: build it only once the
        // log is past the threshold and past twice the last snapshot built (a
        // snapshot built and found too big to be worth it is not rebuilt
        // every round: that made every request cost as much as the whole
        // state).
        let snapshot = if store.appended > compact_after && store.appended > 2 * last_snapshot_len {
            let s = coordinator.snapshot();
            last_snapshot_len = s.len();
            Some(s)
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
                Ok(()) => {
                    durable_end = store.log.end_offset();
                    *checkpoint.lock().unwrap() = Some(store.checkpoint());
                    tracing::info!(
                        records = snapshot_len,
                        ms = started.elapsed().as_millis() as u64,
                        "compacted coordinator log"
                    )
                }
                Err(e) => tracing::warn!("coordinator log compaction failed (will retry): {e}"),
            }
        }
    }
}

/// Answers every request still waiting on the coordinator with
/// COORDINATOR_NOT_AVAILABLE: a dropped reply is answered so by the request
/// path (the client finds the coordinator and retries).
fn refuse_all(waiting: &mut HashMap<RequestId, Reply>) {
    waiting.clear();
}

/// Rebuilds the coordinator from its log after a failed write: the log is cut
/// back to what was durable and replayed, so the live state is never ahead of
/// the log. (Blocking file work on the coordinator's task: it serves nothing
/// else meanwhile.)
fn reload(
    store: &mut Store,
    config: CoordinatorConfig,
    topics: &TopicImage,
    durable_end: u64,
) -> Result<Coordinator, LoadError> {
    if store.log.end_offset() > durable_end {
        store.log.truncate_to(durable_end)?;
    }
    (store.log.syncer()?)()?;
    let records = store.read_all()?;
    let mut coordinator = Coordinator::new(config);
    for r in &records {
        coordinator.replay(r);
    }
    let now = crate::now_ms();
    coordinator.handle(now, Input::Topics(topics.clone()));
    coordinator.loaded(now);
    Ok(coordinator)
}
