"""Offline processing of files: the frames between two keyframes are emitted once both
keyframes are known, their masks carried from both sides.

Contract: ``OfflineStreamProcessor`` is a ``StreamProcessor`` whose ``emit`` holds the frames
from a keyframe up to the next one (at most ``keyframes.interval`` frames: a bounded delay
and memory), tracks them forward as the live processor does, and when the next keyframe has
been tracked (association decided at both ends) returns the held frames, in order, with:

* every track alive at both keyframes carried back from the later one and fused with the
  forward mask by distance to each keyframe (``vis.bidirectional``); where its forward mask
  collapsed, the backward one alone;
* every track born at the later keyframe (``backfill``) carried back into the held frames,
  down to the earlier keyframe, while its backward mask lives and does not duplicate another
  instance: an object the detector missed at a keyframe is output from its first frame;
* the box of every track both keyframes hold interpolated linearly between its two keyframe
  boxes (``propagation.boxes: interpolate``; masks untouched): the detector's box kept
  through occlusions and flow drift, as annotation tools interpolate a track.

``finish`` returns the frames after the last keyframe as tracked forward. Checkpoints are
taken at the boundary before a keyframe (the held frames all emitted), and a restored
processor starts with a keyframe. Pure computation, no I/O.

Interactions detected after the fact (``keyframes.policy: interaction``): when the next
keyframe comes, the held frames where two tracks' boxes began (or ended) to be in contact
(``vis.keyframes.contacts``) are asked for detections, as many as the schedule's saved calls
pay (``spend``), before the span is closed: ``emit`` then returns nothing and ``wanted()``
names those frames; the loop runs the detector on them and hands the detections to
``detected``, which tracks the span again from its first keyframe with them (each one a
keyframe, closing a span of its own), then the keyframe, and returns every result, in order.
``advance`` is that protocol for one frame, the one code path of every loop. Cost: one copy
of the tracking state (its grey frame included) per span, and a span with an interaction
tracked twice; the delay stays the span's.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable

import numpy as np

from vis.bidirectional import carry, forward_weight, fuse
from vis.ops.masks import BoxMask, mask_iou
from vis.keyframes import InteractionSchedule, KeyframeConfig, contacts
from vis.pipeline import StreamProcessor
from vis.propagation import OFFLINE_FINEST_SCALE
from vis.tracking.repair import RepairConfig, RepairedProcessor
from vis.types import Detections, Frame, FrameResult, mask_confidence


#: a mask carried back into a frame is left out where it overlaps an instance already there
#: by more than this IoU (the same object under another track)
BACKFILL_MAX_IOU = 0.5
#: ... and where the mean brightness under it differs from the object's at the later keyframe
#: by more than this many grey levels (the flow could not follow it: it is on something else)
BACKFILL_MAX_SHIFT = 20.0


@dataclasses.dataclass
class _Held:
    """A tracked frame waiting for the next keyframe."""

    frame: Frame
    gray: np.ndarray
    tracked: Detections
    keyframe: bool
    contacts: frozenset[tuple[int, int]] = frozenset()  # pairs of tracks in contact


@dataclasses.dataclass(frozen=True)
class _Instance:
    """One row of a frame's tracked ``Detections``, while a span's frames are merged."""

    track_id: int
    class_id: int
    score: float
    box: np.ndarray  # (4,) float32 x1 y1 x2 y2
    mask: BoxMask  # box-local
    embedding: np.ndarray  # (D,) float32
    agreement: float | None = None  # IoU of the forward and backward masks fused
    uncertainty: float | None = None  # a keyframe's, from test-time augmentation


def _row(tracked: Detections, r: int) -> _Instance:
    """Row ``r`` of ``tracked`` (its agreement is not carried: tracked rows have none)."""
    doubt = None if tracked.uncertainty is None else float(tracked.uncertainty[r])
    return _Instance(
        int(tracked.track_ids[r]),
        int(tracked.class_ids[r]),
        float(tracked.scores[r]),
        tracked.xyxy[r],
        tracked.masks[r],
        tracked.embeddings[r],
        uncertainty=None if doubt is None or np.isnan(doubt) else doubt,
    )


def _detections(rows: list[_Instance], image_size: tuple[int, int]) -> Detections:
    """``rows`` -> ``Detections`` in their order, ``mask_confidence`` of their masks and
    ``agreement`` NaN where none."""
    if not rows:
        return Detections.empty(*image_size)
    return Detections(
        xyxy=np.stack([i.box for i in rows]),
        masks=[i.mask for i in rows],
        scores=np.array([i.score for i in rows], np.float32),
        class_ids=np.array([i.class_id for i in rows], np.int64),
        embeddings=np.stack([i.embedding for i in rows]),
        track_ids=np.array([i.track_id for i in rows], np.int64),
        mask_confidence=np.array([mask_confidence(i.mask) for i in rows], np.float32),
        agreement=np.array(
            [np.nan if i.agreement is None else i.agreement for i in rows], np.float32
        ),
        image_size=image_size,
        uncertainty=np.array(
            [np.nan if i.uncertainty is None else i.uncertainty for i in rows], np.float32
        )
        if any(i.uncertainty is not None for i in rows)
        else None,
    )


class OfflineStreamProcessor(StreamProcessor):
    """Bidirectional offline processing (see the module docstring).

    Args:
        backfill: carry tracks born at a keyframe back into the frames before it.
        **kwargs: as ``StreamProcessor``.
    """

    def __init__(self, *, backfill: bool = True, **kwargs) -> None:
        propagation = kwargs.get("propagation")
        if propagation is not None and propagation.finest_scale == "auto":
            kwargs["propagation"] = dataclasses.replace(
                propagation, finest_scale=OFFLINE_FINEST_SCALE
            )
        super().__init__(**kwargs)
        self.backfill = backfill
        self.held: list[_Held] = []
        self.backfilled = 0  # instances added to frames before their track's first keyframe
        self._boundary: tuple[int, dict] | None = None
        self._last_boundary: tuple[int, dict] | None = None
        # interactions detected after the fact: the state after the span's first keyframe,
        # and the keyframe waiting for the held frames asked (frame, detections, indices)
        self.resolve = isinstance(self.schedule, InteractionSchedule)
        if self.resolve:
            self.schedule.predict = False
        self._after_key: dict | None = None
        self._pending: tuple[Frame, Detections, list[int]] | None = None

    def emit(self, frame: Frame, detections: Detections | None) -> list[tuple[FrameResult, Frame]]:
        if detections is not None and self.held and self.resolve and self._after_key:
            asked = self._interactions()
            if asked:
                self._pending = (frame, detections, asked)
                return []
        return self._step(frame, detections)

    def wanted(self) -> list[Frame]:
        """The held frames to detect before the last ``emit``'s keyframe closes the span (in
        order; empty: nothing asked)."""
        if self._pending is None:
            return []
        asked = set(self._pending[2])
        return [h.frame for h in self.held if h.frame.index in asked]

    def detected(self, found: list[Detections]) -> list[tuple[FrameResult, Frame]]:
        """The detections of ``wanted()``'s frames, in its order -> the held frames tracked
        again with them and the keyframe's span closed: the results, in frame order."""
        frame, detections, asked = self._pending
        if len(found) != len(asked):
            raise ValueError(f"{len(found)} detections for {len(asked)} frames asked")
        self._pending = None
        extra = dict(zip(asked, found))
        held = self.held
        self._restore(self._after_key)
        self.held = held[:1]
        out = []
        for h in held[1:]:
            out += self._advance(h.frame, extra.get(h.frame.index))
        return out + self._step(frame, detections)

    def _interactions(self) -> list[int]:
        """The held frames where a contact begins (or ends, ``keyframes.interaction_at``),
        as many as the schedule's saved calls pay, in order."""
        at = self.schedule.config.interaction_at
        asked = []
        for j in range(1, len(self.held)):
            before, now = self.held[j - 1].contacts, self.held[j].contacts
            alive = set(self.held[j].tracked.track_ids.tolist())
            begins = bool(now - before) and at in ("begins", "both")
            ends = at in ("ends", "both") and any(
                p[0] in alive and p[1] in alive for p in before - now
            )
            if (begins or ends) and self.schedule.spend("interaction_held"):
                asked.append(self.held[j].frame.index)
        return asked

    def _restore(self, state: dict) -> None:
        """The tracking state ``state`` (a copy is loaded), the schedule left as it is."""
        state = copy.deepcopy(state)
        StreamProcessor.load_state_dict(self, {**state, "schedule": self.schedule.state_dict()})

    def _step(self, frame: Frame, detections: Detections | None) -> list[tuple[FrameResult, Frame]]:
        """``emit`` once nothing is asked: the boundary before a keyframe, then ``_advance``."""
        keyframe = detections is not None
        if keyframe and self.held:
            # the state after the last held frame: resuming after it redoes this keyframe
            self._last_boundary = (self.held[-1].frame.index, copy.deepcopy(self.state_dict()))
            if self._checkpoint_wanted:
                self._boundary = self._last_boundary
                self._checkpoint_wanted = False
        out = self._advance(frame, detections)
        if keyframe and self.resolve:
            self._after_key = copy.deepcopy(self.state_dict())
        return out

    def _advance(
        self, frame: Frame, detections: Detections | None
    ) -> list[tuple[FrameResult, Frame]]:
        """Track one frame; hold it, or close the span at a keyframe."""
        keyframe = detections is not None
        tracked = self.track(frame, detections)
        near = frozenset()
        if self.resolve:
            near = contacts(
                tracked.track_ids, tracked.xyxy, self.schedule.config.interaction_margin
            )
        now = _Held(frame, self.gray, tracked, keyframe, near)
        if not keyframe or not self.held:
            self.held.append(now)
            return []
        with self.timer("propagate_back"):
            out = self._close_span(self.held, now)
        self.held = [now]
        return out

    def finish(self) -> list[tuple[FrameResult, Frame]]:
        out = [
            (
                self.result(
                    h.frame,
                    h.tracked,
                    keyframe=h.keyframe,
                    propagated_from=() if h.keyframe else (self.held[0].frame.index,),
                ),
                h.frame,
            )
            for h in self.held
        ]
        self.held = []
        return out

    def take_checkpoint(self) -> tuple[int, dict] | None:
        point, self._boundary = self._boundary, None
        return point

    def stop_point(self) -> tuple[int, dict] | None:
        """The last boundary before a keyframe: its frames are all out; the frames held since
        are dropped (a resumed run redoes them from that keyframe, as an uninterrupted run
        would); the frame counts then count only the frames whose results are out."""
        self.frames -= len(self.held)
        self.keyframes -= sum(h.keyframe for h in self.held)
        self.held = []
        self._after_key = None
        return self._last_boundary

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.schedule.restart()  # the saved state ends just before a keyframe
        self._after_key = None

    # -- one span: held[0] (a keyframe) .. the frame before ``key`` --------------------------
    def _close_span(self, held: list[_Held], key: _Held) -> list[tuple[FrameResult, Frame]]:
        back = self._carry_back(held, key)
        at_start = set(held[0].tracked.track_ids.tolist())
        b = key.frame.index
        born = {
            tid
            for tid in key.tracked.track_ids.tolist()
            if self.backfill and self.tracker.first_frame(tid) == b and tid not in at_start
        }
        at_key = {tid: _row(key.tracked, r) for r, tid in enumerate(key.tracked.track_ids.tolist())}
        span = _Span(held[0].frame.index, key, at_key, born, at_start | born)
        out = []
        ends = (
            _keyframe_boxes(held[0].tracked, key.tracked)
            if self.propagation.boxes == "interpolate"
            else {}
        )
        for j, h in enumerate(held):
            backward = back[j] if back is not None else {}
            tracked = self._merge(h, j, backward, span)
            if j > 0 and ends:
                tracked = _interpolate_boxes(tracked, ends, (h.frame.index - span.a) / (b - span.a))
            if j > 0:
                sources = (span.a, b) if back is not None else (span.a,)
            else:  # the earlier keyframe: only births carried back to it came from ``b``
                sources = (b,) if len(tracked) > len(h.tracked) else ()
            out.append(
                (
                    self.result(h.frame, tracked, keyframe=h.keyframe, propagated_from=sources),
                    h.frame,
                )
            )
        return out

    def _carry_back(self, held: list[_Held], key: _Held) -> list[dict] | None:
        """Per held frame, the key's masks carried back to it (None: frames not linkable)."""
        frames = [h.frame for h in held] + [key.frame]
        grays = [h.gray for h in held] + [key.gray]
        gaps = np.diff([f.index for f in frames])
        if (gaps > self.max_flow_gap).any() or len({g.shape for g in grays}) > 1:
            return None
        start = {
            int(tid): BoxMask(m.x0, m.y0, m.prob, m.image_size)
            for tid, m in zip(key.tracked.track_ids, key.tracked.masks)
        }
        back = carry(start, grays[::-1], self.propagator, min_area=self.propagation.min_area)
        return back[::-1]  # back[j] is held[j]

    def _merge(self, h: _Held, j: int, backward: dict, span: _Span) -> Detections:
        """The held frame's instances with the backward masks fused in (interior frames) and
        backward-only masks added for the tracks in ``span.fill`` that forward tracking
        lacks, where they still look like the object at the later keyframe; in track-id
        order."""
        w = forward_weight(h.frame.index - span.a, span.key.frame.index - span.a)
        merged = []
        for r in range(len(h.tracked)):
            inst = _row(h.tracked, r)
            bm = backward.get(inst.track_id) if j > 0 else None
            if bm is None:
                merged.append(inst)
                continue
            mask = fuse(inst.mask, bm, w, min_area=self.propagation.min_area)
            agreement = float(mask_iou([inst.mask], [bm])[0, 0])
            fused = _with_mask(inst, mask) if mask is not None else inst
            merged.append(dataclasses.replace(fused, agreement=agreement))
        present = {i.track_id for i in merged}
        added = []
        for tid in sorted(span.fill - present):
            bm = backward.get(tid)
            if bm is None or (j == 0 and tid not in span.born):
                continue
            if merged and mask_iou([bm], [i.mask for i in merged]).max() > BACKFILL_MAX_IOU:
                continue  # another track already covers this object here
            if not _looks_alike(bm, h.gray, span.at_key[tid].mask, span.key.gray):
                continue  # the flow left the mask on something else (the object jumped)
            added.append(_with_mask(span.at_key[tid], bm))
        self.backfilled += sum(1 for i in added if i.track_id in span.born)
        rows = sorted(merged + added, key=lambda i: i.track_id)
        return _detections(rows, h.tracked.image_size)


@dataclasses.dataclass
class _Span:
    """What the frames of one span share: its first frame, the later keyframe, the tracks at
    that keyframe, those born there, and the tracks that may be carried back alone."""

    a: int
    key: _Held
    at_key: dict[int, _Instance]
    born: set[int]
    fill: set[int]


def _keyframe_boxes(start: Detections, end: Detections) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """{track id: (its box at the earlier keyframe, at the later one)} for the tracks both
    keyframes hold."""
    first = {int(t): start.xyxy[r] for r, t in enumerate(start.track_ids.tolist())}
    return {
        int(t): (first[int(t)], end.xyxy[r])
        for r, t in enumerate(end.track_ids.tolist())
        if int(t) in first
    }


def _interpolate_boxes(
    tracked: Detections, ends: dict[int, tuple[np.ndarray, np.ndarray]], w: float
) -> Detections:
    """``tracked`` with the box of every track in ``ends`` set to ``(1 - w) * first + w *
    last`` (``w`` in (0, 1): the frame's place between the two keyframes); masks unchanged."""
    rows = [r for r, t in enumerate(tracked.track_ids.tolist()) if int(t) in ends]
    if not rows:
        return tracked
    xyxy = tracked.xyxy.copy()
    for r in rows:
        first, last = ends[int(tracked.track_ids[r])]
        xyxy[r] = (1.0 - w) * first + w * last
    return dataclasses.replace(tracked, xyxy=xyxy.astype(tracked.xyxy.dtype))


def _looks_alike(mask: BoxMask, gray: np.ndarray, ref: BoxMask, ref_gray: np.ndarray) -> bool:
    """Whether the pixels under ``mask`` in ``gray`` have about the mean brightness of the
    object under ``ref`` in ``ref_gray`` (within ``BACKFILL_MAX_SHIFT`` grey levels)."""
    a = gray[mask.y0 : mask.y1, mask.x0 : mask.x1][mask.bits]
    b = ref_gray[ref.y0 : ref.y1, ref.x0 : ref.x1][ref.bits]
    if a.size == 0 or b.size == 0:
        return False
    return abs(float(a.mean()) - float(b.mean())) <= BACKFILL_MAX_SHIFT


def _with_mask(inst: _Instance, mask: BoxMask) -> _Instance:
    """``inst`` with a carried ``mask`` (no longer the keyframe's instance: no uncertainty)."""
    box = mask.tight_box()
    return dataclasses.replace(
        inst, mask=mask, box=inst.box if box is None else box, uncertainty=None
    )


def make_processor(
    *, offline: bool, keyframes: KeyframeConfig, repair: RepairConfig | None = None, **kwargs
) -> StreamProcessor:
    """The offline processor (``keyframes.backfill`` applies) or the live one; ``kwargs`` as
    ``StreamProcessor``. With ``repair`` enabled (offline) or a ``live_delay`` (live), its
    results pass through ``vis.tracking.repair.IdentityRepair`` (``RepairedProcessor``)."""
    if offline:
        proc = OfflineStreamProcessor(backfill=keyframes.backfill, keyframes=keyframes, **kwargs)
    else:
        proc = StreamProcessor(keyframes=keyframes, **kwargs)
    if repair is not None and (repair.enabled if offline else repair.live_delay > 0):
        return RepairedProcessor(proc, repair, offline=offline)  # type: ignore[return-value]
    return proc


def advance(
    processor: StreamProcessor,
    frame: Frame,
    detections: Detections | None,
    detect: Callable[[list[Frame]], list[Detections]],
) -> list[tuple[FrameResult, Frame]]:
    """One frame through ``processor``: ``emit``, then, if it asks for held frames to be
    detected (``wanted``), ``detect`` runs on them and ``detected`` gets the detections.

    Args:
        processor: the stream's processor.
        frame: the next frame (``processor.is_keyframe`` already called on it).
        detections: its detections on a keyframe, else None.
        detect: frames -> their detections, in order (the loop's detector).

    Returns:
        The results ready for the sinks, in frame order, each with its frame.
    """
    out = processor.emit(frame, detections)
    asked = processor.wanted()
    if asked:
        out = out + processor.detected(detect(asked))
    return out
