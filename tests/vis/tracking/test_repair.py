"""Identity repair: ids across interactions decided with the frames after them known."""

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tests.conftest import ROOT
from tests.mutations import JSON, PROPERTY_SETTINGS, paths, replaced
from vis.pipeline import StageTimer
from vis.tracking.repair import APPEARANCE_DIM, MAX_STATE_IDS, IdentityRepair, RepairConfig
from vis.types import Detections, Frame, FrameResult

H, W = 200, 360
#: per person: (upper colour, lower colour) BGR, start x, speed px/frame
PEOPLE = {
    "red": ((0, 0, 200), (0, 120, 0), 50, 8, 60),
    "blue": ((200, 0, 0), (0, 200, 220), 290, -8, 70),
}
EMBED = {"red": np.array([1, 0, 0], np.float32), "blue": np.array([0, 1, 0], np.float32)}


def box(person: str, t: int) -> np.ndarray:
    _, _, x0, v, y = PEOPLE[person]
    x = x0 + v * t
    return np.array([x, y, x + 40, y + 100], np.float32)


def scene(frames: int, ids_at) -> list[tuple[FrameResult, Frame]]:
    """Two people crossing (boxes overlap on frames 13-17); ``ids_at(t)`` -> {person: id}
    as the tracker wrote them; the red one walks in front."""
    out = []
    for t in range(frames):
        img = np.full((H, W, 3), 100, np.uint8)
        people = ["blue", "red"]  # drawing order: red in front
        for p in people:
            x0, y0, x1, y1 = (int(v) for v in box(p, t))
            top, bottom = PEOPLE[p][:2]
            img[y0 : y0 + 50, max(x0, 0) : max(x1, 0)] = top
            img[y0 + 50 : y1, max(x0, 0) : max(x1, 0)] = bottom
        ids = ids_at(t)
        masks = np.zeros((2, H, W), bool)
        boxes = []
        for i, p in enumerate(people):
            b = box(p, t)
            masks[i, int(b[1]) : int(b[3]), max(int(b[0]), 0) : max(int(b[2]), 0)] = True
            boxes.append(b)
        det = Detections(
            xyxy=np.stack(boxes),
            masks=masks,
            scores=np.full(2, 0.9, np.float32),
            class_ids=np.ones(2, np.int64),
            embeddings=np.stack([EMBED[p] for p in people]),
            track_ids=np.array([ids[p] for p in people]),
        )
        order = np.argsort(det.track_ids)
        det = det[order]
        frame = Frame("s", t, t * 100.0, img)
        out.append((FrameResult("s", t, t * 100.0, True, W, H, det, ["bg", "person"], ()), frame))
    return out


ON = RepairConfig(enabled=True)


def run(pairs, config=ON, chunk=1):
    rep = IdentityRepair(config)
    out = []
    for i in range(0, len(pairs), chunk):
        out += rep.push(pairs[i : i + chunk])
        assert len(rep.held) <= rep.window
    return out + rep.finish(), rep


def written(out) -> dict[str, list[int]]:
    """person -> the id written on their box, frame by frame (by the box's x)."""
    by = {"red": [], "blue": []}
    for res, _ in out:
        t = res.frame_index
        for p in by:
            r = int(np.argmin(np.abs(res.detections.xyxy - box(p, t)).sum(1)))
            by[p].append(int(res.detections.track_ids[r]))
    return by


def test_a_swap_that_comes_back_is_never_written():
    pairs = scene(30, lambda t: {"red": 2, "blue": 1} if 13 <= t <= 17 else {"red": 1, "blue": 2})
    assert set(written(pairs)["red"]) == {1, 2}  # the tracker's own output swaps
    out, rep = run(pairs)
    ids = written(out)
    assert ids == {"red": [1] * 30, "blue": [2] * 30}
    assert rep.counts["swaps_undone"] == 1 and rep.counts["ids_changed"] == 10


def test_an_exchange_at_a_crossing_is_undone_for_good():
    pairs = scene(40, lambda t: {"red": 2, "blue": 1} if t >= 15 else {"red": 1, "blue": 2})
    out, rep = run(pairs)
    assert written(out) == {"red": [1] * 40, "blue": [2] * 40}
    assert rep.counts["exchanges_undone"] == 1
    # results stay in frame order, each with its own frame, in track-id order
    assert [r.frame_index for r, _ in out] == list(range(40))
    assert all(r.frame_index == f.index for r, f in out)
    assert all(list(r.detections.track_ids) == sorted(r.detections.track_ids) for r, _ in out)


def test_people_who_walk_apart_with_their_own_ids_keep_them():
    pairs = scene(40, lambda t: {"red": 1, "blue": 2})
    out, rep = run(pairs)
    assert written(out) == {"red": [1] * 40, "blue": [2] * 40}
    assert rep.counts["interactions"] == 1 and rep.counts["ids_changed"] == 0
    assert all(a is b for (a, _), (b, _) in zip(out, pairs))  # untouched results


def test_nothing_is_held_longer_than_the_window_and_memory_stays_flat():
    cfg = RepairConfig(enabled=True, window=12, apart=3)
    base = scene(16, lambda t: {"red": 1, "blue": 2})
    touching = base[13:16]  # the two overlapping: an interaction that never closes
    rep = IdentityRepair(cfg)
    emitted = []
    for n in range(600):
        res, frame = touching[n % 3]
        res = FrameResult("s", n, n * 100.0, True, W, H, res.detections, res.labels, ())
        emitted += rep.push([(res, Frame("s", n, n * 100.0, frame.image))])
        assert len(rep.held) <= 12
        assert emitted[-1][0].frame_index >= n - 12 if n >= 12 else True
        if n == 100:
            sizes = (len(rep.memory), len(rep.seen_ms), len(rep.id_map), len(rep.groups))
    assert (len(rep.memory), len(rep.seen_ms), len(rep.id_map), len(rep.groups)) == sizes
    emitted += rep.finish()
    assert [r.frame_index for r, _ in emitted] == list(range(600))


def test_a_checkpoint_restored_writes_what_an_uninterrupted_run_writes():
    pairs = scene(60, lambda t: {"red": 2, "blue": 1} if t >= 15 else {"red": 1, "blue": 2})
    pairs += [
        (FrameResult("s", t + 60, (t + 60) * 100.0, True, W, H, r.detections, r.labels, ()), f)
        for t, (r, f) in enumerate(scene(10, lambda t: {"red": 2, "blue": 1}))
    ]
    whole, _ = run(pairs)
    cfg = RepairConfig(enabled=True)
    first = IdentityRepair(cfg)
    out = []
    cut = None
    for i, pair in enumerate(pairs):
        out += first.push([pair])
        if i > 30 and first.idle:
            cut = i
            break
    assert cut is not None and first.counts["exchanges_undone"] == 1
    state = first.state_dict()
    resumed = IdentityRepair(cfg)
    resumed.load_state_dict(state)
    out += resumed.push(pairs[cut + 1 :]) + resumed.finish()
    assert [(r.frame_index, list(r.detections.track_ids)) for r, _ in out] == [
        (r.frame_index, list(r.detections.track_ids)) for r, _ in whole
    ]
    held = IdentityRepair(cfg)
    held.push(pairs[12:15])
    with pytest.raises(RuntimeError):
        held.state_dict()


@pytest.mark.slow
@pytest.mark.parametrize("key,value", [("window", 1), ("margin", -1), ("apart", 0)])
def test_a_bad_repair_setting_is_one_line_and_exit_2(key, value, tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "run_pipeline.py"),
            "--source",
            str(tmp_path / "none.mp4"),
            "--output",
            str(tmp_path / "out"),
            "--set",
            f"repair.{key}={value}",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and f"repair.{key}" in lines[0]


class _Inner:
    """A processor that emits each frame at once and offers a checkpoint when asked (its
    state: the frames it has seen)."""

    def __init__(self, pairs):
        self.pairs = {f.index: (r, f) for r, f in pairs}
        self.seen = -1
        self.frames = self.keyframes = 0
        self.wanted = False
        self.timer = StageTimer()

    def emit(self, frame, detections):
        self.seen = frame.index
        self.frames += 1
        return [self.pairs[frame.index]]

    def finish(self):
        return []

    def request_checkpoint(self):
        self.wanted = True

    def take_checkpoint(self):
        point, self.wanted = ((self.seen, {"seen": self.seen}) if self.wanted else None), False
        return point

    def stop_point(self):
        return self.seen, {"seen": self.seen}

    def state_dict(self):
        return {"seen": self.seen}

    def load_state_dict(self, state):
        self.seen = state["seen"]


def test_the_processor_checkpoints_only_where_nothing_is_held_and_resumes_the_same():
    from vis.tracking.repair import RepairedProcessor

    pairs = scene(50, lambda t: {"red": 2, "blue": 1} if t >= 15 else {"red": 1, "blue": 2})
    whole = RepairedProcessor(_Inner(pairs), ON, offline=True)
    expected = [r for _, f in pairs for r, _ in whole.emit(f, None)] + [
        r for r, _ in whole.finish()
    ]
    proc = RepairedProcessor(_Inner(pairs), ON, offline=True)
    out, point = [], None
    for _, f in pairs:
        out += [r for r, _ in proc.emit(f, None)]
        if f.index >= 16:  # asked inside the interaction (frames 13-21 held together)
            proc.request_checkpoint()
        point = proc.take_checkpoint()
        if point is not None:
            break
    assert point is not None and point[0] == out[-1].frame_index  # nothing held at it
    assert point[0] == 12  # the last frame out before it, with nothing held
    resumed = RepairedProcessor(_Inner(pairs), ON, offline=True)
    resumed.load_state_dict(point[1])
    out += [r for _, f in pairs[point[0] + 1 :] for r, _ in resumed.emit(f, None)]
    out += [r for r, _ in resumed.finish()]
    assert [(r.frame_index, list(r.detections.track_ids)) for r in out] == [
        (r.frame_index, list(r.detections.track_ids)) for r in expected
    ]


def _hide(pairs, person_row: int, frames: range):
    """The instance at ``person_row`` (0 blue, 1 red before sorting by id) left out of the
    results on ``frames``: the tracker lost it behind the other."""
    out = []
    for res, frame in pairs:
        det = res.detections
        if res.frame_index in frames:
            hidden = box("blue" if person_row == 0 else "red", res.frame_index)
            keep = np.abs(det.xyxy - hidden).sum(1) > 1e-3
            det = det[keep]
        out.append(
            (
                FrameResult(
                    "s", res.frame_index, res.timestamp_ms, True, W, H, det, res.labels, ()
                ),
                frame,
            )
        )
    return out


def test_an_exchange_while_one_person_is_hidden_is_undone():
    # blue is hidden behind red on frames 14-17 (its track lost); when it comes back the
    # tracker hands it red's id and red gets blue's, for good
    pairs = _hide(
        scene(40, lambda t: {"red": 2, "blue": 1} if t >= 15 else {"red": 1, "blue": 2}),
        0,
        range(14, 18),
    )
    out, rep = run(pairs)
    ids = written(out)
    assert ids["red"] == [1] * 40
    assert [i for t, i in enumerate(ids["blue"]) if t not in range(14, 18)] == [2] * 36
    assert rep.counts["exchanges_undone"] == 1


def test_a_stop_inside_an_interaction_writes_the_held_frames_and_checkpoints_after_them():
    """The run stops while an interaction is open: ``release`` decides it on what is known
    and returns the held frames; the stop point follows the last of them, so the resumed
    run repeats no result and writes none twice."""
    from vis.tracking.repair import RepairedProcessor

    pairs = scene(50, lambda t: {"red": 2, "blue": 1} if t >= 15 else {"red": 1, "blue": 2})
    proc = RepairedProcessor(_Inner(pairs), ON, offline=True)
    out = []
    for _, f in pairs[:17]:  # frames 13-16 meet: held
        out += [r.frame_index for r, _ in proc.emit(f, None)]
    assert out[-1] < 16 and not proc.repair.idle
    released = [r.frame_index for r, _ in proc.release()]
    assert out + released == list(range(17))  # every frame once, in order
    point = proc.stop_point()
    assert point is not None and point[0] == 16
    resumed = RepairedProcessor(_Inner(pairs), ON, offline=True)
    resumed.load_state_dict(point[1])  # the identity map and memory restored
    assert resumed.repair.idle


# -- a checkpoint's repair state is untrusted ------------------------------------------------------
def _checkpointed() -> tuple[dict, list]:
    """A real state after an exchange was undone (an id map, two remembered people) and the
    frames that follow it."""
    pairs = scene(44, lambda t: {"red": 2, "blue": 1} if t >= 15 else {"red": 1, "blue": 2})
    rep = IdentityRepair(ON)
    for i, pair in enumerate(pairs):
        rep.push([pair])
        if i > 30 and rep.idle:
            return rep.state_dict(), pairs[i + 1 : i + 6]
    raise AssertionError("the scene never idles after its crossing")


CHECKPOINTED, AFTER = _checkpointed()
#: hostile values for a state's arrays: wrong shapes, non-finite, negative, huge
HOSTILE_ARRAYS = hnp.arrays(
    np.float32,
    st.sampled_from([(APPEARANCE_DIM,), (7,), (2, APPEARANCE_DIM // 2), (0, 4), (3, 4), (9, 4)]),
    elements=st.sampled_from([0.0, 0.25, -1.0, 2.0, 1e30, float("nan"), float("inf")]),
)


@PROPERTY_SETTINGS
@given(st.data())
def test_any_checkpointed_state_is_refused_in_one_line_or_resumes_with_distinct_finite_ids(data):
    """Whatever a checkpoint holds as the repair's state, loading it raises one-line
    ``ValueError`` or takes a state this code could have written: finite appearance in [0, 1]
    and boxes, every track written under its own id, and the frames after it written with
    distinct ids a ``vis.frame`` record may carry."""
    state = CHECKPOINTED
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(paths(state)))
        remove = bool(path) and data.draw(st.booleans())
        value = None if remove else data.draw(JSON | HOSTILE_ARRAYS)
        state = replaced(state, path, value, remove=remove)
    rep = IdentityRepair(ON)
    try:
        rep.load_state_dict(state)
    except ValueError as exc:
        assert "\n" not in str(exc) and len(str(exc)) < 300
        return
    for m in rep.memory.values():
        a = m.appearance
        assert a is None or (a.shape == (APPEARANCE_DIM,) and ((a >= 0) & (a <= 1)).all())
        assert all(np.isfinite(b).all() and np.isfinite(t) and b.shape == (4,) for t, b in m.boxes)
        assert np.isfinite(m.last_ms)
    assert all(np.isfinite(s) for s in rep.seen_ms.values())
    tracks = rep.seen_ms.keys() | rep.id_map.keys()
    assert len({rep.id_map.get(t, t) for t in tracks}) == len(tracks)
    assert all(isinstance(v, int) and v >= 0 for v in rep.counts.values())
    for r, _ in rep.push(AFTER) + rep.finish():
        ids = r.detections.track_ids.tolist()
        assert len(set(ids)) == len(ids) and all(-1 <= i <= 2**53 for i in ids)


def test_a_checkpointed_state_of_millions_of_ids_is_refused_before_it_is_built():
    for key, entry in (("id_map", lambda i: [i, i + 1]), ("seen", lambda i: [i, 0.0])):
        state = {**CHECKPOINTED, key: [entry(i) for i in range(10, MAX_STATE_IDS + 11)]}
        with pytest.raises(ValueError, match=f"{key} holds {MAX_STATE_IDS + 1} entries"):
            IdentityRepair(ON).load_state_dict(state)
    IdentityRepair(ON).load_state_dict(CHECKPOINTED)  # the real one loads
