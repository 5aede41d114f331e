"""Peer: the producer the seed system's classic lab uses — kafka-python, written the way such labs
write it: json.loads every line, send json.dumps(obj) as the value, flush at the end.

    produce_kafka_python.py FILE TOPIC BROKERS   → prints {"sent": N, "bytes": B}
"""

import json
import sys

from kafka import KafkaProducer


def main(path, topic, brokers):
    producer = KafkaProducer(bootstrap_servers=brokers)
    sent = 0
    size = 0
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                obj = json.loads(line)
            except ValueError:
                continue  # classic labs skip what they cannot parse
            value = json.dumps(obj).encode("utf-8")
            producer.send(topic, value=value)
            sent += 1
            size += len(value)
    producer.flush()
    producer.close()
    print(json.dumps({"sent": sent, "bytes": size}))


if __name__ == "__main__":
    main(*sys.argv[1:4])
