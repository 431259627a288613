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
@pytest.mark.parametrize(
    "key,value",
    [
        ("window", 1),
        ("margin", -1),
        ("apart", 0),
        ("apart_keyframes", -1),
        ("stitch_reach", -0.5),
        ("stitch_reach", 6),
    ],
)
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


def _result(res: FrameResult, det: Detections) -> FrameResult:
    """``res`` (a keyframe's) with the instances ``det``."""
    return FrameResult("s", res.frame_index, res.timestamp_ms, True, W, H, det, res.labels, ())


def _plus_grey(
    res: FrameResult, frame: Frame, b: np.ndarray, track_id: int
) -> tuple[FrameResult, Frame]:
    """``res`` and ``frame`` with a grey person in box ``b`` under the tracker id
    ``track_id`` (drawn on a copy of the image, last among the instances)."""
    x0, y0, x1, y1 = (int(v) for v in b)
    img = frame.image.copy()
    img[y0:y1, x0:x1] = (128, 128, 128)
    mask = np.zeros((1, H, W), bool)
    mask[0, y0:y1, x0:x1] = True
    det = res.detections
    both = Detections(
        xyxy=np.concatenate([det.xyxy, b[None].astype(np.float32)]),
        masks=np.concatenate([det.full_masks(), mask]),
        scores=np.concatenate([det.scores, np.full(1, 0.9, np.float32)]),
        class_ids=np.concatenate([det.class_ids, np.ones(1, np.int64)]),
        embeddings=np.concatenate([det.embeddings, np.zeros((1, 3), np.float32)]),
        track_ids=np.concatenate([det.track_ids, np.array([track_id])]),
    )
    return _result(res, both), Frame("s", frame.index, frame.timestamp_ms, img)


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
        out.append((_result(res, det), frame))
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
    tracks = (rep.seen_ms.keys() | rep.id_map.keys()) - rep._joined
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


def _keyframes_every(pairs, n: int):
    """``pairs`` as a stream with the detector every ``n`` frames (the others propagated)."""
    import dataclasses

    return [(dataclasses.replace(r, keyframe=r.frame_index % n == 0), f) for r, f in pairs]


@pytest.mark.parametrize("apart_keyframes, undone", [(0, False), (2, True)])
def test_an_exchange_the_tracker_makes_keyframes_after_a_crossing_is_undone(
    apart_keyframes, undone
):
    """At N=5 the people cross on frames 13-17 and the tracker exchanges their ids only at
    keyframe 25, when it decides again: the interaction must still be open then
    (``apart_keyframes``: two keyframes after the last meeting, not just ``apart`` frames)."""
    pairs = _keyframes_every(
        scene(45, lambda t: {"red": 2, "blue": 1} if t >= 25 else {"red": 1, "blue": 2}), 5
    )
    out, rep = run(pairs, RepairConfig(enabled=True, apart_keyframes=apart_keyframes))
    ids = written(out)
    assert (ids == {"red": [1] * 45, "blue": [2] * 45}) is undone
    assert rep.counts["exchanges_undone"] == int(undone)


def _with_third(pairs, meets: range, track_id: int = 3):
    """``pairs`` with a third person (grey) who stands in blue's way on the frames ``meets``
    and far from everyone otherwise."""
    far = np.array([W - 42, 2, W - 2, 98], np.float32)
    near = np.array([10, 0, 10, 0], np.float32)
    return [
        _plus_grey(
            res,
            frame,
            box("blue", res.frame_index) + near if res.frame_index in meets else far,
            track_id,
        )
        for res, frame in pairs
    ]


def test_an_interaction_that_would_outgrow_max_group_is_decided_first():
    """Red and blue exchange ids at their crossing (frames 13-17); a third person steps into
    blue's way on frames 19-20, before that interaction closes. With ``max_group`` 2 the
    three cannot be decided together: the crossing is decided on what is known (the exchange
    undone) and the new meeting starts its own interaction, instead of the tracker's ids
    being left as written."""
    pairs = _with_third(
        scene(40, lambda t: {"red": 2, "blue": 1} if t >= 15 else {"red": 1, "blue": 2}),
        range(19, 21),
    )
    out, rep = run(pairs, RepairConfig(enabled=True, max_group=2))
    ids = written(out)
    assert ids == {"red": [1] * 40, "blue": [2] * 40}
    assert rep.counts["exchanges_undone"] == 1
    assert [r.frame_index for r, _ in out] == list(range(40))


@st.composite
def _crowds(draw):
    """Random streams of 2-6 boxes that walk, meet, vanish inside the image and come back,
    with the tracker's ids swapped now and then, the detector every 1-5 frames."""
    n = draw(st.integers(2, 6))
    frames = draw(st.integers(10, 40))
    every = draw(st.integers(1, 5))
    people = [
        (
            draw(st.floats(0, W - 40)),
            draw(st.floats(0, H - 80)),
            draw(st.floats(-12, 12)),
            draw(st.floats(-4, 4)),
            draw(st.sets(st.integers(0, frames - 1), max_size=frames // 2)),  # hidden on
        )
        for _ in range(n)
    ]
    swaps = draw(st.dictionaries(st.integers(0, frames - 1), st.permutations(range(n))))
    config = RepairConfig(
        enabled=True,
        window=draw(st.integers(6, 48)),
        apart=draw(st.integers(1, 5)),
        apart_keyframes=draw(st.integers(0, 3)),
        max_group=draw(st.integers(2, 4)),
    )
    return n, frames, every, people, swaps, config


@given(_crowds())
@PROPERTY_SETTINGS
def test_any_crowd_is_written_once_in_order_with_distinct_tracker_ids(crowd):
    """Whatever meets, vanishes, comes back or is swapped: every frame is written once, in
    order, with as many instances as it had, distinct ids per frame, each a tracker id."""
    n, frames, every, people, swaps, config = crowd
    ids = list(range(1, n + 1))
    pairs = []
    for t in range(frames):
        if t in swaps:
            ids = [ids[j] for j in swaps[t]]
        img = np.full((H, W, 3), 90, np.uint8)
        rows, boxes, tids = [], [], []
        for k, (x, y, vx, vy, hidden) in enumerate(people):
            if t in hidden:
                continue
            x0 = float(np.clip(x + vx * t, 0, W - 41))
            y0 = float(np.clip(y + vy * t, 0, H - 81))
            b = np.array([x0, y0, x0 + 40, y0 + 80], np.float32)
            img[int(y0) : int(y0) + 80, int(x0) : int(x0) + 40] = (40 * k, 255 - 40 * k, 120)
            m = np.zeros((H, W), bool)
            m[int(y0) : int(y0) + 80, int(x0) : int(x0) + 40] = True
            rows.append(m)
            boxes.append(b)
            tids.append(ids[k])
        det = (
            Detections(
                xyxy=np.stack(boxes),
                masks=np.stack(rows),
                scores=np.full(len(rows), 0.9, np.float32),
                class_ids=np.ones(len(rows), np.int64),
                track_ids=np.array(tids, np.int64),
            )
            if rows
            else Detections.empty(H, W)
        )
        res = FrameResult("s", t, t * 100.0, t % every == 0, W, H, det, ["bg", "person"], ())
        pairs.append((res, Frame("s", t, t * 100.0, img)))
    rep = IdentityRepair(config)
    out = []
    for pair in pairs:
        out += rep.push([pair])
        assert len(rep.held) <= rep.held_cap
    out += rep.finish()
    assert [r.frame_index for r, _ in out] == list(range(frames))
    for (r, _), (orig, _) in zip(out, pairs):
        written_ids = r.detections.track_ids.tolist()
        assert len(written_ids) == len(orig.detections)
        assert len(set(written_ids)) == len(written_ids)
        assert set(written_ids) <= set(range(1, n + 1))


# -- a newborn takes a ghost's id (``stitch``) -------------------------------------------------
STITCH = RepairConfig(enabled=True, stitch=True)


def _stranger(pairs, born: int, track_id: int):
    """``pairs`` with a third person (grey) standing between the other two (who have walked
    apart by then) from frame ``born`` on, under the tracker id ``track_id``."""
    grey = np.array([160, 2, 200, 98], np.float32)
    return [
        _plus_grey(res, frame, grey, track_id)
        if res.frame_index >= born
        else (_result(res, res.detections), frame)
        for res, frame in pairs
    ]


def _lost_and_reborn(frames: int = 34):
    """Blue's track (2) is lost on frames 25-27, away from everyone, and the tracker starts a
    new one (5) for her on frame 28, where her motion takes her."""
    ids = lambda t: {"red": 1, "blue": 2 if t < 28 else 5}  # noqa: E731
    return _hide(scene(frames, ids), 0, range(25, 28))


def _ids_on(out, person: str, frames) -> list[int]:
    return [i for t, i in enumerate(written(out)[person]) if t in frames]


def test_a_person_lost_and_tracked_again_under_a_new_id_keeps_the_first():
    pairs = _lost_and_reborn()
    out, rep = run(pairs, STITCH)
    seen = [t for t in range(34) if t not in range(25, 28)]
    assert _ids_on(out, "blue", seen) == [2] * 31 and _ids_on(out, "red", seen) == [1] * 31
    assert rep.counts["tracks_joined"] == 1 and rep.counts["joins_undone"] == 0
    assert rep.summary()["tracks_joined"] == 1
    out, rep = run(pairs, RepairConfig(enabled=True, stitch=False))  # off: the tracker's ids
    assert _ids_on(out, "blue", seen) == [2] * 25 + [5] * 6
    assert "tracks_joined" not in rep.summary() and "joined" not in rep.state_dict()


def test_a_newborn_far_from_every_ghost_keeps_its_own_id():
    # blue's track is lost on frame 25 for good, inside the image; a stranger appears on
    # frame 28 at the other side of it
    pairs = _hide(scene(34, lambda t: {"red": 1, "blue": 2}), 0, range(25, 34))
    pairs = _with_third(pairs, range(0), 3)
    pairs = [
        (
            FrameResult(
                "s",
                r.frame_index,
                r.timestamp_ms,
                True,
                W,
                H,
                r.detections[(r.detections.track_ids != 3) | (r.frame_index >= 28)],
                r.labels,
                (),
            ),
            f,
        )
        for r, f in pairs
    ]
    out, rep = run(pairs, STITCH)
    thirds = [
        int(r.detections.track_ids[np.argmax(r.detections.xyxy[:, 0])])
        for r, _ in out
        if r.frame_index >= 28
    ]
    assert thirds == [3] * 6 and rep.counts["tracks_joined"] == 0


def test_the_ghosts_own_track_back_beside_the_newborn_never_writes_one_id_twice():
    """Blue's new track (5) took her lost track's id (2); on frame 31 the tracker brings
    track 2 back on someone else while track 5 is still on her: the newborn keeps its own
    id from that frame on (and on its frames still held: 28-30, her ghost's interaction is
    open), and no frame holds an id twice."""
    pairs = _stranger(_lost_and_reborn(40), 31, 2)
    out, rep = run(pairs, STITCH)
    for r, _ in out:
        ids = r.detections.track_ids.tolist()
        assert len(set(ids)) == len(ids), r.frame_index
    assert _ids_on(out, "blue", range(28, 40)) == [5] * 12
    grey = [
        int(r.detections.track_ids[np.argmin(np.abs(r.detections.xyxy[:, 0] - 160))])
        for r, _ in out
        if r.frame_index >= 31
    ]
    assert grey == [2] * 9
    assert rep.counts["tracks_joined"] == 1 and rep.counts["joins_undone"] == 1


def test_a_checkpoint_after_a_join_resumes_the_same():
    """The join (newborn 5 written as 2) is carried by a checkpoint, and so is its undoing
    when track 2 comes back after the resume."""
    pairs = _stranger(_lost_and_reborn(40), 36, 2)
    whole, _ = run(pairs, STITCH)
    first = IdentityRepair(STITCH)
    out, cut = [], None
    for i, pair in enumerate(pairs):
        out += first.push([pair])
        if i > 28 and first.idle:
            cut = i
            break
    assert cut is not None and cut < 36
    state = first.state_dict()
    assert state["joined"] == [5]
    resumed = IdentityRepair(STITCH)
    resumed.load_state_dict(state)
    out += resumed.push(pairs[cut + 1 :]) + resumed.finish()
    assert [(r.frame_index, list(r.detections.track_ids)) for r, _ in out] == [
        (r.frame_index, list(r.detections.track_ids)) for r, _ in whole
    ]
    assert resumed.counts["joins_undone"] == 1
    bad = {**state, "joined": [7]}  # not a mapped track
    with pytest.raises(ValueError, match="joined"):
        IdentityRepair(STITCH).load_state_dict(bad)


def test_a_newborn_where_a_ghost_goes_but_of_other_colours_keeps_its_own_id():
    """Blue is lost on frame 25 and a grey stranger's new track (5) starts on frame 28 just
    where her motion takes her: the appearance says it is someone else."""
    out = []
    for res, frame in _lost_and_reborn():
        if res.frame_index >= 28:
            img = frame.image.copy()
            x0, y0, x1, y1 = (int(v) for v in box("blue", res.frame_index))
            img[y0:y1, max(x0, 0) : x1] = (128, 128, 128)
            frame = Frame("s", frame.index, frame.timestamp_ms, img)
        out.append((res, frame))
    written_out, rep = run(out, STITCH)
    assert _ids_on(written_out, "blue", range(28, 34)) == [5] * 6
    assert rep.counts["tracks_joined"] == 0
