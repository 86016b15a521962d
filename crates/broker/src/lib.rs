//! The broker: topics and partitions on the embedded log, the data-plane
//! handlers, and the tokio server that speaks to clients. Requests arrive here
//! already translated into `cohort_types::api`; answers leave the same way.

mod admin;
mod alter_configs;
mod broker_configs;
mod budget;
mod checkpoints;
mod cleaner;
pub mod config;
mod coordination;
mod coordinator_log;
mod data;
mod delete_records;
mod durability;
mod log_dirs;
mod offsets_by_id;
mod partition;
mod partition_dirs;
mod producers;
mod quiet;
pub mod repair;
pub mod server;
mod topic_admin;
mod topic_configs;
mod topics;

pub use cohort_coordinator::MigrationPolicy;
pub use config::{BrokerConfig, FsyncPolicy};

use cohort_types::api::{BrokerAddress, Request, Response};
use durability::Durability;
use futures::future::BoxFuture;
use producers::ProducerIdAllocator;
use std::io;
use std::sync::Arc;
use tokio::sync::watch;
use topics::TopicTable;

/// How a request is answered: now, later (after an fsync or a long poll), or not
/// at all (produce with acks=0).
pub enum Reply {
    Now(Response),
    Later(BoxFuture<'static, Response>),
    Nothing,
}

pub struct Broker {
    config: BrokerConfig,
    cluster_id: String,
    topics: topics::Topics,
    checkpointing: std::sync::Mutex<()>,
    cleaner: cleaner::CleanerState,
    /// Dynamic broker configs (IncrementalAlterConfigs on a BROKER resource).
    dynamic: std::sync::RwLock<broker_configs::DynamicConfigs>,
    producer_ids: ProducerIdAllocator,
    durability: Durability,
    /// Bumped whenever a high watermark moves; long-polling fetches watch it.
    data_changed: Arc<watch::Sender<u64>>,
    groups: coordination::CoordinatorHandle,
    /// Group-membership requests served (heartbeats, joins, syncs), logged at
    /// shutdown: what a heartbeat interval costs.
    membership_requests: std::sync::atomic::AtomicU64,
    /// The recovery points read at start: kept for logs that cannot vouch for
    /// themselves now (offline), so their entries are never lost.
    loaded_checkpoints: checkpoints::Entries,
    /// Held for the broker's lifetime: one process per data directory.
    _lock: std::fs::File,
}

/// Takes the data directory's lock, so that two brokers (or a broker and
/// `cohort repair`) never work on the same files.
pub fn lock_data_dir(data_dir: &std::path::Path) -> io::Result<std::fs::File> {
    std::fs::create_dir_all(data_dir)?;
    let path = data_dir.join(".lock");
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)?;
    match f.try_lock() {
        Ok(()) => Ok(f),
        Err(std::fs::TryLockError::WouldBlock) => Err(io::Error::other(format!(
            "{} is locked: another Cohort process is using {}",
            path.display(),
            data_dir.display()
        ))),
        Err(std::fs::TryLockError::Error(e)) => Err(e),
    }
}

/// Who sent a request, as far as the broker can tell.
#[derive(Clone, Debug, Default)]
pub struct ClientInfo {
    /// Which connection the request came on (unique for the process).
    pub connection: u64,
    /// Changes whenever the connection sends a request while earlier ones are
    /// unanswered. Answers go out in request order, so a fetch long poll ends
    /// early when it changes: librdkafka sends a newly assigned partition's
    /// ListOffsets on the connection it fetches on, and that answer (and the
    /// partition's first records) would otherwise wait out the poll
    /// (fetch.wait.max.ms, 500 ms). None: no connection to watch.
    pub later_requests: Option<tokio::sync::watch::Receiver<u64>>,
    pub client_id: String,
    /// As Kafka prints it: "/" and the peer's IP address.
    pub client_host: String,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct ClusterFile {
    cluster_id: String,
    node_id: i32,
}

fn topic_image(topics: &TopicTable) -> coordination::TopicImage {
    topics
        .all()
        .iter()
        .map(|t| (t.name.clone(), (t.id, t.partitions.len() as i32)))
        .collect()
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A cluster id in Kafka's form: 16 random bytes, URL-safe base64.
fn new_cluster_id() -> String {
    cohort_types::TopicId(rand::random()).to_base64()
}

impl Broker {
    /// Opens the data directory, recovering every log.
    pub fn open(config: BrokerConfig) -> io::Result<Arc<Broker>> {
        let lock = lock_data_dir(&config.data_dir)?;
        std::fs::create_dir_all(config.data_dir.join("meta"))?;
        let cluster_path = config.data_dir.join("meta/cluster.json");
        let cluster_id = match std::fs::read(&cluster_path) {
            Ok(b) => {
                let f: ClusterFile = serde_json::from_slice(&b).map_err(io::Error::other)?;
                if f.node_id != config.node_id {
                    return Err(io::Error::other(format!(
                        "data directory belongs to node {}, not node {}",
                        f.node_id, config.node_id
                    )));
                }
                f.cluster_id
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let f = ClusterFile {
                    cluster_id: new_cluster_id(),
                    node_id: config.node_id,
                };
                topics::write_atomically(
                    &cluster_path,
                    &serde_json::to_vec(&f).map_err(io::Error::other)?,
                )?;
                f.cluster_id
            }
            Err(e) => return Err(e),
        };
        let clean_shutdown = checkpoints::take_clean_shutdown(&config.data_dir)?;
        let loaded_checkpoints = checkpoints::load(&config.data_dir);
        let cleaner = cleaner::CleanerState::load(&config.data_dir);
        // A damaged file refuses the start, naming it: guessing would silently
        // change retention.
        let dynamic = broker_configs::DynamicConfigs::load(&config.data_dir)?;
        tracing::info!(
            clean_shutdown,
            logs = loaded_checkpoints.len(),
            "opening the data directory"
        );
        let recovered = topics::Recovered {
            clean_shutdown,
            checkpoints: &loaded_checkpoints,
        };
        let topics = TopicTable::open(&config, &recovered)?;
        let producer_ids = ProducerIdAllocator::open(&config.data_dir.join("meta"))?;
        let data_changed = Arc::new(watch::channel(0u64).0);
        let durability = Durability::start(config.fsync, data_changed.clone());
        let image = topic_image(&topics);
        let place = coordination::LogPlace {
            root: &config.data_dir.join("coordinator/shard-0"),
            name: "coordinator/shard-0",
            clean_shutdown,
            checkpoints: &loaded_checkpoints,
        };
        let groups = match coordination::start(
            place,
            config.coordinator.clone(),
            config.coordinator_compact_after,
            image,
        ) {
            Ok(handle) => handle,
            Err(coordinator_log::LoadError::Damaged(why)) => {
                tracing::error!(
                    "group coordinator offline: its log is damaged: {why}; nothing was cut or deleted. \
                     Group requests are refused (COORDINATOR_NOT_AVAILABLE) while produce and fetch \
                     serve. Stop the broker and run `cohort repair --data-dir {}`",
                    config.data_dir.display()
                );
                coordination::CoordinatorHandle::offline(why)
            }
            Err(coordinator_log::LoadError::Io(e)) => return Err(e),
        };
        let broker = Arc::new(Broker {
            config,
            cluster_id,
            topics: topics::Topics::new(topics),
            checkpointing: std::sync::Mutex::new(()),
            cleaner,
            dynamic: std::sync::RwLock::new(dynamic),
            producer_ids,
            durability,
            data_changed,
            groups,
            membership_requests: Default::default(),
            loaded_checkpoints,
            _lock: lock,
        });
        // Logs open with the flags' segment settings; dynamic broker configs
        // may say otherwise (only then is every log touched).
        let dynamic_segments = alter_configs::SEGMENT_CONFIGS.iter().any(|n| {
            topic_configs::synonym(n)
                .is_some_and(|b| broker.dynamic.read().unwrap().get(b).is_some())
        });
        if dynamic_segments {
            for topic in broker.topics.read().all() {
                broker.apply_segment_config(&topic);
            }
        }
        Ok(broker)
    }

    pub fn config(&self) -> &BrokerConfig {
        &self.config
    }

    pub fn cluster_id(&self) -> &str {
        &self.cluster_id
    }

    fn me(&self) -> BrokerAddress {
        let (host, port) = self.config.advertised();
        BrokerAddress {
            node_id: self.config.node_id,
            host,
            port,
        }
    }

    /// Answers one request. Work that must happen in arrival order (appends)
    /// happens before this returns; only waiting is left to the returned future.
    pub fn handle(self: &Arc<Self>, request: Request, client: &ClientInfo) -> Reply {
        match request {
            Request::Group(g) => self.group_request(g, client),
            Request::GroupByTopicId { request, ids } => {
                self.group_request_by_topic_id(request, ids, client)
            }
            Request::Metadata(r) => Reply::Now(Response::Metadata(self.metadata(r))),
            // Creating or removing thousands of directories takes seconds:
            // on the blocking pool, never on the threads serving connections.
            Request::CreateTopics(r) => {
                self.blocking(move |b| Response::CreateTopics(b.create_topics(r)))
            }
            Request::DeleteTopics(r) => {
                self.blocking(move |b| Response::DeleteTopics(b.delete_topics(r)))
            }
            Request::CreatePartitions(r) => {
                self.blocking(move |b| Response::CreatePartitions(b.create_partitions(r)))
            }
            Request::Produce(r) => self.produce(r),
            Request::Fetch(r) => self.fetch(r, client.later_requests.clone()),
            Request::ListOffsets(r) => Reply::Now(Response::ListOffsets(self.list_offsets(r))),
            Request::InitProducerId(r) => {
                Reply::Now(Response::InitProducerId(self.init_producer_id(r)))
            }
            Request::OffsetForLeaderEpoch(r) => Reply::Now(Response::OffsetForLeaderEpoch(
                self.offset_for_leader_epoch(r),
            )),
            Request::FindCoordinator(r) => {
                Reply::Now(Response::FindCoordinator(self.find_coordinator(r)))
            }
            Request::DescribeCluster => {
                Reply::Now(Response::DescribeCluster(self.describe_cluster()))
            }
            Request::DeleteRecords(r) => {
                self.blocking(move |b| Response::DeleteRecords(b.delete_records(r)))
            }
            Request::DescribeProducers(t) => {
                Reply::Now(Response::DescribeProducers(self.describe_producers(t)))
            }
            Request::DescribeLogDirs(t) => {
                self.blocking(move |b| Response::DescribeLogDirs(b.describe_log_dirs(t)))
            }
            Request::AlterConfigs(r) => {
                self.blocking(move |b| Response::AlterConfigs(b.alter_configs(r)))
            }
            Request::DescribeConfigs(r) => {
                Reply::Now(Response::DescribeConfigs(self.describe_configs(r)))
            }
        }
    }

    /// Answers with `work`, run on the blocking pool.
    fn blocking(
        self: &Arc<Self>,
        work: impl FnOnce(&Broker) -> Response + Send + 'static,
    ) -> Reply {
        let broker = self.clone();
        Reply::Later(Box::pin(async move {
            tokio::task::spawn_blocking(move || work(&broker))
                .await
                .expect("admin work does not panic")
        }))
    }

    /// Hands a group request to the coordinator, after filling in what only the
    /// broker knows: the client's identity, and which partitions exist.
    fn group_request(
        self: &Arc<Self>,
        mut g: cohort_types::group::GroupRequest,
        client: &ClientInfo,
    ) -> Reply {
        use cohort_types::group::GroupRequest;
        match &mut g {
            GroupRequest::JoinGroup(j) => {
                j.client_id = client.client_id.clone();
                j.client_host = client.client_host.clone();
            }
            GroupRequest::ConsumerGroupHeartbeat(h) => {
                h.client_id = client.client_id.clone();
                h.client_host = client.client_host.clone();
            }
            _ => {}
        }
        if matches!(
            g,
            GroupRequest::ConsumerGroupHeartbeat(_)
                | GroupRequest::Heartbeat(_)
                | GroupRequest::JoinGroup(_)
                | GroupRequest::SyncGroup(_)
        ) {
            self.membership_requests
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        match &mut g {
            GroupRequest::OffsetCommit(c) => {
                let topics = self.topics.read();
                for o in &mut c.offsets {
                    o.unknown_partition = !topics.get(&o.partition.topic).is_some_and(|t| {
                        o.partition.partition >= 0
                            && (o.partition.partition as usize) < t.partitions.len()
                    });
                }
            }
            _ => {}
        }
        let refused = g.refused(cohort_types::ErrorCode::COORDINATOR_NOT_AVAILABLE);
        let trace = matches!(
            g,
            cohort_types::group::GroupRequest::ConsumerGroupHeartbeat(_)
        );
        if trace {
            tracing::debug!(request = ?g, "group request");
        }
        // Queued now, in the order the connection's requests were read.
        let answer = self.groups.submit(g, client.connection);
        Reply::Later(Box::pin(async move {
            let response = answer.await.unwrap_or(refused);
            if trace {
                tracing::debug!(?response, "group response");
            }
            Response::Group(response)
        }))
    }

    /// A connection sent a request while an earlier one is unanswered: a
    /// heartbeat held for it must go now (answers go out in order).
    pub fn release_held(&self, connection: u64) {
        if self.config.coordinator.classic_hold_heartbeat_ms > 0 {
            self.groups.release(connection);
        }
    }

    /// A client connection ended.
    pub fn connection_closed(&self, connection: u64) {
        self.groups.connection_closed(connection);
    }

    /// Tells the group coordinator the topics changed (created, deleted, grown).
    pub(crate) fn topics_changed(&self) {
        let image = topic_image(&self.topics.read());
        self.groups.topics_changed(image);
    }

    /// Applies retention to every partition once, then records the new start
    /// offsets (a start offset that moved back after a crash would read as
    /// missing segments).
    pub fn apply_retention(&self) {
        let topics = self.topics.read().all();
        let now = now_ms();
        let mut trimmed = Vec::new();
        for t in topics {
            // A compact-only topic keeps every key's newest record for good:
            // time and size retention apply only with `delete` in the policy.
            let deletes = self.has_cleanup_policy(&t, "delete");
            let retention = if deletes {
                cohort_log::Retention {
                    retention_ms: self.topic_config_i64(&t, "retention.ms"),
                    retention_bytes: self.topic_config_i64(&t, "retention.bytes"),
                }
            } else {
                cohort_log::Retention {
                    retention_ms: -1,
                    retention_bytes: -1,
                }
            };
            for p in &t.partitions {
                match p.apply_retention(now, retention) {
                    Ok(0) => {}
                    Ok(n) => {
                        tracing::info!(topic = %t.name, partition = p.index, "retention removed {n} offsets");
                        trimmed.push(p.clone());
                    }
                    Err(e) => {
                        tracing::error!(topic = %t.name, partition = p.index, "retention failed: {e}")
                    }
                }
            }
        }
        if trimmed.is_empty() {
            return;
        }
        match self.write_checkpoints() {
            Ok(()) => {
                for p in trimmed {
                    if let Err(e) = p.purge_deleted() {
                        tracing::warn!(topic = %p.topic, partition = p.index, "could not remove old segments: {e}");
                    }
                }
            }
            Err(e) => tracing::warn!(
                "could not write the recovery points (old segments kept until it works): {e}"
            ),
        }
    }

    /// Tries to bring back every partition whose sync failed (a full or
    /// failing disk), without a restart. Under fsync=always the unsynced tail,
    /// never acknowledged nor shown to consumers, is cut first.
    pub fn retry_failed_storage(&self) {
        let always = self.config.fsync == FsyncPolicy::Always;
        for p in self.topics.read().all_partitions() {
            if !p.needs_recovery() {
                continue;
            }
            let before = p.log_end_offset();
            match p.recover_after_sync_failure(always) {
                Ok(end) => {
                    tracing::info!(
                        topic = %p.topic,
                        partition = p.index,
                        cut = before - end,
                        "partition back after a failed sync; offsets {end}..{before} had never been acknowledged and were cut"
                    );
                    if p.advance_high_watermark(end) {
                        self.data_changed.send_modify(|n| *n += 1);
                    }
                }
                Err(e) => {
                    tracing::debug!(topic = %p.topic, partition = p.index, "partition still failing: {e}")
                }
            }
        }
    }

    /// Writes every log's recovery point to `meta/recovery-points`.
    pub fn write_checkpoints(&self) -> io::Result<()> {
        self.write_checkpoints_with(self.groups.checkpoint())
    }

    fn write_checkpoints_with(
        &self,
        coordinator: Option<(String, cohort_log_local::Checkpoint)>,
    ) -> io::Result<()> {
        // One writer at a time: the periodic pass and DeleteRecords share the file.
        let _one = self.checkpointing.lock().unwrap();
        let mut entries = checkpoints::Entries::new();
        for p in self.topics.read().all_partitions() {
            let point = p
                .checkpoint()
                .or_else(|| self.loaded_checkpoints.get(&p.dir_name).copied());
            if let Some(c) = point {
                entries.insert(p.dir_name.clone(), c);
            }
        }
        match coordinator {
            Some((name, c)) => {
                entries.insert(name, c);
            }
            None => {
                // Offline: keep what was known of its log.
                for (k, c) in &self.loaded_checkpoints {
                    if k.starts_with("coordinator/") {
                        entries.insert(k.clone(), *c);
                    }
                }
            }
        }
        checkpoints::write(&self.config.data_dir, &entries)
    }

    /// Stops the coordinator, syncs everything, stops the fsync thread, writes
    /// the recovery points and, when every log is whole, marks the shutdown
    /// clean. Called once, at shutdown, from a thread that may block.
    pub fn close(&self) {
        tracing::info!(
            membership_requests = self
                .membership_requests
                .load(std::sync::atomic::Ordering::Relaxed),
            "group membership requests served (heartbeats, joins, syncs)"
        );
        let coordinator = self.groups.stop();
        let all = self.topics.read().all_partitions();
        self.durability.shutdown(&all);
        let whole = all.iter().all(|p| !p.is_failed() || p.damaged().is_some())
            && (coordinator.is_some() || self.groups.offline_reason().is_some());
        let written = self.write_checkpoints_with(coordinator).and_then(|_| {
            if whole {
                checkpoints::mark_clean_shutdown(&self.config.data_dir)
            } else {
                Ok(())
            }
        });
        if let Err(e) = written {
            tracing::error!("could not record the clean shutdown: {e}");
        }
    }
}
