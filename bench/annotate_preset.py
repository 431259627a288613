"""The annotation preset's detector levers against the defaults, through the whole pipeline:
HOTA on the street footage and mask J on the DAVIS people, with their cost.

    OMP_NUM_THREADS=1 PYTHONPATH=. .venv/bin/python -m bench.annotate_preset
    ... --starts 200 --parts street,timing --merge     # one part again, the rest kept

Both settings run the shipped ``people`` model offline at keyframe interval N=5, one detector
thread, JSONL only; they differ only in the detector levers ``configs/annotate.yaml`` turns
on (``detector.nms``, ``soft_nms_*``, ``tta``, ``tiles``). Street: ``configs/street.yaml``
on two spans of ``--frames`` frames of PETS 2009 S2.L1 (``--starts``, default 0 and 200: the
dev span's two folds; ``bench.street``'s frames), boxes scored against the MOT15 ground truth
of the span (TrackEval HOTA, DetA, AssA, IDF1). DAVIS: ``lucia`` and ``dance-twirl`` as
``bench.davis`` runs them, J of the one track covering the annotated person most and of the
best mask per frame. Cost: the two settings' detectors take turns on the same keyframes
(every 5th frame of the first street span and of the DAVIS people), median seconds per
keyframe, so that load from other jobs falls on both alike; each run's own detector time and
fps are reported too, and its fps with the detector at the median and the rest of the time
(decode, propagation, tracking, writing) the default run's. The JSONL of every run stays under
``bench/results/tmp/annotate_preset`` (``bench.review_auc_tta`` reads them). Writes
``bench/results/annotate_preset.{json,md}``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import yaml

from bench.common import RESULTS, ROOT, commit_label, cpu_model, setup_logging, write_report
from bench.street import CONFIG, VIDEO, frames
from streams.sinks import jsonl_path
from vis.detection.factory import build_detector
from vis_eval import davis, pets09
from vis_pipeline import load_config, run

COMMAND = "OMP_NUM_THREADS=1 PYTHONPATH=. .venv/bin/python -m bench.annotate_preset"
PRESET = ROOT / "configs" / "annotate.yaml"
WORK = RESULTS / "tmp" / "annotate_preset"
LEVER_KEYS = ("nms", "soft_nms_sigma", "soft_nms_min_score", "tta", "tiles")
COMMON = [
    "detector.weights=people",
    "detector.threads=1",
    "mode=offline",
    "keyframes.interval=5",
    "sinks.overlay=false",
    "sinks.jsonl=true",
    "sinks.kafka=null",
    "resume=false",
]
STREET = ["fps=10"]
PEOPLE = ["lucia", "dance-twirl"]
STREET_VIDEOS = (VIDEO, Path.home() / ".cache" / "pets09" / "vtest.avi")


def preset_levers(path: Path = PRESET) -> list[str]:
    """The preset's detector levers as ``--set`` overrides (``detector.<key>=<yaml>``)."""
    det = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("detector", {})
    return [
        f"detector.{k}={yaml.safe_dump(det[k], default_flow_style=True).strip()}"
        for k in LEVER_KEYS
        if k in det
    ]


def cost(stream: dict) -> dict:
    """Detector seconds per keyframe and end-to-end fps of one stream's summary."""
    det = stream["stage_seconds"].get("detect", 0.0)
    return {
        "frames": stream["frames"],
        "seconds": stream["seconds"],
        "detect_s": round(det, 3),
        "keyframes": stream["keyframes"],
        "detect_s_per_keyframe": round(det / max(stream["keyframes"], 1), 3),
        "fps": round(stream["frames"] / stream["seconds"], 2),
    }


def street_frames(video: Path, start: int, n: int) -> Path:
    """Frames ``start`` to ``start + n - 1`` of the footage as a folder (``bench.street``'s
    PNGs, linked; the folder's frame 0 is footage frame ``start``)."""
    if start == 0:
        return frames(video, n)
    every = frames(video, pets09.DEV_FRAMES)
    out = WORK / f"frames_{start}_{n}"
    out.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        link = out / f"{i:05d}.png"
        if not link.exists():
            link.symlink_to(every / f"{start + i:05d}.png")
    return out


def street_run(src: Path, start: int, n: int, levers: list[str], name: str) -> dict:
    out = WORK / name
    cfg = load_config(CONFIG, [*COMMON, *STREET, *levers], sources=[str(src)], output=str(out))
    summary = run(cfg, progress=False).to_json()
    if summary.get("exit_code"):
        raise RuntimeError(f"pipeline failed: {summary.get('error')}")
    found = pets09.tracks_from_jsonl(jsonl_path(out, src.name), n)
    tracks = {f + start: v for f, v in found.items()}
    s = pets09.score_span(pets09.load_gt(), {"t": tracks}, start, start + n)["t"]
    row = {k: round(float(s[k]), 2) for k in ("HOTA", "DetA", "AssA", "IDF1")}
    return {**row, **cost(summary["streams"][0]), "jsonl": str(jsonl_path(out, src.name))}


def davis_run(levers: list[str], name: str) -> list[dict]:
    """``lucia`` and ``dance-twirl`` in one run (``vis_eval.davis``'s settings), scored."""
    out = WORK / name
    out.mkdir(parents=True, exist_ok=True)
    cfg = load_config(
        davis.CONFIG,
        [*davis.RUN_SETTINGS, *COMMON, *levers],
        sources=[str(davis.frames_dir(davis.DATA, n)) for n in PEOPLE],
        output=str(out),
    )
    summary = run(cfg, progress=False).to_json()
    if summary.get("exit_code"):
        raise RuntimeError(f"pipeline failed: {summary.get('error')}")
    streams = {s["stream_id"]: s for s in summary["streams"]}
    rows = []
    for seq in PEOPLE:
        pred = davis.masks_by_track(davis.read_jsonl(jsonl_path(out, seq)))
        r = davis.score_object(davis.load_gt(davis.DATA, seq), pred)
        rows.append(
            {
                "sequence": seq,
                "J_track": None if r["J_track"] is None else round(r["J_track"], 3),
                "J_best": None if r["J_best"] is None else round(r["J_best"], 3),
                "ids": r["ids"],
                "missed": r["missed"],
                **cost(streams[seq]),
            }
        )
    return rows


def detector_timing(levers: list[str], images: list[np.ndarray]) -> dict:
    """Median detector seconds per keyframe of the defaults and of ``levers`` on ``images``,
    the two taking turns on every image (one warm-up call each first)."""
    settings = {"default": [], "preset": levers}
    dets = {
        k: build_detector(load_config(CONFIG, [*COMMON, *STREET, *lv]).detector)
        for k, lv in settings.items()
    }
    times: dict[str, list[float]] = {k: [] for k in dets}
    for det in dets.values():
        det.detect([images[0]])
    for im in images:
        for k, det in dets.items():
            t0 = time.perf_counter()
            det.detect([im])
            times[k].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    return {
        "images": len(images),
        "default_s": round(med["default"], 3),
        "preset_s": round(med["preset"], 3),
        "ratio": round(med["preset"] / med["default"], 2),
    }


def fps_turns(video: Path, levers: list[str], n: int = 50, rounds: int = 2) -> dict:
    """Whole-run fps of the two settings on street frames 0 to ``n - 1``, taking turns
    (default, preset, default, ...) ``rounds`` times: the median of each, and their ratio."""
    src = street_frames(video, 1, n)
    fps: dict[str, list[float]] = {"default": [], "preset": []}
    for k in range(rounds):
        for name, lv in (("default", []), ("preset", levers)):
            out = WORK / f"fps_{name}_{k}"
            cfg = load_config(CONFIG, [*COMMON, *STREET, *lv], sources=[str(src)], output=str(out))
            summary = run(cfg, progress=False).to_json()
            fps[name].append(cost(summary["streams"][0])["fps"])
    med = {k: round(statistics.median(v), 2) for k, v in fps.items()}
    return {
        "frames": f"1-{n}",
        "rounds": rounds,
        "fps": fps,
        "default": med["default"],
        "preset": med["preset"],
        "ratio": round(med["preset"] / med["default"], 2),
    }


def timing_images(src: Path | None) -> list[np.ndarray]:
    """Every 5th frame (the keyframes at N=5) of the street span and of the DAVIS people."""
    paths = [] if src is None else sorted(src.glob("*.png"))[::5]
    for seq in PEOPLE:
        paths += sorted(davis.frames_dir(davis.DATA, seq).glob("*.jpg"))[::5]
    return [cv2.imread(str(p)) for p in paths]


def fps_at(stream: dict, base: dict, keyframes_s: float) -> float:
    """``stream``'s fps had its detector taken ``keyframes_s`` per keyframe and the rest of
    its time (decode, propagation, tracking, writing) been ``base``'s, the default run's."""
    rest = base["seconds"] - base["detect_s"]
    return round(stream["frames"] / (rest + stream["keyframes"] * keyframes_s), 2)


def _markdown(payload: dict) -> list[str]:
    levers = " ".join(payload["levers"]) or "none"
    md = [
        f"The annotation preset's detector levers (`{levers}`) against the defaults, `people` "
        "model, offline, N=5, one detector thread, OMP_NUM_THREADS=1; "
        f"`{payload['command']}`; {payload['cpu']}, {payload['date']}, {payload['commit']}.",
        "",
    ]
    t = payload.get("timing")
    if t:
        md += [
            f"Cost, the two detectors taking turns on the same {t['images']} keyframes (every "
            f"5th frame of street frames {t.get('street_span', '')} and of the DAVIS people), "
            "median: defaults "
            f"**{t['default_s']} s**, preset **{t['preset_s']} s** per keyframe "
            f"(**{t['ratio']}x**). The runs below ran one after the other on a machine shared "
            "with other jobs, so their own detector times and fps are not comparable with each "
            "other; `fps (turns)` is each run's fps with its detector time replaced by the "
            "median above and the rest (decode, propagation, tracking, writing) by the default "
            "run's.",
            "",
        ]
    f = payload.get("fps_turns")
    if f:
        md += [
            f"Whole runs taking turns (street frames {f['frames']}, {f['rounds']} runs each, "
            f"median): defaults **{f['default']} fps**, preset **{f['preset']} fps** "
            f"(**{f['ratio']}x**; each run: {f['fps']}).",
            "",
        ]
    for span, r in payload.get("street", {}).items():
        md += [
            f"Street, PETS 2009 S2.L1 frames {span} (boxes against MOT15, TrackEval):",
            "",
            "| setting | HOTA | DetA | AssA | IDF1 | keyframes | detector s/keyframe (run) | "
            "fps (run) | fps (turns) |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for name in ("default", "preset"):
            x = r[name]
            turns = fps_at(x, r["default"], t[f"{name}_s"]) if t else ""
            md.append(
                f"| {name} | {x['HOTA']} | {x['DetA']} | {x['AssA']} | {x['IDF1']} | "
                f"{x['keyframes']} | {x['detect_s_per_keyframe']} | {x['fps']} | {turns} |"
            )
        md.append("")
    if payload.get("davis"):
        md += [
            "DAVIS 2016 people (mask J of the one track covering the person most, and of the "
            "best mask per frame; 480p):",
            "",
            "| sequence | setting | J (one track) | J (best mask) | ids | missed | "
            "detector s/keyframe (run) | fps (run) | fps (turns) |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for i, seq in enumerate(PEOPLE):
            for name in ("default", "preset"):
                x = payload["davis"][name][i]
                turns = fps_at(x, payload["davis"]["default"][i], t[f"{name}_s"]) if t else ""
                md.append(
                    f"| {seq} | {name} | {x['J_track']} | {x['J_best']} | {x['ids']} | "
                    f"{x['missed']} | {x['detect_s_per_keyframe']} | {x['fps']} | {turns} |"
                )
    return md


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, default=200, help="street frames per span")
    ap.add_argument(
        "--starts", type=int, nargs="+", default=[0, 200], help="first frame of each span"
    )
    ap.add_argument(
        "--parts", default="street,davis,timing", help="comma-separated: street, davis, timing"
    )
    ap.add_argument(
        "--merge", action="store_true", help="keep the other parts of the last results file"
    )
    args = ap.parse_args(argv)
    setup_logging()
    parts = set(args.parts.split(","))
    video = next((v for v in STREET_VIDEOS if v.is_file()), None)
    levers = preset_levers()
    old = {}
    if args.merge and (RESULTS / "annotate_preset.json").is_file():
        old = json.loads((RESULTS / "annotate_preset.json").read_text())
    payload = {
        "command": f"{COMMAND} --frames {args.frames} --starts " + " ".join(map(str, args.starts)),
        "date": _dt.date.today().isoformat(),
        "cpu": cpu_model(),
        "commit": commit_label(),
        "levers": levers,
        "settings": COMMON,
        "street": old.get("street", {}),
        "davis": old.get("davis", {}),
        "timing": old.get("timing"),
        "fps_turns": old.get("fps_turns"),
    }
    if "street" in parts and video is not None:
        for start in args.starts:
            src = street_frames(video, start, args.frames)
            span = f"{start}-{start + args.frames - 1}"
            payload["street"][span] = {
                name: street_run(src, start, args.frames, lv, f"street_{name}_{span}")
                for name, lv in (("default", []), ("preset", levers))
            }
    if "davis" in parts:
        payload["davis"] = {
            name: davis_run(lv, f"davis_{name}")
            for name, lv in (("default", []), ("preset", levers))
        }
    if "timing" in parts:
        src = None if video is None else street_frames(video, args.starts[0], args.frames)
        payload["timing"] = detector_timing(levers, timing_images(src))
        payload["timing"]["street_span"] = f"{args.starts[0]}-{args.starts[0] + args.frames - 1}"
    if "fps" in parts and video is not None:
        payload["fps_turns"] = fps_turns(video, levers)
    _, md_path = write_report("annotate_preset", payload, "\n".join(_markdown(payload)) + "\n")
    print(md_path.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
