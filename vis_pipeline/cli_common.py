"""What the ``vis-pipeline`` commands set up before they run: log lines and quiet decoders.

Shared by the run command (``vis_pipeline.cli``), the annotation subcommands and the Kafka
worker commands (``vis_pipeline.worker.cli``), so that neither CLI module imports the other's
internals.
"""

from __future__ import annotations

import logging
import os

import cv2

#: periodic per-stream status lines, always INFO
status = logging.getLogger("vis.status")


def setup_logging(level: str) -> None:
    """One line per log record at ``level`` (DEBUG, INFO, WARNING, ERROR; unknown: WARNING);
    the status lines always; kafka-python's reconnect chatter only at DEBUG."""
    logging.basicConfig(
        level=getattr(logging, str(level).upper(), logging.WARNING),
        format="%(levelname)s %(name)s: %(message)s",
    )
    status.setLevel(logging.INFO)
    if logging.getLogger().level > logging.DEBUG:  # kafka-python logs each refused connection
        logging.getLogger("kafka").setLevel(logging.CRITICAL)


def quiet_decoder_logs() -> None:
    """FFmpeg/OpenCV print their own multi-line complaints; we report errors in one line."""
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
