//! Scripted traces of the consumer protocol (KIP-848): heartbeats and ticks in,
//! answers and records out. Each test names the rule it pins.

use crate::{Coordinator, CoordinatorConfig, Input, Record, RequestId};
use cohort_types::group::*;
use cohort_types::{ErrorCode, TopicId, TopicPartition};
use std::collections::BTreeMap;

const T: TopicId = TopicId([1; 16]);
const U: TopicId = TopicId([2; 16]);

struct Script {
    c: Coordinator,
    now: i64,
    next_id: RequestId,
    /// The connection the next request comes on.
    connection: u64,
    records: Vec<Record>,
    topics: BTreeMap<String, (TopicId, i32)>,
}

fn config() -> CoordinatorConfig {
    CoordinatorConfig {
        consumer_heartbeat_interval_ms: 5000,
        // Kafka's fixed interval: the budget has traces of its own.
        consumer_heartbeat_budget_per_s: 0,
        consumer_reconcile_heartbeat_interval_ms: 50,
        // These traces pin the protocol's rules with every change assigned at
        // once; the batching of assignments has traces of its own.
        consumer_assignment_interval_ms: 0,
        // Classic members' heartbeats answered at once, as Kafka does; the
        // hold in a mixed group has a trace of its own.
        classic_hold_heartbeat_ms: 0,
        ..CoordinatorConfig::default()
    }
}

/// A heartbeat as the Java client sends its first one.
pub(crate) fn join(member: &str, topics: &[&str]) -> ConsumerGroupHeartbeatRequest {
    ConsumerGroupHeartbeatRequest {
        group_id: "g".into(),
        member_id: member.into(),
        member_epoch: 0,
        instance_id: None,
        rack_id: None,
        rebalance_timeout_ms: 30_000,
        subscribed_topic_names: Some(topics.iter().map(|t| t.to_string()).collect()),
        subscribed_topic_regex: None,
        server_assignor: None,
        owned: Some(vec![]),
        server_generates_member_id: false,
        client_id: "client".into(),
        client_host: "/127.0.0.1".into(),
    }
}

/// A steady-state heartbeat: only the epoch and what the member owns.
fn beat(member: &str, epoch: i32, owned: &[(TopicId, Vec<i32>)]) -> ConsumerGroupHeartbeatRequest {
    ConsumerGroupHeartbeatRequest {
        member_epoch: epoch,
        rebalance_timeout_ms: -1,
        subscribed_topic_names: None,
        owned: Some(owned.to_vec()),
        ..join(member, &[])
    }
}

fn parts(a: &Option<TopicIdPartitions>) -> Vec<(TopicId, Vec<i32>)> {
    let mut v = a.clone().unwrap_or_default();
    v.sort();
    v
}

impl Script {
    fn new() -> Script {
        Script::with(config())
    }

    fn with(c: CoordinatorConfig) -> Script {
        let mut s = Script {
            c: Coordinator::new(c),
            now: 1_000,
            next_id: 1,
            connection: 1,
            records: vec![],
            topics: BTreeMap::new(),
        };
        s.topic("t", T, 4);
        s
    }

    fn topic(&mut self, name: &str, id: TopicId, partitions: i32) {
        self.topics.insert(name.into(), (id, partitions));
        let e = self.c.handle(self.now, Input::Topics(self.topics.clone()));
        self.records.extend(e.records);
    }

    /// Every answer a request (or a tick) produced, by request id.
    fn send_all(&mut self, request: GroupRequest) -> (RequestId, Vec<(RequestId, GroupResponse)>) {
        let id = self.next_id;
        self.next_id += 1;
        let e = self.c.handle(
            self.now,
            Input::Request {
                id,
                request,
                entropy: id as u128,
                connection: self.connection,
            },
        );
        self.records.extend(e.records);
        (id, e.replies)
    }

    fn send(&mut self, request: GroupRequest) -> GroupResponse {
        let (_, replies) = self.send_all(request);
        assert_eq!(replies.len(), 1);
        replies.into_iter().next().unwrap().1
    }

    fn hb(&mut self, r: ConsumerGroupHeartbeatRequest) -> ConsumerGroupHeartbeatResponse {
        match self.send(GroupRequest::ConsumerGroupHeartbeat(r)) {
            GroupResponse::ConsumerGroupHeartbeat(r) => r,
            other => panic!("unexpected {other:?}"),
        }
    }

    fn advance(&mut self, ms: i64) {
        let end = self.now + ms;
        while let Some(at) = self.c.next_deadline().filter(|&at| at <= end) {
            self.now = at.max(self.now);
            let e = self.c.handle(self.now, Input::Tick);
            self.records.extend(e.records);
        }
        self.now = end;
    }

    fn epoch(&self) -> i32 {
        self.c.consumer_group("g").unwrap().epoch
    }

    fn state(&self) -> &'static str {
        self.c.consumer_group("g").unwrap().state()
    }

    /// Live state equals what replaying every record emitted so far rebuilds.
    fn check_replay(&self) {
        let mut fresh = Coordinator::new(self.c.config().clone());
        for r in &self.records {
            fresh.replay(r);
        }
        assert_eq!(fresh.snapshot(), self.c.snapshot());
        assert_eq!(fresh.settled_interval_ms(), self.c.settled_interval_ms());
    }
}

#[test]
fn first_member_creates_group_at_epoch_one_and_gets_everything() {
    let mut s = Script::new();
    let r = s.hb(join("a", &["t"]));
    assert_eq!(r.error, ErrorCode::NONE);
    assert_eq!(r.member_epoch, 1);
    assert_eq!(parts(&r.assignment), vec![(T, vec![0, 1, 2, 3])]);
    assert_eq!(s.state(), "Stable");
    // Settled: the stable interval.
    assert_eq!(r.heartbeat_interval_ms, 5000);
    s.check_replay();
}

#[test]
fn v0_join_with_empty_member_id_gets_a_server_generated_one() {
    let mut s = Script::new();
    let r = s.hb(ConsumerGroupHeartbeatRequest {
        member_id: String::new(),
        server_generates_member_id: true,
        ..join("", &["t"])
    });
    assert_eq!(r.error, ErrorCode::NONE);
    assert_eq!(r.member_id.as_deref().map(str::len), Some(36));
    let r = s.hb(join("", &["t"]));
    assert_eq!(
        r.error,
        ErrorCode::INVALID_REQUEST,
        "v1 requires a client member id"
    );
}

#[test]
fn a_joining_member_waits_until_the_owner_revokes_revoke_first() {
    let mut s = Script::new();
    s.hb(join("a", &["t"]));
    let rb = s.hb(join("b", &["t"]));
    assert_eq!(s.epoch(), 2);
    // b is at the new epoch, but its partitions are still a's: nothing yet,
    // and it is told to come back soon.
    assert_eq!(rb.member_epoch, 2);
    assert_eq!(parts(&rb.assignment), vec![]);
    assert_eq!(rb.heartbeat_interval_ms, 50);
    assert_eq!(s.state(), "Reconciling");
    // a is told to keep only its half; it stays at epoch 1 until it revokes.
    let ra = s.hb(beat("a", 1, &[(T, vec![0, 1, 2, 3])]));
    assert_eq!(ra.member_epoch, 1);
    let kept = parts(&ra.assignment);
    assert_eq!(kept[0].1.len(), 2);
    // b still gets nothing while a holds the other half.
    let rb = s.hb(beat("b", 2, &[]));
    assert_eq!(parts(&rb.assignment), vec![]);
    // a acknowledges: moves to epoch 2; then b receives the released half.
    let ra = s.hb(beat("a", 1, &kept));
    assert_eq!(ra.member_epoch, 2);
    let rb = s.hb(beat("b", 2, &[]));
    let got = parts(&rb.assignment);
    assert_eq!(got[0].1.len(), 2);
    assert!(
        got[0].1.iter().all(|p| !kept[0].1.contains(p)),
        "never two owners"
    );
    s.hb(beat("b", 2, &got));
    assert_eq!(s.state(), "Stable");
    s.check_replay();
}

#[test]
fn a_retried_heartbeat_at_the_previous_epoch_is_harmless() {
    let mut s = Script::new();
    s.hb(join("a", &["t"]));
    s.hb(join("b", &["t"]));
    let ra = s.hb(beat("a", 1, &[(T, vec![0, 1, 2, 3])]));
    let kept = parts(&ra.assignment);
    let ra = s.hb(beat("a", 1, &kept));
    assert_eq!(ra.member_epoch, 2);
    // The answer was lost; the client retries the same request.
    let again = s.hb(beat("a", 1, &kept));
    assert_eq!(again.error, ErrorCode::NONE);
    assert_eq!(again.member_epoch, 2);
    // But claiming more than it was given at the previous epoch is fenced.
    let bad = s.hb(beat("a", 1, &[(T, vec![0, 1, 2, 3])]));
    assert_eq!(bad.error, ErrorCode::FENCED_MEMBER_EPOCH);
}

#[test]
fn epochs_ahead_of_the_coordinator_are_fenced_and_a_fenced_member_rejoins_with_epoch_zero() {
    let mut s = Script::new();
    s.hb(join("a", &["t"]));
    assert_eq!(
        s.hb(beat("a", 7, &[])).error,
        ErrorCode::FENCED_MEMBER_EPOCH
    );
    let r = s.hb(join("a", &["t"]));
    assert_eq!(r.error, ErrorCode::NONE);
    assert_eq!(parts(&r.assignment), vec![(T, vec![0, 1, 2, 3])]);
}

#[test]
fn unknown_members_and_groups() {
    let mut s = Script::new();
    assert_eq!(s.hb(beat("a", 3, &[])).error, ErrorCode::GROUP_ID_NOT_FOUND);
    s.hb(join("a", &["t"]));
    assert_eq!(s.hb(beat("zz", 1, &[])).error, ErrorCode::UNKNOWN_MEMBER_ID);
    assert_eq!(
        s.hb(beat("zz", -1, &[])).error,
        ErrorCode::UNKNOWN_MEMBER_ID
    );
}

#[test]
fn invalid_requests() {
    let mut s = Script::new();
    // Each case with the message Kafka 4.x sends for it.
    let cases = [
        (ConsumerGroupHeartbeatRequest { group_id: String::new(), ..join("a", &["t"]) }, "GroupId can't be empty."),
        (ConsumerGroupHeartbeatRequest { group_id: "  ".into(), ..join("a", &["t"]) }, "GroupId can't be empty."),
        (ConsumerGroupHeartbeatRequest { member_id: " ".into(), ..join("a", &["t"]) }, "MemberId can't be empty."),
        (ConsumerGroupHeartbeatRequest { rebalance_timeout_ms: -1, ..join("a", &["t"]) }, "RebalanceTimeoutMs must be provided in first request."),
        (ConsumerGroupHeartbeatRequest { owned: None, ..join("a", &["t"]) }, "TopicPartitions must be empty when (re-)joining."),
        (
            ConsumerGroupHeartbeatRequest { subscribed_topic_names: None, ..join("a", &["t"]) },
            "Either SubscribedTopicNames or SubscribedTopicRegex must be non-null when (re-)joining.",
        ),
        (ConsumerGroupHeartbeatRequest { instance_id: Some(String::new()), ..join("a", &["t"]) }, "InstanceId can't be empty."),
        (ConsumerGroupHeartbeatRequest { rack_id: Some(" ".into()), ..join("a", &["t"]) }, "RackId can't be empty."),
        (ConsumerGroupHeartbeatRequest { member_epoch: -2, ..join("a", &["t"]) }, "InstanceId can't be null."),
        (ConsumerGroupHeartbeatRequest { member_epoch: -3, ..join("a", &["t"]) }, "MemberEpoch is invalid."),
    ];
    for (r, message) in cases {
        let answer = s.hb(r.clone());
        assert_eq!(
            (answer.error, answer.error_message.as_deref()),
            (ErrorCode::INVALID_REQUEST, Some(message)),
            "{r:?}"
        );
        // The rest of an error answer keeps the schema's defaults, as Kafka's.
        assert_eq!(
            (
                answer.member_id,
                answer.member_epoch,
                answer.heartbeat_interval_ms,
                answer.assignment
            ),
            (None, 0, 0, None)
        );
    }
    let r = ConsumerGroupHeartbeatRequest {
        server_assignor: Some("sticky".into()),
        ..join("a", &["t"])
    };
    let answer = s.hb(r);
    assert_eq!(answer.error, ErrorCode::UNSUPPORTED_ASSIGNOR);
    assert_eq!(
        answer.error_message.as_deref(),
        Some("ServerAssignor sticky is not supported. Supported assignors: uniform, range.")
    );
    let r = ConsumerGroupHeartbeatRequest {
        subscribed_topic_regex: Some("(".into()),
        ..join("a", &[])
    };
    assert_eq!(s.hb(r).error, ErrorCode::INVALID_REGULAR_EXPRESSION);
    assert!(
        s.c.consumer_group("g").is_none(),
        "no failed request leaves a group behind"
    );
}

/// librdkafka 2.12.1 can rejoin after a leave with a heartbeat that is not a
/// full one (epoch 0 but no rebalance timeout and no owned partitions) when
/// unsubscribe() lands while it reconciles. Kafka refuses that join with
/// INVALID_REQUEST, which the client treats as fatal; Cohort answers as Kafka.
#[test]
fn a_rejoin_after_leaving_must_be_a_full_heartbeat() {
    let mut s = Script::new();
    s.hb(join("a", &["t"]));
    s.hb(join("b", &["t"]));
    let left = s.hb(ConsumerGroupHeartbeatRequest {
        member_epoch: -1,
        ..beat("b", 2, &[])
    });
    assert_eq!((left.error, left.member_epoch), (ErrorCode::NONE, -1));
    let partial = ConsumerGroupHeartbeatRequest {
        member_epoch: 0,
        subscribed_topic_names: Some(vec!["t".into()]),
        subscribed_topic_regex: Some(String::new()),
        owned: None,
        ..beat("b", 0, &[])
    };
    let r = s.hb(partial);
    assert_eq!(
        (r.error, r.error_message.as_deref()),
        (
            ErrorCode::INVALID_REQUEST,
            Some("RebalanceTimeoutMs must be provided in first request.")
        )
    );
    // The full join the client should have sent is welcome.
    let r = s.hb(join("b", &["t"]));
    assert_eq!((r.error, r.member_epoch), (ErrorCode::NONE, 4));
    s.check_replay();
}

#[test]
fn group_max_size() {
    let mut s = Script::with(CoordinatorConfig {
        consumer_max_group_size: 1,
        ..config()
    });
    s.hb(join("a", &["t"]));
    assert_eq!(
        s.hb(join("b", &["t"])).error,
        ErrorCode::GROUP_MAX_SIZE_REACHED
    );
    assert_eq!(
        s.hb(beat("a", 1, &[(T, vec![0, 1, 2, 3])])).error,
        ErrorCode::NONE
    );
}

#[test]
fn leaving_with_epoch_minus_one_bumps_the_epoch_and_frees_the_partitions() {
    let mut s = Script::new();
    s.hb(join("a", &["t"]));
    s.hb(join("b", &["t"]));
    let r = s.hb(ConsumerGroupHeartbeatRequest {
        member_epoch: -1,
        ..beat("b", 2, &[])
    });
    assert_eq!(
        (r.error, r.member_epoch, r.heartbeat_interval_ms),
        (ErrorCode::NONE, -1, 0)
    );
    assert_eq!(s.epoch(), 3);
    // a never heard of b: it moves straight to epoch 3 keeping everything
    // (an unchanged assignment is not resent).
    let ra = s.hb(beat("a", 1, &[(T, vec![0, 1, 2, 3])]));
    assert_eq!((ra.member_epoch, ra.assignment), (3, None));
    assert_eq!(s.state(), "Stable");
    s.check_replay();
}

#[test]
fn session_timeout_fences_the_member() {
    let mut s = Script::new();
    s.hb(join("a", &["t"]));
    s.hb(join("b", &["t"]));
    s.advance(44_999);
    s.hb(beat("a", 1, &[(T, vec![0, 1, 2, 3])]));
    s.advance(2);
    assert!(!s.c.consumer_group("g").unwrap().members.contains_key("b"));
    assert!(s.c.consumer_group("g").unwrap().members.contains_key("a"));
    s.check_replay();
}

#[test]
fn a_member_that_does_not_revoke_within_its_rebalance_timeout_is_fenced() {
    let mut s = Script::new();
    s.hb(join("a", &["t"]));
    s.hb(join("b", &["t"]));
    s.hb(beat("a", 1, &[(T, vec![0, 1, 2, 3])]));
    // a keeps heartbeating but never lets go.
    let mut b_got = None;
    let mut b_epoch = 2;
    for _ in 0..7 {
        s.advance(5_000);
        s.hb(beat("a", 1, &[(T, vec![0, 1, 2, 3])]));
        let rb = s.hb(beat("b", b_epoch, &[]));
        b_epoch = rb.member_epoch;
        if rb.assignment.as_ref().is_some_and(|a| !a.is_empty()) {
            b_got.get_or_insert((s.now, parts(&rb.assignment)));
        }
    }
    assert!(!s.c.consumer_group("g").unwrap().members.contains_key("a"));
    // b gets the partitions only after a is fenced, 30 s (its rebalance
    // timeout) after it was asked to revoke.
    let (at, got) = b_got.expect("b got the partitions");
    assert_eq!(got, vec![(T, vec![0, 1, 2, 3])]);
    assert!(at >= 1_000 + 30_000);
}

#[test]
fn static_member_temporary_leave_and_return_without_rebalance() {
    let mut s = Script::new();
    let stat = |m: &str| ConsumerGroupHeartbeatRequest {
        instance_id: Some("i1".into()),
        ..join(m, &["t"])
    };
    s.hb(stat("a"));
    s.hb(join("b", &["t"]));
    let ra = s.hb(ConsumerGroupHeartbeatRequest {
        instance_id: Some("i1".into()),
        ..beat("a", 1, &[(T, vec![0, 1, 2, 3])])
    });
    let kept = parts(&ra.assignment);
    s.hb(ConsumerGroupHeartbeatRequest {
        instance_id: Some("i1".into()),
        ..beat("a", 1, &kept)
    });
    let epoch = s.epoch();
    // Another process with the same instance id cannot take over yet.
    assert_eq!(s.hb(stat("a2")).error, ErrorCode::UNRELEASED_INSTANCE_ID);
    let r = s.hb(ConsumerGroupHeartbeatRequest {
        member_epoch: -2,
        instance_id: Some("i1".into()),
        ..beat("a", 2, &kept)
    });
    assert_eq!(r.member_epoch, -2);
    assert_eq!(s.epoch(), epoch, "a static leave does not rebalance");
    // The restarted process gets the same partitions back, still no rebalance.
    let r = s.hb(stat("a2"));
    assert_eq!(r.error, ErrorCode::NONE);
    assert_eq!(parts(&r.assignment), kept);
    assert_eq!(s.epoch(), epoch);
    s.check_replay();
}

#[test]
fn partitions_added_to_a_subscribed_topic_bump_the_epoch() {
    let mut s = Script::new();
    s.hb(join("a", &["t"]));
    s.topic("t", T, 6);
    let r = s.hb(beat("a", 1, &[(T, vec![0, 1, 2, 3])]));
    assert_eq!(s.epoch(), 2);
    assert_eq!(parts(&r.assignment), vec![(T, vec![0, 1, 2, 3, 4, 5])]);
    // A topic nobody subscribes to changes nothing.
    s.topic("other", U, 3);
    s.hb(beat("a", 2, &[(T, vec![0, 1, 2, 3, 4, 5])]));
    assert_eq!(s.epoch(), 2);
}

#[test]
fn the_range_assignor_is_used_when_members_ask_for_it() {
    let mut s = Script::new();
    let ranged = |m: &str| ConsumerGroupHeartbeatRequest {
        server_assignor: Some("range".into()),
        ..join(m, &["t"])
    };
    s.hb(ranged("a"));
    s.hb(ranged("b"));
    assert_eq!(
        s.c.consumer_group("g")
            .unwrap()
            .preferred_assignor("uniform"),
        "range"
    );
    let targets = &s.c.consumer_group("g").unwrap().targets;
    assert_eq!(targets["a"], [(T, [0, 1].into())].into());
    assert_eq!(targets["b"], [(T, [2, 3].into())].into());
}

/// Kafka resolves a new regex after the heartbeat that introduced it: the
/// literal topics of a mixed subscription come first, the regex's topics at
/// a later heartbeat, and the member is told to come back soon meanwhile.
#[test]
fn regex_subscriptions_resolve_asynchronously() {
    let mut s = Script::new();
    s.topic("logs-a", U, 2);
    let r = s.hb(ConsumerGroupHeartbeatRequest {
        subscribed_topic_regex: Some("logs-.*".into()),
        ..join("a", &["t"])
    });
    assert_eq!(parts(&r.assignment), vec![(T, vec![0, 1, 2, 3])]);
    assert_eq!(r.heartbeat_interval_ms, 50);
    s.advance(0);
    assert_eq!(s.epoch(), 2);
    let r = s.hb(beat("a", 1, &[(T, vec![0, 1, 2, 3])]));
    assert_eq!(
        parts(&r.assignment),
        vec![(T, vec![0, 1, 2, 3]), (U, vec![0, 1])]
    );
    assert_eq!(r.heartbeat_interval_ms, 5000);
    s.check_replay();
}

/// Refreshes are at least the min interval apart, so topics created together
/// join in one rebalance; deleting a topic needs no refresh.
/// Which regexes are in use is counted as members come, change and go (a
/// heartbeat must not walk every member to find out).
#[test]
fn regexes_in_use_follow_members_and_unused_ones_are_dropped() {
    let mut s = Script::new();
    s.topic("logs-a", U, 2);
    let with = |m: &str, re: &str| ConsumerGroupHeartbeatRequest {
        subscribed_topic_regex: Some(re.into()),
        ..join(m, &[])
    };
    s.hb(with("a", "logs-.*"));
    s.hb(with("b", "logs-.*"));
    s.hb(with("c", "t"));
    s.advance(0);
    let in_use = |s: &Script| {
        s.c.consumer_group("g")
            .unwrap()
            .subscribed_regexes()
            .into_iter()
            .map(String::from)
            .collect::<Vec<_>>()
    };
    assert_eq!(in_use(&s), vec!["logs-.*", "t"]);
    // b leaves; a still uses the regex.
    s.hb(ConsumerGroupHeartbeatRequest {
        member_epoch: -1,
        ..beat("b", 3, &[])
    });
    assert_eq!(in_use(&s), vec!["logs-.*", "t"]);
    // c switches to names: its regex is no longer used and its resolution goes.
    let epoch = s.c.consumer_group("g").unwrap().members["c"].member_epoch;
    s.hb(ConsumerGroupHeartbeatRequest {
        subscribed_topic_regex: Some(String::new()),
        subscribed_topic_names: Some(vec!["t".into()]),
        ..beat("c", epoch, &[])
    });
    assert_eq!(in_use(&s), vec!["logs-.*"]);
    assert!(!s
        .c
        .consumer_group("g")
        .unwrap()
        .resolved_regexes
        .contains_key("t"));
    s.check_replay();
}

/// The topics a group subscribes to by name are counted as members come and
/// go, like its regexes.
#[test]
fn topics_subscribed_by_name_follow_members() {
    let mut s = Script::new();
    s.topic("u", U, 2);
    s.hb(join("a", &["t"]));
    s.hb(join("b", &["t", "u"]));
    let names = |s: &Script| {
        let g = s.c.consumer_group("g").unwrap();
        s.c.subscribed_names(g).into_iter().collect::<Vec<_>>()
    };
    assert_eq!(names(&s), vec!["t", "u"]);
    s.hb(ConsumerGroupHeartbeatRequest {
        member_epoch: -1,
        ..beat("b", 2, &[])
    });
    assert_eq!(names(&s), vec!["t"]);
    assert_eq!(
        s.c.consumer_group("g").unwrap().subscription.len(),
        1,
        "u left the group's subscription"
    );
    s.check_replay();
}

#[test]
fn regex_refreshes_batch_new_topics() {
    let mut s = Script::new();
    let r = s.hb(ConsumerGroupHeartbeatRequest {
        subscribed_topic_regex: Some("x.*".into()),
        ..join("a", &[])
    });
    assert_eq!(parts(&r.assignment), vec![]);
    s.advance(0);
    let mut epoch = s.hb(beat("a", r.member_epoch, &[])).member_epoch;
    let resolved = s.epoch();
    assert_eq!(epoch, resolved);
    s.topic("x1", T, 1);
    epoch = s.hb(beat("a", epoch, &[])).member_epoch;
    s.topic("x2", U, 1);
    epoch = s.hb(beat("a", epoch, &[])).member_epoch;
    s.advance(0);
    assert_eq!(
        s.epoch(),
        resolved,
        "within the min interval of the last refresh"
    );
    s.advance(1_000);
    let r = s.hb(beat("a", epoch, &[]));
    assert_eq!(r.error, ErrorCode::NONE, "{r:?}");
    s.advance(0);
    assert_eq!(s.epoch(), resolved + 1, "both topics in one bump");
    let r = s.hb(beat("a", epoch, &[]));
    assert_eq!(parts(&r.assignment), vec![(T, vec![0]), (U, vec![0])]);
    // Leaving tombstones the regex with its last user.
    s.hb(ConsumerGroupHeartbeatRequest {
        member_epoch: -1,
        ..beat("a", r.member_epoch, &[])
    });
    assert!(s.c.consumer_group("g").unwrap().resolved_regexes.is_empty());
    s.check_replay();
}

#[test]
fn commits_at_an_older_epoch_are_accepted_for_partitions_still_held() {
    let mut s = Script::new();
    s.hb(join("a", &["t"]));
    s.hb(join("b", &["t"]));
    let ra = s.hb(beat("a", 1, &[(T, vec![0, 1, 2, 3])]));
    let kept = parts(&ra.assignment)[0].1.clone();
    s.hb(beat("a", 1, &[(T, kept.clone())]));
    let commit = |epoch: i32, p: i32| {
        GroupRequest::OffsetCommit(OffsetCommitRequest {
            group_id: "g".into(),
            generation_id: epoch,
            member_id: "a".into(),
            group_instance_id: None,
            retention_ms: -1,
            offsets: vec![OffsetToCommit {
                partition: TopicPartition {
                    topic: "t".into(),
                    partition: p,
                },
                offset: 10,
                leader_epoch: -1,
                metadata: None,
                unknown_partition: false,
            }],
            group_id_not_found_supported: true,
        })
    };
    // a is at epoch 2 now; a commit it made at epoch 1 for a partition it
    // still holds is accepted, one for a partition it gave up is not.
    let given_up = (0..4).find(|p| !kept.contains(p)).unwrap();
    assert_eq!(
        s.send(commit(1, kept[0])),
        GroupResponse::OffsetCommit(vec![(
            TopicPartition {
                topic: "t".into(),
                partition: kept[0]
            },
            ErrorCode::NONE
        )])
    );
    match s.send(commit(1, given_up)) {
        GroupResponse::OffsetCommit(v) => assert_eq!(v[0].1, ErrorCode::STALE_MEMBER_EPOCH),
        other => panic!("{other:?}"),
    }
    match s.send(commit(3, kept[0])) {
        GroupResponse::OffsetCommit(v) => assert_eq!(v[0].1, ErrorCode::STALE_MEMBER_EPOCH),
        other => panic!("{other:?}"),
    }
}

#[test]
fn describe_answers_group_id_not_found_for_classic_and_unknown_groups() {
    let mut s = Script::new();
    s.hb(join("a", &["t"]));
    match s.send(GroupRequest::ConsumerGroupDescribe(vec![
        "g".into(),
        "nope".into(),
    ])) {
        GroupResponse::ConsumerGroupDescribe(v) => {
            assert_eq!(v[0].error, ErrorCode::NONE);
            assert_eq!(
                (v[0].epoch, v[0].assignment_epoch, v[0].state.as_str()),
                (1, 1, "Stable")
            );
            assert_eq!(v[1].error, ErrorCode::GROUP_ID_NOT_FOUND);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_restart_replays_to_the_same_groups_and_rearms_sessions() {
    let mut s = Script::new();
    s.hb(join("a", &["t"]));
    s.hb(join("b", &["t"]));
    let mut fresh = Coordinator::new(config());
    for r in &s.records {
        fresh.replay(r);
    }
    fresh.loaded(s.now);
    assert_eq!(fresh.snapshot(), s.c.snapshot());
    assert_eq!(
        fresh.next_deadline().map(|d| d - s.now),
        Some(config().consumer_session_timeout_ms as i64)
            .min(Some(config().offsets_retention_check_interval_ms))
    );
}

fn batching() -> CoordinatorConfig {
    CoordinatorConfig {
        consumer_assignment_interval_ms: 100,
        ..config()
    }
}

fn target_epochs(records: &[Record]) -> usize {
    records
        .iter()
        .filter(|r| matches!(r, Record::ConsumerTargetEpoch { .. }))
        .count()
}

#[test]
fn joins_within_the_assignment_interval_share_one_target_computation_kip_1263() {
    // Kafka 4.3's group.consumer.assignment.interval.ms: a burst of joins is
    // assigned once, when the interval ends, not once per join.
    let mut s = Script::with(batching());
    let ra = s.hb(join("a", &["t"]));
    assert_eq!(
        parts(&ra.assignment),
        vec![(T, vec![0, 1, 2, 3])],
        "the first change: at once"
    );
    assert_eq!(target_epochs(&s.records), 1);
    s.now += 10;
    let rb = s.hb(join("b", &["t"]));
    s.now += 10;
    let rc = s.hb(join("c", &["t"]));
    assert_eq!(s.epoch(), 3);
    let g = s.c.consumer_group("g").unwrap();
    assert_eq!(
        g.assignment_epoch, 1,
        "no target computed within the interval"
    );
    // The newcomers have nothing yet and are told to come back soon.
    for r in [&rb, &rc] {
        assert_eq!(parts(&r.assignment), vec![]);
        assert_eq!(r.heartbeat_interval_ms, 50);
    }
    // The interval ends: one computation covers both joins.
    s.advance(100);
    assert_eq!(target_epochs(&s.records), 2);
    let g = s.c.consumer_group("g").unwrap();
    assert_eq!(g.assignment_epoch, 3);
    assert_eq!(g.targets.len(), 3);
    s.check_replay();
}

#[test]
fn a_change_after_a_quiet_interval_is_assigned_at_once() {
    let mut s = Script::with(batching());
    s.hb(join("a", &["t"]));
    s.now += 150;
    s.hb(join("b", &["t"]));
    assert_eq!(s.c.consumer_group("g").unwrap().assignment_epoch, 2);
    assert_eq!(target_epochs(&s.records), 2);
    assert_eq!(
        s.c.next_deadline().map(|d| d > s.now + 1000),
        Some(true),
        "no assignment timer left armed"
    );
}

mod budget;
mod disconnect;
mod handover;
mod migration;
mod stale_report;
