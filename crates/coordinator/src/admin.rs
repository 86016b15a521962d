//! ListGroups, DescribeGroups, DeleteGroups.

use crate::classic::GroupState;
use crate::records::Record;
use crate::{Coordinator, Out};
use cohort_types::group::{
    DescribedConsumerGroup, DescribedConsumerMember, DescribedGroup, DescribedMember,
    ListGroupsRequest, ListGroupsResponse, ListedGroup,
};
use cohort_types::ErrorCode;
use cohort_types::TopicId;

impl Coordinator {
    pub(crate) fn list_groups(&self, r: ListGroupsRequest) -> ListGroupsResponse {
        let groups = self
            .groups
            .values()
            .filter(|g| !g.is(GroupState::Dead))
            .filter(|g| {
                r.states.is_empty()
                    || r.states
                        .iter()
                        .any(|s| s.eq_ignore_ascii_case(g.state.name()))
            })
            .filter(|_| {
                r.types.is_empty() || r.types.iter().any(|t| t.eq_ignore_ascii_case("classic"))
            })
            .map(|g| ListedGroup {
                group_id: g.group_id.clone(),
                protocol_type: g.protocol_type.clone().unwrap_or_default(),
                state: g.state.name().to_string(),
                group_type: "classic".into(),
            });
        let consumer = self
            .consumer_groups
            .values()
            .filter(|g| {
                r.states.is_empty() || r.states.iter().any(|s| s.eq_ignore_ascii_case(g.state()))
            })
            .filter(|_| {
                r.types.is_empty() || r.types.iter().any(|t| t.eq_ignore_ascii_case("consumer"))
            })
            .map(|g| ListedGroup {
                group_id: g.group_id.clone(),
                protocol_type: "consumer".into(),
                state: g.state().to_string(),
                group_type: "consumer".into(),
            });
        let mut groups: Vec<ListedGroup> = groups.chain(consumer).collect();
        groups.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        ListGroupsResponse {
            error: ErrorCode::NONE,
            groups,
        }
    }

    pub(crate) fn describe_groups(&self, ids: Vec<String>) -> Vec<DescribedGroup> {
        // A group this API cannot describe (none, or a consumer-protocol group,
        // which ConsumerGroupDescribe describes) is GROUP_ID_NOT_FOUND with
        // Kafka's message; the wire edge turns that into the bare "Dead" answer
        // that versions before 6 give.
        ids.into_iter()
            .map(|id| match self.groups.get(&id) {
                None => DescribedGroup {
                    error: ErrorCode::GROUP_ID_NOT_FOUND,
                    error_message: Some(if self.consumer_groups.contains_key(&id) {
                        format!("Group {id} is not a classic group.")
                    } else {
                        format!("Group {id} not found.")
                    }),
                    group_id: id,
                    state: GroupState::Dead.name().into(),
                    protocol_type: String::new(),
                    protocol_data: String::new(),
                    members: vec![],
                },
                Some(g) => {
                    // Metadata only in Stable, as Kafka; assignments always.
                    let stable = g.is(GroupState::Stable);
                    let protocol = g.protocol_name.clone().unwrap_or_default();
                    let members = g
                        .join_order
                        .iter()
                        .filter_map(|m| g.members.get(m))
                        .map(|m| DescribedMember {
                            member_id: m.member_id.clone(),
                            group_instance_id: m.group_instance_id.clone(),
                            client_id: m.client_id.clone(),
                            client_host: m.client_host.clone(),
                            metadata: if stable {
                                m.metadata_for(&protocol)
                            } else {
                                Default::default()
                            },
                            assignment: m.assignment.clone(),
                        })
                        .collect();
                    DescribedGroup {
                        error: ErrorCode::NONE,
                        error_message: None,
                        group_id: id,
                        state: g.state.name().into(),
                        protocol_type: g.protocol_type.clone().unwrap_or_default(),
                        protocol_data: if stable { protocol } else { String::new() },
                        members,
                    }
                }
            })
            .collect()
    }

    pub(crate) fn delete_groups(
        &mut self,
        ids: Vec<String>,
        out: &mut Out,
    ) -> Vec<(String, ErrorCode)> {
        ids.into_iter()
            .map(|id| {
                if let Some(g) = self.consumer_groups.get(&id) {
                    let error = if g.members.is_empty() {
                        self.timers.cancel_group(&id);
                        self.emit(
                            out,
                            Record::ConsumerGroupTombstone {
                                group_id: id.clone(),
                            },
                        );
                        ErrorCode::NONE
                    } else {
                        ErrorCode::NON_EMPTY_GROUP
                    };
                    return (id, error);
                }
                let error = match self.groups.get(&id) {
                    None => ErrorCode::GROUP_ID_NOT_FOUND,
                    Some(g) if g.is(GroupState::Dead) => ErrorCode::GROUP_ID_NOT_FOUND,
                    Some(g) if !g.is(GroupState::Empty) => ErrorCode::NON_EMPTY_GROUP,
                    Some(_) => {
                        self.timers.cancel_group(&id);
                        self.emit(
                            out,
                            Record::GroupTombstone {
                                group_id: id.clone(),
                            },
                        );
                        ErrorCode::NONE
                    }
                };
                (id, error)
            })
            .collect()
    }
}

impl Coordinator {
    pub(crate) fn consumer_group_describe(&self, ids: Vec<String>) -> Vec<DescribedConsumerGroup> {
        let name_of: std::collections::BTreeMap<TopicId, &String> =
            self.topics.iter().map(|(n, (id, _))| (*id, n)).collect();
        let named = |a: &cohort_assign::server::Assignment| -> Vec<(TopicId, String, Vec<i32>)> {
            a.iter()
                .filter_map(|(t, ps)| {
                    name_of
                        .get(t)
                        .map(|n| (*t, (*n).clone(), ps.iter().copied().collect()))
                })
                .collect()
        };
        ids.into_iter()
            .map(|id| match self.consumer_groups.get(&id) {
                None if id.is_empty() => {
                    DescribedConsumerGroup::error(&id, ErrorCode::INVALID_GROUP_ID)
                }
                None => {
                    let msg = if self.groups.contains_key(&id) {
                        format!("Group {id} is not a consumer group.")
                    } else {
                        format!("Group {id} not found.")
                    };
                    DescribedConsumerGroup {
                        error_message: Some(msg),
                        ..DescribedConsumerGroup::error(&id, ErrorCode::GROUP_ID_NOT_FOUND)
                    }
                }
                Some(g) => DescribedConsumerGroup {
                    error: ErrorCode::NONE,
                    error_message: None,
                    group_id: id.clone(),
                    state: g.state().to_string(),
                    epoch: g.epoch,
                    assignment_epoch: g.assignment_epoch,
                    assignor_name: g.preferred_assignor(&self.config.consumer_assignors[0]),
                    members: g
                        .members
                        .values()
                        .map(|m| DescribedConsumerMember {
                            member_id: m.member_id.clone(),
                            instance_id: m.instance_id.clone(),
                            rack_id: m.rack_id.clone(),
                            member_epoch: m.member_epoch,
                            client_id: m.client_id.clone(),
                            client_host: m.client_host.clone(),
                            subscribed_topic_names: m
                                .subscribed_topic_names
                                .iter()
                                .cloned()
                                .collect(),
                            subscribed_topic_regex: m.subscribed_topic_regex.clone(),
                            assignment: named(&m.assigned),
                            target_assignment: named(
                                &g.targets.get(&m.member_id).cloned().unwrap_or_default(),
                            ),
                            classic: m.uses_classic_protocol(),
                        })
                        .collect(),
                },
            })
            .collect()
    }
}
