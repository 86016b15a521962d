//! The versions Cohort answers: exactly the ones `decode` and `encode` translate.
//! ApiVersions is generated from this table, so advertising and handling cannot
//! drift apart.

use kafka_protocol::messages::ApiKey;

/// (api key, lowest advertised, highest advertised).
pub const SUPPORTED: &[(ApiKey, i16, i16)] = &[
    // Kafka 4.x advertises Produce from v0 but rejects v0-2 (KAFKA-18659): librdkafka
    // before 2.11.1 stops compressing when Produce v0 is missing from the list.
    (ApiKey::Produce, 0, 13),
    (ApiKey::Fetch, 4, 18),
    (ApiKey::ListOffsets, 1, 11),
    (ApiKey::Metadata, 0, 13),
    (ApiKey::FindCoordinator, 0, 6),
    (ApiKey::ApiVersions, 0, 5),
    (ApiKey::CreateTopics, 2, 7),
    (ApiKey::DeleteTopics, 1, 6),
    (ApiKey::InitProducerId, 0, 5),
    (ApiKey::OffsetForLeaderEpoch, 2, 4),
    (ApiKey::DeleteRecords, 0, 2),
    (ApiKey::DescribeConfigs, 1, 4),
    (ApiKey::DescribeLogDirs, 1, 5),
    (ApiKey::DescribeProducers, 0, 0),
    (ApiKey::AlterConfigs, 0, 2),
    (ApiKey::IncrementalAlterConfigs, 0, 1),
    (ApiKey::CreatePartitions, 0, 3),
    (ApiKey::DescribeCluster, 0, 2),
    (ApiKey::JoinGroup, 0, 9),
    (ApiKey::SyncGroup, 0, 5),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 0, 5),
    (ApiKey::OffsetCommit, 2, 10),
    (ApiKey::OffsetFetch, 1, 10),
    (ApiKey::ListGroups, 0, 5),
    (ApiKey::DescribeGroups, 0, 6),
    (ApiKey::DeleteGroups, 0, 3),
    (ApiKey::OffsetDelete, 0, 0),
    (ApiKey::ConsumerGroupHeartbeat, 0, 1),
    (ApiKey::ConsumerGroupDescribe, 0, 1),
];

/// The lowest version actually accepted, where it differs from the advertised one.
pub fn lowest_accepted(key: ApiKey) -> Option<i16> {
    match key {
        ApiKey::Produce => Some(3),
        _ => None,
    }
}

/// The version whose layout the codec uses for this one. Kafka sometimes bumps
/// a version for meaning alone: ListOffsets v11 is v10 on the wire and only adds
/// the EARLIEST_PENDING_UPLOAD timestamp (-6, KIP-1023), which the codec need
/// not know about. Where only one direction changed, the other keeps the older
/// layout: ApiVersions v5 answers as v4, DescribeLogDirs v5 and DeleteGroups v3
/// ask as v4 and v2.
pub fn layout(key: ApiKey, version: i16) -> i16 {
    match (key, version) {
        (ApiKey::ListOffsets, 11) => 10,
        (ApiKey::ApiVersions, 5) => 4,
        (ApiKey::DescribeLogDirs, 5) => 4,
        (ApiKey::DeleteGroups, 3) => 2,
        _ => version,
    }
}

/// Requests whose layout the codec does not know: `newer` reads them.
pub fn hand_request(key: ApiKey, version: i16) -> bool {
    matches!(
        (key, version),
        (ApiKey::ApiVersions, 5) | (ApiKey::OffsetCommit, 10) | (ApiKey::OffsetFetch, 10)
    )
}

/// Answers whose layout the codec does not know: `newer` writes them.
pub fn hand_response(key: ApiKey, version: i16) -> bool {
    matches!(
        (key, version),
        (ApiKey::OffsetCommit, 10)
            | (ApiKey::OffsetFetch, 10)
            | (ApiKey::DescribeLogDirs, 5)
            | (ApiKey::DeleteGroups, 3)
    )
}

/// Whether a request at this key and version is one we translate.
pub fn accepts(key: ApiKey, version: i16) -> bool {
    SUPPORTED.iter().any(|&(k, min, max)| {
        k == key && version >= lowest_accepted(key).unwrap_or(min) && version <= max
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_advertised_range_is_within_what_the_codec_knows() {
        for &(key, min, max) in SUPPORTED {
            let known = key.valid_versions();
            let lowest = lowest_accepted(key).unwrap_or(min);
            let by_hand = hand_request(key, max) && hand_response(key, max);
            assert!(
                lowest >= known.min && (by_hand || layout(key, max) <= known.max),
                "{key:?} {min}-{max} vs {known}"
            );
            for v in lowest..=max {
                if !by_hand && !hand_request(key, v) {
                    assert!(layout(key, v) <= known.max, "{key:?} v{v} request");
                }
                if !by_hand && !hand_response(key, v) {
                    assert!(layout(key, v) <= known.max, "{key:?} v{v} answer");
                }
            }
        }
    }
}
