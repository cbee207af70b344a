"""Report of scripts/bench.sh: medians over the repetitions, then the ratios
against the targets. Printed, never asserted.

    report.py redis    RESULTS.tsv N PY_N REPEAT BUILD
    report.py postgres RESULTS.tsv N N5 REPEAT BUILD     (N5 = 0: not run)
    report.py poison   RESULTS.tsv N N_ALL REPEAT BUILD

RESULTS.tsv has one line per measurement (scripts/bench.sh record_result):
    tool rep records seconds rss_kb delivered rc left
where left is what the source still holds afterwards ("-": not applicable).
"""
import statistics
import sys


def load(path):
    rows = []
    with open(path) as f:
        for line in f:
            tool, rep, recs, secs, rss, delivered, rc, left = line.rstrip("\n").split("\t")
            rows.append(dict(tool=tool, rep=int(rep), recs=int(recs), secs=float(secs),
                             rss_mb=int(rss) / 1024.0, delivered=int(delivered), rc=int(rc),
                             left=left))
    return rows


def ok(r):
    return r["rc"] == 0 and r["delivered"] == r["recs"] and r["left"] in ("0", "-")


def print_runs(rows, left_label):
    print("runs:")
    for r in rows:
        flags = []
        if r["rc"] != 0: flags.append("EXIT %d" % r["rc"])
        if r["delivered"] != r["recs"]: flags.append("DELIVERED %d != %d" % (r["delivered"], r["recs"]))
        if r["left"] not in ("0", "-"): flags.append("%s %s" % (left_label, r["left"]))
        print("  %-12s #%d  %8d rec  %8.3f s  %10.0f rec/s  %7.1f MB  %s"
              % (r["tool"], r["rep"], r["recs"], r["secs"], r["recs"] / r["secs"], r["rss_mb"],
                 ", ".join(flags) or "ok"))


def summarize(rows, tools):
    summary = {}
    for tool in tools:
        good = [r for r in rows if r["tool"] == tool and ok(r)]
        if good:
            summary[tool] = dict(runs=len(good), recs=good[0]["recs"],
                                 secs=statistics.median(r["secs"] for r in good),
                                 rate=statistics.median(r["recs"] / r["secs"] for r in good),
                                 rss=statistics.median(r["rss_mb"] for r in good),
                                 rss_max=max(r["rss_mb"] for r in good))
    return summary


def print_summary(summary, tools, width=12):
    print("%-*s %5s %9s %9s %12s %13s"
          % (width, "tool", "runs", "records", "seconds", "records/s", "peak RSS MB"))
    for tool in tools:
        s = summary.get(tool)
        if s:
            print("%-*s %5d %9d %9.3f %12.0f %13.1f"
                  % (width, tool, s["runs"], s["recs"], s["secs"], s["rate"], s["rss"]))
        else:
            print("%-*s %5s %9s %9s %12s %13s" % (width, tool, 0, "-", "-", "FAILED", "-"))


def count_label(n):
    """1000000 -> 1M, 50000 -> 50k, anything else as is."""
    if n % 1000000 == 0:
        return "%dM" % (n // 1000000)
    if n % 1000 == 0:
        return "%dk" % (n // 1000)
    return str(n)


def report_redis(path, n, py_n, repeat, build):
    rows = load(path)
    tools = ("kbridge", "kcat", "kbridge-stream", "kbridge-cluster", "python-seed")
    print()
    print("== kbridge bench: redis list -> kafka (N=%d, python N=%d, repeats=%s, kbridge build=%s)"
          % (n, py_n, repeat, build))
    print()
    print_runs(rows, "LEFT IN REDIS")
    summary = summarize(rows, tools)
    print()
    print_summary(summary, tools)
    print("(medians over successful runs; a run counts when it exited 0, the topic's high watermarks")
    print(" sum to the records sent and the Redis list is empty)")
    print()
    kb, kc, pyr = summary.get("kbridge"), summary.get("kcat"), summary.get("python-seed")
    if kb and kc:
        print("kbridge vs kcat -P:     %.2f× (target ≥ 0.7×)" % (kb["rate"] / kc["rate"]))
    else:
        print("kbridge vs kcat -P:     n/a (a tool failed)")
    if kb and pyr:
        note = "" if pyr["recs"] == kb["recs"] else "  [rates; python ran on %d records]" % pyr["recs"]
        print("kbridge vs seed python: %.0f× (target ≥ 40×)%s" % (kb["rate"] / pyr["rate"], note))
    else:
        print("kbridge vs seed python: n/a (a tool failed)")
    if kb:
        print("kbridge peak RSS:       %.0f MB (target ≤ 64 MB; max over runs %.0f MB)" % (kb["rss"], kb["rss_max"]))
    st, cl = summary.get("kbridge-stream"), summary.get("kbridge-cluster")
    if st and kc:
        print("stream vs kcat -P:      %.2f× (target ≥ 0.6×)" % (st["rate"] / kc["rate"]))
    if st and kb:
        print("stream vs redis_list:   %.2f× (no target)" % (st["rate"] / kb["rate"]))
    if cl and kb:
        print("list on a Cluster node vs one server: %.2f× (target ≥ 0.9×)" % (cl["rate"] / kb["rate"]))
    print()
    print("notes: kbridge reads from Redis (LLEN checked 0 afterwards); kcat -P reads the same events,")
    print("keyed by user_id, from a local file with enable.idempotence=true acks=all. The seed loop is")
    print("the article's code as written: no keys, kafka-python defaults (acks=1), plus a flush per LRANGE.")


def report_postgres(path, n, n5, repeat, build):
    rows = load(path)
    tools = ["kbridge", "psql|kcat"] + (["kbridge-5x"] if n5 else [])
    print()
    print("== kbridge bench: postgres table -> kafka (N=%d, 5x N=%s, repeats=%s, kbridge build=%s)"
          % (n, n5 or "skipped", repeat, build))
    print()
    print_runs(rows, "LEFT")
    summary = summarize(rows, tools)
    print()
    print_summary(summary, tools)
    print("(medians over successful runs; a run counts when it exited 0 and the topic's high")
    print(" watermarks sum to the table's row count)")
    print()
    kb, base, big = summary.get("kbridge"), summary.get("psql|kcat"), summary.get("kbridge-5x")
    if kb and base:
        print("kbridge vs psql COPY | kcat -P: %.2f× (target ≥ 1.2×)" % (kb["rate"] / base["rate"]))
    else:
        print("kbridge vs psql COPY | kcat -P: n/a (a tool failed)")
    small = "%.0f MB" % kb["rss"] if kb else "n/a (failed)"
    if not n5:
        large = "not run (BENCH_PG_BIG=0)"
    else:
        large = "%.0f MB" % big["rss"] if big else "n/a (failed)"
    extra = "; max over %s runs %.0f MB" % (count_label(n), kb["rss_max"]) if kb and kb["runs"] > 1 else ""
    print("kbridge peak RSS at %s: %s, at %s: %s (target ≤ 64 MB%s)"
          % (count_label(n), small, count_label(n5) if n5 else "5x", large, extra))
    print()
    print("notes: kbridge: postgres_table source, mode bulk, keyed by the primary key (id), idempotent")
    print("producer, acks=all. Baseline: psql -c \"COPY (SELECT id, row_to_json(t) FROM t) TO STDOUT\"")
    print("| kcat -P -K '\\t' -X enable.idempotence=true -X acks=all (same keys and values), timed as a")
    print("whole; its peak RSS is the larger of psql's and kcat's.")


def report_sinks(path, n, py_n, repeat, build):
    rows = load(path)
    tools = ["kbridge-insert", "kcat|psql", "kbridge-upsert", "kbridge-joined", "python-seed"]
    tools += [t for t in ("kbridge-durable", "python-durable", "mysql-insert", "kcat|mariadb",
                          "mysql-upsert", "sqlite-insert", "kcat|sqlite3")
              if any(r["tool"] == t for r in rows)]
    print()
    print("== kbridge bench: kafka -> postgres table (N=%d, python N=%d, repeats=%s, kbridge build=%s)"
          % (n, py_n, repeat, build))
    print()
    print_runs(rows, "LEFT")
    summary = summarize(rows, tools)
    print()
    print_summary(summary, tools, width=15)
    print("(medians over successful runs; a run counts when it exited 0 and the table holds one row")
    print(" per record)")
    print()
    ins, base, ups, joined, pyr, ins_durable, py_durable = (
        summary.get(t) for t in ("kbridge-insert", "kcat|psql", "kbridge-upsert", "kbridge-joined",
                                 "python-seed", "kbridge-durable", "python-durable"))

    def ratio(label, a, b, target, note=""):
        if a and b:
            print("%-34s %.2f× (target ≥ %s)%s" % (label, a["rate"] / b["rate"], target, note))
        else:
            print("%-34s n/a (a tool failed)" % label)

    ratio("kbridge insert vs kcat | psql:", ins, base, "0.9×")
    ratio("kbridge upsert (half present):", ups, base, "0.5×")
    if joined:
        print("%-34s %.2f× (no target; + the group's initial rebalance)"
              % ("kbridge insert as a group member:", joined["rate"] / base["rate"] if base else 0))
    note = "  [rates; python ran on %d records]" % pyr["recs"] if pyr and ins and pyr["recs"] != ins["recs"] else ""
    ratio("kbridge insert vs seed python:", ins, pyr, "200×", note)
    if "python-durable" in tools:
        ratio("  the same, durable PostgreSQL:", ins_durable, py_durable, "200×",
              "  [fsync and synchronous_commit on, one run each]")
    if ins:
        print("kbridge peak RSS (insert):         %.0f MB" % ins["rss"])
    if "mysql-insert" in tools:
        my_ins, my_base, my_ups, lite_ins, lite_base = (
            summary.get(t) for t in ("mysql-insert", "kcat|mariadb", "mysql-upsert",
                                     "sqlite-insert", "kcat|sqlite3"))
        ratio("mysql_table insert vs LOAD DATA:", my_ins, my_base, "0.9×",
              "  [kcat | mariadb LOAD DATA LOCAL INFILE]")
        ratio("mysql_table upsert (half present):", my_ups, my_base, "0.5×")
        ratio("sqlite_table insert vs .import:", lite_ins, lite_base, "0.9×",
              "  [kcat | sqlite3 .import]")
        for label, t in (("mysql_table", my_ins), ("sqlite_table", lite_ins)):
            if t:
                print("%-34s %.0f MB" % (label + " peak RSS (insert):", t["rss"]))
    print()
    print("notes: kbridge consumes JSON with join_group: false (every partition, no rebalance to wait")
    print("for; offsets committed to a new group per run); kbridge-joined is the same insert as a group")
    print("member. The sink writes with its default 2 connections (the 32 partitions split between")
    print("them). The baseline reads the same records as CSV (kcat -C -e) into psql \\copy, timed as")
    print("a whole.")
    print("The seed loop inserts and commits one record at a time.")


def report_poison(path, n, n_all, repeat, build):
    rows = load(path)
    kinds = [("kbridge-insert", None, "clean, insert"),
             ("kbridge-ins-1%", 100000, "1% action null, insert"),
             ("kbridge-ups-1%", 100000, "1% action null, upsert"),
             ("kbridge-chk-1%", None, "1% CHECK violated, insert"),
             ("kbridge-ins-100%", 10000, "100% action null, insert"),
             ("kbridge-ups-100%", 10000, "100% action null, upsert")]
    rounds = [("", "durable defaults")]
    if any(r["tool"].endswith("-fast") for r in rows):
        rounds.append(("-fast", "fsync off"))
    tools = [k + suffix for suffix, _ in rounds for k, _, _ in kinds]
    print()
    print("== kbridge bench: refused records -> postgres table + dead letter (N=%d, all-refused N=%d,"
          " repeats=%s, kbridge build=%s)" % (n, n_all, repeat, build))
    print()
    print_runs(rows, "LEFT")
    summary = summarize(rows, tools)
    print()
    print_summary(summary, tools, width=22)
    print("(medians over successful runs; a run counts when it exited 0 and every record is a row")
    print(" or a dead letter, exactly once)")
    for suffix, label in rounds:
        print()
        print("PostgreSQL with %s:" % label)
        plain = summary.get("kbridge-insert" + suffix)
        for kind, target, what in kinds[1:]:
            s = summary.get(kind + suffix)
            if not s:
                print("  %-28s n/a (failed)" % what)
                continue
            line = "  %-28s %10.0f rec/s" % (what, s["rate"])
            if plain:
                line += "  %.2f× the clean insert's %.0f rec/s" % (s["rate"] / plain["rate"], plain["rate"])
            if target:
                line += "  (target ≥ %d rec/s)" % target
            print(line)
    print()


def main(argv):
    mode = argv[1]
    if mode == "redis":
        report_redis(argv[2], int(argv[3]), int(argv[4]), argv[5], argv[6])
    elif mode == "sinks":
        report_sinks(argv[2], int(argv[3]), int(argv[4]), argv[5], argv[6])
    elif mode == "poison":
        report_poison(argv[2], int(argv[3]), int(argv[4]), argv[5], argv[6])
    elif mode == "postgres":
        report_postgres(argv[2], int(argv[3]), int(argv[4]), argv[5], argv[6])
    else:
        sys.exit("report.py: unknown mode %r" % mode)


if __name__ == "__main__":
    main(sys.argv)
