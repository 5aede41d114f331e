"""Does a Kafka-protocol broker keep the outcome of transactions across a restart?

No lab code: a confluent-kafka transactional copier (`in` -> `out`, batches of 100 records, the
consumer's offsets sent to each transaction) keeps running while the broker is restarted on its
data N times. Afterwards it counts `out` with isolation.level read_uncommitted and read_committed.
A broker that keeps transactions whole shows every input key once in both; one that loses
transaction markers hides committed records from read_committed readers.

    python txn_across_restart.py BOOTSTRAP 'RESTART COMMAND' [RESTARTS]

Prints one JSON line: input records, distinct keys seen each way, records each way.
"""

import json
import subprocess
import sys
import threading
import time
import uuid

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

bootstrap, restart = sys.argv[1], sys.argv[2]
restarts = int(sys.argv[3]) if len(sys.argv) > 3 else 3
run = uuid.uuid4().hex[:8]
src, dst, group = f"repro-{run}-in", f"repro-{run}-out", f"repro-{run}-copier"
N = 20_000

admin = AdminClient({"bootstrap.servers": bootstrap})
for f in admin.create_topics([NewTopic(src, 1, 1), NewTopic(dst, 1, 1)]).values():
    f.result()
p = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 5})
for i in range(N):
    p.produce(src, key=str(i), value=b"x" * 100)
p.flush(60)

done = threading.Event()


def copier():
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False,
                  "auto.offset.reset": "earliest", "isolation.level": "read_committed"})
    c.subscribe([src])
    tp = Producer({"bootstrap.servers": bootstrap, "transactional.id": group, "linger.ms": 5})
    tp.init_transactions(60)
    copied = 0
    while copied < N:
        msgs = [m for m in c.consume(100, 1.0) if not m.error()]
        if not msgs:
            continue
        try:
            tp.begin_transaction()
            for m in msgs:
                tp.produce(dst, key=m.key(), value=m.value())
            tp.send_offsets_to_transaction(c.position(c.assignment()), c.consumer_group_metadata(), 60)
            tp.commit_transaction(60)
            copied += len(msgs)
            time.sleep(0.05)  # a teaching pace: the copy spans every restart
        except KafkaException as e:
            # Abort and read the batch again from the last committed offsets.
            if e.args[0].txn_requires_abort() or e.args[0].retriable():
                try:
                    tp.abort_transaction(60)
                except KafkaException:
                    pass
                committed = c.committed(c.assignment(), 60)
                for t in committed:
                    c.seek(TopicPartition(t.topic, t.partition, max(t.offset, 0)))
            else:
                raise
    done.set()


t = threading.Thread(target=copier, daemon=True)
t.start()
for _ in range(restarts):
    time.sleep(3)
    subprocess.run(restart, shell=True, check=True, stdout=subprocess.DEVNULL)
t.join(600)


def count(isolation):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"repro-{run}-{isolation}",
                  "auto.offset.reset": "earliest", "isolation.level": isolation, "enable.partition.eof": True})
    c.assign([TopicPartition(dst, 0, 0)])
    keys, records = set(), 0
    while True:
        m = c.poll(5.0)
        if m is None or (m.error() and m.error().code() == -191):  # _PARTITION_EOF
            break
        if not m.error():
            keys.add(m.key())
            records += 1
    c.close()
    return len(keys), records


uk, ur = count("read_uncommitted")
ck, cr = count("read_committed")
print(json.dumps({"input": N, "copier_finished": done.is_set(), "restarts": restarts, "read_uncommitted_keys": uk,
                  "read_uncommitted_records": ur, "read_committed_keys": ck, "read_committed_records": cr}))
