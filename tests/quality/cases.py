"""The headline quality cases: how each is measured, and how a measurement is held to the
figures pinned in ``tests/data/expected_scores.json``.

Every case runs the product the way a user does (the PETS cases through ``StreamProcessor``
with precomputed detections, ``vis_eval.pets09.run_ours``; the synthetic sample and DAVIS
through ``vis_pipeline.run`` on a YAML configuration) and scores the output with
``vis_eval``. ``MEASURE[name]()`` returns the case's figures as a nested dict of numbers;
``check(name, measured)`` compares them with the pinned ones and fails naming every figure
that moved, which way, and the command that re-pins them after an intended change.
``python -m tests.quality.record`` measures and writes the file.
"""

from __future__ import annotations

import json
import math
import statistics
import tempfile
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXPECTED = ROOT / "tests" / "data" / "expected_scores.json"
RECORD = "PYTHONPATH=. .venv/bin/python -m tests.quality.record"

#: (case name, detections kind) of the PETS cases at N=1
PETS_N1 = {"pets09_foreign_N1": "foreign", "pets09_gt_N1": "gt"}
#: PETS at N=5: (detections kind, keyframe phases run)
PETS_N5 = {
    "pets09_foreign_N5": ("foreign", (0, 1, 2, 3, 4)),
    "pets09_gt_N5": ("gt", (0, 1, 2, 3, 4)),
}
SAMPLE_INTERVALS = (1, 5, 10)
DAVIS_INTERVALS = (1, 5)
DAVIS_MODEL = ROOT / "models" / "people_cars_maskrcnn.pt"


def _pets_n1(kind: str) -> dict:
    from vis_eval import pets09

    gt = pets09.load_gt()
    with tempfile.TemporaryDirectory() as tmp:
        tracks, _ = pets09.run_ours(pets09.detections_path(kind, Path(tmp)), interval=1)
    whole = pets09.score(gt, {"o": tracks})["o"]
    out = {"whole": {k: whole[k] for k in ("HOTA", "DetA", "AssA", "IDF1", "IDSW", "ids")}}
    for fold, (a, b) in pets09.FOLDS.items():
        s = pets09.score_span(gt, {"o": tracks}, a, b)["o"]
        out[fold] = {k: s[k] for k in ("HOTA", "AssA", "IDSW")}
    return out


def _pets_n5(kind: str, phases: tuple[int, ...]) -> dict:
    from vis_eval import pets09

    gt = pets09.load_gt()
    with tempfile.TemporaryDirectory() as tmp:
        runs = pets09.run_phases(pets09.detections_path(kind, Path(tmp)), 5, phases=phases)
    s = pets09.phase_scores(gt, runs)
    out = {f"phase {p}": row for p, row in zip(phases, s["by_phase"], strict=True)}
    if len(phases) > 1:
        out["mean"] = {k: s[k]["mean"] for k in ("whole", *pets09.FOLDS)}
    return out


def _sample(interval: int) -> dict:
    """The synthetic demo clip (``configs/demo.yaml``, the shipped tiny model) at ``interval``:
    each ground-truth object followed through the output masks."""
    from streams.sinks import jsonl_path
    from vis_eval.mask_quality import object_coverage
    from vis_eval.sequences import read_jsonl, read_mots_by_frame
    from vis_pipeline import load_config, run

    with tempfile.TemporaryDirectory() as tmp:
        cfg = load_config(
            ROOT / "configs" / "demo.yaml",
            [f"keyframes.interval={interval}", "sinks.overlay=false", "sinks.jsonl=true"],
            source=str(ROOT / "data" / "sample" / "sample.mp4"),
            output=tmp,
        )
        summary = run(cfg, progress=False).to_json()
        if summary.get("exit_code"):
            raise RuntimeError(f"pipeline failed: {summary.get('error')}")
        pred = read_jsonl(jsonl_path(Path(tmp), "sample"))
    q = object_coverage(read_mots_by_frame(ROOT / "data" / "sample" / "sample.gt.txt"), pred)
    return {
        "frames": pred.n_records,
        "coverage": round(q["coverage"], 4),
        "mean_iou": round(q["mean_iou"], 4),
        "switches": q["switches"],
    }


def _davis_people(interval: int) -> dict:
    """DAVIS 2016's one-person sequences through ``configs/street.yaml`` with the shipped
    ``people_cars`` model: J of the one track that follows the person, and its ids."""
    from vis_eval import davis

    with tempfile.TemporaryDirectory() as tmp:
        rows = davis.run_sequences(
            davis.DATA, davis.PEOPLE, interval, [f"detector.weights={DAVIS_MODEL}"], Path(tmp)
        )
    out = {r["sequence"]: {k: r[k] for k in ("J_track", "J_best", "ids", "missed")} for r in rows}
    out["mean J_track"] = round(statistics.mean(r["J_track"] for r in rows), 4)
    out["ids"] = sum(r["ids"] for r in rows)
    return out


MEASURE: dict[str, Callable[[], dict]] = {
    **{name: (lambda k=kind: _pets_n1(k)) for name, kind in PETS_N1.items()},
    **{name: (lambda k=kind, p=ph: _pets_n5(k, p)) for name, (kind, ph) in PETS_N5.items()},
    **{f"sample_N{n}": (lambda n=n: _sample(n)) for n in SAMPLE_INTERVALS},
    **{f"davis_people_N{n}": (lambda n=n: _davis_people(n)) for n in DAVIS_INTERVALS},
}


def load(path: Path = EXPECTED) -> dict:
    return json.loads(path.read_text())


def flatten(d: dict, prefix: str = "") -> dict[str, float]:
    """``{"a": {"b": 1}}`` -> ``{"a / b": 1}``."""
    out: dict[str, float] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, f"{key} / "))
        else:
            out[key] = v
    return out


def tolerance(case: dict, key: str) -> float:
    """The allowed absolute difference of one figure: the case's ``tolerance`` names it by
    its last part (``"HOTA"``, ``"J_track"``) or gives ``"*"`` for all; 0 = exact."""
    tol = case.get("tolerance", {})
    return float(tol.get(key.rsplit(" / ", 1)[-1], tol.get("*", 0.0)))


def differences(name: str, measured: dict, expected: dict | None = None) -> list[str]:
    """The figures of ``measured`` that are not the pinned ones, one line each."""
    case = (expected or load())["cases"][name]
    want, got = flatten(case["values"]), flatten(measured)
    lines = []
    for key in sorted(want.keys() | got.keys()):
        if key not in got or key not in want:
            lines.append(f"{key}: pinned {want.get(key)}, measured {got.get(key)}")
            continue
        tol = tolerance(case, key)
        delta = got[key] - want[key]
        if not math.isclose(abs(delta), tol) and abs(delta) > tol:
            lines.append(
                f"{key}: pinned {want[key]}, measured {got[key]} ({delta:+g}; allowed {tol:g})"
            )
    return lines


def check(name: str, measured: dict) -> None:
    """Fail when a figure of case ``name`` moved beyond its tolerance."""
    lines = differences(name, measured)
    assert not lines, (
        f"quality case {name} moved from tests/data/expected_scores.json:\n  "
        + "\n  ".join(lines)
        + f"\nA loss is a regression. An intended change: re-pin with `{RECORD} {name}` and "
        "say why in the commit."
    )
