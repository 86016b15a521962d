//! ListGroups, DescribeGroups, DeleteGroups.

use crate::classic::GroupState;
use crate::records::Record;
use crate::{Coordinator, Out};
use cohort_types::group::{DescribedGroup, DescribedMember, ListGroupsRequest, ListGroupsResponse, ListedGroup};
use cohort_types::ErrorCode;

impl Coordinator {
    pub(crate) fn list_groups(&self, r: ListGroupsRequest) -> ListGroupsResponse {
        let groups = self
            .groups
            .values()
            .filter(|g| !g.is(GroupState::Dead))
            .filter(|g| r.states.is_empty() || r.states.iter().any(|s| s.eq_ignore_ascii_case(g.state.name())))
            .filter(|_| r.types.is_empty() || r.types.iter().any(|t| t.eq_ignore_ascii_case("classic")))
            .map(|g| ListedGroup {
                group_id: g.group_id.clone(),
                protocol_type: g.protocol_type.clone().unwrap_or_default(),
                state: g.state.name().to_string(),
                group_type: "classic".into(),
            })
            .collect();
        ListGroupsResponse { error: ErrorCode::NONE, groups }
    }

    pub(crate) fn describe_groups(&self, ids: Vec<String>) -> Vec<DescribedGroup> {
        ids.into_iter()
            .map(|id| match self.groups.get(&id) {
                None => DescribedGroup {
                    error: ErrorCode::NONE,
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
                            metadata: if stable { m.metadata_for(&protocol) } else { Default::default() },
                            assignment: m.assignment.clone(),
                        })
                        .collect();
                    DescribedGroup {
                        error: ErrorCode::NONE,
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

    pub(crate) fn delete_groups(&mut self, ids: Vec<String>, out: &mut Out) -> Vec<(String, ErrorCode)> {
        ids.into_iter()
            .map(|id| {
                let error = match self.groups.get(&id) {
                    None => ErrorCode::GROUP_ID_NOT_FOUND,
                    Some(g) if g.is(GroupState::Dead) => ErrorCode::GROUP_ID_NOT_FOUND,
                    Some(g) if !g.is(GroupState::Empty) => ErrorCode::NON_EMPTY_GROUP,
                    Some(_) => {
                        self.timers.cancel_group(&id);
                        self.emit(out, Record::GroupTombstone { group_id: id.clone() });
                        ErrorCode::NONE
                    }
                };
                (id, error)
            })
            .collect()
    }
}
