"""Property tests of the checkpoint check: whatever a checkpoint file holds, resuming either
starts after a frame the output holds or is refused with ``ResumeError``, and a refusal
changes nothing on disk."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import given, settings

from tests.mutations import PROPERTY_SETTINGS, mutated
from tests.vis.test_schema_properties import BASES
from vis.schema import dumps_json
from vis_pipeline.resume import ResumeError, ResumeStore, SourceIdentity, encode_state

WRITTEN = 12  # the JSONL holds frames 0..WRITTEN


def _output(folder: Path) -> tuple[ResumeStore, dict]:
    store = ResumeStore(folder, "d", jsonl=True)
    lines = [dumps_json({**BASES[2], "frame_index": i}) + b"\n" for i in range(WRITTEN + 1)]
    (folder / "cam.jsonl").write_bytes(b"".join(lines))
    state = {"tracker": {"next_id": 4, "boxes": np.ones((2, 4), np.float32)}, "n": np.int64(3)}
    store.save("cam", WRITTEN, encode_state(state))
    return store, json.loads(store.checkpoint_path("cam").read_text())


with tempfile.TemporaryDirectory() as _tmp:
    BASE = _output(Path(_tmp))[1]


def _snapshot(folder: Path) -> dict:
    return {p: p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@settings(PROPERTY_SETTINGS, max_examples=80)  # each example writes a small output folder
@given(mutated(BASE))
def test_any_checkpoint_resumes_within_the_output_or_is_refused_changing_nothing(document):
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        store, _ = _output(folder)
        store.checkpoint_path("cam").write_text(json.dumps(document, allow_nan=True))
        before = _snapshot(folder)
        source = SourceIdentity("/videos/cam.mp4", "file:1:abc")
        try:
            point = store.resume_point("cam", source=source)
        except ResumeError as exc:
            assert "\n" not in str(exc) and "--restart" in str(exc)
            assert _snapshot(folder) == before
            return
        assert point.complete or 0 <= point.frame_index <= WRITTEN


def test_a_checkpoint_past_the_written_results_is_refused():
    with tempfile.TemporaryDirectory() as tmp:
        store, doc = _output(Path(tmp))
        assert store.resume_point("cam").frame_index == WRITTEN
        lines = (Path(tmp) / "cam.jsonl").read_bytes().splitlines(keepends=True)
        (Path(tmp) / "cam.jsonl").write_bytes(b"".join(lines[:5]))  # flushed up to frame 4
        try:
            store.resume_point("cam")
        except ResumeError as exc:
            assert "does not hold the results up to it" in str(exc)
        else:
            raise AssertionError("resumed after frames that were never written")


def _fresh_state() -> dict:
    from tests.vis_pipeline.test_resume import make_processor

    return make_processor(["bg", "person"]).state_dict()


@PROPERTY_SETTINGS
@given(mutated(encode_state(_fresh_state()).document))
def test_any_state_is_restored_or_refused_with_resume_error(document):
    from tests.vis_pipeline.test_resume import make_processor
    from vis_pipeline.resume import ResumePoint, decode_state, restore

    arrays = encode_state(_fresh_state()).arrays
    try:
        state = decode_state(document, arrays)
    except ValueError:
        return
    if not isinstance(state, dict):
        return  # check_checkpoint refuses a state that is not a mapping
    try:
        restore(make_processor(["bg", "person"]), ResumePoint(frame_index=3, state=state), "cam")
    except ResumeError as exc:
        assert "--restart" in str(exc)
