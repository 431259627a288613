"""The consumer CLI: read a ``vis.frame`` topic, print a per-stream summary (also
``vis-pipeline consume``, with the same options).

    python -m streams.kafka --topic vis.frames --bootstrap 127.0.0.1:9092 \\
        [--group G] [--from earliest|latest|offset:N|timestamp:MS] [--max-records N] \\
        [--timeout S] [--jsonl OUT]

Exit codes: 0 read (whatever was found), 2 bad arguments or no connection.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from streams.kafka.config import KafkaSecurity
from streams.kafka.consumer import FrameReader, parse_start
from streams.kafka.records import FrameAssembler


def format_summary(assembler: FrameAssembler) -> str:
    """A per-stream table of frames, tracks, missing, duplicates and malformed records."""
    rows = [("stream", "frames", "first", "last", "missing", "tracks", "duplicates", "malformed")]
    for sid in sorted(assembler.streams):
        c = assembler.streams[sid]
        rows.append(
            (
                sid,
                str(c.frames),
                str(c.first_frame if c.first_frame is not None else "-"),
                str(c.last_frame if c.last_frame is not None else "-"),
                str(c.missing),
                str(len(c.track_ids)),
                str(c.duplicates),
                str(c.malformed),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in rows]
    lines.append(
        f"records {assembler.records}, malformed {assembler.malformed}, duplicates "
        f"{assembler.duplicates}, incomplete split frames {assembler.incomplete}"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None, prog: str = "python -m streams.kafka") -> int:
    ap = argparse.ArgumentParser(
        prog=prog, description="Read vis.frame records from a Kafka topic."
    )
    ap.add_argument("--topic", default="vis.frames")
    ap.add_argument("--bootstrap", default="127.0.0.1:9092", help="host:port[,host:port]")
    ap.add_argument("--group", default=None, help="consumer group (default: no group)")
    ap.add_argument("--partitions", default=None, help="comma-separated partitions (no group)")
    ap.add_argument(
        "--from",
        dest="start",
        default="earliest",
        help="earliest | latest | offset:N | timestamp:MS",
    )
    ap.add_argument("--max-records", type=int, default=None)
    ap.add_argument(
        "--timeout",
        type=float,
        default=5.0,
        help="stop after this many seconds without a new record",
    )
    ap.add_argument("--no-dedup", action="store_true", help="keep repeated frames")
    ap.add_argument("--no-validate-masks", action="store_true", help="skip RLE checks")
    ap.add_argument("--jsonl", default=None, help="write frames as JSON lines ('-': stdout)")
    ap.add_argument("--security-protocol", default="PLAINTEXT")
    ap.add_argument("--sasl-mechanism", default=None)
    ap.add_argument("--sasl-username", default=None)
    ap.add_argument(
        "--sasl-password-env",
        default=None,
        help="NAME of the environment variable holding the SASL password",
    )
    ap.add_argument("--ssl-cafile", default=None)
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if not args.verbose:
        logging.getLogger("kafka").setLevel(logging.CRITICAL)
    try:
        parse_start(args.start)
        security = KafkaSecurity(
            security_protocol=args.security_protocol,
            sasl_mechanism=args.sasl_mechanism,
            sasl_plain_username=args.sasl_username,
            sasl_password_env=args.sasl_password_env,
            ssl_cafile=args.ssl_cafile,
        )
        partitions = [int(p) for p in args.partitions.split(",")] if args.partitions else None
        reader = FrameReader(
            args.topic,
            bootstrap_servers=args.bootstrap,
            group_id=args.group,
            partitions=partitions,
            start=args.start,
            dedup=not args.no_dedup,
            validate_masks=not args.no_validate_masks,
            security=security,
        )
    except Exception as exc:  # noqa: BLE001 - report any setup error in one line
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out = None
    try:
        if args.jsonl:
            out = sys.stdout if args.jsonl == "-" else open(args.jsonl, "w", encoding="utf-8")  # noqa: SIM115
        for frame in reader.frames(max_records=args.max_records, idle_s=args.timeout):
            if out is not None:
                out.write(json.dumps(frame.record, separators=(",", ":")) + "\n")
    except KeyboardInterrupt:
        pass
    finally:
        if out is not None and out is not sys.stdout:
            out.close()
        reader.close()
    print(format_summary(reader.assembler), file=sys.stderr if args.jsonl == "-" else sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
