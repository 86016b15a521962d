//! The probe producer: one small record per partition every interval, whose
//! value is its sequence number and produce time. Only acknowledged records
//! count (a record the broker never acknowledged cannot be "lost").

use crate::measure::Micros;
use crate::member::{encode, now_us};
use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::ClientContext;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

struct Acks(
    Arc<Mutex<Vec<(u32, u64, Micros)>>>,
    Arc<Mutex<std::collections::BTreeMap<String, u64>>>,
);

impl ClientContext for Acks {}

impl ProducerContext for Acks {
    type DeliveryOpaque = Box<(u32, u64, Micros)>;
    fn delivery(&self, r: &DeliveryResult<'_>, o: Self::DeliveryOpaque) {
        match r {
            Ok(_) => self.0.lock().unwrap().push(*o),
            Err((e, _)) => *self.1.lock().unwrap().entry(e.to_string()).or_default() += 1,
        }
    }
}

pub struct Probe {
    pub acked: Arc<Mutex<Vec<(u32, u64, Micros)>>>,
    /// Why records were not acknowledged, and how many.
    pub errors: Arc<Mutex<std::collections::BTreeMap<String, u64>>>,
    /// How many partitions to write to (raised for a partition increase).
    pub partitions: Arc<AtomicU32>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Probe {
    pub fn start(
        bootstrap: &str,
        topic: &str,
        partitions: u32,
        interval: Duration,
    ) -> Result<Probe, String> {
        let acked = Arc::new(Mutex::new(Vec::new()));
        let errors = Arc::new(Mutex::new(std::collections::BTreeMap::new()));
        let producer: BaseProducer<Acks> = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("linger.ms", "1")
            .set("acks", "all")
            .set("enable.idempotence", "true")
            .set("topic.metadata.refresh.interval.ms", "1000")
            .create_with_context(Acks(acked.clone(), errors.clone()))
            .map_err(|e| e.to_string())?;
        let count = Arc::new(AtomicU32::new(partitions));
        let stop = Arc::new(AtomicBool::new(false));
        let (c, s, topic, errs) = (
            count.clone(),
            stop.clone(),
            topic.to_string(),
            errors.clone(),
        );
        let thread = std::thread::spawn(move || {
            let mut seq: Vec<u64> = Vec::new();
            let mut known = 0u32;
            let mut next = std::time::Instant::now();
            while !s.load(Ordering::Relaxed) {
                let want = c.load(Ordering::Relaxed);
                if known < want {
                    // Learn new partitions now rather than at the next refresh.
                    if let Ok(md) = producer
                        .client()
                        .fetch_metadata(Some(&topic), Duration::from_secs(1))
                    {
                        known = md
                            .topics()
                            .first()
                            .map(|t| t.partitions().len() as u32)
                            .unwrap_or(0)
                            .min(want);
                    }
                }
                seq.resize(known as usize, 0);
                for p in 0..known {
                    let t = now_us();
                    let n = seq[p as usize];
                    let value = encode(n, t);
                    let record =
                        BaseRecord::<(), [u8], _>::with_opaque_to(&topic, Box::new((p, n, t)))
                            .partition(p as i32)
                            .payload(&value[..]);
                    match producer.send(record) {
                        Ok(()) => seq[p as usize] += 1,
                        Err((e, _)) => {
                            *errs
                                .lock()
                                .unwrap()
                                .entry(format!("send: {e}"))
                                .or_default() += 1
                        }
                    }
                }
                next += interval;
                let now = std::time::Instant::now();
                if next > now {
                    // Serves delivery reports until the next tick (one poll
                    // with no time left serves only one batch of them).
                    producer.poll(next - now);
                } else {
                    producer.poll(Duration::ZERO);
                    next = now;
                }
            }
            let _ = producer.flush(Duration::from_secs(10));
        });
        Ok(Probe {
            acked,
            errors,
            partitions: count,
            stop,
            thread: Some(thread),
        })
    }

    /// Stops writing and waits for every record in flight to be acknowledged.
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        self.stop();
    }
}
