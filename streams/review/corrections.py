"""A reviewer's decisions about a run's tracks (``vis.corrections/1``, docs/review.md).

Contract: a ``Corrections`` names the run it belongs to (``RunIdentity``: stream, frame
count and span, and a fingerprint of the tracks' spans) and lists ``Decision``s in the
order they were made, each about one track, whole or a frame range; ``resolve`` gives the
decision that applies to one instance (the latest one covering its frame), and
``parse_corrections`` is the one check of a document (types, ranges, lengths, counts),
shared by ``save_corrections`` and ``load_corrections``, which refuses a file that is
malformed or, given the run, belongs to another run or names tracks, frames or labels the
run does not have (``CorrectionsError`` naming the file and the fix).

    run = RunRecords.open("out/demo/sample.jsonl")
    corr = load_corrections("sample.corrections.json", run)
    resolve(corr, track_id=7, frame=130)   # -> Decision(7, "reject", frames=(121, 200)) or None
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from streams.exports.records import RunRecords
from vis.schema import MAX_ID_CHARS, MAX_INDEX, MAX_LABEL_CHARS

SCHEMA = "vis.corrections/1"
DECISIONS = ("accept", "reject", "wrong_class")
#: limits of a corrections file (docs/limits.md)
MAX_DECISIONS = 100_000
MAX_CORRECTIONS_BYTES = 64 * 1024 * 1024


class CorrectionsError(ValueError):
    """A corrections file or decision that cannot be used (the message names it and the fix)."""


@dataclasses.dataclass(frozen=True)
class RunIdentity:
    """Which run a corrections file belongs to.

    Attributes:
        stream_id: the run's stream.
        frames: number of records (frames written).
        first_frame, last_frame: first and last ``frame_index``.
        tracks_fingerprint: ``tracks_fingerprint`` of the run's tracks.
    """

    stream_id: str
    frames: int
    first_frame: int
    last_frame: int
    tracks_fingerprint: str

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class Decision:
    """One decision about one track.

    Attributes:
        track_id: the track.
        decision: ``accept``, ``reject`` or ``wrong_class``.
        label: the right class (``wrong_class`` only).
        frames: ``(start, stop)`` inclusive, or None for the whole track.
    """

    track_id: int
    decision: str
    label: str | None = None
    frames: tuple[int, int] | None = None

    def covers(self, frame: int) -> bool:
        return self.frames is None or self.frames[0] <= frame <= self.frames[1]

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"track_id": self.track_id, "decision": self.decision}
        if self.label is not None:
            out["label"] = self.label
        if self.frames is not None:
            out["frames"] = list(self.frames)
        return out


@dataclasses.dataclass
class Corrections:
    """A run's identity and the decisions about its tracks, oldest first."""

    run: RunIdentity
    decisions: list[Decision]
    created: str = dataclasses.field(default_factory=lambda: now())
    reviewer: str | None = None

    def add(self, decision: Decision, span: tuple[int, int]) -> None:
        """Append ``decision`` about a track spanning frames ``span`` (first, last), dropping
        the earlier decisions about that track whose frames it covers entirely (as the
        review page does): they would never apply again. A range equal to ``span`` is
        recorded as the whole track."""
        if decision.frames == span:
            decision = dataclasses.replace(decision, frames=None)
        a, b = decision.frames or span

        def inside(d: Decision) -> bool:
            lo, hi = d.frames or span
            return a <= lo and hi <= b

        self.decisions = [
            d for d in self.decisions if d.track_id != decision.track_id or not inside(d)
        ]
        self.decisions.append(decision)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"schema": SCHEMA, "run": self.run.to_json(), "created": self.created}
        if self.reviewer:
            out["reviewer"] = self.reviewer
        out["decisions"] = [d.to_json() for d in self.decisions]
        return out


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def tracks_fingerprint(run: RunRecords) -> str:
    """sha256 of the JSON ``[[track_id, first_frame, last_frame], ...]`` (sorted by track id,
    no spaces), first 16 hex digits: equal for the same run's JSONL and its quality JSONL."""
    triples = sorted([tid, s.first, s.last] for tid, s in run.tracks.items())
    text = json.dumps(triples, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def run_identity(run: RunRecords | str | Path) -> RunIdentity:
    """The identity of a run (``RunRecords`` or the path of its JSONL; ``ExportError``)."""
    run = run if isinstance(run, RunRecords) else RunRecords.open(run)
    return RunIdentity(
        run.stream_id, len(run.frame_indices), run.frame_indices[0], run.frame_indices[-1],
        tracks_fingerprint(run),
    )  # fmt: skip


def resolve(corrections: Corrections, track_id: int, frame: int) -> Decision | None:
    """The decision about ``track_id`` at ``frame``: the latest one whose range covers the
    frame (a whole-track decision covers every frame), or None if the track is undecided."""
    for d in reversed(corrections.decisions):
        if d.track_id == track_id and d.covers(frame):
            return d
    return None


def parse_decision(item: Any, where: str) -> Decision:
    """A ``Decision`` from its JSON form; ``CorrectionsError`` naming ``where``."""
    if not isinstance(item, dict):
        raise CorrectionsError(f"{where}: a decision must be an object, got {item!r}")
    tid, kind = item.get("track_id"), item.get("decision")
    if not _is_index(tid):
        raise CorrectionsError(
            f"{where}: track_id must be an integer in [0, {MAX_INDEX}], got {repr(tid)[:40]}"
        )
    if not isinstance(kind, str) or kind not in DECISIONS:
        raise CorrectionsError(
            f"{where}: unknown decision {str(kind)[:40]!r} for track {tid}; use one of "
            f"{', '.join(DECISIONS)}"
        )
    label = item.get("label")
    if kind == "wrong_class" and (
        not isinstance(label, str) or not label or len(label) > MAX_LABEL_CHARS
    ):
        raise CorrectionsError(
            f"{where}: wrong_class for track {tid} without a label (of at most "
            f"{MAX_LABEL_CHARS} characters); give the right class"
        )
    if kind != "wrong_class" and label is not None:
        raise CorrectionsError(
            f"{where}: {kind} for track {tid} has a label; only wrong_class takes one"
        )
    frames = item.get("frames")
    if frames is not None:
        ok = (
            isinstance(frames, list) and len(frames) == 2
            and all(_is_index(f) for f in frames)
            and frames[0] <= frames[1]
        )  # fmt: skip
        if not ok:
            raise CorrectionsError(
                f"{where}: frames {repr(frames)[:80]} of track {tid} must be [start, stop] with "
                "0 <= start <= stop (inclusive), or absent for the whole track"
            )
        frames = (frames[0], frames[1])
    return Decision(tid, kind, label, frames)


def check_against_run(decisions: list[Decision], run: RunRecords, where: str) -> None:
    """``CorrectionsError`` if a decision names a track, frames or label ``run`` lacks."""
    labels = sorted(set(run.labels.values()))
    for d in decisions:
        span = run.tracks.get(d.track_id)
        if span is None:
            raise CorrectionsError(
                f"{where}: track {d.track_id} is not in run {run.stream_id!r} "
                f"(tracks {_ids(run)}); decide about the run's own tracks"
            )
        if d.frames is not None and not (span.first <= d.frames[0] <= d.frames[1] <= span.last):
            raise CorrectionsError(
                f"{where}: frames {d.frames[0]}-{d.frames[1]} are outside track {d.track_id} "
                f"(frames {span.first}-{span.last}); give a range inside the track"
            )
        if d.label is not None and d.label not in labels:
            raise CorrectionsError(
                f"{where}: label {d.label!r} for track {d.track_id} is not one of the run's "
                f"labels ({', '.join(labels)}); choose one of them"
            )


def _ids(run: RunRecords) -> str:
    ids = sorted(run.tracks)
    return ", ".join(map(str, ids[:20])) + (", ..." if len(ids) > 20 else "")


def _is_index(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_INDEX


def _identity(raw: Any, where: str) -> RunIdentity:
    fields = [f.name for f in dataclasses.fields(RunIdentity)]
    if not isinstance(raw, dict) or any(k not in raw for k in fields):
        raise CorrectionsError(
            f"{where}: 'run' must be an object with {', '.join(fields)}; save the corrections "
            "again from the review page or vis-pipeline corrections"
        )
    ok = (
        isinstance(raw["stream_id"], str) and len(raw["stream_id"]) <= MAX_ID_CHARS
        and isinstance(raw["tracks_fingerprint"], str)
        and re.fullmatch(r"[0-9a-f]{16}", raw["tracks_fingerprint"]) is not None
        and all(_is_index(raw[k]) for k in ("frames", "first_frame", "last_frame"))
        and raw["frames"] >= 1
    )  # fmt: skip
    if not ok:
        raise CorrectionsError(
            f"{where}: 'run' has a field of the wrong type or out of range: {str(raw)[:200]}; "
            "save the corrections again from the review page or vis-pipeline corrections"
        )
    return RunIdentity(
        raw["stream_id"], raw["frames"], raw["first_frame"], raw["last_frame"],
        raw["tracks_fingerprint"],
    )  # fmt: skip


def load_corrections(path: str | Path, run: RunRecords | str | Path | None = None) -> Corrections:
    """Read and validate a ``vis.corrections/1`` file; given ``run`` (``RunRecords`` or its
    JSONL path), also check that the file belongs to it and names only its tracks, frames
    within each track and its labels. Raises ``CorrectionsError`` (``ExportError`` for a bad
    run JSONL)."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_CORRECTIONS_BYTES:
            raise CorrectionsError(
                f"corrections file {path} is larger than {MAX_CORRECTIONS_BYTES} bytes; give "
                "the file the review page saved or vis-pipeline corrections wrote"
            )
        raw = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CorrectionsError(
            f"cannot read corrections file {path}: {exc.strerror}; give the file the review "
            "page saved or vis-pipeline corrections wrote"
        ) from None
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise CorrectionsError(f"corrections file {path} is not JSON ({exc})") from None
    where = f"corrections file {path}"
    return _checked(raw, where, path, run)


def parse_corrections(raw: Any, where: str = "corrections") -> Corrections:
    """The one check of a ``vis.corrections/1`` document (types, ranges, lengths, the number
    of decisions), without a run; ``CorrectionsError`` naming ``where``."""
    if not isinstance(raw, dict) or raw.get("schema") != SCHEMA:
        got = raw.get("schema") if isinstance(raw, dict) else type(raw).__name__
        raise CorrectionsError(
            f"{where}: schema {str(got)[:40]!r}, expected {SCHEMA!r}; give a file the "
            "review page saved or vis-pipeline corrections wrote"
        )
    identity = _identity(raw.get("run"), where)
    items = raw.get("decisions")
    if not isinstance(items, list) or len(items) > MAX_DECISIONS:
        raise CorrectionsError(f"{where}: 'decisions' must be a list of at most {MAX_DECISIONS}")
    decisions = [parse_decision(d, f"{where} decision {i}") for i, d in enumerate(items)]
    reviewer, created = raw.get("reviewer"), raw.get("created", "")
    for key, value in (("reviewer", reviewer), ("created", created)):
        if key in raw and (not isinstance(value, str) or len(value) > MAX_LABEL_CHARS):
            raise CorrectionsError(
                f"{where}: {key!r} must be a string of at most {MAX_LABEL_CHARS} characters"
            )
    return Corrections(identity, decisions, created or "", reviewer or None)


def _checked(raw: Any, where: str, path: Path, run: RunRecords | str | Path | None) -> Corrections:
    corr = parse_corrections(raw, where)
    identity, decisions = corr.run, corr.decisions
    if run is not None:
        run = run if isinstance(run, RunRecords) else RunRecords.open(run)
        expected = run_identity(run)
        if identity != expected:
            raise CorrectionsError(
                f"corrections file {path} belongs to another run (stream "
                f"{identity.stream_id!r}, fingerprint {identity.tracks_fingerprint}), not "
                f"{run.path} (stream {expected.stream_id!r}, fingerprint "
                f"{expected.tracks_fingerprint}); review this run's page again"
            )
        check_against_run(decisions, run, where)
    return corr


def save_corrections(corrections: Corrections, path: str | Path) -> Path:
    """Write ``corrections`` as ``vis.corrections/1`` JSON (checked as a reader checks it:
    ``CorrectionsError`` before anything is written)."""
    path = Path(path)
    doc = corrections.to_json()
    parse_corrections(doc, f"corrections for {path}")
    path.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    return path
