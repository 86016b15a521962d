//! A coordinator log written by an earlier Cohort (the first record format,
//! before records carried a type and version in their key) must still load:
//! every group, member and committed offset it holds comes back.
//!
//! `tests/golden/coordinator-v0` was written by real clients against a running
//! broker (`tests/golden/write-coordinator-log.py`); `coordinator-v0.expected.json`
//! is what the clients read back from that broker before it stopped.

use cohort_broker::{Broker, BrokerConfig, Reply};
use cohort_types::api::{Request, Response};
use cohort_types::group::{GroupRequest, GroupResponse, OffsetFetchRequest};
use std::collections::BTreeMap;
use std::path::Path;

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

async fn ask(broker: &std::sync::Arc<Broker>, g: GroupRequest) -> GroupResponse {
    let reply = broker.handle(Request::Group(g), &Default::default());
    let response = match reply {
        Reply::Now(r) => r,
        Reply::Later(f) => f.await,
        Reply::Nothing => panic!("no answer"),
    };
    match response {
        Response::Group(g) => g,
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn a_log_in_the_first_record_format_loads_every_group_and_offset() {
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    copy_dir(
        &golden.join("coordinator-v0"),
        &data.join("coordinator/shard-0"),
    );
    let expected: BTreeMap<String, Vec<(String, i32, i64)>> = serde_json::from_slice(
        &std::fs::read(golden.join("coordinator-v0.expected.json")).unwrap(),
    )
    .unwrap();

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let broker = Broker::open(BrokerConfig::new(&data)).unwrap();
        for (group, offsets) in &expected {
            let answer = ask(
                &broker,
                GroupRequest::OffsetFetch(OffsetFetchRequest {
                    groups: vec![(group.clone(), None)],
                    require_stable: false,
                    members: vec![None],
                }),
            )
            .await;
            let GroupResponse::OffsetFetch(groups) = answer else {
                panic!("{answer:?}")
            };
            let mut got: Vec<(String, i32, i64)> = groups[0]
                .partitions
                .iter()
                .filter(|p| p.offset >= 0)
                .map(|p| (p.partition.topic.clone(), p.partition.partition, p.offset))
                .collect();
            got.sort();
            assert_eq!(&got, offsets, "offsets of {group}");
        }

        // The classic group is still stable with both of its members, the
        // static one under its instance id.
        let GroupResponse::DescribeGroups(classic) = ask(
            &broker,
            GroupRequest::DescribeGroups(vec!["classic-g".into()]),
        )
        .await
        else {
            panic!()
        };
        assert_eq!(classic[0].state, "Stable");
        assert_eq!(classic[0].members.len(), 2);
        assert!(classic[0]
            .members
            .iter()
            .any(|m| m.group_instance_id.as_deref() == Some("static-1")));

        // The consumer groups: the regex member (librdkafka sends the regex in
        // parentheses) and the named one, and the group converted from classic
        // with its one member.
        let GroupResponse::ConsumerGroupDescribe(groups) = ask(
            &broker,
            GroupRequest::ConsumerGroupDescribe(vec![
                "consumer-g".into(),
                "converted-g".into(),
                "deleted-consumer".into(),
            ]),
        )
        .await
        else {
            panic!()
        };
        let consumer = &groups[0];
        assert_eq!(consumer.members.len(), 2, "{consumer:?}");
        assert!(
            consumer
                .members
                .iter()
                .any(|m| m.subscribed_topic_regex.as_deref() == Some("(^events-.*)")),
            "{consumer:?}"
        );
        assert!(consumer.epoch > 0 && consumer.assignment_epoch == consumer.epoch);
        assert_eq!(groups[1].members.len(), 1, "{:?}", groups[1]);
        assert_ne!(groups[2].error, cohort_types::ErrorCode::NONE);
        tokio::task::spawn_blocking(move || broker.close())
            .await
            .unwrap();
    });
}
