"""``vis-pipeline adapt``: a run's keyframes become training images as the reviewer decided
(accepted = instances, rejected = background, undecided = blanked), the shipped people model
is fine-tuned from its own weights (resumably) with a model card, and bad input is one line
with exit code 2. The export tests' scripted run (``story``): tracks 1 (person, frames 0-9),
2 (car; frames 0-3 and 7-9) and 5 (person, frames 2-4); keyframes 0, 3, 6 and 9."""

from __future__ import annotations

import dataclasses
import json

import cv2
import numpy as np
import pytest

from streams.exports.records import RunRecords
from streams.review.corrections import Corrections, Decision, run_identity, save_corrections
from tests.streams.exports.conftest import story  # noqa: F401 - the fixture
from vis_pipeline.cli import main
from vis_train.adapt import AdaptConfig, AdaptError, adapt, build_samples

LABELS = ["person", "car"]


def corrections(story, *decisions: Decision) -> Corrections:  # noqa: F811
    return Corrections(run_identity(story.jsonl), list(decisions))


def samples(story, corr, tmp_path, **kw):  # noqa: F811
    cfg = AdaptConfig(out=tmp_path / "m.pt", model=tmp_path / "base.pt", frames=4, **kw)
    run = RunRecords.open(story.jsonl)
    return build_samples(run, story.video, corr, LABELS, cfg, tmp_path / "frames")


def test_decisions_become_instances_background_and_blanks(story, tmp_path):  # noqa: F811
    corr = corrections(story, Decision(1, "accept"), Decision(2, "reject"))
    train, held, stats = samples(story, corr, tmp_path, holdout=0.25)
    assert [s.key for s in train] == ["0000000", "0000003", "0000006"]
    assert [s.key for s in held] == ["0000009"]
    by_key = {s.key: s for s in train}
    # frame 3: track 1 accepted (an instance), 2 rejected (no instance: its pixels stay, as
    # background), 5 undecided (blanked with the frame's mean colour)
    three = by_key["0000003"]
    assert [i.label for i in three.instances] == ["person"]
    image = cv2.imread(str(three.path))
    truth = story.records[3].detections.full_masks()
    ids = list(story.records[3].detections.track_ids)
    car, undecided = truth[ids.index(2)], truth[ids.index(5)]
    original = cv2.VideoCapture(str(story.video))
    for _ in range(4):
        _, frame3 = original.read()
    assert np.abs(image[car].astype(int) - frame3[car].astype(int)).max() <= 3
    blanked = image[undecided]
    assert (blanked.max(axis=0) - blanked.min(axis=0)).max() == 0  # one flat colour
    assert not np.array_equal(blanked[0], frame3[undecided][0])
    assert stats.accepted == 4 and stats.rejected == 3 and stats.blanked == 1


def test_wrong_class_relabels_and_frame_ranges_apply(story, tmp_path):  # noqa: F811
    corr = corrections(
        story,
        Decision(1, "accept"),
        Decision(2, "wrong_class", label="person"),
        Decision(1, "reject", frames=(6, 9)),  # later, and over part of the track: wins there
    )
    train, held, stats = samples(story, corr, tmp_path, holdout=0.25)
    labels = {s.key: sorted(i.label for i in s.instances) for s in [*train, *held]}
    assert labels == {
        "0000000": ["person", "person"],  # track 1 and the car relabelled
        "0000003": ["person", "person"],
        "0000006": [],  # track 1 rejected here, the car absent: background only
        "0000009": ["person"],  # the car relabelled; track 1 rejected
    }
    assert stats.relabelled == 3 and stats.negative_frames == 1


def test_a_frame_range_limits_the_frames(story, tmp_path):  # noqa: F811
    corr = corrections(story, Decision(1, "accept"))
    train, held, _ = samples(story, corr, tmp_path, holdout=0.3, frame_range=(0, 6))
    assert [s.key for s in train] == ["0000000", "0000003"] and [s.key for s in held] == ["0000006"]
    with pytest.raises(AdaptError, match="at least 2"):
        samples(story, corr, tmp_path, frame_range=(4, 5))


def test_nothing_accepted_is_refused_before_training(story, tmp_path):  # noqa: F811
    import torch

    base = tmp_path / "base.pt"
    torch.save({"model": {}, "labels": LABELS, "arch": "mobilenet_v2_fpn"}, base)
    corr = corrections(story, Decision(1, "reject"), Decision(2, "reject"))
    cfg = AdaptConfig(out=tmp_path / "m.pt", model=base, frames=4)
    with pytest.raises(AdaptError, match="no accepted instance"):
        adapt(cfg, RunRecords.open(story.jsonl), story.video, corr)


def _args(story, tmp_path, corr_path, **over):  # noqa: F811
    args = {
        "--video": str(story.video),
        "--corrections": str(corr_path),
        "--model": "people",
        "-o": str(tmp_path / "adapted.pt"),
        "--frames": "4",
        "--no-progress": None,
    }
    args.update(over)
    out = ["adapt", str(story.jsonl)]
    for k, v in args.items():
        if v is not False:
            out += [k] if v is None else [k, v]
    return out


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("another_run", "belongs to another run"),
        ({"--video": "missing.mp4"}, "--video missing.mp4: no such file"),
        ({"--model": "nope"}, "--model nope: no such model file"),
        ({"--range": "9-x"}, "--range '9-x': expected FIRST-LAST"),
        ("all_rejected", "no accepted instance"),
        ({"--blend": "0"}, "--blend 0.0: use a share in (0, 1]"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(story, tmp_path, capsys, change, message):  # noqa: F811
    corr = corrections(story, Decision(1, "accept"))
    if change == "another_run":
        other = dataclasses.replace(corr.run, tracks_fingerprint="0" * 16)
        corr = Corrections(other, corr.decisions)
    if change == "all_rejected":
        corr = corrections(story, Decision(1, "reject"), Decision(2, "reject"))
    path = save_corrections(corr, tmp_path / "c.json")
    over = change if isinstance(change, dict) else {}
    assert main(_args(story, tmp_path, path, **over)) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "adapted.pt").exists()


@pytest.mark.slow
def test_adapts_the_people_model_writes_its_card_and_resumes(story, tmp_path, capsys):  # noqa: F811
    import torch

    from vis.detection.models import load_model
    from vis_pipeline.adapt_cli import model_path

    corr = save_corrections(
        corrections(story, Decision(1, "accept"), Decision(2, "accept"), Decision(5, "reject")),
        tmp_path / "c.json",
    )
    args = _args(story, tmp_path, corr, **{"--steps": "2", "--threads": "2"})
    assert main(args) == 0, capsys.readouterr().err
    assert "2 steps" in capsys.readouterr().out
    model, labels = load_model(weights=str(tmp_path / "adapted.pt"))
    assert labels == ["__background__", *LABELS]
    card = json.loads((tmp_path / "adapted.card.json").read_text())
    assert card["data"]["train_frames"] == 3 and card["data"]["held_out_frames"] == 1
    assert card["data"]["accepted"] > 0 and card["data"]["rejected"] == 1
    assert card["training"]["precision"] == "f32" and card["training"]["steps"] == 2
    assert card["training"]["blend"] == 0.5  # the default: half the fine-tuning kept
    tuned = torch.load(tmp_path / "adapted.adapt" / "tuned.pt", weights_only=True)["model"]
    base = torch.load(model_path("people"), weights_only=True)["model"]
    written = torch.load(tmp_path / "adapted.pt", weights_only=True)["model"]
    key = next(k for k, v in tuned.items() if not torch.equal(v, base[k]))  # a trained weight
    assert torch.allclose(written[key], (base[key] + tuned[key]) / 2, atol=1e-6)
    assert set(card["held_out_ap"]) == {"base", "adapted"}
    assert "camera" in card["held_out_ap"]["adapted"]
    assert (tmp_path / "adapted.card.md").read_text().startswith("# `adapted.pt`")
    # longer schedule, resumed: continues from the checkpoint's step
    assert main([*_args(story, tmp_path, corr, **{"--steps": "3"}), "--resume"]) == 0
    card = json.loads((tmp_path / "adapted.card.json").read_text())
    assert card["training"]["resumed_at"] == 2 and card["training"]["steps"] == 3


def test_replay_sets_keep_the_models_classes_and_its_training_split():
    from pathlib import Path

    from vis_train.adapt import split_replay
    from vis_train.data import Instance, Sample, holdout_split

    rle = {"size": [4, 4], "counts": b"04"}
    both = (Instance("person", rle), Instance("dog", rle))
    pool = [Sample("pf", f"{k:03d}", Path(f"{k}.png"), 4, 4, both) for k in range(10)]
    train, held = split_replay(pool, LABELS, 0.2)
    assert len(held) == 2 and len(train) == 8
    assert {s.key for s in held} == {s.key for s in holdout_split(pool, fraction=0.2, seed=0)[1]}
    assert all([i.label for i in s.instances] == ["person"] for s in [*train, *held])
    assert split_replay([], LABELS, 0.2) == ([], [])


def test_blend_keeps_that_share_of_the_fine_tuning(tmp_path):
    import torch

    from vis_train.adapt import blend_model

    def record(w: float, labels=LABELS) -> dict:
        state = {"w": torch.full((2, 3), w), "steps": torch.tensor(7 if w else 3)}
        return {"model": state, "arch": "mobilenet_v2_fpn", "labels": labels, "min_size": 480}

    base, tuned, out = tmp_path / "base.pt", tmp_path / "tuned.pt", tmp_path / "out.pt"
    torch.save(record(0.0), base)
    torch.save(record(4.0), tuned)
    blend_model(base, tuned, 0.25, out)
    got = torch.load(out, weights_only=True)
    assert torch.equal(got["model"]["w"], torch.full((2, 3), 1.0))  # 0 + 0.25 * (4 - 0)
    assert int(got["model"]["steps"]) == 7  # not a weight: the tuned model's own
    assert got["labels"] == LABELS and got["min_size"] == 480
    blend_model(base, tuned, 1.0, out)
    assert torch.equal(torch.load(out, weights_only=True)["model"]["w"], torch.full((2, 3), 4.0))
    torch.save(record(4.0, labels=["person"]), tuned)
    with pytest.raises(AdaptError, match="not a fine-tuning of"):
        blend_model(base, tuned, 0.5, out)
