"""The resume module: checkpoints as data (round trip, pickles refused, other configs refused),
finished markers and the JSONL cut."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

from streams.sources import open_source
from tests.conftest import SAMPLE_VIDEO
from vis.pipeline import KeyframeConfig, StreamProcessor
from vis.propagation import PropagationConfig
from vis.tracking.tracker import TrackerConfig
from vis_pipeline import load_config
from vis_pipeline.cli import main
from vis_pipeline.resume import (
    ResumeError,
    ResumeStore,
    config_digest,
    cut_jsonl,
    decode_state,
    encode_state,
    restore,
)


def make_processor(labels: list[str]) -> StreamProcessor:
    return StreamProcessor(
        stream_id="sample",
        labels=labels,
        tracker=TrackerConfig(),
        propagation=PropagationConfig(),
        keyframes=KeyframeConfig(interval=3),
    )


def step(processor: StreamProcessor, detector, frame):
    found = detector.detect_frames([frame])[0] if processor.is_keyframe(frame) else None
    return processor.process(frame, found)


def assert_same_tree(a, b, where="state"):
    assert type(a) is type(b) or (isinstance(a, (list, tuple)) and isinstance(b, (list, tuple))), (
        where
    )
    if isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            assert_same_tree(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same_tree(x, y, f"{where}[{i}]")
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b), where
    else:
        assert a == b, where


@pytest.mark.slow
def test_real_processor_state_round_trips_and_tracking_continues_identically(
    demo_detector, tmp_path
):
    frames = open_source(str(SAMPLE_VIDEO))
    it = iter(frames)
    first = [next(it) for _ in range(8)]
    later = [next(it) for _ in range(7)]
    original = make_processor(demo_detector.labels)
    for frame in first:
        step(original, demo_detector, frame)
    state = original.state_dict()
    assert state["tracker"]["tracks"], "the sample has objects by frame 7"

    store = ResumeStore(tmp_path, "digest")
    store.save("cam/1", 7, encode_state(state))
    files = sorted(p.name for p in (tmp_path / ".state").iterdir())
    assert files == ["cam_1.ckpt-7.npz", "cam_1.ckpt.json"]  # no temp files left
    loaded = store.load("cam/1")
    assert loaded is not None and loaded.frame_index == 7
    assert_same_tree(state, loaded.state)

    resumed = make_processor(demo_detector.labels)
    point = store.resume_point("cam/1")
    assert not point.complete and point.frame_index == 7
    restore(resumed, point, "cam/1")
    for frame in later:  # the restored processor tracks exactly as the original goes on
        a, b = step(original, demo_detector, frame), step(resumed, demo_detector, frame)
        assert a.keyframe == b.keyframe
        assert np.array_equal(a.detections.track_ids, b.detections.track_ids)
        assert np.array_equal(a.detections.full_masks(), b.detections.full_masks())
        assert np.array_equal(a.detections.xyxy, b.detections.xyxy)


def test_encoded_state_keeps_types_and_copies_arrays():
    arr = np.arange(6, dtype=np.float32).reshape(2, 3)
    state = {
        "a": arr,
        "n": np.int64(4),
        "f": np.float32(0.5),
        "t": (1, 2.5, None, "x"),
        "nested": [{"b": True, "m": np.zeros((0, 4), np.uint8)}],
        "nan": float("nan"),
    }
    enc = encode_state(state)
    arr += 1  # the caller goes on changing its arrays: the encoded copy does not move
    text = json.dumps(enc.document)
    back = decode_state(json.loads(text), enc.arrays)
    assert np.array_equal(back["a"], np.arange(6, dtype=np.float32).reshape(2, 3))
    assert type(back["n"]) is np.int64 and back["n"] == 4
    assert type(back["f"]) is np.float32 and back["f"] == np.float32(0.5)
    assert back["t"] == [1, 2.5, None, "x"]
    assert back["nested"][0]["b"] is True and back["nested"][0]["m"].shape == (0, 4)
    assert np.isnan(back["nan"])


@pytest.mark.parametrize(
    "bad",
    [
        {"x": object()},
        {1: "int key"},
        {"x": np.array([{"a": 1}], dtype=object)},
        {"__array__": "a0"},
    ],
)
def test_encoding_refuses_what_is_not_data(bad):
    with pytest.raises(TypeError):
        encode_state(bad)


class _Boom:
    """A pickle that would leave a file behind if it were ever loaded."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (str(self.path), "w"))


def _write_json_checkpoint_as_pickle(store, stream_id, payload):
    store.dir.mkdir(parents=True, exist_ok=True)
    store.checkpoint_path(stream_id).write_bytes(payload)


@pytest.mark.parametrize(
    "plant", ["legacy_ckpt", "json_is_pickle", "npz_object_array", "npz_is_pickle"]
)
def test_pickled_checkpoints_are_refused_without_running_them(plant, tmp_path):
    marker = tmp_path / "code-ran"
    payload = pickle.dumps({"config": "d", "frame_index": 3, "state": _Boom(marker)})
    store = ResumeStore(tmp_path / "out", "d")
    if plant == "legacy_ckpt":  # what versions before the data format wrote
        store.dir.mkdir(parents=True)
        bad = store.dir / "cam0.ckpt"
        bad.write_bytes(payload)
    elif plant == "json_is_pickle":
        _write_json_checkpoint_as_pickle(store, "cam0", payload)
        bad = store.checkpoint_path("cam0")
    else:
        store.save("cam0", 3, encode_state({"x": np.zeros(2)}))
        bad = store.dir / "cam0.ckpt-3.npz"
        if plant == "npz_object_array":
            np.savez(bad.with_suffix(""), x=np.array([_Boom(marker)], dtype=object))
        else:
            bad.write_bytes(payload)
    with pytest.raises(ResumeError) as info:
        store.resume_point("cam0")
    message = str(info.value)
    assert str(bad) in message and "--restart" in message and "\n" not in message
    assert not marker.exists()


def test_state_of_another_config_is_refused_and_restart_clears_it(tmp_path):
    base = load_config("configs/demo.yaml", output=str(tmp_path))
    other = load_config("configs/demo.yaml", ["keyframes.interval=2"], output=str(tmp_path))
    same = load_config(
        "configs/demo.yaml",
        ["sinks.overlay=false", "queue_size=3"],
        output=str(tmp_path / "elsewhere"),
    )
    assert config_digest(base) != config_digest(other)
    assert config_digest(base) == config_digest(same)  # settings that cannot change results

    ResumeStore(tmp_path, config_digest(base)).save("cam0", 9, encode_state({"x": 1}))
    ResumeStore(tmp_path, config_digest(base)).mark_done("cam1", {"frames": 10})
    store = ResumeStore(tmp_path, config_digest(other))
    with pytest.raises(ResumeError, match="partial run of cam0 made with a different config"):
        store.resume_point("cam0")
    with pytest.raises(ResumeError, match="finished results of cam1 made with a different config"):
        store.resume_point("cam1")
    store.clear("cam0")
    store.clear("cam1")
    assert store.resume_point("cam0").frame_index == -1
    assert not store.resume_point("cam1").complete
    assert list((tmp_path / ".state").iterdir()) == []


def test_done_marker_replaces_the_checkpoint(tmp_path):
    store = ResumeStore(tmp_path, "d")
    store.save("cam0", 4, encode_state({"x": np.ones(3)}))
    store.save("cam0", 9, encode_state({"x": np.ones(3)}))  # the older arrays file goes
    assert sorted(p.name for p in store.dir.iterdir()) == ["cam0.ckpt-9.npz", "cam0.ckpt.json"]
    store.mark_done("cam0", {"frames": 10})
    assert store.resume_point("cam0").complete
    assert sorted(p.name for p in store.dir.iterdir()) == ["cam0.done.json"]


def test_cut_jsonl_keeps_complete_lines_up_to_the_frame(tmp_path):
    path = tmp_path / "s.jsonl"
    lines = [json.dumps({"frame_index": i}) + "\n" for i in range(5)]
    path.write_text("".join(lines) + '{"frame_index": 5, "torn')
    assert cut_jsonl(path, 2) == lines[:3]
    assert path.read_text() == "".join(lines[:3])
    assert cut_jsonl(path, 10) == lines[:3]
    assert cut_jsonl(path, -1) == [] and path.read_text() == ""
    assert cut_jsonl(tmp_path / "missing.jsonl", 3) == []


def test_cli_refuses_a_pickled_checkpoint_in_one_line(small_video, tmp_path, capsys):
    video, _ = small_video
    out = tmp_path / "out"
    (out / ".state").mkdir(parents=True)
    (out / ".state" / "small.ckpt").write_bytes(pickle.dumps({"state": b"old"}))
    args = [
        "--config",
        "configs/demo.yaml",
        "--source",
        str(video),
        "--output",
        str(out),
        "--set",
        "sinks.overlay=false",
        "--no-progress",
    ]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert str(out / ".state" / "small.ckpt") in err and "--restart" in err
    assert main([*args, "--restart"]) == 0
