//! Kafka destinations: each event one record on the destination's topic, produced with
//! `acks=all` by rskafka (a pure-Rust client of the Kafka protocol).
//!
//! The record's key is the agent id (events about no agent: the event kind), so one agent's
//! events stay in one partition, in order; its value is the event's JSON document, its
//! timestamp the event's time, and headers carry the event id, kind and schema for consumers
//! that route without parsing. A batch is one produce request per partition; a partition's
//! records count as delivered when the leader answered with their offsets.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use rskafka::client::partition::{Compression, PartitionClient, UnknownTopicHandling};
use rskafka::client::{Client, ClientBuilder};
use rskafka::record::Record;

use super::{Pending, Sent, all_failed};

/// Where and how.
pub(super) struct Target<'a> {
    pub brokers: &'a [String],
    pub topic: &'a str,
    pub timeout: Duration,
}

/// How long a topic's partition list is trusted before it is read again (partitions added to
/// a topic are used from then on).
const METADATA_TTL: Duration = Duration::from_secs(60);

/// A connected client with what it learnt: the topics' partitions and a client per partition
/// (each knows its leader), so that a batch costs its produce requests and nothing else.
struct Connection {
    client: Client,
    partitions:
        tokio::sync::Mutex<std::collections::HashMap<String, (std::time::Instant, Vec<i32>)>>,
    leaders: tokio::sync::Mutex<std::collections::HashMap<(String, i32), Arc<PartitionClient>>>,
}

impl Connection {
    async fn partitions(&self, topic: &str) -> Result<Vec<i32>, String> {
        let mut known = self.partitions.lock().await;
        if let Some((at, p)) = known.get(topic)
            && at.elapsed() < METADATA_TTL
        {
            return Ok(p.clone());
        }
        let partitions: Vec<i32> = self
            .client
            .list_topics()
            .await
            .map_err(|e| format!("{topic}: metadata: {}", super::error_chain(&e)))?
            .into_iter()
            .find(|x| x.name == topic)
            .map(|x| x.partitions.into_iter().collect())
            .ok_or_else(|| format!("topic {topic}: not on the cluster (create it first)"))?;
        if partitions.is_empty() {
            return Err(format!("topic {topic}: no partitions"));
        }
        known.insert(
            topic.to_owned(),
            (std::time::Instant::now(), partitions.clone()),
        );
        Ok(partitions)
    }

    async fn leader(
        &self,
        topic: &str,
        partition: i32,
    ) -> Result<Arc<PartitionClient>, rskafka::client::error::Error> {
        let key = (topic.to_owned(), partition);
        if let Some(pc) = self.leaders.lock().await.get(&key) {
            return Ok(pc.clone());
        }
        let pc = Arc::new(
            self.client
                .partition_client(topic, partition, UnknownTopicHandling::Error)
                .await?,
        );
        self.leaders.lock().await.insert(key, pc.clone());
        Ok(pc)
    }
}

/// Connections, one per destination setting, kept between batches; dropped on any error, so
/// the next batch connects (and learns the cluster) anew.
#[derive(Default)]
pub(crate) struct Producers {
    clients: tokio::sync::Mutex<std::collections::HashMap<String, Arc<Connection>>>,
}

impl Producers {
    async fn client(&self, t: &Target<'_>) -> Result<Arc<Connection>, String> {
        let key = t.brokers.join(",");
        if let Some(c) = self.clients.lock().await.get(&key) {
            return Ok(c.clone());
        }
        let backoff = rskafka::BackoffConfig {
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
            base: 2.0,
            deadline: Some(t.timeout),
        };
        let client = ClientBuilder::new(t.brokers.to_vec())
            .client_id(concat!("rampart/", env!("CARGO_PKG_VERSION")))
            .backoff_config(backoff)
            .build()
            .await
            .map_err(|e| format!("{}: {}", t.brokers.join(","), super::error_chain(&e)))?;
        let client = Arc::new(Connection {
            client,
            partitions: Default::default(),
            leaders: Default::default(),
        });
        let mut clients = self.clients.lock().await;
        // Destinations are few (at most 32); forget them all rather than grow.
        if clients.len() >= 64 {
            clients.clear();
        }
        clients.insert(key, client.clone());
        Ok(client)
    }

    async fn forget(&self, t: &Target<'_>) {
        self.clients.lock().await.remove(&t.brokers.join(","));
    }
}

/// A stable partition for a key: FNV-1a, so that a key keeps its partition across restarts
/// and replicas (while the topic's partition count stays).
fn partition_of(key: &[u8], partitions: &[i32]) -> i32 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    let n = partitions.len().max(1) as u64;
    partitions
        .get(usize::try_from(h % n).unwrap_or(0))
        .copied()
        .unwrap_or(0)
}

fn record(p: &Pending) -> Record {
    let e = &p.event;
    let key = e.agent.as_ref().map_or_else(
        || e.body.kind().as_bytes().to_vec(),
        |a| a.id.as_bytes().to_vec(),
    );
    let millis = i64::try_from(e.time.unix_timestamp_nanos() / 1_000_000).unwrap_or(0);
    let mut headers = BTreeMap::new();
    headers.insert("rampart-event-id".to_owned(), e.id.as_bytes().to_vec());
    headers.insert(
        "rampart-event-kind".to_owned(),
        e.body.kind().as_bytes().to_vec(),
    );
    headers.insert("rampart-schema".to_owned(), e.schema.as_bytes().to_vec());
    Record {
        key: Some(key),
        value: Some(e.to_json().into_bytes()),
        headers,
        timestamp: rskafka::chrono::DateTime::from_timestamp_millis(millis).unwrap_or_default(),
    }
}

/// Sends a batch; every event's outcome.
pub(super) async fn send(producers: &Producers, t: &Target<'_>, batch: Vec<Pending>) -> Vec<Sent> {
    match tokio::time::timeout(t.timeout, produce(producers, t, &batch)).await {
        Ok(Ok(per_event)) => {
            if per_event.iter().any(Result::is_err) {
                producers.forget(t).await;
            }
            batch
                .into_iter()
                .zip(per_event)
                .map(|(p, r)| (p.seq, p.attempts, r))
                .collect()
        }
        Ok(Err(e)) => {
            producers.forget(t).await;
            all_failed(batch, &e)
        }
        Err(_) => {
            producers.forget(t).await;
            all_failed(batch, &format!("{}: timed out", t.brokers.join(",")))
        }
    }
}

async fn produce(
    producers: &Producers,
    t: &Target<'_>,
    batch: &[Pending],
) -> Result<Vec<Result<(), String>>, String> {
    let client = producers.client(t).await?;
    let topic = t.topic;
    let partitions = client.partitions(topic).await?;
    // Records by partition, in seq order within each.
    let mut by_partition: BTreeMap<i32, Vec<usize>> = BTreeMap::new();
    let records: Vec<Record> = batch.iter().map(record).collect();
    for (i, r) in records.iter().enumerate() {
        let key = r.key.as_deref().unwrap_or_default();
        by_partition
            .entry(partition_of(key, &partitions))
            .or_default()
            .push(i);
    }
    let mut out: Vec<Result<(), String>> = vec![Ok(()); batch.len()];
    let sends = by_partition.into_iter().map(|(partition, idx)| {
        let client = client.clone();
        let recs: Vec<Record> = idx.iter().map(|i| records[*i].clone()).collect();
        async move {
            let r = async {
                let pc = client.leader(topic, partition).await?;
                pc.produce(recs, Compression::NoCompression).await
            }
            .await;
            (partition, idx, r)
        }
    });
    for (partition, idx, r) in futures_util::future::join_all(sends).await {
        if let Err(e) = r {
            let error = format!("{topic}/{partition}: {}", super::error_chain(&e));
            for i in idx {
                out[i] = Err(error.clone());
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_keeps_its_partition() {
        let parts = [0, 1, 2];
        let p = partition_of(b"agent-1", &parts);
        assert_eq!(p, partition_of(b"agent-1", &parts));
        // Keys spread over the partitions.
        let used: std::collections::BTreeSet<i32> = (0..64)
            .map(|i| partition_of(format!("agent-{i}").as_bytes(), &parts))
            .collect();
        assert_eq!(used.len(), 3);
        assert_eq!(partition_of(b"x", &[7]), 7);
    }
}
