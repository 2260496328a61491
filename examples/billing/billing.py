#!/usr/bin/env python3
"""Reference billing consumer for tms.jobs: freight per job revision, exactly once.

Reads the job topic with isolation.level=read_committed (the job processor
writes its events in Kafka transactions: an aborted transaction's events are
never seen), skips the commands (tms.command.*) and every event that is not
a completion, and for each completion (tms.job.completed.v1, revision 1) and
amendment (tms.job.amended.v1, revision 2, 3, ...) appends one row to a CSV
file:

    freight = loaded distance (km) x unit price (per tonne-km) x weight (t)

as the original system charged, rounded half up to the cent. The unit price
is the price table's for the job's (first loading station, last unloading
station), or its default row (*,*).

Exactly once: offsets are committed only after the rows of everything
consumed before them are written and fsynced, so a crash never loses a row;
after a crash the records since the last commit come again, and a revision
whose (job id, revision) is already in the file is not written twice. A row
torn by a crash in the middle of a write (no newline at the end of the
file) is cut off at start: its record was not committed, so it comes again.
Run one instance per output file: the file is what makes it idempotent.

Billing applies, per job, the highest revision: the rows of a job's earlier
revisions stay in the file (they are what was charged before) and the
latest replaces them. See docs/consumers.md.

Usage:
    python billing.py --brokers localhost:9092 --group billing \\
        --prices prices.csv --output freight.csv [--namespace NS] [--since 2026-12-01T00:00:00+08:00] \\
        [--until-idle 10]
"""

import argparse
import csv
import decimal
import json
import logging
import os
import signal
import sys
import time
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from confluent_kafka import OFFSET_END, Consumer, KafkaError, KafkaException, TopicPartition

COMPLETED = "tms.job.completed.v1"
AMENDED = "tms.job.amended.v1"
COMMAND_PREFIX = "tms.command."

COLUMNS = [
    "job_id", "revision", "external_ref", "vehicle", "loading_station", "unloading_station",
    "loaded_km", "weight_t", "price_per_tonne_km", "freight", "completed_at", "event_id",
]

CENT = Decimal("0.01")
decimal.getcontext().prec = 50  # exact for any distance, weight and price tms can carry

log = logging.getLogger("billing")


class Stop(Exception):
    """A record billing cannot charge from: stop rather than skip money."""


def load_prices(path):
    """Reads the price table: loading_station,unloading_station,price_per_tonne_km,
    one row per pair, and a default row *,* for every other pair."""
    prices, default = {}, None
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            price = Decimal(row["price_per_tonne_km"].strip())
            key = (row["loading_station"].strip(), row["unloading_station"].strip())
            if key == ("*", "*"):
                default = price
            else:
                prices[key] = price
    return prices, default


def open_output(path):
    """Opens the output for appending and returns it with the (job id,
    revision) pairs it already holds. A torn last row (a crash in the middle
    of a write) is cut off first."""
    done = set()
    if os.path.exists(path):
        with open(path, "rb+") as f:
            data = f.read()
            end = data.rfind(b"\n") + 1
            if end < len(data):
                log.warning("cutting off a torn last row of %d bytes: its record was not committed and comes again",
                            len(data) - end)
                f.truncate(end)
                f.flush()
                os.fsync(f.fileno())
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if header is not None and header != COLUMNS:
                raise Stop(f"{path} has the columns {header}, not {COLUMNS}")
            for row in reader:
                if row:
                    done.add((row[0], int(row[1])))
    out = open(path, "a", newline="", encoding="utf-8")
    if out.tell() == 0:
        csv.writer(out).writerow(COLUMNS)
        durable(out)
        # The file's entry in its directory must be durable too.
        d = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
        try:
            os.fsync(d)
        finally:
            os.close(d)
    return out, done


def durable(f):
    f.flush()
    os.fsync(f.fileno())


def freight_row(envelope, prices, default):
    """The CSV row of a completion or amendment."""
    d = envelope["data"]
    stops = sorted(d["stops"], key=lambda s: s["index"])
    loading = next(s["station_id"] for s in stops if s["kind"] == "loading")
    unloading = [s["station_id"] for s in stops if s["kind"] == "unloading"][-1]
    price = prices.get((loading, unloading), default)
    if price is None:
        raise Stop(f"no price for {loading} -> {unloading} and no default row (*,*) in the price table")
    loaded_km = Decimal(d["distance_m"]["loaded"]).scaleb(-3)
    weight_t = Decimal(d["cargo"]["weight_kg"]).scaleb(-3)
    freight = (loaded_km * price * weight_t).quantize(CENT, rounding=ROUND_HALF_UP)
    return [
        d["job_id"], d["revision"], d.get("external_ref", ""), d["vehicle"], loading, unloading,
        f"{loaded_km:f}", f"{weight_t:f}", f"{price:f}", f"{freight:f}", d["completed_at"], envelope["id"],
    ]


def since_ms(text):
    """An RFC 3339 time as epoch milliseconds, for offsets_for_times."""
    t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if t.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text}: give the time zone (Z or +08:00)")
    return int(t.timestamp() * 1000)


def parse(msg):
    """The CloudEvent a record carries; numbers with a fraction as Decimal,
    so that no amount goes through a binary float."""
    try:
        e = json.loads(msg.value(), parse_float=Decimal)
        if not isinstance(e, dict) or not isinstance(e.get("type"), str) or "id" not in e:
            raise ValueError("not a CloudEvent")
        return e
    except (ValueError, TypeError) as err:
        raise Stop(f"{msg.topic()}/{msg.partition()}@{msg.offset()}: {err}") from err


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--brokers", required=True, help="bootstrap servers, host:port[,host:port]")
    ap.add_argument("--topic", default="tms.jobs", help="the job topic, without the namespace (default tms.jobs)")
    ap.add_argument("--namespace", default="", help="tms's TMS_KAFKA_NAMESPACE, if any: the topic is then <namespace>.tms.jobs")
    ap.add_argument("--group", required=True, help="the consumer group id (its committed offsets are billing's progress)")
    ap.add_argument("--prices", required=True, help="price table CSV: loading_station,unloading_station,price_per_tonne_km")
    ap.add_argument("--output", required=True, help="the CSV file to append a row per job revision to")
    ap.add_argument("--since", type=since_ms, metavar="RFC3339",
                    help="a group without committed offsets starts at the first record written at or after this time "
                         "(Kafka's record timestamps: when tms wrote it, not the event's time); default: the beginning")
    ap.add_argument("--until-idle", type=float, default=0, metavar="SECONDS",
                    help="exit once nothing arrived for this long after partitions were assigned (for tests); 0: run until stopped")
    ap.add_argument("--batch", type=int, default=500, help="records per poll: each batch is written, fsynced, then committed")
    ap.add_argument("--session-timeout-ms", type=int, default=10000,
                    help="how soon a crashed instance's partitions go to another (default 10 s)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="billing: %(levelname)s %(message)s", stream=sys.stderr)

    topic = f"{args.namespace}.{args.topic}" if args.namespace else args.topic
    prices, default = load_prices(args.prices)
    out, done = open_output(args.output)
    log.info("%s: %d revisions already billed in %s", topic, len(done), args.output)

    consumer = Consumer({
        "bootstrap.servers": args.brokers,
        "group.id": args.group,
        "isolation.level": "read_committed",  # never the output of an aborted transaction
        "enable.auto.commit": False,  # committed below, after the rows are durable
        "auto.offset.reset": "earliest",
        "session.timeout.ms": args.session_timeout_ms,
        "client.id": "tms-billing-example",
    })
    assigned_at = []

    def on_assign(c, partitions):
        if args.since is not None:
            # Only where the group has no committed offset: once it has
            # one, that is where billing resumes.
            fresh = [TopicPartition(p.topic, p.partition, args.since)
                     for p in c.committed(partitions, timeout=30) if p.offset < 0]
            found = {(p.topic, p.partition): p.offset for p in c.offsets_for_times(fresh, timeout=30)} if fresh else {}
            for p in partitions:
                if (p.topic, p.partition) in found:
                    off = found[(p.topic, p.partition)]
                    p.offset = off if off >= 0 else OFFSET_END  # nothing written since: from the end
            c.assign(partitions)
        assigned_at.append(time.monotonic())
        log.info("assigned %s", [(p.partition, p.offset) for p in partitions])

    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    signal.signal(signal.SIGINT, lambda *_: stopping.append(True))
    consumer.subscribe([topic], on_assign=on_assign)

    written = skipped = duplicates = 0
    last = None
    writer = csv.writer(out)
    try:
        while not stopping:
            msgs = consumer.consume(num_messages=args.batch, timeout=0.5)
            now = time.monotonic()
            if not msgs:
                start = last or (assigned_at[0] if assigned_at else None)
                if args.until_idle and start is not None and now - start >= args.until_idle:
                    break
                continue
            last = now
            rows, next_offsets = [], {}
            for msg in msgs:
                if msg.error():
                    if msg.error().fatal():
                        raise KafkaException(msg.error())
                    if msg.error().code() != KafkaError._PARTITION_EOF:
                        log.warning("%s", msg.error())
                    continue
                next_offsets[(msg.topic(), msg.partition())] = msg.offset() + 1
                e = parse(msg)
                if e["type"].startswith(COMMAND_PREFIX) or e["type"] not in (COMPLETED, AMENDED):
                    skipped += 1
                    continue
                row = freight_row(e, prices, default)
                key = (row[0], row[1])
                if key in done:
                    duplicates += 1  # written before a crash, its offset not committed
                    continue
                done.add(key)
                rows.append(row)
            if rows:
                writer.writerows(rows)
                durable(out)
                written += len(rows)
            if next_offsets:
                consumer.commit(offsets=[TopicPartition(t, p, o) for (t, p), o in next_offsets.items()],
                                asynchronous=False)
    except Stop as err:
        log.error("%s: stopping", err)
        return 2
    finally:
        out.close()
        consumer.close()
        log.info("%d rows written, %d revisions already billed skipped, %d other records skipped",
                 written, duplicates, skipped)
    return 0


if __name__ == "__main__":
    sys.exit(main())
