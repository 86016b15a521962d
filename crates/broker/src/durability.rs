//! Makes appended data durable according to the fsync policy. Under `always`, a
//! dedicated thread runs group commits: it takes every partition appended to
//! since its last round, syncs them, and only then lets their producers be
//! answered and their consumers read. Batches that arrive during an fsync ride
//! on the next one, so one fsync serves many requests under load.

use crate::config::FsyncPolicy;
use crate::partition::Partition;
use std::collections::HashMap;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;
use tokio::sync::watch;

pub struct Durability {
    policy: FsyncPolicy,
    tx: Mutex<Option<Sender<Arc<Partition>>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// Bumped whenever any high watermark moves, to wake waiting fetches.
    data_changed: Arc<watch::Sender<u64>>,
}

impl Durability {
    pub fn start(policy: FsyncPolicy, data_changed: Arc<watch::Sender<u64>>) -> Durability {
        let (tx, rx) = mpsc::channel::<Arc<Partition>>();
        let changed = data_changed.clone();
        let thread = match policy {
            FsyncPolicy::Never => None,
            _ => Some(
                std::thread::Builder::new()
                    .name("cohort-fsync".into())
                    .spawn(move || run(policy, rx, changed))
                    .expect("spawn fsync thread"),
            ),
        };
        Durability {
            policy,
            tx: Mutex::new(Some(tx)),
            thread: Mutex::new(thread),
            data_changed,
        }
    }

    pub fn policy(&self) -> FsyncPolicy {
        self.policy
    }

    /// Called after every append to `p`, with the partition's new end.
    pub fn appended(&self, p: &Arc<Partition>, end: u64) {
        match self.policy {
            FsyncPolicy::Always => {
                if let Some(tx) = &*self.tx.lock().unwrap() {
                    let _ = tx.send(p.clone());
                }
            }
            FsyncPolicy::Interval(_) | FsyncPolicy::Never => {
                // Visible and acknowledged at once; synced later (or never).
                if p.advance_high_watermark(end) {
                    self.data_changed.send_modify(|n| *n += 1);
                }
                if let (FsyncPolicy::Interval(_), Some(tx)) =
                    (self.policy, &*self.tx.lock().unwrap())
                {
                    let _ = tx.send(p.clone());
                }
            }
        }
    }

    /// Stops the thread after a last round, and syncs every given partition.
    pub fn shutdown(&self, all: &[Arc<Partition>]) {
        self.tx.lock().unwrap().take();
        if let Some(t) = self.thread.lock().unwrap().take() {
            let _ = t.join();
        }
        for p in all {
            sync_one(p, &self.data_changed, self.policy == FsyncPolicy::Always);
        }
    }
}

fn sync_one(p: &Arc<Partition>, changed: &watch::Sender<u64>, advance_hw: bool) {
    let result = p.take_syncer().and_then(|(end, sync)| sync().map(|_| end));
    match result {
        Ok(end) => {
            p.mark_durable(end);
            if advance_hw && p.advance_high_watermark(end) {
                changed.send_modify(|n| *n += 1);
            }
        }
        Err(e) => {
            tracing::error!(topic = %p.topic, partition = p.index, "fsync failed, partition taken offline: {e}");
            p.mark_failed();
        }
    }
}

fn run(policy: FsyncPolicy, rx: Receiver<Arc<Partition>>, changed: Arc<watch::Sender<u64>>) {
    let mut pending: HashMap<*const Partition, Arc<Partition>> = HashMap::new();
    let mut next_tick = Instant::now();
    loop {
        match policy {
            FsyncPolicy::Interval(every) => {
                let wait = next_tick.saturating_duration_since(Instant::now());
                match rx.recv_timeout(wait) {
                    Ok(p) => {
                        pending.insert(Arc::as_ptr(&p), p);
                    }
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => return,
                }
                if Instant::now() < next_tick {
                    continue;
                }
                next_tick = Instant::now() + every;
            }
            _ => match rx.recv() {
                Ok(p) => {
                    pending.insert(Arc::as_ptr(&p), p);
                }
                Err(_) => return,
            },
        }
        // Everything that arrived meanwhile shares this round.
        while let Ok(p) = rx.try_recv() {
            pending.insert(Arc::as_ptr(&p), p);
        }
        for (_, p) in pending.drain() {
            sync_one(&p, &changed, policy == FsyncPolicy::Always);
        }
    }
}
