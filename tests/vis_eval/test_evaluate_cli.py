import json

import pytest

from tests.vis_eval.conftest import N_FRAMES, tiny_sequence
from vis_eval import evaluate as cli
from vis_eval.sequences import jsonl_records, write_jsonl


def _gt_dir(tmp_path):
    d = tmp_path / "gt"
    d.mkdir()
    seq = tiny_sequence()
    (d / "tiny.gt.txt").write_text(
        "".join(
            f"{f} {i.track_id} {i.class_id} 48 96 {i.rle['counts'].decode()}\n"
            for f, insts in seq.frames.items()
            for i in insts
        )
    )
    return d


def test_cli_scores_jsonl_and_writes_json(tmp_path, capsys):
    gt = _gt_dir(tmp_path)
    good, swapped = tmp_path / "good", tmp_path / "swapped"
    write_jsonl(
        good / "tiny.jsonl",
        jsonl_records(tiny_sequence(), stream_id="tiny", n_frames=N_FRAMES, keyframes=[0, 10]),
    )
    write_jsonl(
        swapped / "tiny.jsonl",
        jsonl_records(tiny_sequence(swap_after=5), stream_id="tiny", n_frames=N_FRAMES),
    )
    out = tmp_path / "r.json"
    assert (
        cli.main(
            ["--gt", str(gt), "--pred", str(good), str(swapped), "--json", str(out), "--per-class"]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "COMBINED" in printed and "HOTA" in printed
    res = json.loads(out.read_text())
    good_r, swap_r = res["trackers"]["good"]["combined"], res["trackers"]["swapped"]["combined"]
    assert good_r["HOTA"] == pytest.approx(100.0) and good_r["mask_AP"] == pytest.approx(100.0)
    assert good_r["prop_frames"] == N_FRAMES - 2
    assert good_r["prop_miou_matched"] == pytest.approx(100.0)
    assert swap_r["IDSW"] > 0 and swap_r["IDF1"] < 100.0
    assert set(res["trackers"]["good"]["per_class"]) == {"disk", "box", "star"}


def test_cli_reports_missing_prediction(tmp_path, capsys):
    gt = _gt_dir(tmp_path)
    (tmp_path / "none").mkdir()
    assert cli.main(["--gt", str(gt), "--pred", str(tmp_path / "none")]) == 2
    assert "tiny.jsonl" in capsys.readouterr().err
