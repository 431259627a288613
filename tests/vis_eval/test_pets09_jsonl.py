"""Reading a run's JSONL on the PETS footage as tracks (the street demo's scoring input)."""

import json

import numpy as np

from vis_eval.pets09 import tracks_from_jsonl


def test_tracks_from_jsonl_keeps_ids_and_boxes_of_the_dev_span(tmp_path):
    p = tmp_path / "vtest.jsonl"
    recs = [
        {"frame_index": 0, "instances": [{"track_id": 3, "bbox": [1, 2, 3, 4]}]},
        {"frame_index": 1, "instances": []},
        {"frame_index": 5, "instances": [{"track_id": 7, "bbox": [5, 6, 7, 8]}]},
    ]
    p.write_text("\n".join(json.dumps(r) for r in recs) + "\n")
    tracks = tracks_from_jsonl(p, frames_n=3)
    assert sorted(tracks) == [0, 1, 2]
    assert [t for t, _ in tracks[0]] == [3]
    np.testing.assert_array_equal(tracks[0][0][1], np.array([1, 2, 3, 4], np.float32))
    assert tracks[1] == [] and tracks[2] == []
