"""The demos, end to end: embedded Kafka broker -> pipeline -> read back.

    python -m tools.demo [run_pipeline.py options, e.g. --set keyframes.interval=1]
    python -m tools.demo --config configs/street.yaml --source ~/.cache/vis-pipeline/vtest.avi

Starts the tansu broker on a free loopback port, runs a config (default ``configs/demo.yaml``,
the shipped synthetic sample video; ``configs/street.yaml``: real pedestrians through the
shipped people model, scripts/street_demo.sh) with the JSONL, overlay-video and Kafka
sinks, then reads the topic back with the consumer helper and checks it holds every frame of
the JSONL file. Production configs point ``sinks.kafka.bootstrap_servers`` at a real cluster
instead.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from devtools.broker import EmbeddedBroker
from streams.kafka import FrameReader, TrackTimelines, format_summary
from streams.sinks import jsonl_path
from streams.sources import stream_id_for
from vis_pipeline import load_config
from vis_pipeline.cli import main as run_cli

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str]) -> int:
    logging.getLogger("kafka").setLevel(logging.CRITICAL)
    ap = argparse.ArgumentParser(add_help=False)
    ap.add_argument("--config", "-c", default=str(ROOT / "configs/demo.yaml"))
    ap.add_argument("--source", "-s", default=None)
    ap.add_argument("--output", "-o", default=None)
    ap.add_argument("--stream-id", default=None)
    ap.add_argument("--set", dest="sets", action="append", default=[])
    known, _ = ap.parse_known_args(argv)
    with EmbeddedBroker() as broker:
        print(f"embedded Kafka broker (tansu) on {broker.bootstrap_servers}", flush=True)
        args = [
            "--config",
            known.config,
            "--restart",
            "--set",
            f"sinks.kafka={{bootstrap_servers: '{broker.bootstrap_servers}'}}",
            *argv,
        ]
        code = run_cli(args)
        if code != 0:
            return code
        # the config the run used (valid: the run accepted it), to find its JSONL file
        cfg = load_config(
            known.config,
            known.sets,
            sources=[known.source] if known.source else None,
            output=known.output,
            stream_id=known.stream_id,
        )
        stream_id = cfg.stream_id or stream_id_for(cfg.source or "stream")
        jsonl = jsonl_path(cfg.output, stream_id)
        expected = [json.loads(line) for line in jsonl.read_text().splitlines()]
        timelines = TrackTimelines()
        read = []
        with FrameReader("vis.frames", bootstrap_servers=broker.bootstrap_servers) as reader:
            for frame in reader.frames(idle_s=3.0, timeout_s=60.0):
                read.append(frame.record)
                timelines.add(frame.record)
            summary = format_summary(reader.assembler)
        same = read == expected
        print(
            f"\nread back {len(read)} frame records from topic vis.frames "
            f"({'identical to' if same else 'DIFFERENT from'} {jsonl})"
        )
        print(summary)
        for t in timelines.timelines()[:10]:
            print(
                f"  track {t.track_id} ({t.label}): frames {t.first_frame}-{t.last_frame}, "
                f"{t.frame_count} frames"
            )
        return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
