"""The seed's Kafka -> database consumer (../shared/seeds/004: insert each record, commit), with
python3-confluent-kafka and psycopg2 against PostgreSQL. Stops after --count records."""
import argparse
import json

import psycopg2
from confluent_kafka import Consumer


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--topic", required=True)
    p.add_argument("--dsn", required=True)
    p.add_argument("--table", required=True)
    p.add_argument("--count", type=int, required=True)
    a = p.parse_args()
    db = psycopg2.connect(a.dsn)
    cur = db.cursor()
    consumer = Consumer({"bootstrap.servers": a.bootstrap, "group.id": "seed-" + a.table,
                         "auto.offset.reset": "earliest"})
    consumer.subscribe([a.topic])
    done = 0
    while done < a.count:
        msg = consumer.poll(1.0)
        if msg is None or msg.error():
            continue
        row = json.loads(msg.value())
        cur.execute("INSERT INTO " + a.table + " (id, user_id, action, item, ts) VALUES (%s, %s, %s, %s, %s)",
                    (row["id"], row["user_id"], row["action"], row["item"], row["ts"]))
        db.commit()
        done += 1
    consumer.close()
    db.close()


if __name__ == "__main__":
    main()
