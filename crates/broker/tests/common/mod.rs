//! A real server on loopback for the broker's integration tests.
#![allow(dead_code)]

use bytes::Bytes;
use cohort_broker::server::Server;
use cohort_broker::BrokerConfig;
use std::io::{Read, Write};
use std::net::TcpStream;

/// Sends one framed request and reads one framed answer (without its size).
pub fn call(stream: &mut TcpStream, frame: &Bytes) -> std::io::Result<Bytes> {
    stream.write_all(frame)?;
    let mut len = [0u8; 4];
    stream.read_exact(&mut len)?;
    let mut body = vec![0u8; i32::from_be_bytes(len) as usize];
    stream.read_exact(&mut body)?;
    Ok(Bytes::from(body))
}

/// Starts a broker with default settings on a fresh data directory; returns
/// its address. It stops with the test process.
pub fn start() -> (String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = BrokerConfig::new(dir.path().join("data"));
    config.listen = "127.0.0.1:0".into();
    config.advertise = "127.0.0.1:0".into();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let server = Server::bind(config).await.unwrap();
            tx.send(server.local_addr().unwrap().to_string()).unwrap();
            let (_keep, stop) = tokio::sync::watch::channel(false);
            server.run(stop).await.unwrap();
        });
    });
    (rx.recv().unwrap(), dir)
}
