"""Resumable offline jobs: per-stream checkpoints and completion markers in ``<output>/.state``.

Contract: the writer calls ``save(stream_id, frame_index, blob)`` only after every result up
to ``frame_index`` is in the stream's JSONL file, so a job killed at any moment (SIGKILL
included) restarts from the last checkpoint: ``prepare_resume`` cuts the JSONL back to that
frame and returns the state to restore. Every state file records a hash of the
configuration that produced it; a different configuration is refused, not mixed.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
from pathlib import Path

from streams.sinks import safe_name


class ResumeError(RuntimeError):
    """The output folder holds state that cannot be resumed with this configuration."""


def config_hash(obj) -> str:
    return hashlib.sha1(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


class CheckpointStore:
    def __init__(self, output_dir: str | Path, config_digest: str) -> None:
        self.dir = Path(output_dir) / ".state"
        self.digest = config_digest

    def ckpt_path(self, stream_id: str) -> Path:
        return self.dir / f"{safe_name(stream_id)}.ckpt"

    def done_path(self, stream_id: str) -> Path:
        return self.dir / f"{safe_name(stream_id)}.done.json"

    def save(self, stream_id: str, frame_index: int, blob: bytes) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        path = self.ckpt_path(stream_id)
        tmp = path.with_suffix(".tmp")
        with open(tmp, "wb") as fh:
            pickle.dump({"config": self.digest, "frame_index": frame_index, "state": blob}, fh)
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(path)

    def mark_done(self, stream_id: str, summary: dict) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.done_path(stream_id).write_text(json.dumps({"config": self.digest, **summary}, default=str))
        self.ckpt_path(stream_id).unlink(missing_ok=True)

    def is_done(self, stream_id: str) -> bool:
        p = self.done_path(stream_id)
        if not p.is_file():
            return False
        if json.loads(p.read_text()).get("config") != self.digest:
            raise ResumeError(f"{p.parent.parent} holds finished results of {stream_id} made with "
                              "a different config: pass --restart or another --output")
        return True

    def load(self, stream_id: str) -> tuple[int, bytes] | None:
        p = self.ckpt_path(stream_id)
        if not p.is_file():
            return None
        with open(p, "rb") as fh:
            data = pickle.load(fh)  # noqa: S301 - written by this program into its output
        if data.get("config") != self.digest:
            raise ResumeError(f"{p.parent.parent} holds a partial run of {stream_id} made with a "
                              "different config: pass --restart or another --output")
        return int(data["frame_index"]), data["state"]

    def clear(self, stream_id: str) -> None:
        self.ckpt_path(stream_id).unlink(missing_ok=True)
        self.done_path(stream_id).unlink(missing_ok=True)


def cut_jsonl(path: Path, last_frame: int) -> list[str]:
    """Keep only complete lines with ``frame_index <= last_frame``; return the kept lines."""
    if not path.is_file():
        return []
    kept = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if not line.endswith("\n"):
                break  # torn last line
            try:
                idx = json.loads(line)["frame_index"]
            except (ValueError, KeyError, TypeError):
                break
            if idx > last_frame:
                break
            kept.append(line)
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(kept), encoding="utf-8")
    tmp.replace(path)
    return kept
