"""Every export format read back by a reader that is not ours: pycocotools (COCO,
YouTube-VIS), TrackEval (MOTS text, MOT text), Datumaro (COCO, MOTS PNG, CVAT for video)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from streams.exports import FORMATS, ExportError, export_run
from streams.exports.cvat import cvat_rle
from tests.streams.exports.conftest import FRAMES, H, W


@pytest.fixture
def dm():
    return pytest.importorskip(
        "datumaro", reason="Datumaro is not installed: run scripts/bootstrap.sh (test extra)"
    )


def _masks(story, f):
    """track id -> (class id, mask) of frame f as the run wrote it."""
    d = story.records[f].detections
    return {int(t): (int(c), m) for t, c, m in zip(d.track_ids, d.class_ids, d.full_masks())}


def _exclusive(story, f):
    """The run's masks with overlaps given to the higher score (what MOTS must hold)."""
    d = story.records[f].detections
    owner = np.zeros((H, W), int)
    for i in np.argsort(d.scores, kind="stable"):
        owner[d.masks[i].to_full()] = d.track_ids[i]
    return {int(t): owner == t for t in d.track_ids}


def _export(story, fmt, tmp_path):
    (result,) = export_run(story.jsonl, [fmt], tmp_path / "out")
    assert result.frames == len(FRAMES)
    return result


def test_coco_masks_equal_ours_in_pycocotools_and_datumaro(story, tmp_path, dm):
    (res,) = export_run(story.jsonl, ["coco"], tmp_path / "out", video=story.video)
    assert res.path.name == "cam_1.coco.json"
    coco = COCO(str(res.path))
    assert len(coco.getImgIds()) == len(FRAMES)
    assert {c["name"] for c in coco.loadCats(coco.getCatIds())} == {"person", "car"}
    n = 0
    for f in FRAMES:
        img = coco.loadImgs(f + 1)[0]
        assert img["frame_id"] == f and img["file_name"] == f"cam_1/{f:06d}.jpg"
        ours = _masks(story, f)
        anns = coco.loadAnns(coco.getAnnIds(imgIds=[f + 1]))
        assert sorted(a["track_id"] for a in anns) == sorted(ours)
        for a in anns:
            cls, mask = ours[a["track_id"]]
            assert a["category_id"] == cls and a["video_id"] == 1
            np.testing.assert_array_equal(coco.annToMask(a).astype(bool), mask)
            n += 1
    assert n == res.instances == 19  # 9 + 7 + 3 frames of the three tracks

    # Datumaro finds COCO files by the dataset layout: <root>/annotations/instances_<subset>.json
    # and <root>/images/<subset>/<file_name>
    (tmp_path / "dm" / "annotations").mkdir(parents=True)
    shutil.copy(res.path, tmp_path / "dm" / "annotations" / "instances_default.json")
    (tmp_path / "dm" / "images").mkdir()
    (tmp_path / "dm" / "images" / "default").symlink_to(tmp_path / "out" / "images")
    ds = dm.Dataset.import_from(str(tmp_path / "dm"), "coco_instances")
    assert len(ds) == len(FRAMES)
    assert all(item.media.has_data for item in ds)  # file_name resolves to the written frame
    masks = [a for item in ds for a in item.annotations if a.type == dm.AnnotationType.mask]
    assert len(masks) == n


def test_ytvis_has_one_annotation_per_track_with_null_where_absent(story, tmp_path):
    res = _export(story, "ytvis", tmp_path)
    doc = json.loads(res.path.read_text())
    (video,) = doc["videos"]
    assert video["length"] == len(FRAMES) and len(video["file_names"]) == len(FRAMES)
    cats = {c["id"]: c["name"] for c in doc["categories"]}
    by_track = {a["track_id"]: a for a in doc["annotations"]}
    assert set(by_track) == {1, 2, 5}
    assert cats[by_track[2]["category_id"]] == "car"  # the majority, despite frame 8
    for tid, ann in by_track.items():
        assert len(ann["segmentations"]) == len(FRAMES)
        for pos, f in enumerate(FRAMES):
            seg, ours = ann["segmentations"][pos], _masks(story, f).get(tid)
            if ours is None:
                assert seg is None and ann["bboxes"][pos] is None
                continue
            rle = {"size": seg["size"], "counts": seg["counts"].encode()}
            np.testing.assert_array_equal(mask_utils.decode(rle).astype(bool), ours[1])
            assert ann["areas"][pos] == int(ours[1].sum())


def _trackeval_mots(path: Path, seq: str, length: int, tmp_path: Path) -> dict:
    from trackeval.datasets import MOTSChallenge

    data = tmp_path / "te" / "trackers" / "ours" / "data"
    data.mkdir(parents=True)
    shutil.copy(path, data / f"{seq}.txt")
    (tmp_path / "te" / "gt").mkdir()
    shutil.copy(path, tmp_path / "te" / "gt" / f"{seq}.txt")
    ds = MOTSChallenge(
        {
            "GT_FOLDER": str(tmp_path / "te" / "gt"),
            "TRACKERS_FOLDER": str(tmp_path / "te" / "trackers"),
            "TRACKERS_TO_EVAL": ["ours"],
            "SKIP_SPLIT_FOL": True,
            "SEQ_INFO": {seq: length},
            "GT_LOC_FORMAT": "{gt_folder}/{seq}.txt",
            "PRINT_CONFIG": False,
        }
    )
    return ds._load_raw_file("ours", seq, is_gt=False)  # raises on overlapping masks


def test_mots_text_is_read_by_trackeval_with_disjoint_masks(story, tmp_path):
    res = _export(story, "mots", tmp_path)
    raw = _trackeval_mots(res.path, "cam_1", FRAMES[-1] + 1, tmp_path)
    ids = dict(
        line.split(",")[:2][::-1]
        for line in res.path.with_name("cam_1.mots.ids.csv").read_text().splitlines()[1:]
    )
    assert ids == {"1": "1001", "2": "2001", "5": "1002"}  # class * 1000 + n
    for f in range(10):
        ours = _exclusive(story, f) if f in story.records else {}
        got = {int(i): d for i, d in zip(raw["tracker_ids"][f], raw["tracker_dets"][f])}
        assert set(got) == {int(ids[str(t)]) for t in ours}
        for tid, mask in ours.items():
            oid = int(ids[str(tid)])
            np.testing.assert_array_equal(mask_utils.decode(got[oid]).astype(bool), mask)
        assert all(c == i // 1000 for c, i in zip(raw["tracker_classes"][f], raw["tracker_ids"][f]))


def test_mots_png_is_read_by_datumaro(story, tmp_path, dm):
    res = _export(story, "mots-png", tmp_path)
    ds = dm.Dataset.import_from(str(res.path), "mots")
    labels = ds.categories()[dm.AnnotationType.label]
    assert len(ds) == len(FRAMES)  # every frame has an object
    n = 0
    for item in ds:
        f = int(item.id)
        ours = _exclusive(story, f)
        assert len(item.annotations) == len(ours)
        for tid, mask in ours.items():
            label, number = {1: ("person", 1), 2: ("car", 1), 5: ("person", 2)}[tid]
            (ann,) = [
                a
                for a in item.annotations
                if a.attributes["track_id"] == number and labels[a.label].name == label
            ]
            np.testing.assert_array_equal(ann.image.astype(bool), mask)
            n += 1
    assert n == res.instances


def _datumaro_cvat(dm, path: Path, monkeypatch):
    """Datumaro 1.13.12 reads the frame size of a ``<mask>`` from its ``<image>``, which a
    video's ``<track>`` does not have (``CvatBase._parse_shape_ann`` gets ``image=None`` and
    fails). We hand it the frame size from ``<original_size>``; the parsing, the RLE
    decoding and the track/keyframe/outside attributes are all Datumaro's."""
    from datumaro.plugins.data_formats.cvat.base import CvatBase

    parse = CvatBase._parse_shape_ann.__func__

    def with_frame_size(cls, ann, categories, image):
        return parse(cls, ann, categories, image or {"width": W, "height": H})

    monkeypatch.setattr(CvatBase, "_parse_shape_ann", classmethod(with_frame_size))
    return dm.Dataset.import_from(str(path), "cvat")


def test_cvat_video_tracks_are_read_by_datumaro(story, tmp_path, monkeypatch, dm):
    res = _export(story, "cvat", tmp_path)
    ds = _datumaro_cvat(dm, res.path, monkeypatch)
    labels = ds.categories()[dm.AnnotationType.label]
    assert [labels[i].name for i in range(len(labels))] == ["person", "car"]
    shapes = {}
    for item in ds:
        for a in item.annotations:
            shapes[(item.attributes["frame"], a.attributes["track_id"])] = a
    # xml track ids count from 0 in first-appearance order: 1 -> 0, 2 -> 1, 5 -> 2
    xml = {1: 0, 2: 1, 5: 2}
    outside = {k for k, a in shapes.items() if a.attributes["outside"]}
    assert outside == {(4, 1), (6, 2)}  # the car leaves at 4, the 2nd person after 4
    assert all(a.attributes["keyframe"] for a in shapes.values())
    visible = 0
    for f in FRAMES:
        for tid, (_, mask) in _masks(story, f).items():
            ann = shapes[(f, xml[tid])]
            assert not ann.attributes["outside"]
            assert labels[ann.label].name == ("car" if tid == 2 else "person")
            np.testing.assert_array_equal(ann.image.astype(bool), mask)
            visible += 1
    assert visible == res.instances == len(shapes) - len(outside)


def test_cvat_rle_runs_start_with_background_and_cover_the_box():
    m = np.zeros((5, 6), bool)
    m[1, 2:4] = True
    m[3, 1] = True
    rle, left, top, width, height = cvat_rle(m)
    assert (left, top, width, height) == (1, 1, 3, 3)
    assert rle == "1,2,3,1,2"  # rows of the box: .XX / ... / X..
    assert sum(map(int, rle.split(","))) == width * height
    assert cvat_rle(np.zeros((3, 3), bool)) is None


def test_mot_boxes_are_read_by_trackeval(story, tmp_path):
    from trackeval.datasets import MotChallenge2DBox

    res = _export(story, "mot", tmp_path)
    data = tmp_path / "te" / "trackers" / "ours" / "data"
    data.mkdir(parents=True)
    shutil.copy(res.path, data / "cam_1.txt")
    (tmp_path / "te" / "gt").mkdir()
    shutil.copy(res.path, tmp_path / "te" / "gt" / "cam_1.txt")  # the reader wants one
    ds = MotChallenge2DBox(
        {
            "GT_FOLDER": str(tmp_path / "te" / "gt"),
            "TRACKERS_FOLDER": str(tmp_path / "te" / "trackers"),
            "TRACKERS_TO_EVAL": ["ours"],
            "SKIP_SPLIT_FOL": True,
            "SEQ_INFO": {"cam_1": 10},
            "GT_LOC_FORMAT": "{gt_folder}/{seq}.txt",
            "PRINT_CONFIG": False,
        }
    )
    raw = ds._load_raw_file("ours", "cam_1", is_gt=False)
    for f in range(10):
        d = story.records[f].detections if f in story.records else None
        assert list(raw["tracker_ids"][f]) == ([] if d is None else list(d.track_ids))
        if d is not None:  # x, y, w, h
            want = np.c_[d.xyxy[:, :2], d.xyxy[:, 2:] - d.xyxy[:, :2]]
            np.testing.assert_allclose(raw["tracker_dets"][f], want, atol=0.01)
            np.testing.assert_allclose(raw["tracker_confidences"][f], d.scores, atol=1e-4)


def test_every_format_in_one_call_and_frames_from_the_video(story, tmp_path):
    results = export_run(story.jsonl, list(FORMATS), tmp_path / "all", video=story.video)
    assert [r.format for r in results] == list(FORMATS)
    assert all(r.path.exists() for r in results)
    images = sorted((tmp_path / "all" / "images" / "cam_1").iterdir())
    assert [p.name for p in images] == [f"{f:06d}.jpg" for f in FRAMES]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "no records"),
        ('{"schema": "vis.frame/1"}\n', "line 1: not a vis.frame record"),
        ("not json\n", "line 1: not a vis.frame record"),
    ],
)
def test_bad_input_names_the_file_and_line(tmp_path, content, message):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(content)
    with pytest.raises(ExportError, match=message):
        export_run(bad, ["coco"], tmp_path / "out")
    with pytest.raises(ExportError, match="cannot read"):
        export_run(tmp_path / "missing.jsonl", ["coco"], tmp_path / "out")
    with pytest.raises(ExportError, match="unknown export format 'labelme'"):
        export_run(bad, ["labelme"], tmp_path / "out")
