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

struct Acks(Arc<Mutex<Vec<(u32, u64, Micros)>>>);

impl ClientContext for Acks {}

impl ProducerContext for Acks {
    type DeliveryOpaque = Box<(u32, u64, Micros)>;
    fn delivery(&self, r: &DeliveryResult<'_>, o: Self::DeliveryOpaque) {
        if r.is_ok() {
            self.0.lock().unwrap().push(*o);
        }
    }
}

pub struct Probe {
    pub acked: Arc<Mutex<Vec<(u32, u64, Micros)>>>,
    /// How many partitions to write to (raised for a partition increase).
    pub partitions: Arc<AtomicU32>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Probe {
    pub fn start(bootstrap: &str, topic: &str, partitions: u32, interval: Duration) -> Result<Probe, String> {
        let acked = Arc::new(Mutex::new(Vec::new()));
        let producer: BaseProducer<Acks> = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("linger.ms", "1")
            .set("acks", "all")
            .set("enable.idempotence", "true")
            .set("topic.metadata.refresh.interval.ms", "1000")
            .create_with_context(Acks(acked.clone()))
            .map_err(|e| e.to_string())?;
        let count = Arc::new(AtomicU32::new(partitions));
        let stop = Arc::new(AtomicBool::new(false));
        let (c, s, topic) = (count.clone(), stop.clone(), topic.to_string());
        let thread = std::thread::spawn(move || {
            let mut seq: Vec<u64> = Vec::new();
            let mut known = 0u32;
            let mut next = std::time::Instant::now();
            while !s.load(Ordering::Relaxed) {
                let want = c.load(Ordering::Relaxed);
                if known < want {
                    // Learn new partitions now rather than at the next refresh.
                    if let Ok(md) = producer.client().fetch_metadata(Some(&topic), Duration::from_secs(1)) {
                        known = md.topics().first().map(|t| t.partitions().len() as u32).unwrap_or(0).min(want);
                    }
                }
                seq.resize(known as usize, 0);
                for p in 0..known {
                    let t = now_us();
                    let n = seq[p as usize];
                    let value = encode(n, t);
                    let record = BaseRecord::<(), [u8], _>::with_opaque_to(&topic, Box::new((p, n, t))).partition(p as i32).payload(&value[..]);
                    if producer.send(record).is_ok() {
                        seq[p as usize] += 1;
                    }
                }
                producer.poll(Duration::ZERO);
                next += interval;
                let now = std::time::Instant::now();
                if next > now {
                    std::thread::sleep(next - now);
                } else {
                    next = now;
                }
            }
            let _ = producer.flush(Duration::from_secs(10));
        });
        Ok(Probe { acked, partitions: count, stop, thread: Some(thread) })
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
