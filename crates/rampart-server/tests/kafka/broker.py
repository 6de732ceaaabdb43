"""A real Kafka-protocol broker for the Kafka destination test: librdkafka's mock cluster
(three brokers), started through confluent-kafka (PyPI; its wheel carries librdkafka).

Prints `BOOTSTRAP host:port PARTITIONS n` once the cluster is up and the topic named on the
command line exists (with `--no-consume`, for `rampart bench events --kafka-brokers`, it then
only keeps the cluster up until stdin closes), then one JSON line per record a consumer reads from the topic
(partition, offset, key, headers, value, timestamp), until stdin closes.
"""

import json
import logging
import re
import sys
import threading

from confluent_kafka import Consumer, Producer

topic = sys.argv[1]
consume = "--no-consume" not in sys.argv[2:]
bootstrap = []


class Bootstrap(logging.Handler):
    """librdkafka logs the mock cluster's address when it starts it."""

    def emit(self, record):
        m = re.search(r"replaced with (\S+)", record.getMessage())
        if m:
            bootstrap.append(m.group(1))


log = logging.getLogger("mock")
log.addHandler(Bootstrap())
log.setLevel(logging.DEBUG)
# The producer owns the mock cluster: it lives as long as this process.
owner = Producer({"test.mock.num.brokers": 3, "bootstrap.servers": "unused:1"}, logger=log)
owner.poll(0.5)
if not bootstrap:
    sys.exit("the mock cluster did not say where it listens")
servers = bootstrap[0]
consumer = Consumer(
    {
        "bootstrap.servers": servers,
        "group.id": "rampart-test",
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        # The mock cluster does not take CreateTopics; a metadata request that may create
        # the topic does (with four partitions), and writes nothing to it.
        "allow.auto.create.topics": True,
    }
)
partitions = len(consumer.list_topics(topic, timeout=10).topics[topic].partitions)
print(f"BOOTSTRAP {servers} PARTITIONS {partitions}", flush=True)
done = threading.Event()
threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
if consume:
    consumer.subscribe([topic])
else:
    done.wait()
while consume and not done.is_set():
    m = consumer.poll(0.2)
    if m is None:
        continue
    if m.error():
        print(json.dumps({"error": str(m.error())}), flush=True)
        continue
    print(
        json.dumps(
            {
                "partition": m.partition(),
                "offset": m.offset(),
                "key": m.key().decode() if m.key() is not None else None,
                "headers": {k: v.decode() for k, v in (m.headers() or [])},
                "value": m.value().decode(),
                "timestamp": m.timestamp()[1],
            }
        ),
        flush=True,
    )
consumer.close()
