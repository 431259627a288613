"""The fixed, seeded benchmark scenario set: one short sequence per tracking challenge.

Contract: ``benchmark_scenarios(scale)`` returns the ``Scenario`` list (``scale`` seeded
variants of each of the eight challenges); ``render_scenario(s)`` yields its
``SyntheticFrame`` objects, the same frames for the same scenario every time.

Scenarios compose ``vis_eval.synthetic``: a ``SceneConfig`` for the random part, plus what a
config cannot say, added by ``ScenarioRenderer`` (a ``SceneRenderer`` subclass):

* scripted objects (start, velocity, frame of appearance): same-class objects that cross;
  objects that walk behind an occluder;
* occluders: static textured pillars in front of every object. They are scenery, not
  instances: the ground-truth masks lose the pixels they cover, so an object behind one
  disappears from the ground truth for as long as it is hidden;
* lighting steps (a gain from a given frame on), on top of ``lighting_amplitude``.

Lighting, blur and noise are applied after the occluders, with the renderer's own seeded
generator, so that occluders are lit and noised like the rest of the frame.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator

import cv2
import numpy as np

from vis_eval.synthetic import (
    MIN_VISIBLE_PX,
    PATCH,
    SceneConfig,
    SceneObject,
    SceneRenderer,
    SyntheticFrame,
    object_texture,
    shape_alpha,
)


@dataclasses.dataclass(frozen=True)
class ScriptedObject:
    """An object with a given path.

    Attributes:
        class_id: 1 disk, 2 box, 3 star.
        start: (x, y) centre at ``first_frame``, pixels (may be just outside the frame).
        velocity: (vx, vy) pixels per frame.
        radius: pixels.
        first_frame: the frame it appears at.
        spin: degrees per frame.
    """

    class_id: int
    start: tuple[float, float]
    velocity: tuple[float, float]
    radius: float = 20.0
    first_frame: int = 0
    spin: float = 0.0


@dataclasses.dataclass(frozen=True)
class Occluder:
    """A static textured rectangle ``[x0, x1) x [y0, y1)`` in front of all objects (pixels)."""

    x0: int
    y0: int
    x1: int
    y1: int


@dataclasses.dataclass(frozen=True)
class Scenario:
    """One benchmark sequence.

    Attributes:
        name: sequence name (file stem, stream id).
        challenge: what it tests, one short phrase.
        scene: the random part (objects, camera, lighting, noise), seeded.
        scripted: objects with a given path, added to the random ones.
        occluders: static pillars in front of every object.
        lighting_steps: (frame, gain) pairs: from ``frame`` on, brightness is multiplied by
            ``gain`` (the last step reached applies).
    """

    name: str
    challenge: str
    scene: SceneConfig
    scripted: tuple[ScriptedObject, ...] = ()
    occluders: tuple[Occluder, ...] = ()
    lighting_steps: tuple[tuple[int, float], ...] = ()


class ScenarioRenderer(SceneRenderer):
    """``SceneRenderer`` plus scripted objects, occluders and lighting steps.

    Args:
        scenario: what to render.
    """

    def __init__(self, scenario: Scenario) -> None:
        cfg = scenario.scene
        # the base renderer draws objects and camera only; photometric effects come after
        # the occluders (see ``render``)
        super().__init__(
            dataclasses.replace(cfg, lighting_amplitude=0.0, noise_sigma=0.0, blur_prob=0.0)
        )
        self.scenario = scenario
        self.effects = cfg
        self._fx_rng = np.random.default_rng([cfg.seed, 4])
        self._pending = sorted(scenario.scripted, key=lambda o: o.first_frame)
        self._occluder_pixels = [self._occluder_texture(o) for o in scenario.occluders]

    def _occluder_texture(self, occ: Occluder) -> np.ndarray:
        """Grey blotchy plaster: textured (flow has something to hold on to) but without the
        straight edges and flat colour patches of the object classes (a brick pattern was
        detected as a column of boxes)."""
        h, w = occ.y1 - occ.y0, occ.x1 - occ.x0
        rng = np.random.default_rng([self.cfg.seed, occ.x0, occ.y0])
        low = cv2.resize(
            rng.random((max(2, h // 24), max(2, w // 24))).astype(np.float32),
            (w, h),
            interpolation=cv2.INTER_CUBIC,
        )
        fine = cv2.GaussianBlur(rng.random((h, w)).astype(np.float32), (0, 0), 1.5)
        grey = 105 + 35 * (low - 0.5) + 25 * (fine - 0.5)
        tint = np.array([1.0, 1.02, 1.05], np.float32)
        return np.clip(grey[..., None] * tint, 0, 255).astype(np.float32)

    def _activate(self, index: int) -> None:
        """Add the scripted objects whose ``first_frame`` is ``index``."""
        while self._pending and self._pending[0].first_frame <= index:
            s = self._pending.pop(0)
            uid = s.class_id * 1000 + self._next_instance[s.class_id]
            self._next_instance[s.class_id] += 1
            self.objects.append(
                SceneObject(
                    uid=uid,
                    class_id=s.class_id,
                    pos=np.array(s.start, np.float64),
                    vel=np.array(s.velocity, np.float64),
                    radius=float(s.radius),
                    angle=float(self.rng.uniform(0, 360)),
                    spin=float(s.spin),
                    bounce=False,
                    sprite=object_texture(self.rng, PATCH),
                    alpha=shape_alpha(s.class_id, self.rng),
                )
            )

    def render(self, index: int) -> SyntheticFrame:
        """The frame ``index`` with occluders, lighting, blur and noise applied."""
        self._activate(index)
        frame = super().render(index)
        img = frame.image.astype(np.float32)
        masks = frame.masks.copy()
        for occ, tex in zip(self.scenario.occluders, self._occluder_pixels):
            img[occ.y0 : occ.y1, occ.x0 : occ.x1] = tex
            masks[:, occ.y0 : occ.y1, occ.x0 : occ.x1] = False
        keep = masks.reshape(len(masks), -1).sum(1) >= MIN_VISIBLE_PX
        fx, rng = self.effects, self._fx_rng
        gain = 1.0
        if fx.lighting_amplitude:
            gain += fx.lighting_amplitude * math.sin(2 * math.pi * index / max(fx.n_frames, 2))
        step = 1.0
        for start, g in self.scenario.lighting_steps:
            if index >= start:
                step = g
        gain *= step
        img *= gain
        if fx.blur_prob and rng.random() < fx.blur_prob:
            img = cv2.GaussianBlur(img, (0, 0), float(rng.uniform(0.6, 1.4)))
        if fx.noise_sigma:
            img += rng.normal(0, fx.noise_sigma, img.shape).astype(np.float32)
        return SyntheticFrame(
            index=index,
            image=np.clip(img, 0, 255).astype(np.uint8),
            track_ids=frame.track_ids[keep],
            class_ids=frame.class_ids[keep],
            masks=masks[keep],
        )


def render_scenario(scenario: Scenario) -> Iterator[SyntheticFrame]:
    """Yield the ``scenario.scene.n_frames`` frames of ``scenario``."""
    renderer = ScenarioRenderer(scenario)
    for i in range(scenario.scene.n_frames):
        yield renderer.render(i)
        renderer._step_objects()


# -- the set ---------------------------------------------------------------------------------
W, H = 640, 360


def _crossing(seed: int, jitter: np.random.Generator) -> Scenario:
    j = lambda: float(jitter.uniform(-12, 12))  # noqa: E731 - tiny local helper
    scripted = (
        # same-class pairs meeting head-on, one passing in front of the other
        ScriptedObject(1, (40 + j(), 110 + j()), (4.0, 0.0), 22),
        ScriptedObject(1, (600 + j(), 110 + j()), (-4.0, 0.0), 22),
        ScriptedObject(2, (60 + j(), 260 + j()), (3.5, -0.6), 24),
        ScriptedObject(2, (580 + j(), 190 + j()), (-3.5, 0.6), 24),
        ScriptedObject(3, (330 + j(), 10), (0.3, 3.2), 22, first_frame=10),
        ScriptedObject(3, (310 + j(), 350), (-0.3, -3.2), 22, first_frame=10),
        # an X crossing of two different classes
        ScriptedObject(1, (120, 20), (3.0, 2.6), 18, first_frame=30),
        ScriptedObject(2, (520, 20), (-3.0, 2.6), 18, first_frame=30),
    )
    return Scenario(
        "crossing",
        "same-class objects crossing and overlapping",
        SceneConfig(
            width=W,
            height=H,
            n_frames=120,
            seed=seed,
            n_objects=2,
            spawn_rate=0.0,
            speed_range=(1.0, 2.0),
            bounce_fraction=1.0,
            noise_sigma=3.0,
            blur_prob=0.05,
        ),
        scripted=scripted,
    )


def _long_occlusion(seed: int, jitter: np.random.Generator) -> Scenario:
    # a 130 px pillar: objects of radius 19-20 at 2 px/frame are hidden for 40-55 frames
    pillar = Occluder(255, 0, 385, H)
    j = lambda: float(jitter.uniform(-10, 10))  # noqa: E731
    scripted = (
        ScriptedObject(1, (150 + j(), 80 + j()), (2.0, 0.0), 20),
        ScriptedObject(2, (500 + j(), 200 + j()), (-2.0, 0.1), 19, first_frame=15),
        ScriptedObject(3, (120 + j(), 300 + j()), (2.2, -0.2), 20, first_frame=30),
    )
    return Scenario(
        "long_occlusion",
        "objects hidden behind a pillar for 40-55 frames",
        SceneConfig(
            width=W,
            height=H,
            n_frames=160,
            seed=seed,
            n_objects=2,
            spawn_rate=0.0,
            speed_range=(1.0, 2.0),
            bounce_fraction=1.0,
            noise_sigma=3.0,
            blur_prob=0.05,
        ),
        scripted=scripted,
        occluders=(pillar,),
    )


def benchmark_scenarios(scale: int = 1) -> list[Scenario]:
    """The benchmark set: ``scale`` seeded variants of each challenge.

    Variant 0 keeps the plain name (``crowd``), variant k > 0 is ``crowd-k``.
    """
    if scale < 1:
        raise ValueError(f"scale must be >= 1, got {scale}")
    out: list[Scenario] = []
    for k in range(scale):
        seed = 4000 + 97 * k
        jitter = np.random.default_rng([seed, 1])
        sets = [
            _crossing(seed + 1, jitter),
            _long_occlusion(seed + 2, jitter),
            Scenario(
                "crowd",
                "25 instances in one frame, about 20 of them overlapping",
                SceneConfig(
                    width=W,
                    height=H,
                    n_frames=100,
                    seed=seed + 3,
                    n_objects=25,
                    max_objects=25,
                    spawn_rate=0.0,
                    size_range=(24.0, 38.0),
                    speed_range=(1.0, 3.0),
                    bounce_fraction=1.0,
                    noise_sigma=3.0,
                    blur_prob=0.05,
                ),
            ),
            Scenario(
                "fast_motion",
                "10-16 px/frame motion with motion blur",
                SceneConfig(
                    width=W,
                    height=H,
                    n_frames=100,
                    seed=seed + 4,
                    n_objects=6,
                    spawn_rate=0.0,
                    speed_range=(10.0, 16.0),
                    bounce_fraction=1.0,
                    noise_sigma=3.0,
                    blur_prob=0.3,
                ),
            ),
            Scenario(
                "pan_zoom",
                "camera pans 3 px/frame and zooms in 0.4 %/frame",
                SceneConfig(
                    width=W,
                    height=H,
                    n_frames=100,
                    seed=seed + 5,
                    n_objects=7,
                    spawn_rate=0.02,
                    pan_speed=3.0,
                    zoom_rate=0.004,
                    noise_sigma=3.0,
                    blur_prob=0.05,
                ),
            ),
            Scenario(
                "enter_leave",
                "objects keep entering and leaving through the borders",
                SceneConfig(
                    width=W,
                    height=H,
                    n_frames=120,
                    seed=seed + 6,
                    n_objects=2,
                    spawn_rate=0.15,
                    max_objects=10,
                    speed_range=(2.5, 5.0),
                    bounce_fraction=0.0,
                    noise_sigma=3.0,
                    blur_prob=0.05,
                ),
            ),
            Scenario(
                "lighting",
                "slow +-35 % brightness swing plus a 45 % dimming step",
                SceneConfig(
                    width=W,
                    height=H,
                    n_frames=100,
                    seed=seed + 7,
                    n_objects=6,
                    spawn_rate=0.0,
                    lighting_amplitude=0.35,
                    noise_sigma=3.0,
                    blur_prob=0.05,
                ),
                lighting_steps=((40, 0.55), (70, 1.0)),
            ),
            Scenario(
                "small_objects",
                "12 objects of radius 5-10 px",
                SceneConfig(
                    width=W,
                    height=H,
                    n_frames=100,
                    seed=seed + 8,
                    n_objects=12,
                    max_objects=12,
                    spawn_rate=0.0,
                    size_range=(5.0, 10.0),
                    speed_range=(1.0, 3.0),
                    bounce_fraction=1.0,
                    noise_sigma=3.0,
                    blur_prob=0.05,
                ),
            ),
        ]
        for s in sets:
            out.append(dataclasses.replace(s, name=s.name if k == 0 else f"{s.name}-{k}"))
    return out


def sequence_stats(frames: list[SyntheticFrame]) -> dict[str, int]:
    """Facts about a rendered sequence's ground truth, for the manifest.

    Returns:
        ``frames``, ``tracks`` (distinct ids), ``max_instances`` (most in one frame),
        ``max_overlapping`` (most instances in one frame whose boxes overlap another's box),
        ``max_gap`` (longest run of frames an id is absent between two appearances).
    """
    seen: dict[int, list[int]] = {}
    max_inst = max_overlap = 0
    for f in frames:
        for t in f.track_ids:
            seen.setdefault(int(t), []).append(f.index)
        n = len(f.track_ids)
        max_inst = max(max_inst, n)
        if n > 1:
            b = f.boxes
            ix = np.minimum(b[:, None, 2], b[None, :, 2]) > np.maximum(b[:, None, 0], b[None, :, 0])
            iy = np.minimum(b[:, None, 3], b[None, :, 3]) > np.maximum(b[:, None, 1], b[None, :, 1])
            ov = ix & iy
            np.fill_diagonal(ov, False)
            max_overlap = max(max_overlap, int(ov.any(1).sum()))
    gap = 0
    for idx in seen.values():
        if len(idx) > 1:
            gap = max(gap, int(np.max(np.diff(idx))) - 1)
    return {
        "frames": len(frames),
        "tracks": len(seen),
        "max_instances": max_inst,
        "max_overlapping": max_overlap,
        "max_gap": gap,
    }
