import json

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from tests.vis_eval.conftest import N_FRAMES, tiny_sequence
from vis_eval.sequences import (
    TRACKEVAL_CLASS,
    EvaluationError,
    Instance,
    TrackSequence,
    encode_rles,
    jsonl_records,
    parse_trackeval_lines,
    read_jsonl,
    read_mots,
    resolve_overlaps,
    trackeval_lines,
    write_jsonl,
)
from vis.schema import decode_record


def _decoded(seq: TrackSequence) -> dict:
    return {
        (f, i.track_id): mask_utils.decode(i.rle).astype(bool)
        for f, insts in seq.frames.items()
        for i in insts
    }


def test_jsonl_round_trip_through_trackeval_lines(tmp_path, tiny_gt):
    path = write_jsonl(
        tmp_path / "tiny.jsonl",
        jsonl_records(
            tiny_gt, stream_id="tiny", n_frames=N_FRAMES, keyframes=range(0, N_FRAMES, 5)
        ),
    )
    for line in path.read_text().splitlines():  # valid vis.frame/1 records
        assert len(decode_record(json.loads(line)).detections) == 2
    seq = read_jsonl(path)
    assert seq.keyframes == {0, 5, 10, 15}
    assert seq.size == (48, 96) and seq.n_records == N_FRAMES
    lines = trackeval_lines(seq, n_frames=N_FRAMES)
    assert lines[0].split()[:5] == ["1", "1001", str(TRACKEVAL_CLASS), "48", "96"]  # 1-based
    back = parse_trackeval_lines(lines)
    assert sorted(back.frames) == list(range(N_FRAMES))  # 0-based again
    a, b = _decoded(tiny_gt), _decoded(back)
    assert a.keys() == b.keys()
    assert all(np.array_equal(a[k], b[k]) for k in a)


def test_mots_text_reader_matches_jsonl(tmp_path, tiny_gt):
    mots = tmp_path / "tiny.gt.txt"
    mots.write_text(
        "".join(
            f"{f} {i.track_id} {i.class_id} 48 96 {i.rle['counts'].decode()}\n"
            for f, insts in tiny_gt.frames.items()
            for i in insts
        )
    )
    seq = read_mots(mots)
    assert _decoded(seq).keys() == _decoded(tiny_gt).keys()
    assert {i.class_id for i in seq.instances(0)} == {1, 2}


@pytest.mark.parametrize("bad", ["not json\n", '{"schema": "vis.frame/1"}\n'])
def test_bad_jsonl_line_names_the_file_and_line(tmp_path, bad):
    p = tmp_path / "x.jsonl"
    p.write_text(bad)
    with pytest.raises(EvaluationError, match="x.jsonl line 1"):
        read_jsonl(p)


def test_overlaps_go_to_the_higher_score_and_empty_instances_drop():
    m = np.zeros((3, 10, 10), bool)
    m[0, 2:6, 2:6] = True  # low score, overlaps the next one
    m[1, 4:8, 4:8] = True  # high score
    m[2, 4:6, 4:6] = True  # inside 1: nothing left after resolution
    r = encode_rles(m)
    insts = [Instance(1, 1, 0.5, r[0]), Instance(2, 1, 0.9, r[1]), Instance(3, 1, 0.4, r[2])]
    out = resolve_overlaps(insts)
    assert [i.track_id for i in out] == [1, 2]
    low, high = (mask_utils.decode(i.rle).astype(bool) for i in out)
    assert np.array_equal(high, m[1]) and not (low & high).any()
    assert low.sum() == 16 - 4
    assert resolve_overlaps([]) == []


def test_untracked_or_duplicate_ids_cannot_be_scored(tiny_gt):
    seq = tiny_sequence()
    seq.frames[3] = [Instance(-1, 1, 0.9, seq.frames[3][0].rle)]
    with pytest.raises(EvaluationError, match="without a track id"):
        trackeval_lines(seq, n_frames=N_FRAMES)
    with pytest.raises(EvaluationError, match="outside"):
        trackeval_lines(tiny_gt, n_frames=5)
