//! Every API at every version the broker advertises: a valid request (every
//! field of that version set, plus an unknown tagged field) gets an answer that
//! decodes at that version, and the connection stays open. A version that
//! fails to encode its answer closes the connection, and whole clients with it.

use bytes::Bytes;
use cohort_protocol::{client, sweep};
use std::net::TcpStream;
use std::time::Duration;

mod common;

fn connect(addr: &str) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    s
}

#[test]
fn every_advertised_version_of_every_api_is_answered_at_that_version() {
    let (addr, _dir) = common::start();
    let mut conn = connect(&addr);
    let created = client::create_topic_response(
        common::call(&mut conn, &client::create_topic_request(1, "sweep", 2)).unwrap(),
    )
    .unwrap();
    assert_eq!(created, 0);

    let mut target = sweep::Target {
        topic: "sweep".into(),
        topic_id: [0; 16],
        group: "sweep-group".into(),
        batch: Bytes::from(cohort_log::batch::build_batch(
            0,
            &[b"sweep".as_slice()],
            None,
        )),
        node_id: 0,
    };
    let (key, v) = (sweep::ApiKey::Metadata, 12);
    let frame = sweep::request(key, v, 2, &target).unwrap();
    let answer =
        sweep::check_response(key, v, 2, common::call(&mut conn, &frame).unwrap()).unwrap();
    target.topic_id = answer
        .topic_ids
        .iter()
        .find(|(n, _)| n == "sweep")
        .unwrap()
        .1;
    assert_ne!(target.topic_id, [0; 16]);

    let mut failures = Vec::new();
    let mut answered = 0;
    for (i, (key, v)) in sweep::advertised().into_iter().enumerate() {
        let correlation_id = 100 + i as i32;
        let frame = match sweep::request(key, v, correlation_id, &target) {
            Ok(f) => f,
            Err(e) => {
                failures.push(format!("building the request: {e}"));
                continue;
            }
        };
        let outcome = common::call(&mut conn, &frame)
            .map_err(|e| format!("{key:?} v{v}: no answer ({e}); the connection is closed"))
            .and_then(|f| sweep::check_response(key, v, correlation_id, f));
        match outcome {
            Ok(a) => {
                answered += 1;
                if let Some(e) = a.data_errors.iter().find(|&&e| e != 0) {
                    failures.push(format!("{key:?} v{v}: error {e} on a topic that exists"));
                }
            }
            Err(e) => {
                failures.push(e);
                conn = connect(&addr);
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} versions failed:\n{}",
        failures.len(),
        answered + failures.len(),
        failures.join("\n")
    );
    assert!(answered > 100, "only {answered} versions answered");
}

/// DescribeGroups cannot describe a group that does not exist or that speaks
/// the consumer protocol: "Dead" and no error before v6, GROUP_ID_NOT_FOUND
/// with Kafka's message from v6.
#[test]
fn describe_groups_reports_groups_it_cannot_describe_as_kafka_does() {
    let (addr, _dir) = common::start();
    let mut conn = connect(&addr);
    client::create_topic_response(
        common::call(&mut conn, &client::create_topic_request(1, "dg", 1)).unwrap(),
    )
    .unwrap();
    let target = sweep::Target {
        topic: "dg".into(),
        topic_id: [0; 16],
        group: "dg".into(),
        batch: Bytes::new(),
        node_id: 0,
    };
    // A consumer-protocol group: "dg-68-1" (the sweep's heartbeat's own group).
    let key = sweep::ApiKey::ConsumerGroupHeartbeat;
    let frame = sweep::request(key, 1, 2, &target).unwrap();
    sweep::check_response(key, 1, 2, common::call(&mut conn, &frame).unwrap()).unwrap();

    // The sweep's DescribeGroups asks for "dg-15-V" (absent) and "dg"; ask
    // instead through a target whose prefix names the consumer group.
    let consumer = sweep::Target {
        group: "dg-68-1".into(),
        ..target
    };
    let key = sweep::ApiKey::DescribeGroups;
    for v in [5, 6] {
        let frame = sweep::request(key, v, 10 + v as i32, &consumer).unwrap();
        let a = sweep::check_response(
            key,
            v,
            10 + v as i32,
            common::call(&mut conn, &frame).unwrap(),
        )
        .unwrap();
        let absent = format!("dg-68-1-15-{v}");
        let by_name = |n: &str| a.groups.iter().find(|g| g.0 == n).cloned().unwrap();
        let (_, code, message, state) = by_name(&absent);
        let (_, c_code, c_message, c_state) = by_name("dg-68-1");
        assert_eq!((state.as_str(), c_state.as_str()), ("Dead", "Dead"));
        if v < 6 {
            assert_eq!((code, c_code), (0, 0));
            assert_eq!((message, c_message), (None, None));
        } else {
            assert_eq!((code, c_code), (69, 69));
            assert_eq!(
                message.as_deref(),
                Some(format!("Group {absent} not found.").as_str())
            );
            assert_eq!(
                c_message.as_deref(),
                Some("Group dg-68-1 is not a classic group.")
            );
        }
    }
}

/// DescribeProducers shows an idempotent producer's id, epoch and last
/// sequence; DescribeLogDirs the bytes each partition holds.
#[test]
fn describe_producers_and_log_dirs_report_what_partitions_hold() {
    let (addr, _dir) = common::start();
    let mut conn = connect(&addr);
    client::create_topic_response(
        common::call(&mut conn, &client::create_topic_request(1, "held", 2)).unwrap(),
    )
    .unwrap();
    let values: Vec<&[u8]> = vec![b"a", b"b", b"c"];
    let target = sweep::Target {
        topic: "held".into(),
        topic_id: [0; 16],
        group: "held".into(),
        batch: Bytes::from(cohort_log::batch::build_batch(
            0,
            &values,
            Some((4242, 3, 0)),
        )),
        node_id: 0,
    };
    let ask = |conn: &mut TcpStream, key, v, corr| {
        let frame = sweep::request(key, v, corr, &target).unwrap();
        sweep::check_response(key, v, corr, common::call(conn, &frame).unwrap()).unwrap()
    };
    let produced = ask(&mut conn, sweep::ApiKey::Produce, 9, 2);
    assert_eq!(produced.data_errors, vec![0]);
    let producers = ask(&mut conn, sweep::ApiKey::DescribeProducers, 0, 3);
    assert_eq!(producers.producers, vec![(0, 4242, 3, 2)]);
    let dirs = ask(&mut conn, sweep::ApiKey::DescribeLogDirs, 1, 4);
    let size = |p: i32| {
        dirs.log_dir_sizes
            .iter()
            .find(|s| s.0 == "held" && s.1 == p)
            .unwrap()
            .2
    };
    assert!(size(0) > 0, "{:?}", dirs.log_dir_sizes);
    assert_eq!(size(1), 0);
}
