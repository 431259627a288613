"""The run's configuration: a typed layer over ``configs/*.yaml``, validated at load.

Contract: ``load_config(path, overrides, **cli)`` reads the YAML file, applies ``--set
key.path=value`` overrides (values are YAML) and command-line options, and returns a
``PipelineConfig`` or raises ``ConfigError`` with one line naming the key and the value.
Every key is documented in docs/configuration.md (checked by tests/test_docs.py).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from streams.live import LiveConfig
from vis.analytics import AnalyticsConfig
from vis.config import ConfigError, from_mapping, require, set_path
from vis.detection.factory import DetectorConfig
from vis.keyframes import KeyframeConfig
from vis.propagation import PropagationConfig
from vis.schema import MAX_PIXELS as MAX_RECORD_PIXELS
from vis.tracking.repair import RepairConfig
from vis.tracking.tracker import TrackerConfig


@dataclasses.dataclass(frozen=True)
class SinksConfig:
    """Attributes:
    jsonl: write ``<output>/<stream_id>.jsonl``.
    overlay: write ``<output>/<stream_id>.overlay.mp4``.
    kafka: Kafka sink settings (see docs/kafka.md); null = off.
    exports: annotation formats written when each stream ends (docs/exports.md); null = off.
    export_images: also write every frame as ``<output>/images/<stream>/<frame>.jpg``.
    record_version: the frame records the JSONL and Kafka sinks write: 2 (``vis.frame/2``,
        masks as box-relative RLE) or 1 (``vis.frame/1``, full-frame RLE, for consumers
        that do not read version 2 yet).
    events_jsonl: write ``<output>/<stream_id>.events.jsonl`` (``vis.event/1``) when
        ``analytics`` has lines or zones.
    """

    jsonl: bool = True
    overlay: bool = True
    kafka: dict[str, Any] | None = None
    exports: list[str] | None = None
    export_images: bool = False
    record_version: int = 2
    events_jsonl: bool = True

    def __post_init__(self) -> None:
        if self.record_version not in (1, 2) or isinstance(self.record_version, bool):
            raise ConfigError(
                f"sinks.record_version: {self.record_version!r} is not a record version; "
                "use 2 (box-relative masks) or 1 (full-frame masks)"
            )
        if "record_version" in (self.kafka or {}):
            raise ConfigError(
                "sinks.kafka.record_version: set sinks.record_version instead (one version "
                "for every sink)"
            )
        from streams.exports import FORMATS  # noqa: PLC0415

        for name in self.exports or []:
            if name not in FORMATS:
                raise ConfigError(
                    f"sinks.exports: unknown format {name!r}; choose from {', '.join(FORMATS)}"
                )
        if self.exports and not self.jsonl:
            raise ConfigError(
                "sinks.exports needs sinks.jsonl: true (exports are made from the JSONL)"
            )


@dataclasses.dataclass(frozen=True)
class FrameConfig:
    """Attributes:
    max_pixels: the largest frame (width x height) a source may hold, read from a video's
        header or an image file's header before anything is decoded (default: 8K, 7680 x
        4320). A video over it is refused (exit 2); an image of a folder over it is skipped
        and counted. See docs/limits.md.
    """

    max_pixels: int = 7680 * 4320

    def __post_init__(self) -> None:
        if not 1 <= self.max_pixels <= MAX_FRAME_PIXELS:
            raise ConfigError(
                f"frame.max_pixels={self.max_pixels!r} must be in [1, {MAX_FRAME_PIXELS}]"
            )


#: the ceiling of ``frame.max_pixels``: the largest frame a ``vis.frame`` record may describe
#: (8192 x 4320), so that every record the pipeline writes is one its readers accept
MAX_FRAME_PIXELS = MAX_RECORD_PIXELS
#: upper ends of the top-level numbers (docs/limits.md): frames queued per stream, streams
#: run at once, a frame rate for timestamps, frames between checkpoints
MAX_QUEUE_SIZE = 256
MAX_PARALLEL_STREAMS = 64
MIN_FPS, MAX_FPS = 0.01, 1000.0
MAX_CHECKPOINT_EVERY = 10**9


#: the largest TCP port
MAX_PORT = 65535


@dataclasses.dataclass(frozen=True)
class MetricsConfig:
    """Attributes:
    port: serve ``/metrics``, ``/healthz`` and ``/readyz`` on this TCP port (0 = off).
    host: the address to listen on (``0.0.0.0``: every interface, as a scraper in another
        pod or machine needs; ``127.0.0.1``: this machine only).
    stall_s: ``/healthz`` fails when a processing or worker loop has not turned for this long.
    sink_stall_s: ``/readyz`` fails when a sink has not delivered for this long (a Kafka
        record unacknowledged, the writer stuck on one message); keep it below
        ``sinks.kafka.delivery_timeout_s``, after which the sink fails for good.
    """

    port: int = 0
    host: str = "0.0.0.0"
    stall_s: float = 120.0
    sink_stall_s: float = 10.0

    def __post_init__(self) -> None:
        require(
            isinstance(self.port, int) and not isinstance(self.port, bool),
            "metrics.port",
            self.port,
            "must be an integer port (0 = off)",
        )
        require(
            0 <= self.port <= MAX_PORT, "metrics.port", self.port, f"must be in [0, {MAX_PORT}]"
        )
        require(
            isinstance(self.host, str) and bool(self.host.strip()),
            "metrics.host",
            self.host,
            "must be an address such as 0.0.0.0 or 127.0.0.1",
        )
        for name in ("stall_s", "sink_stall_s"):
            value = getattr(self, name)
            require(
                isinstance(value, int | float)
                and not isinstance(value, bool)
                and 0 < value <= 86400,
                f"metrics.{name}",
                value,
                "must be a number of seconds in (0, 86400]",
            )


@dataclasses.dataclass(frozen=True)
class SourceSpec:
    """One entry of ``sources:``: a URI (file, folder, glob, stream, camera) and its id."""

    uri: str
    stream_id: str | None = None


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
    """The whole run. See docs/configuration.md for every key."""

    source: str | None = None
    sources: list[str | SourceSpec] | None = None
    stream_id: str | None = None
    output: str = "out"
    fps: float = 25.0  # timestamps for image folders
    queue_size: int = 8
    parallel_streams: int = 1
    resume: bool = True
    checkpoint_every: int = 50
    frame: FrameConfig = FrameConfig()
    detector: DetectorConfig = DetectorConfig()
    keyframes: KeyframeConfig = KeyframeConfig()
    tracker: TrackerConfig = TrackerConfig()
    repair: RepairConfig = RepairConfig()
    propagation: PropagationConfig = PropagationConfig()
    live: LiveConfig = LiveConfig()
    sinks: SinksConfig = SinksConfig()
    analytics: AnalyticsConfig = AnalyticsConfig()
    metrics: MetricsConfig = MetricsConfig()
    mode: str = "offline"

    def __post_init__(self) -> None:
        if self.mode not in ("offline", "live"):
            raise ConfigError(f"mode={self.mode!r} must be 'offline' or 'live'")
        if not 1 <= self.queue_size <= MAX_QUEUE_SIZE:
            raise ConfigError(f"queue_size={self.queue_size!r} must be in [1, {MAX_QUEUE_SIZE}]")
        if not MIN_FPS <= self.fps <= MAX_FPS:  # also refuses NaN
            raise ConfigError(f"fps={self.fps!r} must be in [{MIN_FPS:g}, {MAX_FPS:g}]")
        if not 1 <= self.parallel_streams <= MAX_PARALLEL_STREAMS:
            raise ConfigError(
                f"parallel_streams={self.parallel_streams!r} must be in [1, {MAX_PARALLEL_STREAMS}]"
            )
        if not 1 <= self.checkpoint_every <= MAX_CHECKPOINT_EVERY:
            raise ConfigError(
                f"checkpoint_every={self.checkpoint_every!r} must be in [1, {MAX_CHECKPOINT_EVERY}]"
            )


def load_config(
    path: str | Path | None, overrides: Sequence[str] = (), **cli: Any
) -> PipelineConfig:
    """Read YAML, apply ``--set key.path=value`` overrides and CLI options, validate.

    Args:
        path: YAML file (None: defaults only).
        overrides: ``key.path=value`` strings; ``value`` is parsed as YAML.
        **cli: top-level keys given on the command line (None = not given); ``sources``
            (a list of URIs) replaces ``source``/``sources`` of the file.

    Raises:
        ConfigError: missing or invalid file, malformed override, invalid value.
    """
    data: dict = _read_yaml(Path(path)) if path is not None else {}
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set {item!r} must look like key.path=value")
        key, raw = item.split("=", 1)
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except (yaml.YAMLError, ValueError):
            raise ConfigError(
                f"--set {key.strip()}: the value is not valid YAML (or an integer of more than "
                "4300 digits): fix it"
            ) from None
        set_path(data, key.strip(), value)
    sources = cli.pop("sources", None)
    if sources:  # --source given on the command line replaces source/sources of the file
        data.pop("sources", None)
        data["source"] = sources[0] if len(sources) == 1 else None
        if len(sources) > 1:
            data["sources"] = list(sources)
    for key, value in cli.items():
        if value is not None:
            data[key] = value
    return from_mapping(PipelineConfig, data)


def _read_yaml(path: Path) -> dict:
    if not path.is_file():
        raise ConfigError(
            f"config file {path} not found: pass --config configs/demo.yaml or a path to your YAML"
        )
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except UnicodeDecodeError:
        raise ConfigError(
            f"config file {path} is not UTF-8 text: pass a YAML file (e.g. configs/demo.yaml)"
        ) from None
    except OSError as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ConfigError(f"config file {path}{where} is not valid YAML: fix the syntax") from None
    except ValueError:  # an integer past Python's 4300-digit conversion limit
        raise ConfigError(f"config file {path} holds a number too long to read: fix it") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of settings")
    return data
