"""Precomputed detections as untrusted input: limits checked before anything is allocated,
bad records skipped and counted, a bad file refused in one line (docs/limits.md)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from tests.conftest import ROOT
from vis.detection.detector import HistogramEmbedder
from vis.detection.precomputed import MAX_INSTANCES, PrecomputedDetector, PrecomputedError

H, W = 48, 64


def record(frame: int, instances: list, *, width: int = W, height: int = H) -> dict:
    return {
        "schema": "vis.frame/2",
        "stream_id": "s",
        "frame_index": frame,
        "timestamp_ms": 0.0,
        "keyframe": True,
        "width": width,
        "height": height,
        "instances": instances,
    }


def box(x0=4, y0=6, x1=20, y1=30, class_id=1, score=0.9, **extra) -> dict:
    return {"class_id": class_id, "label": "person", "score": score, "bbox": [x0, y0, x1, y1]}


def write_jsonl(path, records) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return str(path)


def detector(path, labels=None) -> PrecomputedDetector:
    return PrecomputedDetector(path=path, embedder=HistogramEmbedder(), labels=labels)


def image() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 255, (H, W, 3), dtype=np.uint8)


def served(det: PrecomputedDetector, frames: int) -> list[int]:
    return [len(det.detect_frame(i, image())) for i in range(frames)]


@pytest.mark.parametrize(
    "bad, reason",
    [
        ({**box(), "class_id": 2_000_000_000}, "class_id 2000000000"),
        ({**box(), "class_id": -1}, "class_id -1"),
        ({**box(), "bbox": ["1", "2", "3", "4"]}, "bbox"),
        ({**box(), "bbox": [0, 0, float("nan"), 4]}, "bbox"),
        ({**box(), "bbox": [0, 0, 1e30, 4]}, "bbox"),
        ({**box(), "score": float("inf")}, "score"),
        ({**box(), "mask": {"x": 0, "y": 0, "size": [100000, 100000], "counts": "0"}}, "mask"),
        ({**box(), "mask": {"size": [2, 2], "counts": [1, 10**12]}}, "mask counts"),
        ("not an object", "not an object"),
    ],
)
def test_a_record_over_a_limit_is_skipped_and_counted(tmp_path, bad, reason, caplog):
    path = write_jsonl(tmp_path / "d.jsonl", [record(0, [box()]), record(1, [box(), bad])])
    det = detector(path, labels=["__background__", "person"])
    assert served(det, 3) == [1, 0, 0]
    assert det.malformed == 1
    assert any(reason in r.getMessage() and "frame 1" in r.getMessage() for r in caplog.records)


def test_labels_read_from_the_file_ignore_a_huge_class_id(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [record(0, [box(class_id=2_000_000_000)])])
    det = detector(path)
    assert det.labels == ["__background__"]
    assert served(det, 1) == [0] and det.malformed == 1


def test_too_many_instances_in_a_frame_skip_it(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [record(0, [box()] * (MAX_INSTANCES + 1))])
    det = detector(path, labels=["__background__", "person"])
    assert served(det, 1) == [0] and det.malformed == 1


def test_a_frame_size_other_than_the_videos_refuses_the_file_before_a_mask_is_made(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [record(0, [box()], width=100000, height=100000)])
    det = detector(path, labels=["__background__", "person"])
    with pytest.raises(PrecomputedError, match="has 100000x100000 frames but the video is 64x48"):
        det.detect_frame(0, image())


@pytest.mark.parametrize("frames", [[50, 51, 0, 1], [0, 1, 1, 2]])
def test_jsonl_frames_out_of_order_are_refused_at_open_with_the_sort(tmp_path, frames):
    path = write_jsonl(tmp_path / "d.jsonl", [record(i, [box()]) for i in frames])
    with pytest.raises(PrecomputedError, match=r"line 3: frame_index .*sort_by\(.frame_index\)"):
        detector(path)


def test_an_unsorted_det_txt_is_refused_at_open(tmp_path):
    path = tmp_path / "det.txt"
    path.write_text("1,-1,1,1,5,5,0.9\n3,-1,1,1,5,5,0.9\n2,-1,1,1,5,5,0.9\n")
    with pytest.raises(PrecomputedError, match=r"line 3: frame 2 after frame 3: sort"):
        detector(str(path))


def test_det_txt_rows_that_are_not_finite_or_too_large_are_skipped_and_counted(tmp_path):
    path = tmp_path / "det.txt"
    rows = ["1,-1,1,1,5,5,0.9", "1,-1,nan,1,5,5,0.9", "2,-1,1,1,inf,5,0.9",
            "2,-1,1e30,1,5,5,0.9", "2,-1,1,1,5,5,0.9", "x,y", "0,-1,1,1,5,5,1"]  # fmt: skip
    path.write_text("\n".join(rows) + "\n")
    det = detector(str(path))
    assert served(det, 3) == [1, 1, 0] and det.malformed == 5


def test_a_det_txt_frame_with_too_many_boxes_is_skipped(tmp_path):
    path = tmp_path / "det.txt"
    many = "".join(f"1,-1,{i % 50},1,5,5,0.9\n" for i in range(MAX_INSTANCES + 1))
    path.write_text(many + "2,-1,1,1,5,5,0.9\n")
    det = detector(str(path))
    assert served(det, 2) == [0, 1] and det.malformed == 1


def test_a_huge_box_is_embedded_inside_the_frame(tmp_path):
    """The appearance step cuts the box clipped to the frame: a 60000-pixel box costs a
    frame, not 13 GB."""
    path = tmp_path / "det.txt"
    path.write_text("1,-1,0,0,60000,60000,0.9\n")
    det = detector(str(path))
    d = det.detect_frame(0, image())
    assert len(d) == 1 and d.embeddings.shape == (1, det.dim) and d.embeddings.any()
    np.testing.assert_array_equal(d.xyxy[0], [0, 0, 60000, 60000])  # the file's box, kept


HOSTILE = r"""
import json, resource, sys
import numpy as np
from vis.detection.detector import HistogramEmbedder
from vis.detection.precomputed import PrecomputedDetector, PrecomputedError

status = open("/proc/self/status").read()
vm = int(status.split("VmSize:")[1].split()[0]) * 1024
resource.setrlimit(resource.RLIMIT_AS, (vm + 2**30, resource.RLIM_INFINITY))  # 1 GB more
tmp = sys.argv[1]
img = np.zeros((576, 768, 3), np.uint8)
def rec(inst, w=768, h=576):
    return {"schema": "vis.frame/1", "stream_id": "s", "frame_index": 0, "timestamp_ms": 0,
            "keyframe": True, "width": w, "height": h, "instances": inst}
cases = {
    "class_id": rec([{"class_id": 2000000000, "score": 1, "bbox": [0, 0, 9, 9]}]),
    "mask": rec([{"class_id": 1, "score": 1, "bbox": [0, 0, 9, 9],
                  "mask": {"size": [100000, 100000], "counts": "0"}}]),
    "frame": rec([{"class_id": 1, "score": 1, "bbox": [0, 0, 99999, 99999]}], 100000, 100000),
}
for name, r in cases.items():
    p = f"{tmp}/{name}.jsonl"
    open(p, "w").write(json.dumps(r) + "\n")
    try:
        PrecomputedDetector(path=p, embedder=HistogramEmbedder()).detect_frame(0, img)
    except PrecomputedError:
        pass
p = f"{tmp}/det.txt"
open(p, "w").write("1,-1,0,0,60000,60000,0.9\n")
PrecomputedDetector(path=p, embedder=HistogramEmbedder()).detect_frame(0, img)
print("ok")
"""


def test_the_reported_hostile_files_run_within_a_gigabyte_of_address_space(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(HOSTILE), str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-2000:]


@pytest.mark.parametrize("schema", ["vis.frame/1", "vis.frame/2"])
def test_a_box_without_mask_is_its_filled_box_in_either_version(tmp_path, schema):
    rec = {**record(0, [box(4, 6, 20, 30)]), "schema": schema}
    det = detector(write_jsonl(tmp_path / "d.jsonl", [rec]), labels=["__background__", "p"])
    d = det.detect_frame(0, image())
    assert len(d) == 1 and det.malformed == 0
    full = d.masks[0].to_full()
    assert full.sum() == 16 * 24 and full[6:30, 4:20].all()


def test_a_file_of_two_frame_sizes_is_refused_at_open(tmp_path):
    recs = [record(0, [box()]), record(1, [box()], width=100000, height=100000)]
    with pytest.raises(PrecomputedError, match="line 2: a 100000x100000 frame in a file of 64x48"):
        detector(write_jsonl(tmp_path / "d.jsonl", recs))


def ring(x0: int, y0: int, side: int, score: float) -> dict:
    """A ``side`` x ``side`` box whose mask is its 2-pixel outline (masks barely overlap)."""
    from vis.ops.masks import BoxMask
    from vis.ops.rle import encode_box

    prob = np.zeros((side, side), np.float32)
    prob[:2] = prob[-2:] = prob[:, :2] = prob[:, -2:] = 1
    mask = encode_box(BoxMask(x0, y0, prob, (360, 640)))
    return {**box(x0, y0, x0 + side, y0 + side, score=score), "mask": mask}


def test_a_crowded_frame_serves_the_max_detections_highest_scoring_logged_once(tmp_path, caplog):
    """The reported file's shape: frames of 300 instances of 260x260 boxes in 640x360."""
    rng = np.random.default_rng(1)
    scores = rng.permutation(300) / 300.0
    frames = []
    for f in range(3):
        inst = [ring(int(rng.integers(0, 380)), int(rng.integers(0, 100)), 260, s) for s in scores]
        frames.append(record(f, inst if f != 1 else inst[:3], width=640, height=360))
    path = write_jsonl(tmp_path / "d.jsonl", frames)
    det = PrecomputedDetector(
        path=path, embedder=HistogramEmbedder(), labels=["__background__", "p"], max_detections=50
    )
    img = np.zeros((360, 640, 3), np.uint8)
    served = [det.detect_frame(i, img) for i in range(3)]
    assert [len(d) for d in served] == [50, 3, 50]
    best = np.sort(scores.astype(np.float32))[-50:]
    np.testing.assert_array_equal(np.sort(served[0].scores), best)
    # bounded: what reaches the tracker is max_detections masks, not 300
    assert sum(m.prob.size for m in served[2].masks) <= 50 * 260 * 260
    assert det.dropped == 2 * 250 and det.malformed == 0
    logged = [r for r in caplog.records if "max_detections" in r.getMessage()]
    assert len(logged) == 1 and logged[0].levelname == "WARNING"
    assert str(tmp_path / "d.jsonl") in logged[0].getMessage()


def test_the_cap_counts_only_instances_above_the_score_threshold(tmp_path):
    inst = [box(score=0.9)] * 4 + [box(score=0.1)] * 10
    path = write_jsonl(tmp_path / "d.jsonl", [record(0, inst)])
    det = PrecomputedDetector(
        path=path,
        embedder=HistogramEmbedder(),
        labels=["__background__", "p"],
        score_threshold=0.5,
        max_detections=5,
    )
    assert len(det.detect_frame(0, image())) == 4 and det.dropped == 0


def test_a_det_txt_frame_over_max_detections_keeps_the_highest_scores(tmp_path):
    path = tmp_path / "det.txt"
    path.write_text("".join(f"1,-1,{k},2,5,5,{k / 10}\n" for k in range(8)) + "2,-1,1,1,4,4,0.5\n")
    det = PrecomputedDetector(path=str(path), embedder=HistogramEmbedder(), max_detections=3)
    d = det.detect_frame(0, image())
    np.testing.assert_allclose(d.scores, [0.5, 0.6, 0.7])  # file order, the 3 best
    np.testing.assert_array_equal(d.xyxy[:, 0], [5, 6, 7])
    assert len(det.detect_frame(1, image())) == 1 and det.dropped == 5


def test_a_frame_index_outside_0_to_2_31_is_skipped_counted_and_logged(tmp_path, caplog):
    recs = [record(-5, [box()]), record(0, [box()]), record(10**30, [box()])]
    recs += [record(2**31, [box()]), record(1e30, [box()]), record(1, [box()])]
    det = detector(write_jsonl(tmp_path / "d.jsonl", recs), labels=["__background__", "p"])
    assert served(det, 3) == [1, 1, 0]  # the bad records neither block nor shift the others
    assert det.malformed == 4
    messages = [r.getMessage() for r in caplog.records]
    for bad in ("-5", str(10**30), str(2**31), "1e+30"):
        assert any(f"frame_index {bad} is not an integer in [0, 2^31)" in m for m in messages)


@pytest.mark.parametrize("frames", [[], [100, 200]])
def test_a_file_that_matches_no_frame_warns_once_at_the_end(tmp_path, caplog, frames):
    path = write_jsonl(tmp_path / "d.jsonl", [record(i, [box()]) for i in frames])
    det = detector(path, labels=["__background__", "p"])
    assert served(det, 3) == [0, 0, 0]
    assert not any("no detection matched" in r.getMessage() for r in caplog.records)
    det.close()
    warned = [r for r in caplog.records if "no detection matched a frame" in r.getMessage()]
    assert len(warned) == 1 and warned[0].levelname == "WARNING" and path in warned[0].getMessage()


def test_a_file_that_matches_a_frame_does_not_warn(tmp_path, caplog):
    det = detector(write_jsonl(tmp_path / "d.jsonl", [record(2, [box()])]), labels=None)
    assert served(det, 3) == [0, 0, 1]
    det.close()
    assert not any("no detection matched" in r.getMessage() for r in caplog.records)


def test_a_frame_the_reader_passed_is_served_when_asked_after_a_later_one(tmp_path):
    """An offline stream asks for held frames after the keyframe that closes them."""
    recs = [record(i, [box(x1=10 + i)]) for i in range(6)]
    det = detector(write_jsonl(tmp_path / "d.jsonl", recs))
    late = det.detect_frame(5, image())
    early = det.detect_frame(2, image())
    again = det.detect_frame(5, image())
    assert [d.xyxy[0, 2] for d in (late, early, again)] == [15, 12, 15]
    assert len(det.detect_frame(4, image())) == 1
