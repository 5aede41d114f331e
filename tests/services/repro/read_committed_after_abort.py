"""Does a read_committed fetch that starts past an aborted transaction get the producer's later
records?

No lab code: one transactional producer writes to a one-partition topic, in transactions, 5
records (committed), 3 (aborted), 2 and 4 (committed): offsets 0-4, marker 5, 6-8 aborted, marker
9, 10-11, marker 12, 13-16, marker 17. Then read_committed readers start at offsets 0, 3, 6 and
12 and print the offsets they get. Kafka gives every reader the committed records at or after its
start (from 12: 13-16): a fetch lists only the aborted transactions that end at or after the
fetch's offset. A broker that lists the aborted transaction of offset 6 to a fetch from 12 makes
the client drop the producer's batches after it, since the abort marker is never in that fetch.

    python read_committed_after_abort.py BOOTSTRAP

Prints one JSON line: the offsets each reader got, and the same for a second producer that never
aborted (the control).
"""

import json
import sys
import time

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic


def run(bootstrap, name, plan):
    topic = f"repro-abort-{name}-{int(time.time() * 1000)}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result()
    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": topic})
    producer.init_transactions()
    for n, commit in plan:
        producer.begin_transaction()
        for _ in range(n):
            producer.produce(topic, b"x", partition=0)
        producer.flush()
        (producer.commit_transaction if commit else producer.abort_transaction)()
    got = {}
    for start in [0, 3, 6, 12]:
        reader = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": "repro",
                "isolation.level": "read_committed",
                "enable.partition.eof": True,
            }
        )
        reader.assign([TopicPartition(topic, 0, start)])
        offsets = []
        while True:
            m = reader.poll(5)
            if m is None or m.error():
                break
            offsets.append(m.offset())
        reader.close()
        got[start] = offsets
    return got


if __name__ == "__main__":
    bootstrap = sys.argv[1]
    print(
        json.dumps(
            {
                "with_abort": run(bootstrap, "abort", [(5, True), (3, False), (2, True), (4, True)]),
                "without_abort": run(bootstrap, "control", [(5, True), (2, True), (4, True)]),
            }
        )
    )
