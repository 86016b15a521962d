//! Fetch long polls: an empty fetch waits, and a produce wakes it with the new
//! records; min_bytes holds a fetch back until enough has arrived.

use bytes::Bytes;
use cohort_protocol::client;
use std::io::{Read, Write};
use std::net::TcpStream;

mod common;

fn call(stream: &mut TcpStream, frame: &Bytes) -> Bytes {
    common::call(stream, frame).unwrap()
}

use common::start;

fn batch(value: &[u8]) -> Bytes {
    Bytes::from(cohort_log::batch::build_batch(0, &[value], None))
}

#[test]
fn a_waiting_fetch_is_answered_with_the_records_a_later_produce_writes() {
    let (addr, _dir) = start();
    let mut admin = TcpStream::connect(&addr).unwrap();
    assert_eq!(
        client::create_topic_response(call(&mut admin, &client::create_topic_request(1, "lp", 1)))
            .unwrap(),
        0
    );

    // Nothing is there yet: a fetch with a long max wait must hold until the
    // produce below, then carry its record (not an empty timeout answer).
    let fetcher = {
        let addr = addr.clone();
        std::thread::spawn(move || {
            let mut s = TcpStream::connect(&addr).unwrap();
            let (_, parts) = client::fetch_response(call(
                &mut s,
                &client::fetch_request(7, "lp", 0, 0, 1 << 20, 60_000),
            ))
            .unwrap();
            (
                parts[0].error,
                parts[0].high_watermark,
                parts[0].records.len(),
            )
        })
    };
    std::thread::sleep(std::time::Duration::from_millis(200));
    let mut producer = TcpStream::connect(&addr).unwrap();
    let (_, res) = client::produce_response(call(
        &mut producer,
        &client::produce_request(1, "lp", 0, batch(b"wake"), -1),
    ))
    .unwrap();
    assert_eq!(res, vec![(0, 0, 0)]);
    let (error, hw, len) = fetcher.join().unwrap();
    assert_eq!((error, hw), (0, 1));
    assert_eq!(len, batch(b"wake").len());
}

#[test]
fn pipelined_answers_come_back_in_request_order() {
    let (addr, _dir) = start();
    let mut s = TcpStream::connect(&addr).unwrap();
    assert_eq!(
        client::create_topic_response(call(&mut s, &client::create_topic_request(1, "empty", 1)))
            .unwrap(),
        0
    );
    // Pipeline: a waiting fetch, then a produce on the same connection. The
    // produce is appended while the fetch waits (and may even wake it), but the
    // answers come back in request order: the fetch's first.
    s.write_all(&client::fetch_request(10, "empty", 0, 0, 1 << 20, 100))
        .unwrap();
    let produce = client::produce_request(11, "empty", 0, batch(b"x"), -1);
    let first = call(&mut s, &produce);
    let (corr, parts) = client::fetch_response(first).unwrap();
    assert_eq!(corr, 10);
    assert_eq!(parts[0].error, 0);
    let mut len = [0u8; 4];
    s.read_exact(&mut len).unwrap();
    let mut body = vec![0u8; i32::from_be_bytes(len) as usize];
    s.read_exact(&mut body).unwrap();
    let (corr, res) = client::produce_response(Bytes::from(body)).unwrap();
    assert_eq!((corr, res), (11, vec![(0, 0, 0)]));
}
