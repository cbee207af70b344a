#!/usr/bin/python3
"""Live consumer of the cdc mode's pgbench runs (scripts/bench.sh): end-to-end lag per change.

Every change the pgbench script writes carries written_us, the writer's clock_timestamp() in
microseconds since the epoch. This reads TOPIC from its beginning (every partition assigned, no
group: nothing to wait for) and, for each record, takes the time it was received minus its
written_us. Both kinds of record carry it: kbridge's row JSON ("written_us":1700...) and
test_decoding's text (written_us[bigint]:1700...). Records without it (the end marker rows the
shell writes after pgbench) are counted apart, as unstamped.

Usage: cdc_lag.py BOOTSTRAP TOPIC READY EXPECT OUT TIMELINE
  READY     created once the consumer polls (start the capture after it)
  EXPECT    the shell writes the number of changes pgbench wrote here once pgbench ended; the
            consumer stops when it received that many stamped records, or when none came for
            IDLE seconds after the file appeared (BENCH_LAG_IDLE, default 60: the tool fell
            behind or lost changes; the counts then differ)
  OUT       one tab-separated line: received unstamped p50_s p99_s max_s first_written_us
            last_received_us (of a stamped record)
  TIMELINE  per second of the run (by written_us): second, changes, p99 and max lag in seconds

Run it with Debian's /usr/bin/python3 (python3-confluent-kafka).
"""
import os
import re
import sys
import time
from array import array

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

WRITTEN = re.compile(rb'written_us(?:"|\[bigint\]):(\d+)')


def quantile(sorted_values, q):
    if not sorted_values:
        return 0
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def main():
    boot, topic, ready, expect_file, out, timeline = sys.argv[1:7]
    idle_limit = float(os.environ.get("BENCH_LAG_IDLE", "60"))
    consumer = Consumer({
        "bootstrap.servers": boot,
        "group.id": "kbridge-bench-lag",  # required by the client; assign() joins no group
        "enable.auto.commit": False,
        # The broker answers a fetch at once when it has a record; without one it would hold an
        # empty fetch up to this long, and a record arriving meanwhile waits for the next fetch.
        "fetch.wait.max.ms": 10,
    })
    meta = consumer.list_topics(topic, timeout=15).topics.get(topic)
    if meta is None or meta.error is not None:
        sys.exit("topic %s not found" % topic)
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in meta.partitions])

    written = array("q")  # written_us of each change, in the order received
    lags = array("q")     # received minus written, microseconds
    unstamped = 0
    last_received = 0
    expect = None
    idle_since = time.monotonic()
    consumer.consume(1, 0.5)  # the first fetch is under way: the capture may start
    open(ready, "w").close()
    try:
        while True:
            messages = consumer.consume(1000, 0.05)
            now = time.time_ns() // 1000
            for m in messages:
                if m.error():
                    continue
                found = WRITTEN.search(m.value() or b"")
                if not found:
                    unstamped += 1
                    continue
                w = int(found.group(1))
                written.append(w)
                lags.append(now - w)
                last_received = now
                idle_since = time.monotonic()
            if expect is None and os.path.exists(expect_file):
                with open(expect_file) as f:
                    text = f.read().strip()
                if text:
                    expect = int(text)
                    idle_since = time.monotonic()
            if expect is not None:
                if len(lags) >= expect:
                    break
                if time.monotonic() - idle_since > idle_limit:
                    print("cdc_lag: %s: nothing for %.0f s, %d of %d changes received"
                          % (topic, idle_limit, len(lags), expect), file=sys.stderr)
                    break
    finally:
        consumer.close()

    first = min(written) if written else 0
    ordered = sorted(lags)
    with open(out, "w") as f:
        f.write("%d\t%d\t%.6f\t%.6f\t%.6f\t%d\t%d\n" % (
            len(lags), unstamped, quantile(ordered, 0.5) / 1e6, quantile(ordered, 0.99) / 1e6,
            (ordered[-1] if ordered else 0) / 1e6, first, last_received))
    seconds = {}
    for w, lag in zip(written, lags):
        seconds.setdefault((w - first) // 1000000, []).append(lag)
    with open(timeline, "w") as f:
        for s in sorted(seconds):
            v = sorted(seconds[s])
            f.write("%d\t%d\t%.6f\t%.6f\n" % (s, len(v), quantile(v, 0.99) / 1e6, v[-1] / 1e6))


if __name__ == "__main__":
    main()
