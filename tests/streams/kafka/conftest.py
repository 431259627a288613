"""Fixtures for the Kafka tests: a real tansu broker on loopback and realistic FrameResults.

Contract: ``broker`` is one broker for the whole session (tests use their own topics via
``topic``); ``fresh_broker`` is a broker of the test's own, for tests that kill it.
``make_results`` builds FrameResults with real masks from the synthetic scene generator.
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Iterator

import numpy as np
import pytest

from devtools.broker import EmbeddedBroker
from streams.kafka import ConsumedFrame, FrameReader
from vis_eval.synthetic import CLASS_NAMES, SceneConfig, render_sequence
from vis.types import Detections, FrameResult

LABELS = ["background"] + [CLASS_NAMES[i] for i in sorted(CLASS_NAMES)]


@pytest.fixture(autouse=True)
def _quiet_kafka_logs() -> Iterator[None]:
    """kafka-python logs every refused connection at ERROR; keep test output readable."""
    logger = logging.getLogger("kafka")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    yield
    logger.setLevel(level)


@pytest.fixture(scope="session")
def broker() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker() as b:
        yield b


@pytest.fixture
def fresh_broker() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker() as b:
        yield b


@pytest.fixture
def topic(request: pytest.FixtureRequest) -> str:
    """A topic name no other test uses."""
    return f"t.{request.node.name[:40]}.{uuid.uuid4().hex[:8]}".replace("[", "_").replace("]", "_")


@functools.lru_cache(maxsize=16)
def _scene(
    width: int,
    height: int,
    n_frames: int,
    seed: int,
    n_objects: int,
    size_range: tuple[float, float],
) -> tuple:
    cfg = SceneConfig(
        width=width,
        height=height,
        n_frames=n_frames,
        seed=seed,
        n_objects=n_objects,
        max_objects=n_objects + 4,
        noise_sigma=0.0,
        blur_prob=0.0,
        size_range=size_range,
    )
    return tuple(render_sequence(cfg))


def make_results(
    stream_ids: list[str],
    n_frames: int,
    *,
    width: int = 160,
    height: int = 120,
    n_objects: int = 4,
    size_range: tuple[float, float] = (14.0, 44.0),
) -> list[FrameResult]:
    """FrameResults (real masks, ids, boxes) for each stream, frames interleaved."""
    per_stream = []
    for k, sid in enumerate(stream_ids):
        scene = _scene(width, height, n_frames, 100 + k, n_objects, size_range)
        rs = []
        for f in scene:
            n = len(f.masks)
            dets = Detections(
                xyxy=f.boxes,
                masks=f.masks,
                scores=np.linspace(0.5, 0.99, n, dtype=np.float32),
                class_ids=f.class_ids,
                track_ids=f.track_ids,
            )
            rs.append(
                FrameResult(
                    stream_id=sid,
                    frame_index=f.index,
                    timestamp_ms=f.index * 40.0,
                    keyframe=f.index % 5 == 0,
                    width=width,
                    height=height,
                    detections=dets,
                    labels=LABELS,
                )
            )
        per_stream.append(rs)
    return [r for group in zip(*per_stream) for r in group]


def read_frames(
    bootstrap: str,
    topic: str,
    *,
    expect: int | None = None,
    idle_s: float = 2.0,
    timeout_s: float = 30.0,
    **kwargs,
) -> tuple[list[ConsumedFrame], FrameReader]:
    """Read a topic from the start until ``expect`` frames arrived or it stays idle."""
    reader = FrameReader(topic, bootstrap_servers=bootstrap, **kwargs)
    out: list[ConsumedFrame] = []
    try:
        for fr in reader.frames(idle_s=idle_s, timeout_s=timeout_s):
            out.append(fr)
            if expect is not None and len(out) >= expect:
                break
    finally:
        reader.close()
    return out, reader
