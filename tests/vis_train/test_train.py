"""tools/train.py end to end on the tests' own tiny data with the tiny architecture."""

import json
import subprocess
import sys

import pytest
import torch

from tests.conftest import ROOT
from tests.vis_train.conftest import write_davis
from vis.detection.models import load_model
from vis_train.cli import ap_json_path, main

pytestmark = pytest.mark.slow


def _args(coco_dir, pennfudan_dir, out, steps, *extra):
    ann, images = coco_dir
    return [
        "--coco", str(ann), "--images", str(images), "--pennfudan", str(pennfudan_dir),
        "--classes", "person,car", "--arch", "tiny_fpn", "--steps", str(steps),
        "--checkpoint-every", "2", "--train-sizes", "64,80", "--min-size", "80",
        "--max-size", "128", "--holdout", "0.34", "--warmup", "2", "--no-progress",
        "--out", str(out), "--checkpoint", str(out.parent / "run" / "last.pt"), *extra,
    ]  # fmt: skip


def test_train_writes_a_loadable_model_resumes_and_scores_held_out_images(
    coco_dir, pennfudan_dir, tmp_path
):
    out = tmp_path / "models" / "tiny.pt"
    davis = write_davis(tmp_path / "davis")
    rare = ["--repeat-thresh", "0.9", "--copy-paste", "0.7", "--paste-classes", "car",
            "--davis-donor", str(davis), "toy-car", "car", "--davis-every", "2"]  # fmt: skip
    assert main(_args(coco_dir, pennfudan_dir, out, 6, "--stop-after", "4", *rare)) == 0
    ckpt = torch.load(out.parent / "run" / "last.pt", weights_only=True)
    assert ckpt["step"] == 4 and "optimizer" in ckpt

    model, labels = load_model(weights=str(out))
    assert labels == ["__background__", "person", "car"]
    assert model.transform.min_size == (80,) and model.transform.max_size == 128

    report = json.loads(ap_json_path(out).read_text())
    assert ap_json_path(out).name == "tiny.ap.json"
    assert report["classes"] == ["person", "car"]
    assert report["training"]["steps"] == 4 and report["training"]["resumed_at"] == 0
    assert report["training"]["schedule_steps"] == 6
    assert report["training"]["donor_objects"] == 3  # the toy DAVIS car frames 0, 2, 4
    assert report["training"]["mean_repeat_factor"] > 1  # Penn-Fudan has no car
    assert report["split"]["method"] == "stratified"
    held = report["held_out"]
    assert set(held) == {"tinycoco", "pennfudan"}
    # stratified: ceil(0.34 * 6) = 3 of tinycoco (person and car in every image), 2 of 5 else
    assert held["tinycoco"]["images"] == 3 and held["pennfudan"]["images"] == 2
    assert set(held["tinycoco"]["per_class"]) == {"person", "car"}
    assert held["pennfudan"]["per_class"]["car"] is None  # no car in Penn-Fudan
    for name in held:
        assert set(held[name]["all"]) == {"mask_AP", "mask_AP50", "box_AP", "box_AP50"}

    assert main(_args(coco_dir, pennfudan_dir, out, 6, "--resume", *rare)) == 0
    assert torch.load(out.parent / "run" / "last.pt", weights_only=True)["step"] == 6
    report = json.loads(ap_json_path(out).read_text())
    assert report["training"]["resumed_at"] == 4 and report["training"]["steps"] == 6

    # the resumed run ends where an uninterrupted one does
    straight = tmp_path / "straight" / "tiny.pt"
    assert main(_args(coco_dir, pennfudan_dir, straight, 6, *rare)) == 0
    a = torch.load(out, weights_only=True)["model"]
    b = torch.load(straight, weights_only=True)["model"]
    for k in a:
        torch.testing.assert_close(a[k], b[k], msg=f"resumed != uninterrupted at {k}")


def test_the_entry_point_needs_data(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "train.py"), "--out", str(tmp_path / "m.pt")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and "no data" in proc.stderr
