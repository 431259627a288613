"""What the ``vis-pipeline`` commands set up before they run: log lines and quiet decoders.

Shared by the run command (``vis_pipeline.cli``), the annotation subcommands and the Kafka
worker commands (``vis_pipeline.worker.cli``), so that neither CLI module imports the other's
internals.
"""

from __future__ import annotations

import argparse
import logging
import os

import cv2

from vis_pipeline.logs import LOG_FORMATS, formatter

#: periodic per-stream status lines, always INFO
status = logging.getLogger("vis.status")


def setup_logging(level: str, log_format: str = "text") -> None:
    """One line per log record at ``level`` (DEBUG, INFO, WARNING, ERROR; unknown: WARNING),
    as text or as a JSON object (``log_format``: ``text``, ``json``; see ``logs.py``); the
    status lines always; kafka-python's reconnect chatter only at DEBUG."""
    handler = logging.StreamHandler()
    handler.setFormatter(formatter(log_format))
    logging.basicConfig(
        level=getattr(logging, str(level).upper(), logging.WARNING), handlers=[handler]
    )
    logging.captureWarnings(log_format == "json")  # a Python warning is a log line too
    status.setLevel(logging.INFO)
    if logging.getLogger().level > logging.DEBUG:  # kafka-python logs each refused connection
        logging.getLogger("kafka").setLevel(logging.CRITICAL)


def quiet_decoder_logs() -> None:
    """FFmpeg/OpenCV print their own multi-line complaints; we report errors in one line."""
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)


def add_service_options(parser: argparse.ArgumentParser) -> None:
    """``--metrics-port`` and ``--log-format``: what a supervised process (run, worker) needs."""
    parser.add_argument(
        "--metrics-port",
        type=int,
        metavar="PORT",
        help="serve /metrics, /healthz and /readyz on PORT (= --set metrics.port=PORT; "
        "docs/operations.md)",
    )
    parser.add_argument(
        "--log-format",
        choices=LOG_FORMATS,
        default="text",
        help="text (default) or json: one JSON object per line with the stream and job ids",
    )


def service_overrides(args: argparse.Namespace) -> list[str]:
    """The config overrides the service options stand for."""
    port = getattr(args, "metrics_port", None)
    return [] if port is None else [f"metrics.port={port}"]
