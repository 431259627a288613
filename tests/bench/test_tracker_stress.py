import random

import pytest

from bench.tracker_stress import perturb

RECORD = {
    "frame_index": 3,
    "instances": [
        {"score": s, "bbox": [0, 0, 10, 20], "mask": {"size": [4, 4], "counts": "x"}}
        for s in (0.95, 0.5, 0.3)
    ]
    * 100,
}


def test_score_variants_scale_every_score_capped_at_one_and_keep_the_rest():
    down = perturb(RECORD, "scores x0.85", random.Random(0))
    up = perturb(RECORD, "scores x1.15", random.Random(0))
    assert [i["score"] for i in down["instances"][:3]] == pytest.approx([0.8075, 0.425, 0.255])
    assert [i["score"] for i in up["instances"][:3]] == pytest.approx([1.0, 0.575, 0.345])
    assert down["instances"][0]["mask"] == RECORD["instances"][0]["mask"]
    assert down["frame_index"] == 3 and RECORD["instances"][0]["score"] == 0.95  # a copy


def test_missed_variant_drops_about_that_share_seeded():
    a = perturb(RECORD, "20 % missed", random.Random(0))
    b = perturb(RECORD, "20 % missed", random.Random(0))
    assert a == b
    assert 0.12 * 300 < 300 - len(a["instances"]) < 0.28 * 300
    with pytest.raises(ValueError, match="variant"):
        perturb(RECORD, "upside down", random.Random(0))
