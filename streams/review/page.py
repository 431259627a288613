"""The review page: a static HTML file (no server) and a CSV listing the tracks most in need
of a human's look, worst first, each with a thumbnail of its worst frame (mask drawn), its
scores, frame range and a strip of small thumbnails over time.

Contract: ``write_review(jsonl, video, out_dir)`` reads the run (``RunRecords``), scores it
(``score_run``), picks the ``top`` tracks by ``review_score``, reads the records once more
to find each one's worst instance and its strip frames, decodes the video once to cut the
crops, and writes ``out_dir/index.html``, ``out_dir/review.csv``, ``out_dir/thumbs/*.jpg``
and ``out_dir/<stream>.quality.jsonl`` (the records with their quality fields). Memory: the
chosen tracks' few masks (RLE) and one video frame.
"""

from __future__ import annotations

import csv
import dataclasses
import html
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from streams.exports.records import RunRecords, video_frames
from streams.review.scoring import RunQuality, score_run, scored_frames, write_quality_jsonl
from streams.sinks.paths import safe_name
from vis.quality import InstanceQuality
from vis.schema import decode_mask

STRIP = 8  # thumbnails per track strip


@dataclasses.dataclass
class Shot:
    """One instance to draw: where, its mask (RLE) and its quality."""

    frame: int
    bbox: list[float]
    mask: dict[str, Any]
    quality: InstanceQuality

    def thumb(self, tid: int, kind: str) -> str:
        return f"thumbs/t{tid}_{kind}_f{self.frame:06d}.jpg"


@dataclasses.dataclass
class Row:
    track_id: int
    label: str
    first: int
    last: int
    frames: int
    review_score: float
    worst: Shot | None = None
    strip: list[Shot | None] = dataclasses.field(default_factory=list)


def write_review(
    jsonl: str | Path, video: str | Path, out_dir: str | Path, *, top: int = 30,
    show_progress: bool = False,
) -> list[Row]:  # fmt: skip
    run = RunRecords.open(jsonl)
    out = Path(out_dir)
    (out / "thumbs").mkdir(parents=True, exist_ok=True)
    quality = score_run(run, show_progress=show_progress)
    rows = _rows(run, quality, top)
    _find_shots(run, quality, rows, show_progress)
    _cut_thumbnails(video, run, rows, out)
    write_quality_jsonl(run, quality, out / f"{safe_name(run.stream_id)}.quality.jsonl")
    _write_csv(rows, out / "review.csv")
    _write_html(run, rows, out / "index.html")
    return rows


def _rows(run: RunRecords, quality: RunQuality, top: int) -> list[Row]:
    order = sorted(quality.tracks.items(), key=lambda kv: (-kv[1].review_score, kv[0]))
    return [
        Row(tid, run.labels[q.class_id], quality.first[tid], quality.last[tid], q.frames,
            q.review_score, strip=[None] * STRIP)
        for tid, q in order[:top]
    ]  # fmt: skip


def _find_shots(run: RunRecords, quality: RunQuality, rows: list[Row], show: bool) -> None:
    """Each row's worst instance, and for each strip slot the instance nearest its time."""
    by_id = {r.track_id: r for r in rows}
    for rec, _, qs in scored_frames(run, quality, show_progress=show):
        f = rec["frame_index"]
        for inst, q in zip(rec["instances"], qs):
            row = by_id.get(q.track_id)
            if row is None:
                continue
            shot = Shot(f, inst["bbox"], inst["mask"], q)
            if row.worst is None or q.review_score > row.worst.quality.review_score:
                row.worst = shot
            for k in range(STRIP):
                target = row.first + k * (row.last - row.first) / (STRIP - 1)
                old = row.strip[k]
                if old is None or abs(f - target) < abs(old.frame - target):
                    row.strip[k] = shot


def _draw(image: np.ndarray, shot: Shot, size: int) -> np.ndarray:
    """The shot's box with 30 % margin, mask tinted and outlined, longer side ``size``."""
    h, w = image.shape[:2]
    x1, y1, x2, y2 = shot.bbox
    mx, my = 0.3 * (x2 - x1) + 4, 0.3 * (y2 - y1) + 4
    a, b = int(max(x1 - mx, 0)), int(max(y1 - my, 0))
    c, d = int(min(x2 + mx, w)), int(min(y2 + my, h))
    crop = image[b:d, a:c].copy()
    mask = decode_mask(shot.mask)[b:d, a:c]
    crop[mask] = (0.55 * crop[mask] + 0.45 * np.array([40, 200, 255])).astype(np.uint8)
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    cv2.drawContours(crop, contours, -1, (0, 140, 255), 1)
    scale = size / max(crop.shape[:2])
    return cv2.resize(
        crop, (max(int(crop.shape[1] * scale), 1), max(int(crop.shape[0] * scale), 1))
    )


def _cut_thumbnails(video: str | Path, run: RunRecords, rows: list[Row], out: Path) -> None:
    wanted: dict[int, list[tuple[int, Shot, str, int]]] = {}
    for r in rows:
        if r.worst is not None:
            wanted.setdefault(r.worst.frame, []).append((r.track_id, r.worst, "worst", 200))
        for s in {s.frame: s for s in r.strip if s is not None}.values():
            wanted.setdefault(s.frame, []).append((r.track_id, s, "strip", 72))
    for index, image in video_frames(run, video, wanted):
        for tid, shot, kind, size in wanted[index]:
            cv2.imwrite(str(out / shot.thumb(tid, kind)), _draw(image, shot, size))


CSV_FIELDS = ["rank", "track_id", "label", "first_frame", "last_frame", "frames",
              "track_review_score", "worst_frame", "review_score", "score", "mask_iou_prev",
              "shape_iou_prev", "keyframe_iou_next", "propagation_age", "class_margin",
              "id_switch_suspect", "thumbnail"]  # fmt: skip


def _write_csv(rows: list[Row], path: Path) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(CSV_FIELDS)
        for rank, r in enumerate(rows, 1):
            q = r.worst.quality
            iou, shape, nxt = (
                "" if v is None else f"{v:.3f}"
                for v in (q.mask_iou_prev, q.shape_iou_prev, q.keyframe_iou_next)
            )
            w.writerow([rank, r.track_id, r.label, r.first, r.last, r.frames,
                        f"{r.review_score:.3f}", r.worst.frame, f"{q.review_score:.3f}",
                        f"{q.score:.3f}", iou, shape, nxt, q.propagation_age,
                        f"{q.class_margin:.3f}", int(q.id_switch_suspect),
                        r.worst.thumb(r.track_id, "worst")])  # fmt: skip


STYLE = """body{font:14px sans-serif;margin:1em;background:#fafafa}
table{border-collapse:collapse}td,th{border-bottom:1px solid #ddd;padding:6px;vertical-align:top}
th{text-align:left;background:#eee}.s{font-weight:bold;font-size:18px}
.strip{white-space:nowrap}.strip img{height:56px;margin-right:2px;border:1px solid #ccc}
.warn{color:#b00}.trk{min-width:120px}.sig{min-width:230px}"""


def _write_html(run: RunRecords, rows: list[Row], path: Path) -> None:
    e = html.escape
    body = []
    for rank, r in enumerate(rows, 1):
        q = r.worst.quality
        iou, shape, nxt = (
            "n/a" if v is None else f"{v:.2f}"
            for v in (q.mask_iou_prev, q.shape_iou_prev, q.keyframe_iou_next)
        )
        strip = "".join(
            f'<img src="{e(s.thumb(r.track_id, "strip"))}" title="frame {s.frame}" '
            f'alt="track {r.track_id} frame {s.frame}">'
            for s in {s.frame: s for s in r.strip if s is not None}.values()
        )
        switch = '<div class="warn">id switch suspected</div>' if q.id_switch_suspect else ""
        body.append(
            f'<tr class="track" data-track="{r.track_id}"><td>{rank}</td>'
            f'<td><img class="worst" src="{e(r.worst.thumb(r.track_id, "worst"))}" '
            f'alt="track {r.track_id} frame {r.worst.frame}"></td>'
            f'<td class="trk"><div class="s">{r.review_score:.2f}</div>track {r.track_id} '
            f"<b>{e(r.label)}</b><br>frames {r.first}-{r.last} ({r.frames})</td>"
            f'<td class="sig">worst frame {r.worst.frame}: review {q.review_score:.2f}<br>'
            f"detector score {q.score:.2f}<br>mask IoU with previous frame {iou} "
            f"(shape {shape})<br>IoU with the next keyframe's mask {nxt}<br>"
            f"frames since keyframe {q.propagation_age}<br>class margin "
            f"{q.class_margin:.2f}{switch}</td>"
            f'<td class="strip">{strip}</td></tr>'
        )
    path.write_text(
        f"<!doctype html><html><head><meta charset='utf-8'><title>Review: "
        f"{e(run.stream_id)}</title><style>{STYLE}</style></head><body>"
        f"<h1>Review: {e(run.stream_id)}</h1><p>{len(rows)} tracks most in need of review, "
        f"worst first ({len(run.tracks)} tracks, {len(run.frame_indices)} frames). "
        "review_score 1 = look first (docs/quality.md). Also: <a href='review.csv'>review.csv"
        "</a>.</p><table><tr><th>#</th><th>worst frame</th><th>track</th><th>signals</th>"
        f"<th>over time</th></tr>{''.join(body)}</table></body></html>\n",
        encoding="utf-8",
    )
