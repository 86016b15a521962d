//! The versions Cohort lays out by hand (see `cohort_protocol::newer`), for
//! what they mean and not only how they decode: OffsetCommit and OffsetFetch
//! v10 name topics by id, and ApiVersions v5 names the cluster and node the
//! client expects. `SWEEP_BOOTSTRAP=host:port` runs them against another
//! broker instead (Apache Kafka 4.4 from `scripts/kafka-reference` answers
//! the same).

use bytes::Bytes;
use cohort_protocol::{client, sweep};
use std::net::TcpStream;
use std::time::Duration;

mod common;

/// The broker under test: a fresh Cohort, or the one `SWEEP_BOOTSTRAP` names.
fn broker() -> (String, Option<tempfile::TempDir>) {
    match std::env::var("SWEEP_BOOTSTRAP") {
        Ok(addr) => (addr, None),
        Err(_) => {
            let (addr, dir) = common::start();
            (addr, Some(dir))
        }
    }
}

/// A name no earlier run against the same broker used.
fn fresh(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{name}-{nanos}")
}

fn connect(addr: &str) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    s
}

/// Sends a hand-built body and reads the answer strictly.
fn ask(conn: &mut TcpStream, key: sweep::ApiKey, v: i16, corr: i32, body: &[u8]) -> sweep::Answer {
    let frame = sweep::frame(key, v, corr, body);
    sweep::check_response(key, v, corr, common::call(conn, &frame).unwrap()).unwrap()
}

/// Creates `topic` and returns its id, the cluster id and the broker's node id
/// (from Metadata v12).
fn create(conn: &mut TcpStream, topic: &str, partitions: i32) -> ([u8; 16], String, i32) {
    let created = client::create_topic_response(
        common::call(conn, &client::create_topic_request(1, topic, partitions)).unwrap(),
    )
    .unwrap();
    assert_eq!(created, 0);
    let target = sweep::Target {
        topic: topic.into(),
        topic_id: [0; 16],
        group: "g".into(),
        batch: Bytes::new(),
        node_id: 0,
    };
    let frame = sweep::request(sweep::ApiKey::Metadata, 12, 2, &target).unwrap();
    let a = sweep::check_response(
        sweep::ApiKey::Metadata,
        12,
        2,
        common::call(conn, &frame).unwrap(),
    )
    .unwrap();
    let id = a.topic_ids.iter().find(|(n, _)| n == topic).unwrap().1;
    (id, a.cluster_id.unwrap(), a.node_id.unwrap())
}

fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v
}

#[test]
fn offsets_committed_and_fetched_by_topic_id() {
    let (addr, _dir) = broker();
    let mut conn = connect(&addr);
    let topic = fresh("by-id");
    let (g, named) = (fresh("g"), fresh("t"));
    let named_group = format!("{named}-9-9");
    let (id, _, _) = create(&mut conn, &topic, 2);
    let nobody = [0xab; 16];
    let (commit, fetch) = (sweep::ApiKey::OffsetCommit, sweep::ApiKey::OffsetFetch);

    let body = sweep::offset_commit_v10(
        &g,
        None,
        &[(id, 0, 5), (id, 1, 7), (id, 9, 1), (nobody, 0, 1)],
    );
    let mut committed = ask(&mut conn, commit, 10, 10, &body).offsets;
    committed.sort();
    // Partition 9 does not exist; no topic has the id `nobody`.
    assert_eq!(
        committed,
        sorted(vec![
            (String::new(), id, 0, -1, 0),
            (String::new(), id, 1, -1, 0),
            (String::new(), id, 9, -1, 3),
            (String::new(), nobody, 0, -1, 100),
        ])
    );

    // Only unknown ids: answered without the coordinator, still per partition.
    let body = sweep::offset_commit_v10(&g, None, &[(nobody, 4, 1)]);
    assert_eq!(
        ask(&mut conn, commit, 10, 11, &body).offsets,
        vec![(String::new(), nobody, 4, -1, 100)]
    );

    let body = sweep::offset_fetch_v10(&[
        (&g, Some(vec![(id, vec![0, 1]), (nobody, vec![3])])),
        (&g, None),
    ]);
    let mut fetched = ask(&mut conn, fetch, 10, 12, &body).offsets;
    fetched.sort();
    assert_eq!(
        fetched,
        sorted(vec![
            (g.clone(), id, 0, 5, 0),
            (g.clone(), id, 0, 5, 0),
            (g.clone(), id, 1, 7, 0),
            (g.clone(), id, 1, 7, 0),
            (g.clone(), nobody, 3, -1, 100),
        ])
    );

    // The same offsets by name (v9): the coordinator keeps one set of
    // offsets. The sweep's v9 fetch asks group "t-9-9" for partitions 0 and 1.
    let body = sweep::offset_commit_v10(&named_group, None, &[(id, 0, 5), (id, 1, 7)]);
    ask(&mut conn, commit, 10, 13, &body);
    let target = sweep::Target {
        topic: topic.clone(),
        topic_id: id,
        group: named.clone(),
        batch: Bytes::new(),
        node_id: 0,
    };
    let frame = sweep::request(fetch, 9, 14, &target).unwrap();
    let by_name =
        sweep::check_response(fetch, 9, 14, common::call(&mut conn, &frame).unwrap()).unwrap();
    assert_eq!(
        by_name.offsets,
        vec![
            (named_group.clone(), [0; 16], 0, 5, 0),
            (named_group.clone(), [0; 16], 1, 7, 0)
        ]
    );

    // A deleted topic has no id: a fetch of everything leaves it out.
    let deleted = client::delete_topic_response(
        common::call(&mut conn, &client::delete_topic_request(16, &topic)).unwrap(),
    )
    .unwrap();
    assert_eq!(deleted, 0);
    let body = sweep::offset_fetch_v10(&[(&g, None)]);
    assert_eq!(ask(&mut conn, fetch, 10, 15, &body).offsets, vec![]);
}

#[test]
fn api_versions_v5_checks_the_cluster_and_node_the_client_expects() {
    let (addr, _dir) = broker();
    let mut conn = connect(&addr);
    let (_, cluster_id, node) = create(&mut conn, &fresh("any"), 1);
    let key = sweep::ApiKey::ApiVersions;
    let code = |conn: &mut TcpStream, v: i16, body: Bytes| ask(conn, key, v, 20, &body).data_errors;
    // What a client with no expectation, or the right one, gets: every API.
    assert_eq!(
        code(
            &mut conn,
            5,
            sweep::api_versions_v5("cohort-test", "1.0", None, -1)
        ),
        vec![0]
    );
    assert_eq!(
        code(
            &mut conn,
            5,
            sweep::api_versions_v5("cohort-test", "1.0", Some(&cluster_id), node)
        ),
        vec![0]
    );
    // Another cluster or another node: REBOOTSTRAP_REQUIRED (129).
    assert_eq!(
        code(
            &mut conn,
            5,
            sweep::api_versions_v5("cohort-test", "1.0", Some("elsewhere"), node)
        ),
        vec![129]
    );
    assert_eq!(
        code(
            &mut conn,
            5,
            sweep::api_versions_v5("cohort-test", "1.0", Some(&cluster_id), node + 7)
        ),
        vec![129]
    );
    // One without the other, or a software name Kafka refuses: INVALID_REQUEST.
    assert_eq!(
        code(
            &mut conn,
            5,
            sweep::api_versions_v5("cohort-test", "1.0", Some(&cluster_id), -1)
        ),
        vec![42]
    );
    assert_eq!(
        code(
            &mut conn,
            5,
            sweep::api_versions_v5("cohort-test", "1.0", None, node)
        ),
        vec![42]
    );
    assert_eq!(
        code(
            &mut conn,
            5,
            sweep::api_versions_v5("bad name", "1.0", None, -1)
        ),
        vec![42]
    );
    assert_eq!(
        code(
            &mut conn,
            5,
            sweep::api_versions_v5("cohort", "-1.0", None, -1)
        ),
        vec![42]
    );
}
