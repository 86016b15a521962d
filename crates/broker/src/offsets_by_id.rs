//! OffsetCommit and OffsetFetch from v10 name topics by id. The coordinator
//! keys offsets by name, as Kafka's does, so the broker turns ids into names on
//! the way in and names back into ids on the way out, as Kafka's request
//! handler does. An id no topic has answers UNKNOWN_TOPIC_ID for each of its
//! partitions and never reaches the coordinator; a committed topic that has
//! since been deleted has no id and is left out of a fetch-everything answer.

use crate::{Broker, ClientInfo, Reply};
use cohort_types::api::{Response, UnknownTopicId};
use cohort_types::group::{GroupRequest, GroupResponse};
use cohort_types::{TopicId, TopicPartition};
use std::collections::HashMap;
use std::sync::Arc;

/// Adds one partition of an unknown id, grouped by (group, id).
fn add_unknown(unknown: &mut Vec<UnknownTopicId>, group: usize, topic_id: TopicId, partition: i32) {
    match unknown
        .iter_mut()
        .find(|u| u.group == group && u.topic_id == topic_id)
    {
        Some(u) => u.partitions.push(partition),
        None => unknown.push(UnknownTopicId {
            group,
            topic_id,
            partitions: vec![partition],
        }),
    }
}

impl Broker {
    pub(crate) fn group_request_by_topic_id(
        self: &Arc<Self>,
        request: GroupRequest,
        ids: Vec<TopicId>,
        client: &ClientInfo,
    ) -> Reply {
        let mut names: HashMap<String, TopicId> = HashMap::new();
        let mut unknown = Vec::new();
        let mut ids = ids.into_iter();
        let mut resolve =
            |tp: &mut TopicPartition, group: usize, unknown: &mut Vec<UnknownTopicId>| -> bool {
                let Some(id) = ids.next() else { return false };
                match self.topics.read().get_by_id(&id) {
                    Some(t) => {
                        tp.topic = t.name.clone();
                        names.insert(t.name.clone(), id);
                        true
                    }
                    None => {
                        add_unknown(unknown, group, id, tp.partition);
                        false
                    }
                }
            };
        let request = match request {
            GroupRequest::OffsetCommit(mut c) => {
                c.offsets
                    .retain_mut(|o| resolve(&mut o.partition, 0, &mut unknown));
                if c.offsets.is_empty() {
                    // Nothing left for the coordinator: Kafka answers at once.
                    return Reply::Now(Response::GroupByTopicId {
                        response: GroupResponse::OffsetCommit(Vec::new()),
                        ids: names,
                        unknown,
                    });
                }
                GroupRequest::OffsetCommit(c)
            }
            GroupRequest::OffsetFetch(mut f) => {
                for (index, (_, partitions)) in f.groups.iter_mut().enumerate() {
                    if let Some(partitions) = partitions {
                        partitions.retain_mut(|tp| resolve(tp, index, &mut unknown));
                    }
                }
                GroupRequest::OffsetFetch(f)
            }
            other => return self.group_request(other, client),
        };
        let broker = self.clone();
        let with_ids = move |response: Response| match response {
            Response::Group(response) => {
                let mut ids = names;
                // A fetch of everything names topics no id was asked for.
                if let GroupResponse::OffsetFetch(groups) = &response {
                    let topics = broker.topics.read();
                    for f in groups.iter().flat_map(|g| &g.partitions) {
                        if !ids.contains_key(&f.partition.topic) {
                            if let Some(t) = topics.get(&f.partition.topic) {
                                ids.insert(t.name.clone(), t.id);
                            }
                        }
                    }
                }
                Response::GroupByTopicId {
                    response,
                    ids,
                    unknown,
                }
            }
            other => other,
        };
        match self.group_request(request, client) {
            Reply::Now(r) => Reply::Now(with_ids(r)),
            Reply::Later(fut) => Reply::Later(Box::pin(async move { with_ids(fut.await) })),
            Reply::Nothing => Reply::Nothing,
        }
    }
}
