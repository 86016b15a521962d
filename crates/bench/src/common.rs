//! What the benches share: a blocking Kafka connection, an in-process broker
//! on a temp dir, percentiles. Each bench binary uses part of it.
#![allow(dead_code)]

use bytes::Bytes;
use cohort_broker::server::Server;
use cohort_broker::{BrokerConfig, FsyncPolicy};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

pub struct Conn {
    stream: TcpStream,
}

impl Conn {
    pub fn connect(addr: &str) -> Conn {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_nodelay(true).unwrap();
        Conn { stream }
    }
    /// A second handle on the same connection (one thread sends, one reads).
    pub fn try_clone(&self) -> Conn {
        Conn {
            stream: self.stream.try_clone().expect("clone connection"),
        }
    }

    pub fn send(&mut self, frame: &Bytes) {
        self.stream.write_all(frame).expect("send");
    }
    pub fn recv(&mut self) -> Bytes {
        let mut len = [0u8; 4];
        self.stream.read_exact(&mut len).expect("recv");
        let mut body = vec![0u8; i32::from_be_bytes(len) as usize];
        self.stream.read_exact(&mut body).expect("recv body");
        Bytes::from(body)
    }
}

pub fn start_in_process(fsync: FsyncPolicy) -> (String, tempfile::TempDir) {
    start_in_process_with(fsync, |_| {})
}

/// An in-process broker with settings changed by `tune`.
pub fn start_in_process_with(
    fsync: FsyncPolicy,
    tune: impl FnOnce(&mut BrokerConfig),
) -> (String, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = BrokerConfig::new(dir.path().join("data"));
    tune(&mut config);
    config.listen = "127.0.0.1:0".into();
    config.advertise = "127.0.0.1:0".into();
    config.fsync = fsync;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let server = Server::bind(config).await.expect("bind");
            tx.send(server.local_addr().unwrap().to_string()).unwrap();
            let (_stop, stop_rx) = tokio::sync::watch::channel(false);
            server.run(stop_rx).await.unwrap();
        });
    });
    (rx.recv().unwrap(), dir)
}

pub fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}
