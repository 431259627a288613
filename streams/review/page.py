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
import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from streams.exports.common import mask_pixels
from streams.exports.records import ExportError, RunRecords, video_frames
from streams.review.corrections import run_identity
from streams.review.scoring import RunQuality, score_run, scored_frames, write_quality_jsonl
from streams.sinks.paths import make_output_folder, safe_name
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
    make_output_folder(out / "thumbs", ExportError, named=out_dir)
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
    pixels = mask_pixels(shot.mask)  # the window's pixels only, not a full frame
    if pixels is None:
        mask = decode_mask(shot.mask)[b:d, a:c]
    else:
        ys, xs = pixels
        inside = (ys >= b) & (ys < d) & (xs >= a) & (xs < c)
        mask = np.zeros(crop.shape[:2], bool)
        mask[ys[inside] - b, xs[inside] - a] = True
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
    """One line per row; an ``uncertainty`` column last when test-time augmentation ran."""
    tta = any(r.worst.quality.uncertainty is not None for r in rows)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(CSV_FIELDS + ["uncertainty"] * tta)
        for rank, r in enumerate(rows, 1):
            q = r.worst.quality
            iou, shape, nxt = (
                "" if v is None else f"{v:.3f}"
                for v in (q.mask_iou_prev, q.shape_iou_prev, q.keyframe_iou_next)
            )
            u = [] if not tta else ["" if q.uncertainty is None else f"{q.uncertainty:.3f}"]
            w.writerow([rank, r.track_id, r.label, r.first, r.last, r.frames,
                        f"{r.review_score:.3f}", r.worst.frame, f"{q.review_score:.3f}",
                        f"{q.score:.3f}", iou, shape, nxt, q.propagation_age,
                        f"{q.class_margin:.3f}", int(q.id_switch_suspect),
                        r.worst.thumb(r.track_id, "worst"), *u])  # fmt: skip


STYLE = """body{font:14px sans-serif;margin:1em;background:#fafafa}
table{border-collapse:collapse}td,th{border-bottom:1px solid #ddd;padding:6px;vertical-align:top}
th{text-align:left;background:#eee}.s{font-weight:bold;font-size:18px}
.strip{max-width:460px}.strip img{height:56px;margin-right:2px;border:1px solid #ccc}
.warn{color:#b00}.trk{min-width:120px}.sig{min-width:230px}
#bar{position:sticky;top:0;z-index:1;background:#fff;border:1px solid #ccc;padding:8px 10px;
margin-bottom:10px;display:flex;gap:14px;align-items:center;flex-wrap:wrap}
#count{font-weight:bold;font-size:16px}#save{font-weight:bold;padding:6px 12px}
.hint{color:#666;font-size:12px}
tr.track>td:first-child{border-left:8px solid #ccc}
tr.accept>td:first-child{border-left-color:#2a9d3a}tr.accept{background:#eef9ef}
tr.reject>td:first-child{border-left-color:#d62828}tr.reject{background:#fdeeee}
tr.wrong_class>td:first-child{border-left-color:#e08a00}tr.wrong_class{background:#fff5e5}
tr.mixed>td:first-child{border-left-color:#7b4fd6}tr.mixed{background:#f4f0fc}
.dec{min-width:250px}.dec button{margin:2px 2px 2px 0}.dec input{width:4.5em}
.badge{display:inline-block;padding:2px 8px;border-radius:10px;background:#ddd;color:#333;
font-weight:bold;margin-bottom:4px}
.accept .badge{background:#2a9d3a;color:#fff}.reject .badge{background:#d62828;color:#fff}
.wrong_class .badge{background:#e08a00;color:#fff}.mixed .badge{background:#7b4fd6;color:#fff}
.log{margin:4px 0 0;padding-left:18px;font-size:12px}.err{color:#b00;font-size:12px}"""

# The page's only script: decisions kept in localStorage per run, a "Save corrections"
# button that downloads them as vis.corrections/1 JSON (docs/review.md), and
# window.visReview = {decide, corrections} for scripts. A "#autotest=[steps]" fragment
# fills each step's row and clicks its button, then writes the corrections JSON into
# <pre id="corrections-out"> (tests and screenshots use it).
SCRIPT = """(() => {
const RUN = JSON.parse(document.getElementById('vis-run').textContent);
const KINDS = ['accept', 'reject', 'wrong_class'];
const KEY = 'vis-review:' + RUN.run.stream_id + ':' + RUN.run.tracks_fingerprint;
const spans = {};
RUN.tracks.forEach(t => { spans[t.track_id] = t; });
let state = {decisions: [], reviewer: ''};
try {
  const saved = JSON.parse(localStorage.getItem(KEY));
  if (saved && Array.isArray(saved.decisions)) state = saved;
} catch (e) { /* nothing stored, or storage disabled: start empty */ }
const store = () => { try { localStorage.setItem(KEY, JSON.stringify(state)); } catch (e) {} };

function decide(trackId, decision, range, label) {
  const t = spans[trackId];
  if (!t) throw new Error('track ' + trackId + ' is not on this page');
  if (decision === 'clear') {
    state.decisions = state.decisions.filter(d => d.track_id !== trackId);
  } else {
    if (!KINDS.includes(decision)) throw new Error('unknown decision ' + decision);
    const d = {track_id: trackId, decision: decision};
    if (decision === 'wrong_class') {
      if (!RUN.labels.includes(label)) throw new Error('choose the right class');
      d.label = label;
    }
    const [a, b] = range || [t.first, t.last];
    if (!(Number.isInteger(a) && Number.isInteger(b) && t.first <= a && a <= b && b <= t.last))
      throw new Error('frames must be within ' + t.first + '-' + t.last + ', start <= stop');
    if (a !== t.first || b !== t.last) d.frames = [a, b];
    // earlier decisions about frames this one covers entirely are overridden: drop them
    const inside = x => a <= (x.frames ? x.frames[0] : t.first)
      && (x.frames ? x.frames[1] : t.last) <= b;
    state.decisions = state.decisions.filter(x => x.track_id !== trackId || !inside(x));
    state.decisions.push(d);
  }
  store();
  render(trackId);
  return state.decisions;
}

function corrections() {
  const out = {schema: 'vis.corrections/1', run: RUN.run, created: new Date().toISOString()};
  if (state.reviewer) out.reviewer = state.reviewer;
  out.decisions = state.decisions;
  return out;
}
const text = () => JSON.stringify(corrections(), null, 2) + '\\n';

function describe(d) {
  const what = d.decision === 'wrong_class' ? 'wrong class \u2192 ' + d.label : d.decision;
  return what + ', ' + (d.frames ? 'frames ' + d.frames[0] + '-' + d.frames[1] : 'whole track');
}

function render(trackId) {
  const row = document.querySelector('tr.track[data-track="' + trackId + '"]');
  const mine = state.decisions.filter(d => d.track_id === trackId);
  const kinds = [...new Set(mine.map(d => d.decision))];
  row.classList.remove('accept', 'reject', 'wrong_class', 'mixed');
  if (kinds.length) row.classList.add(kinds.length === 1 ? kinds[0] : 'mixed');
  const names = {accept: 'accepted', reject: 'rejected', wrong_class: 'wrong class'};
  row.querySelector('.badge').textContent = kinds.length === 0 ? 'undecided'
    : kinds.length === 1 ? names[kinds[0]] + (mine.some(d => d.frames) ? ' (part)' : '') : 'mixed';
  const log = row.querySelector('.log');
  log.replaceChildren(...mine.map(d => {
    const li = document.createElement('li'); li.textContent = describe(d); return li;
  }));
  const decided = RUN.tracks.filter(t => state.decisions.some(d => d.track_id === t.track_id));
  document.getElementById('count').textContent =
    decided.length + ' / ' + RUN.tracks.length + ' tracks decided';
}

function onClick(ev) {
  const button = ev.target.closest('button[data-d]');
  if (!button) return;
  const row = button.closest('tr.track');
  const t = spans[Number(row.dataset.track)];
  const num = (cls, dflt) => {
    const v = row.querySelector(cls).value.trim();
    return v === '' ? dflt : Number(v);
  };
  const from = num('.from', t.first), to = num('.to', t.last);
  const err = row.querySelector('.err');
  err.textContent = '';
  try {
    decide(t.track_id, button.dataset.d, [from, to], row.querySelector('.label').value);
    row.querySelector('.from').value = ''; row.querySelector('.to').value = '';
  } catch (e) { err.textContent = e.message; }
}

function save() {
  const a = document.createElement('a');
  a.href = URL.createObjectURL(new Blob([text()], {type: 'application/json'}));
  a.download = RUN.file;
  document.body.appendChild(a); a.click(); a.remove();
}

document.querySelector('table').addEventListener('click', onClick);
document.getElementById('save').addEventListener('click', save);
const reviewer = document.getElementById('reviewer');
reviewer.value = state.reviewer || '';
reviewer.addEventListener('input', () => { state.reviewer = reviewer.value.trim(); store(); });
RUN.tracks.forEach(t => render(t.track_id));
window.visReview = {decide: decide, corrections: corrections};

const auto = location.hash.match(/^#autotest=(.*)$/);
if (auto) {
  const errors = [];
  JSON.parse(decodeURIComponent(auto[1])).forEach(step => {
    const row = document.querySelector('tr.track[data-track="' + step.track + '"]');
    if (!row) { errors.push('no row for track ' + step.track); return; }
    row.querySelector('.from').value = step.frames ? step.frames[0] : '';
    row.querySelector('.to').value = step.frames ? step.frames[1] : '';
    if (step.label) row.querySelector('.label').value = step.label;
    row.querySelector('button[data-d="' + step.action + '"]').click();
    const err = row.querySelector('.err').textContent;
    if (err) errors.push('track ' + step.track + ': ' + err);
  });
  const pre = document.createElement('pre');
  pre.id = 'corrections-out'; pre.dataset.errors = JSON.stringify(errors);
  pre.textContent = text();
  document.body.appendChild(pre);
}
})();"""


def _decision_cell(r: Row, labels: list[str]) -> str:
    e = html.escape
    other = next((k for k in labels if k != r.label), "")  # preselected: a class it is not
    options = "".join(f"<option{' selected' if k == other else ''}>{e(k)}</option>" for k in labels)
    return (
        f'<td class="dec"><span class="badge">undecided</span><div>frames '
        f'<input class="from" type="number" min="{r.first}" max="{r.last}" '
        f'placeholder="{r.first}"> to <input class="to" type="number" min="{r.first}" '
        f'max="{r.last}" placeholder="{r.last}"></div>'
        '<button data-d="accept">accept</button><button data-d="reject">reject</button>'
        '<button data-d="clear">clear</button><br><button data-d="wrong_class">wrong class'
        f'</button> is <select class="label">{options}</select>'
        '<div class="err"></div><ul class="log"></ul></td>'
    )


def _write_html(run: RunRecords, rows: list[Row], path: Path) -> None:
    e = html.escape
    labels = sorted(set(run.labels.values()))
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
        if q.uncertainty is not None:
            switch = f"<br>augmented passes' uncertainty {q.uncertainty:.2f}{switch}"
        body.append(
            f'<tr class="track" data-track="{r.track_id}"><td>{rank}</td>'
            f'<td><img class="worst" src="{e(r.worst.thumb(r.track_id, "worst"))}" '
            f'alt="track {r.track_id} frame {r.worst.frame}"></td>'
            f'<td class="trk"><div class="s">{r.review_score:.2f}</div>track {r.track_id} '
            f"<b>{e(r.label)}</b><br>frames {r.first}-{r.last} ({r.frames})</td>"
            f"{_decision_cell(r, labels)}"
            f'<td class="sig">worst frame {r.worst.frame}: review {q.review_score:.2f}<br>'
            f"detector score {q.score:.2f}<br>mask IoU with previous frame {iou} "
            f"(shape {shape})<br>IoU with the next keyframe's mask {nxt}<br>"
            f"frames since keyframe {q.propagation_age}<br>class margin "
            f"{q.class_margin:.2f}{switch}</td>"
            f'<td class="strip">{strip}</td></tr>'
        )
    data = {
        "run": run_identity(run).to_json(),
        "file": f"{safe_name(run.stream_id)}.corrections.json",
        "labels": labels,
        "tracks": [
            {"track_id": r.track_id, "first": r.first, "last": r.last, "label": r.label}
            for r in rows
        ],
    }
    embedded = json.dumps(data).replace("</", "<\\/")
    more = (
        f" ({len(run.tracks) - len(rows)} more tracks in the run: --top to list them)"
        if len(run.tracks) > len(rows) else ""
    )  # fmt: skip
    path.write_text(
        f"<!doctype html><html><head><meta charset='utf-8'><title>Review: "
        f"{e(run.stream_id)}</title><style>{STYLE}</style></head><body>"
        f"<h1>Review: {e(run.stream_id)}</h1><p>{len(rows)} tracks most in need of review, "
        f"worst first ({len(run.tracks)} tracks, {len(run.frame_indices)} frames). "
        "review_score 1 = look first (docs/quality.md). Also: <a href='review.csv'>review.csv"
        "</a>.</p>"
        f'<div id="bar"><span id="count">0 / {len(rows)} tracks decided</span>{more}'
        '<label>reviewer <input id="reviewer" size="12"></label>'
        '<button id="save">Save corrections</button><span class="hint">Mark each track '
        "accept, reject or wrong class (frames empty = the whole track; a later decision "
        "overrides an earlier one for the frames it covers). Kept in this browser as you go; "
        f"the button downloads {e(data['file'])} (docs/review.md).</span></div>"
        "<table><tr><th>#</th><th>worst frame</th><th>track</th><th>decision</th>"
        f"<th>signals</th><th>over time</th></tr>{''.join(body)}</table>"
        f'<script type="application/json" id="vis-run">{embedded}</script>'
        f"<script>{SCRIPT}</script></body></html>\n",
        encoding="utf-8",
    )
