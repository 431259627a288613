"""Run the vis pipeline: decode -> keyframe Mask R-CNN -> propagate + track -> sinks.

    python run_pipeline.py --config configs/demo.yaml          # or: vis-pipeline --config ...
    python run_pipeline.py --config configs/demo.yaml --source video.mp4 --output out/ \\
        --set keyframes.interval=5 --set detector.score_threshold=0.6
    python run_pipeline.py --config configs/batch.yaml --source 'videos/*.mp4'   # one output each
    python run_pipeline.py --config configs/live.yaml --source rtsp://cam1/s --source rtsp://cam2/s
    vis-pipeline export --format coco --input out/demo/sample.jsonl --output exp/  # docs/exports.md
    vis-pipeline review out/demo/sample.jsonl --video data/sample/sample.mp4 -o review/
    vis-pipeline corrections out/demo/sample.jsonl -o sample.corrections.json --reject 7
    vis-pipeline adapt out/demo/sample.jsonl --video data/sample/sample.mp4 \\
        --corrections sample.corrections.json --model demo -o models/sample_demo.pt
    vis-pipeline train --pennfudan PennFudanPed --classes person --out models/mine.pt
    vis-pipeline consume --topic vis.frames --bootstrap 127.0.0.1:9092   # docs/kafka.md

``vis-pipeline --help`` lists every subcommand (``SUBCOMMANDS``); without one it is ``run``.

Each stream has a reader thread feeding a bounded queue; one processing loop serves the
streams round-robin (so a busy stream cannot starve another), batches pending keyframes of
all streams into one detector call, and hands results in order to a writer thread. Files
apply back-pressure (the reader waits, nothing is dropped); live streams keep only their
newest ``live.buffer_frames`` frames (older ones are dropped and counted). Offline jobs
checkpoint each stream, so the same command after a crash (even SIGKILL) resumes after the
last written frame and finished videos are skipped.

Exit codes: 0 done; 2 bad input, config or weights (other inputs of a batch are still
processed); 3 a sink could not deliver; 130 interrupted (SIGINT/SIGTERM) after flushing.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from pathlib import Path

import yaml

from streams.sinks import SinkError
from streams.sources import SourceError
from vis.config import ConfigError, to_mapping
from vis.detection.factory import DetectorConfig
from vis.detection.models import WeightsError
from vis.detection.precomputed import PrecomputedError
from vis_pipeline.cli_common import (
    add_service_options,
    quiet_decoder_logs,
    service_overrides,
    setup_logging,
)
from vis_pipeline.config import load_config
from vis_pipeline.resume import ResumeError
from vis_pipeline.runner import run
from vis_pipeline.summary import EXIT_INPUT, EXIT_INTERRUPTED, EXIT_OK, EXIT_SINK

#: every subcommand of ``vis-pipeline``, with the line ``--help`` shows for it
SUBCOMMANDS = {
    "run": "run the pipeline on videos, folders or streams (the default: no subcommand)",
    "export": "a run's JSONL -> COCO, CVAT, MOTS, ... annotation files (docs/exports.md)",
    "review": "a static review page (HTML + CSV) of a run, worst tracks first (docs/review.md)",
    "corrections": "record accept / reject / wrong-class decisions about a run's tracks",
    "adapt": "fine-tune a model on a run's own frames, as a reviewer decided them",
    "train": "fine-tune a Mask R-CNN on COCO-format and Penn-Fudan data (was tools/train.py)",
    "submit": "write one job per source to a Kafka jobs topic (docs/scaling.md)",
    "worker": "process the jobs as a member of a Kafka consumer group",
    "jobs": "list the jobs of a jobs topic and their states",
    "consume": "read a vis.frames Kafka topic, print a summary (= python -m streams.kafka)",
}
ANNOTATION_COMMANDS = ("export", "review", "corrections", "adapt")
WORKER_COMMANDS = ("submit", "worker", "jobs")  # handled by vis_pipeline/worker/cli.py
#: the repository's own tools (a checkout, not the installed package)
REPO_TOOLS = (
    ("python -m tools.demo", "the demos end to end, with an embedded Kafka broker"),
    ("python tools/make_sample.py", "write the synthetic sample video and its ground truth"),
    ("python tools/train_demo.py", "train the shipped demo model on synthetic scenes"),
)


def _epilog() -> str:
    width = max(len(name) for name in SUBCOMMANDS) + 2
    lines = ["subcommands (vis-pipeline COMMAND --help for each):"]
    lines += [f"  {name.ljust(width)}{line}" for name, line in SUBCOMMANDS.items()]
    lines += ["", "in a checkout of the repository:"]
    lines += [f"  {cmd}: {line}" for cmd, line in REPO_TOOLS]
    lines += [
        "",
        "Every config key is documented in docs/configuration.md.",
        "Exit codes: 0 ok, 2 bad input/config/weights, 3 sink delivery failed, 130 interrupted.",
    ]
    return "\n".join(lines)


def _default_prog() -> str:
    """``run_pipeline.py`` when run as that script (as it always said), else ``vis-pipeline``."""
    return (
        "run_pipeline.py" if os.path.basename(sys.argv[0]) == "run_pipeline.py" else "vis-pipeline"
    )


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    """The run command's parser; its help ends with every subcommand, a line each."""
    p = argparse.ArgumentParser(
        prog=prog or _default_prog(),
        description=__doc__.split("\n\n")[0],
        epilog=_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", "-c", help="YAML config file (e.g. configs/demo.yaml)")
    p.add_argument(
        "--source",
        "-s",
        action="append",
        metavar="URI",
        help="video file, folder of images, folder of videos, glob ('videos/*.mp4'), "
        "rtsp://, http://, udp:// stream or camera index; repeat for several "
        "streams (overrides source:/sources:)",
    )
    p.add_argument("--stream-id", help="id of the stream in the results (default: file name)")
    p.add_argument(
        "--output", "-o", help="output folder for JSONL and overlay video (overrides output:)"
    )
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key, e.g. --set keyframes.interval=5 (repeatable; VALUE is YAML)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--restart",
        action="store_true",
        help="ignore checkpoints and finished markers in --output: redo every input",
    )
    p.add_argument("--summary-json", metavar="FILE", help="also write the run summary as JSON")
    p.add_argument(
        "--print-config", action="store_true", help="print the effective config and exit"
    )
    p.add_argument("--log-level", default="WARNING", help="DEBUG, INFO, WARNING (default), ERROR")
    add_service_options(p)
    return p


def main(argv: list[str] | None = None) -> int:
    """The command line: parse, run, print the summary; returns the exit code. A first
    argument naming one of ``SUBCOMMANDS`` runs that subcommand instead (``run``: the same
    as none)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    command = argv[0] if argv else None
    if command in ANNOTATION_COMMANDS:
        return _subcommand(command, argv[1:])
    if command in WORKER_COMMANDS:  # vis-pipeline submit | worker | jobs
        from vis_pipeline.worker.cli import main as worker_main  # noqa: PLC0415

        return worker_main(argv)
    if command == "train":  # sets up its own logging (INFO progress lines)
        from vis_train.cli import main as train_main  # noqa: PLC0415

        return train_main(argv[1:], prog="vis-pipeline train")
    if command == "consume":
        from streams.kafka.cli import main as consume_main  # noqa: PLC0415

        return consume_main(argv[1:], prog="vis-pipeline consume")
    if command == "run":
        return _run(argv[1:], prog="vis-pipeline run")
    return _run(argv)


def _run(argv: list[str], prog: str | None = None) -> int:
    args = build_parser(prog).parse_args(argv)
    setup_logging(args.log_level, args.log_format)
    quiet_decoder_logs()
    try:
        cfg = load_config(
            args.config,
            [*args.overrides, *service_overrides(args)],
            sources=args.source,
            output=args.output,
            stream_id=args.stream_id,
        )
    except ValueError as exc:  # ConfigError, and values no setting can hold
        print(f"error: invalid config: {exc}", file=sys.stderr)
        return EXIT_INPUT
    if args.print_config:
        print(yaml.safe_dump(to_mapping(cfg), sort_keys=False))
        print(precision_comment(cfg.detector))
        return EXIT_OK

    stop = threading.Event()
    interrupted: dict[str, str | None] = {"signal": None}

    def on_signal(signum: int, _frame: object) -> None:
        interrupted["signal"] = signal.Signals(signum).name
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        summary = run(cfg, progress=not args.no_progress, stop=stop, restart=args.restart)
    except (ConfigError, SourceError, WeightsError, PrecomputedError, ResumeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    except SinkError as exc:  # e.g. the Kafka broker is down at start
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_SINK
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if interrupted["signal"] and summary.exit_code == 0:
        summary.exit_code = EXIT_INTERRUPTED
        summary.error = f"interrupted by {interrupted['signal']}: processed frames were written"
    print(summary.render())
    if args.summary_json:
        Path(args.summary_json).write_text(json.dumps(summary.to_json(), indent=2) + "\n")
    if summary.error:
        print(f"error: {summary.error}", file=sys.stderr)
    return summary.exit_code


def precision_comment(detector: DetectorConfig) -> str:
    """YAML comment lines naming the CPU's features and the precision the detector's engine
    is told to run at, beside the one it would pick by itself."""
    from vis.detection.engines import engine_default_precision  # noqa: PLC0415
    from vis.detection.precision import cpu_features  # noqa: PLC0415

    cpu = cpu_features()
    lines = [f"# CPU: {cpu.describe()}"]
    if detector.type == "precomputed":
        return "\n".join(lines)
    told = detector.precision
    if detector.precision == "bf16" and not cpu.bf16:
        told += " (no bf16 in this CPU's hardware: emulated by torch, f32 in openvino)"
    lines.append(
        f"# detector: {detector.engine} told to run at {told}; its own default on this "
        f"CPU: {engine_default_precision(detector.engine)}"
    )
    return "\n".join(lines)


def _subcommand(name: str, argv: list[str]) -> int:
    setup_logging("WARNING")
    quiet_decoder_logs()
    if name == "export":
        from vis_pipeline.export_cli import main as export_main  # noqa: PLC0415

        return export_main(argv)
    if name == "corrections":
        from vis_pipeline.corrections_cli import main as corrections_main  # noqa: PLC0415

        return corrections_main(argv)
    if name == "adapt":
        from vis_pipeline.adapt_cli import main as adapt_main  # noqa: PLC0415

        return adapt_main(argv)
    from vis_pipeline.review_cli import main as review_main  # noqa: PLC0415

    return review_main(argv)


if __name__ == "__main__":
    sys.exit(main())
