#!/usr/bin/python3
"""The baseline kbridge is measured against: the redis-py + kafka-python loop
from the article this project started from (shared/seeds/001_*.txt).

The loop is kept as written -- LRANGE of the whole list, one producer.send()
per item (value only, no key, kafka-python defaults), then LTRIM of what was
read.  The only additions, needed to run it as a benchmark, are:
  * connection settings from argv/env instead of localhost constants;
  * producer.flush() after each LRANGE batch, so the timing covers delivery
    (the original could LTRIM records that were still only in memory);
  * stop once the list is empty instead of spinning forever.

Usage: seed_redis_to_kafka.py [--bootstrap H:P,...] [--redis-port N]
                              [--key user_behavior] [--topic user_behavior_topic]
Env:   KAFKA_BROKERS, REDIS_HOST, REDIS_PORT, KAFKA_API_VERSION (e.g. 2.5.0)
Prints the number of records sent on stdout.

Run it with Debian's /usr/bin/python3 (python3-redis, python3-kafka).
"""
import argparse
import os
import sys

import redis
from kafka import KafkaProducer


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bootstrap", default=os.environ.get("KAFKA_BROKERS", "localhost:9092"))
    ap.add_argument("--redis-host", default=os.environ.get("REDIS_HOST", "localhost"))
    ap.add_argument("--redis-port", type=int, default=int(os.environ.get("REDIS_PORT", "6379")))
    ap.add_argument("--key", default="user_behavior")
    ap.add_argument("--topic", default="user_behavior_topic")
    # kafka-python probes broker versions by trial and error when api_version
    # is not given; pinning it skips the probing (librdkafka's mock cluster
    # speaks the 2.x protocol).  "auto" restores kafka-python's probing.
    ap.add_argument("--api-version", default=os.environ.get("KAFKA_API_VERSION", "2.5.0"))
    return ap.parse_args()


def main():
    args = parse_args()

    api_version = None
    if args.api_version != "auto":
        api_version = tuple(int(p) for p in args.api_version.split("."))

    # Connect to Redis
    redis_client = redis.Redis(host=args.redis_host, port=args.redis_port, db=0)

    # Initialise the Kafka producer
    producer = KafkaProducer(bootstrap_servers=args.bootstrap.split(","),
                             api_version=api_version)

    # Fetch the data from Redis
    def get_data_from_redis():
        return redis_client.lrange(args.key, 0, -1)

    # Push the data to Kafka
    def push_to_kafka(data):
        for item in data:
            producer.send(args.topic, value=item)

    # Main loop
    sent = 0
    while True:
        data = get_data_from_redis()
        if not data:
            break  # added: stop when the list is empty
        push_to_kafka(data)
        producer.flush()  # added: wait for delivery before trimming / timing
        # Remove the pushed data from Redis
        redis_client.ltrim(args.key, len(data), -1)
        sent += len(data)

    producer.close()
    print(sent)
    return 0


if __name__ == "__main__":
    sys.exit(main())
