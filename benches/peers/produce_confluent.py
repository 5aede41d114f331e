"""Peer: confluent-kafka (Python binding of librdkafka), written the way its docs recommend: the
line is sent as is, keyed by business_id (like `lab produce`), produce() with poll(0) and a retry
when the local queue is full, flush at the end. Same batching knobs as `lab produce` where they
exist (linger.ms, batch.size, lz4, idempotence), so the difference is the language around it.

    produce_confluent.py FILE TOPIC BROKERS   → prints {"sent": N, "bytes": B, "delivered": D}
"""

import json
import sys

from confluent_kafka import Producer


def main(path, topic, brokers):
    delivered = 0
    failed = 0

    def on_delivery(err, _msg):
        nonlocal delivered, failed
        if err is None:
            delivered += 1
        else:
            failed += 1

    producer = Producer(
        {
            "bootstrap.servers": brokers,
            "enable.idempotence": True,
            "acks": "all",
            "compression.type": "lz4",
            "linger.ms": 20,
            "batch.size": 1000000,
            "queue.buffering.max.messages": 1000000,
            "queue.buffering.max.kbytes": 1048576,
        }
    )
    sent = 0
    size = 0
    with open(path, "rb") as f:
        for line in f:
            line = line.rstrip(b"\n")
            if not line:
                continue
            try:
                key = json.loads(line).get("business_id")
            except ValueError:
                key = None
            while True:
                try:
                    producer.produce(topic, value=line, key=key, on_delivery=on_delivery)
                    break
                except BufferError:
                    producer.poll(0.01)
            producer.poll(0)
            sent += 1
            size += len(line)
    producer.flush()
    print(json.dumps({"sent": sent, "bytes": size, "delivered": delivered, "failed": failed}))
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main(*sys.argv[1:4])
