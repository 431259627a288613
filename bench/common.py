"""Shared plumbing of the benchmark studies: the set, pipeline runs, scoring, reports.

Contract: ``ensure_set(data_dir, scale)`` makes sure the benchmark set is on disk;
``run_on_set(data_dir, out_dir, overrides)`` runs ``vis_pipeline.run`` on every sequence
(in this process, one sequence after the other) and returns the summed run summary;
``score(data_dir, {name: pred_dir})`` scores prediction folders with ``vis_eval``;
``write_report(name, payload, markdown)`` writes ``bench/results/<name>.json`` and ``.md``.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from streams.sinks import jsonl_path  # noqa: E402
from vis_eval.benchmark import evaluate, load_ground_truth, load_predictions  # noqa: E402
from vis_pipeline import PipelineConfig, load_config, run  # noqa: E402

DATA = ROOT / "bench" / "data"
RESULTS = ROOT / "bench" / "results"
TMP = RESULTS / "tmp"
CONFIG = ROOT / "configs" / "demo.yaml"

log = logging.getLogger("bench")


def ensure_set(data_dir: Path = DATA, scale: int = 1) -> dict:
    """Write the benchmark set to ``data_dir`` unless a manifest of that scale is there."""
    from bench.make_set import write_set

    m = data_dir / "manifest.json"
    if m.is_file():
        manifest = json.loads(m.read_text())
        names = [s["name"] for s in manifest["sequences"]]
        if manifest.get("scale") == scale and all((data_dir / f"{n}.mp4").is_file() for n in names):
            return manifest
    log.warning("writing the benchmark set (scale %d) to %s", scale, data_dir)
    return write_set(data_dir, scale)


def sequences(data_dir: Path = DATA, only: list[str] | None = None) -> list[str]:
    names = [s["name"] for s in json.loads((data_dir / "manifest.json").read_text())["sequences"]]
    return [n for n in names if not only or n in only]


def run_on_set(
    data_dir: Path,
    out_dir: Path,
    overrides: list[str],
    *,
    only: list[str] | None = None,
    config: Path = CONFIG,
    per_sequence_overrides: Callable[[str], list[str]] | None = None,
) -> dict:
    """Run the pipeline on every sequence of the set, writing ``out_dir/<seq>.jsonl``.

    Returns:
        ``{"frames", "keyframes", "seconds", "fps", "stage_ms_per_frame": {...},
        "sequences": {seq: {"frames", "seconds", "fps"}}}`` (summed over the sequences;
        seconds are wall time from the first decoded frame to the last written one, model
        loading excluded).
    """
    import dataclasses

    base = ["sinks.overlay=false", "sinks.jsonl=true"]
    if "resume" in {f.name for f in dataclasses.fields(PipelineConfig)}:
        base.append("resume=false")  # never skip or resume: every run starts from frame 0
    fields = {f.name for f in dataclasses.fields(PipelineConfig)}
    out_dir.mkdir(parents=True, exist_ok=True)
    names = sequences(data_dir, only)
    for seq in names:
        jsonl_path(out_dir, seq).unlink(missing_ok=True)
    total = {"frames": 0, "keyframes": 0, "seconds": 0.0, "stage_seconds": {}, "sequences": {}}
    if "sources" in fields and per_sequence_overrides is None:
        # one run over all sequences (one after the other): the detector is built and warmed
        # up once, as in a long-running deployment
        cfg = load_config(
            config,
            [*base, "parallel_streams=1", *overrides],
            sources=[str(data_dir / f"{n}.mp4") for n in names],
            output=str(out_dir),
        )
        j = run(cfg, progress=False).to_json()
        if j.get("exit_code"):
            raise RuntimeError(f"pipeline failed: {j.get('error')}")
        total.update(
            frames=j["frames"],
            keyframes=j.get("keyframes", 0),
            seconds=j["seconds"],
            stage_seconds=dict(j.get("stage_seconds", {})),
        )
        for st in j.get("streams", []):
            total["sequences"][st["stream_id"]] = {k: st[k] for k in ("frames", "seconds", "fps")}
        names = []
        log.info("%d frames in %.1f s (%s)", j["frames"], j["seconds"], " ".join(overrides))
    for seq in names:
        extra = per_sequence_overrides(seq) if per_sequence_overrides else []
        cfg = load_config(
            config,
            [*base, *overrides, *extra],
            source=str(data_dir / f"{seq}.mp4"),
            output=str(out_dir),
        )
        s = run(cfg, progress=False)
        j = s.to_json()  # the --summary-json dict: frames, keyframes, seconds, stage_seconds
        if j.get("exit_code"):
            raise RuntimeError(f"pipeline failed on {seq}: {j.get('error')}")
        total["frames"] += j["frames"]
        total["keyframes"] += j.get("keyframes", 0)
        total["seconds"] += j["seconds"]
        for k, v in j.get("stage_seconds", {}).items():
            total["stage_seconds"][k] = total["stage_seconds"].get(k, 0.0) + v
        fps = round(j["frames"] / j["seconds"], 3) if j["seconds"] else 0.0
        total["sequences"][seq] = {
            "frames": j["frames"],
            "seconds": round(j["seconds"], 3),
            "fps": fps,
        }
        log.info(
            "%s: %d frames in %.1f s (%s)", seq, j["frames"], j["seconds"], " ".join(overrides)
        )
    total["fps"] = round(total["frames"] / total["seconds"], 3) if total["seconds"] else 0.0
    total["stage_ms_per_frame"] = {
        k: round(1000 * v / max(total["frames"], 1), 2)
        for k, v in total.pop("stage_seconds").items()
    }
    total["seconds"] = round(total["seconds"], 2)
    return total


def warm_up(data_dir: Path, overrides: list[str]) -> None:
    """Run the pipeline once on the shortest sequence and throw the result away.

    The first model inference of a process is slow (kernel selection, allocations); without
    this the first measured run of a study pays for it.
    """
    m = json.loads((data_dir / "manifest.json").read_text())
    shortest = min(m["sequences"], key=lambda s: s["frames"])["name"]
    run_on_set(data_dir, TMP / "warmup", overrides, only=[shortest])


def score(
    data_dir: Path,
    preds: dict[str, Path],
    *,
    only: list[str] | None = None,
    mask_ap: bool = True,
    per_class: bool = False,
) -> dict:
    """Score prediction folders (one TrackEval call for all of them)."""
    gt = load_ground_truth(data_dir, only)
    trackers = {name: load_predictions(p, gt) for name, p in preds.items()}
    return evaluate(gt, trackers, mask_ap=mask_ap, per_class=per_class)


def machine() -> dict:
    """What the numbers were measured on: the CPU with the features that decide what a
    precision costs and gains (AVX2, AVX-512, VNNI, BF16, AMX)."""
    from vis.detection.precision import cpu_features

    cpu = cpu_features().describe()
    try:
        import cv2
        import torch

        libs = {"torch": torch.__version__, "opencv": cv2.__version__}
    except ImportError:  # pragma: no cover - main env has both
        libs = {}
    try:
        import trackeval

        libs["trackeval"] = trackeval.__version__
    except ImportError:
        pass
    return {
        "date_utc": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M"),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "loadavg_1_5_15min_at_end": [round(x, 2) for x in os.getloadavg()],
        "commit": _git_head(),
        **libs,
    }


def _git(*args: str) -> str:
    """``git <args>``'s output in the repository, stripped ("" when git cannot run)."""
    try:
        return subprocess.run(
            ["git", *args], cwd=ROOT, text=True, capture_output=True, check=False
        ).stdout.strip()
    except OSError:
        return ""


def _git_head() -> str:
    return _git("rev-parse", "--short", "HEAD")


def commit_label() -> str:
    """``<short HEAD>``, with `` + uncommitted changes`` when the tree differs from it."""
    dirty = _git("status", "--porcelain", "--untracked-files=no")
    return f"{_git_head()} + uncommitted changes" if dirty else _git_head()


def cpu_model() -> str:
    """The CPU's model name as ``lscpu`` prints it."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    except OSError:
        out = ""
    for line in out.splitlines():
        if line.startswith("Model name"):
            return line.split(":", 1)[1].strip()
    return "unknown CPU"


def write_report(name: str, payload: dict, markdown: str) -> tuple[Path, Path]:
    """``bench/results/<name>.json`` (payload + machine) and ``bench/results/<name>.md``."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    payload = {"study": name, "machine": machine(), **payload}
    j = RESULTS / f"{name}.json"
    j.write_text(json.dumps(payload, indent=1) + "\n")
    m = RESULTS / f"{name}.md"
    mach = payload["machine"]
    m.write_text(
        f"<!-- generated by bench/{name}.py on {mach['date_utc']} UTC, "
        f"{mach['cpu']}, {mach['cores']} cores, commit {mach['commit']} -->\n"
        + markdown.rstrip()
        + "\n"
    )
    return j, m


def setup_logging(level: str = "INFO") -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(name)s %(message)s",
        datefmt="%H:%M:%S",
    )
    logging.getLogger("vis").setLevel(logging.WARNING)


class Stopwatch:
    """``with Stopwatch() as t: ...; t.seconds``."""

    def __enter__(self) -> Stopwatch:
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self.seconds = time.perf_counter() - self._t0
