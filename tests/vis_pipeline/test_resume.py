"""The resume module: checkpoints as data (round trip, pickles refused, other configs refused),
finished markers and the JSONL cut."""

from __future__ import annotations

import io
import json
import pickle
import zipfile

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
    load_npz,
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


# -- a checkpoint is checked against its output; a stream's source is recorded -----------------
def _snapshot(folder):
    """Every file under ``folder`` -> its bytes."""
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


#: frames of ``_stopped_run``'s clip: offline, identity repair writes held frames in bursts (up
#: to ``repair.window``, 48), so a shorter clip could be written whole before the stop lands
STOPPED_CLIP = 90


def _stopped_run(tmp_path, extra_sets=()):
    """A clip of ``STOPPED_CLIP`` frames run until frame 12 was written and stopped: a
    checkpoint, a JSONL up to it. Returns (clip, output, CLI args that resume it).
    ``extra_sets``: more ``--set`` overrides, for the run and its resumption."""
    import threading

    from devtools.workers import write_clips
    from streams.sinks import MemorySink
    from vis_pipeline import run

    clips = write_clips(tmp_path / "in", 2, STOPPED_CLIP)
    out = tmp_path / "out"
    sets = ["detector.threads=1", "keyframes.interval=5", "sinks.overlay=false", *extra_sets]
    cfg = load_config("configs/demo.yaml", sets, sources=[str(clips[0])], output=str(out))
    stop = threading.Event()

    class StopAfter(MemorySink):
        def write(self, result, image=None) -> None:
            super().write(result, image)
            if result.frame_index >= 12:
                stop.set()

    run(cfg, progress=False, stop=stop, extra_sinks=[StopAfter()])
    args = ["--config", "configs/demo.yaml", "--source", str(clips[0]), "--output", str(out)]
    args += ["--no-progress", *[x for s in sets for x in ("--set", s)]]
    return clips, out, args


def _tamper(ckpt, how: str, outside):
    doc = json.loads(ckpt.read_text())
    if how == "past_written":
        doc["frame_index"] = STOPPED_CLIP - 1  # past the results the JSONL holds
    elif how == "negative":
        doc["frame_index"] = -7
    elif how == "outside_arrays":
        np.savez(outside, x=np.zeros(2))
        doc["arrays"] = "../../outside.npz"
    elif how == "huge_int":
        doc["frame_index"] = int("9" * 400)
    elif how == "huge_int_in_state":
        doc["state"]["tracker"]["next_id"] = int("9" * 400)
    elif how == "missing_array":
        doc["state"]["tracker"] = {"__array__": "a99999"}
    elif how == "other_stream":
        doc["stream_id"] = "another"
    ckpt.write_text(json.dumps(doc))


@pytest.mark.slow
def test_a_checkpoint_that_does_not_fit_its_output_is_refused_and_nothing_changes(tmp_path, capsys):
    clips, out, args = _stopped_run(tmp_path)
    ckpt = out / ".state" / "clip0.ckpt.json"
    original = ckpt.read_text()
    assert json.loads(original)["frame_index"] >= 12
    for how in (
        "past_written",
        "negative",
        "outside_arrays",
        "huge_int",
        "huge_int_in_state",
        "missing_array",
        "other_stream",
    ):
        _tamper(ckpt, how, tmp_path / "outside.npz")
        before = _snapshot(out)
        capsys.readouterr()
        assert main(args) == 2, how
        err = capsys.readouterr().err.strip()
        assert "--restart" in err and "\n" not in err and "Traceback" not in err, (how, err)
        assert _snapshot(out) == before, how  # nothing written, cut or marked done
        ckpt.write_text(original)
    assert main(args) == 0  # the untouched checkpoint resumes
    assert "resumed after frame" in capsys.readouterr().out


@pytest.mark.slow
def test_another_source_or_a_clashing_stream_id_is_refused_not_taken_as_done(tmp_path, capsys):
    clips, out, args = _stopped_run(tmp_path)
    assert main(args) == 0  # finish clip0
    done = _snapshot(out)
    other = [a if a != str(clips[0]) else str(clips[1]) for a in args]
    capsys.readouterr()
    assert main([*other, "--stream-id", "clip0"]) == 2  # finished, but from another source
    err = capsys.readouterr().err.strip()
    assert "--restart" in err and "--stream-id" in err and str(clips[0]) in err, err
    assert _snapshot(out) == done
    assert main([*other, "--stream-id", "cam/a/b"]) == 0
    named = _snapshot(out)
    assert main([*other, "--stream-id", "cam_a_b"]) == 2  # the same file names
    err = capsys.readouterr().err.strip()
    assert "cam/a/b" in err and "--stream-id" in err and "\n" not in err, err
    assert _snapshot(out) == named
    assert main([*other, "--stream-id", "clip0", "--restart"]) == 0  # redo from clip1
    assert "1 already complete" not in capsys.readouterr().out


def test_two_stream_ids_of_one_file_name_in_a_run_are_refused():
    from vis_pipeline.resume import check_file_names

    check_file_names(["cam/a", "cam-a", "cam.a"])
    with pytest.raises(ResumeError, match="'cam/a/b' and 'cam_a_b' both write cam_a_b") as info:
        check_file_names(["x", "cam/a/b", "cam_a_b"])
    assert "--stream-id" in str(info.value)


def test_the_source_fingerprint_changes_with_the_content_not_the_place(tmp_path):
    from vis_pipeline.resume import source_identity

    a = tmp_path / "a.mp4"
    a.write_bytes(b"x" * 3_000_000)
    moved = tmp_path / "moved.mp4"
    moved.write_bytes(a.read_bytes())
    other = tmp_path / "b.mp4"
    other.write_bytes(b"x" * 2_999_999 + b"y")  # differs in its last MiB only
    assert source_identity(str(a)).fingerprint == source_identity(str(moved)).fingerprint
    assert source_identity(str(a)).fingerprint != source_identity(str(other)).fingerprint
    assert source_identity("rtsp://cam/live") is None
    folder = source_identity(str(tmp_path))
    assert folder is not None and folder.fingerprint.startswith("folder:3:")


@pytest.mark.parametrize("shape", [(10**6, 10**6), (2**40,), (50, 50)])
def test_checkpoint_arrays_declaring_more_than_they_hold_are_refused_before_allocation(shape):
    """A checkpoint's arrays file whose ``.npy`` header declares a bigger array than the bytes
    it holds (a forged header: 144 bytes claiming 8 TB) is refused in one line, before numpy
    allocates what the header says."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f8", "fortran_order": False, "shape": shape}
    )
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("prev_gray.npy", header.getvalue() + b"\0" * 16)
    with pytest.raises(ResumeError, match="declares") as refused:
        load_npz(archive.getvalue(), "cam.ckpt-3.npz")
    assert "\n" not in str(refused.value) and "--restart" in str(refused.value)
    whole = io.BytesIO()
    np.savez(whole, prev_gray=np.zeros((50, 50)))
    assert load_npz(whole.getvalue(), "cam.ckpt-3.npz")["prev_gray"].shape == (50, 50)


# -- what a finished or resumed stream's JSONL must still hold; state against the frames ----------
def _cli_args(video, out):
    return [
        "--config",
        "configs/demo.yaml",
        "--source",
        str(video),
        "--output",
        str(out),
        "--set",
        "sinks.kafka=null",
        "--set",
        "sinks.overlay=false",
        "--no-progress",
    ]


@pytest.mark.slow
def test_a_finished_stream_whose_jsonl_was_cut_or_removed_is_refused(small_video, tmp_path, capsys):
    video, _ = small_video
    out = tmp_path / "out"
    args = _cli_args(video, out)
    assert main(args) == 0
    jsonl = out / "small.jsonl"
    full = jsonl.read_bytes()
    assert json.loads((out / ".state" / "small.done.json").read_text())["jsonl"] == {
        "lines": full.count(b"\n"),
        "bytes": len(full),
    }
    for damage in ("cut", "removed"):
        if damage == "cut":
            jsonl.write_bytes(b"".join(full.splitlines(keepends=True)[:10]))
        else:
            jsonl.unlink()
        before = _snapshot(out)
        capsys.readouterr()
        assert main(args) == 2, damage
        err = capsys.readouterr().err.strip()
        assert str(jsonl) in err and "--restart" in err and "\n" not in err, err
        assert _snapshot(out) == before, damage  # not taken as complete, nothing changed
    jsonl.write_bytes(full)
    capsys.readouterr()
    assert main(args) == 0 and "1 already complete" in capsys.readouterr().out
    jsonl.unlink()
    assert main([*args, "--restart"]) == 0
    assert jsonl.read_bytes() == full


def _lines_of(path):
    return path.read_bytes().splitlines(keepends=True)


@pytest.mark.slow
def test_a_jsonl_with_a_hole_or_disorder_or_a_checkpoint_moved_back_is_refused(tmp_path, capsys):
    clips, out, args = _stopped_run(tmp_path)
    jsonl = out / "clip0.jsonl"
    ckpt = out / ".state" / "clip0.ckpt.json"
    lines, original = _lines_of(jsonl), ckpt.read_text()
    frame = json.loads(original)["frame_index"]
    assert frame >= 12 and len(lines) > frame
    moved = json.loads(original)
    moved["frame_index"], moved["arrays"] = 5, "clip0.ckpt-5.npz"  # its state is of `frame`
    arrays = out / ".state" / f"clip0.ckpt-{frame}.npz"
    for how in ("hole", "disorder", "moved_back"):
        if how == "hole":
            jsonl.write_bytes(b"".join(lines[:3] + lines[6:]))
        elif how == "disorder":
            jsonl.write_bytes(b"".join([lines[1], lines[0], *lines[2:]]))
        else:
            arrays.rename(out / ".state" / "clip0.ckpt-5.npz")
            ckpt.write_text(json.dumps(moved))
        before = _snapshot(out)
        capsys.readouterr()
        assert main(args) == 2, how
        err = capsys.readouterr().err.strip()
        assert str(jsonl) in err and "--restart" in err and "\n" not in err, (how, err)
        assert _snapshot(out) == before, how
        jsonl.write_bytes(b"".join(lines))
    (out / ".state" / "clip0.ckpt-5.npz").rename(arrays)
    ckpt.write_text(original)
    capsys.readouterr()
    assert main(args) == 0  # the untouched output resumes to the whole clip
    assert [json.loads(x)["frame_index"] for x in _lines_of(jsonl)] == list(range(STOPPED_CLIP))


def _replace_array(ckpt, name: str, value) -> None:
    """Replace the array ``name`` of the state (a key of its top level) in its npz file."""
    doc = json.loads(ckpt.read_text())
    path = ckpt.parent / doc["arrays"]
    with np.load(path) as loaded:
        arrays = {k: loaded[k] for k in loaded.files}
    arrays[doc["state"][name]["__array__"]] = value
    np.savez(path, **arrays)


@pytest.mark.slow
def test_checkpoint_arrays_that_do_not_fit_the_frames_are_refused(tmp_path, capsys):
    clips, out, args = _stopped_run(tmp_path)
    ckpt = out / ".state" / "clip0.ckpt.json"
    arrays = ckpt.parent / json.loads(ckpt.read_text())["arrays"]
    original = arrays.read_bytes()
    for bad in (np.zeros((2000, 2000), np.float32), np.zeros((5, 7), np.uint8)):
        _replace_array(ckpt, "prev_gray", bad)
        before = _snapshot(out)
        capsys.readouterr()
        assert main(args) == 2
        err = capsys.readouterr().err.strip()
        assert "clip0" in err and "prev_gray" in err and "--restart" in err and "\n" not in err
        assert _snapshot(out) == before
        arrays.write_bytes(original)
    assert main(args) == 0


def test_state_arrays_are_checked_against_the_frame_size():
    from vis_pipeline.resume import MAX_STATE_FRAMES, check_state_arrays

    ok = {"prev_gray": np.zeros((48, 64), np.uint8), "t": [{"prob": np.zeros((48, 64), "f4")}]}
    check_state_arrays(ok, (64, 48), "cam")
    check_state_arrays({"prev_gray": None, "kf": np.zeros((8, 8))}, (4, 4), "cam")  # tiny frames
    for bad, match in (
        ({"prev_gray": np.zeros((64, 48), np.uint8)}, "prev_gray is 64x48"),
        ({"prev_gray": None, "x": [np.zeros((1000, 1000), "f4")]}, "more than a frame's"),
        ({"x": [np.zeros((256, 256), "f4")] * (MAX_STATE_FRAMES + 1)}, "frames'"),
    ):
        with pytest.raises(ResumeError, match=match) as refused:
            check_state_arrays(bad, (256, 256) if "x" in bad else (64, 48), "cam")
        assert "--restart" in str(refused.value) and "\n" not in str(refused.value)


def test_a_state_folder_that_is_not_a_folder_is_refused_in_one_line(tmp_path):
    from vis_pipeline.resume import SourceIdentity

    source = SourceIdentity("/videos/cam.mp4", "file:1:abc")
    (tmp_path / "file").mkdir()
    (tmp_path / "file" / ".state").write_text("")
    (tmp_path / "link").mkdir()
    (tmp_path / "link" / ".state").symlink_to(tmp_path / "nowhere")
    for folder, what in ((tmp_path / "file", "a file"), (tmp_path / "link", "a link to nothing")):
        store = ResumeStore(folder, "d", jsonl=True)
        with pytest.raises(ResumeError) as refused:
            store.resume_point("cam", source=source)
        message = str(refused.value)
        assert str(folder) in message and what in message and "--output" in message
        assert "\n" not in message
    with pytest.raises(ResumeError, match="is a file, not a folder"):  # --restart
        ResumeStore(tmp_path / "file", "d").clear("cam")
    with pytest.raises(ResumeError, match="/proc/self.*--output"):
        ResumeStore("/proc/self", "d").resume_point("cam", source=source)


def test_a_source_whose_content_changed_in_place_is_named_so(tmp_path):
    from vis_pipeline.resume import SourceIdentity

    store = ResumeStore(tmp_path, "d")
    made = SourceIdentity("/tmp/x/f2", "folder:3:aaaa")
    assert store.resume_point("cam", source=made).frame_index == -1  # records the source
    store.mark_done("cam", {"frames": 3})
    with pytest.raises(ResumeError, match="'/tmp/x/f2', whose content has changed") as refused:
        store.resume_point("cam", source=SourceIdentity("/tmp/x/f2", "folder:3:bbbb"))
    assert "not '/tmp/x/f2'" not in str(refused.value) and "--restart" in str(refused.value)
    with pytest.raises(ResumeError, match="made from '/tmp/x/f2', not '/tmp/x/f3'"):
        store.resume_point("cam", source=SourceIdentity("/tmp/x/f3", "folder:3:bbbb"))


def test_arrays_larger_than_the_checkpoints_frame_are_refused_before_they_are_read(tmp_path):
    store = ResumeStore(tmp_path, "d")
    gray = np.zeros((48, 64), np.uint8)
    store.save("cam", 3, encode_state({"prev_gray": gray, "m": np.zeros((48, 64), "f4")}))
    assert store.load("cam").state["m"].shape == (48, 64)  # a float32 frame: fits
    store.save("cam", 4, encode_state({"prev_gray": gray, "m": np.zeros((480, 640), "f4")}))
    with pytest.raises(ResumeError, match="cam.ckpt-4.npz .*more than a frame's") as refused:
        store.load("cam")
    assert "--restart" in str(refused.value) and "\n" not in str(refused.value)


@pytest.mark.slow
def test_a_resumed_runs_summary_reports_its_own_frames_and_fps(small_video, tmp_path, capsys):
    """A run stopped part-way, then resumed: the frames of the first run stay in ``frames``
    (the output holds them) but not in the resumed run's ``frames_this_run``, which its fps
    divides by its own time."""
    import threading

    from streams.sinks import MemorySink
    from vis_pipeline import run

    video, _ = small_video  # 40 frames
    out = tmp_path / "out"
    sets = ["detector.threads=1", "keyframes.interval=5", "checkpoint_every=5"]
    sets += ["sinks.overlay=false"]
    cfg = load_config("configs/demo.yaml", sets, sources=[str(video)], output=str(out))
    stop = threading.Event()

    class StopAfter(MemorySink):
        def write(self, result, image=None) -> None:
            super().write(result, image)
            if result.frame_index >= 8:
                stop.set()

    first = run(cfg, progress=False, stop=stop, extra_sinks=[StopAfter()])
    assert 0 < first.frames < 40  # stopped part-way
    summary_file = tmp_path / "summary.json"
    args = ["-c", "configs/demo.yaml", "-s", str(video), "-o", str(out), "--no-progress"]
    args += [*[x for s in sets for x in ("--set", s)], "--summary-json", str(summary_file)]
    capsys.readouterr()
    assert main(args) == 0
    text = capsys.readouterr().out
    doc = json.loads(summary_file.read_text())
    (stream,) = doc["streams"]
    kept = stream["resumed_after_frame"] + 1
    assert 0 < kept < 40 and stream["frames"] == 40 == len(_lines_of(out / "small.jsonl"))
    assert stream["frames_this_run"] == 40 - kept == doc["frames_this_run"]
    assert doc["frames"] == 40
    assert stream["fps"] == pytest.approx(stream["frames_this_run"] / stream["seconds"], rel=2e-3)
    assert doc["fps"] == pytest.approx(doc["frames_this_run"] / doc["seconds"], abs=1e-3)
    assert f"frames 40 ({40 - kept} this run)" in text
    assert f"total: 1 streams, 40 frames ({40 - kept} this run) in" in text


def test_a_hostile_identity_repair_state_is_refused_in_one_line_and_nothing_changes(tmp_path):
    """The repair's part of a checkpoint is checked before anything is built from it: sizes,
    types, ranges and finite numbers; a refusal is one line naming the stream and the fix."""
    from vis.tracking.repair import MAX_STATE_IDS, STATE_KEY, RepairConfig, RepairedProcessor
    from vis_pipeline.resume import restore

    def processor() -> RepairedProcessor:
        return RepairedProcessor(make_processor(["bg", "person"]), RepairConfig(), offline=False)

    store = ResumeStore(tmp_path, "digest")
    store.save("cam", 7, encode_state(processor().state_dict()))
    ckpt = store.checkpoint_path("cam")
    original = ckpt.read_text()
    tampers = {
        "id_map": [[i, i + 1] for i in range(10**6, 10**6 + MAX_STATE_IDS + 1)],
        "seen": [[1, float("nan")]],
        "prev_ids": "123",
        "counts": {"interactions": -4},
        "memory": [{"id": 3, "appearance": None, "times": [0.0], "boxes": [[0, 0, 1]]}],
    }
    for key, value in tampers.items():
        doc = json.loads(original)
        doc["state"][STATE_KEY][key] = value
        ckpt.write_text(json.dumps(doc))
        before = _snapshot(tmp_path)
        point = store.resume_point("cam")
        with pytest.raises(ResumeError) as refused:
            restore(processor(), point, "cam")
        why = str(refused.value)
        assert "cam" in why and "identity repair state" in why and "--restart" in why, key
        assert "\n" not in why and len(why) < 300
        assert _snapshot(tmp_path) == before
    ckpt.write_text(original)
    restore(processor(), store.resume_point("cam"), "cam")


def test_a_checkpoint_document_larger_than_any_state_is_refused_before_it_is_parsed(
    tmp_path, monkeypatch
):
    from vis_pipeline import resume as module

    store = ResumeStore(tmp_path, "digest")
    store.save("cam", 7, encode_state(make_processor(["bg", "person"]).state_dict()))
    ckpt = store.checkpoint_path("cam")
    size = ckpt.stat().st_size
    monkeypatch.setattr(module, "MAX_CHECKPOINT_JSON_BYTES", size)
    assert store.resume_point("cam").frame_index == 7  # at the limit: read
    ckpt.write_bytes(ckpt.read_bytes() + b" ")  # one byte over it (still valid JSON)
    with pytest.raises(ResumeError, match="larger than") as refused:
        store.resume_point("cam")
    assert str(ckpt) in str(refused.value) and "--restart" in str(refused.value)


@pytest.mark.slow
def test_a_hostile_analytics_state_is_refused_in_one_line_and_nothing_changes(tmp_path, capsys):
    """The analytics part of a checkpoint is checked like the processor's, before any file
    (the JSONL, the events file) is cut: one line naming the stream and --restart, exit 2."""
    line = "analytics.lines=[{name: door, points: [[10, 10], [10, 100]]}]"
    clips, out, args = _stopped_run(tmp_path, [line])
    ckpt = out / ".state" / "clip0.ckpt.json"
    original = ckpt.read_text()
    assert json.loads(original)["state"]["analytics"]["line_counts"] == [["door", 0, 0]]
    tampers = {
        "last": [7, float("nan")],  # (an integer past 64 bits is refused when decoded)
        "tracks": [{"id": 1, "label": "person"}],
        "line_counts": [["gate", 1, 0]],
        "occupancy": "x" * 100,
    }
    for key, value in tampers.items():
        doc = json.loads(original)
        doc["state"]["analytics"][key] = value
        ckpt.write_text(json.dumps(doc))
        before = _snapshot(out)
        capsys.readouterr()
        assert main(args) == 2, key
        err = capsys.readouterr().err.strip()
        assert "clip0" in err and "analytics state" in err and "--restart" in err, (key, err)
        assert "\n" not in err and "Traceback" not in err, (key, err)
        assert _snapshot(out) == before, key
    ckpt.write_text(original)
    assert main(args) == 0  # the untouched checkpoint resumes
    assert "resumed after frame" in capsys.readouterr().out
