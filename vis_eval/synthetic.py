"""Seeded synthetic video scenes with per-frame instance ground truth.

Contract: ``render_sequence(SceneConfig(...))`` yields ``SyntheticFrame`` objects, one per
frame, each holding the BGR image and the *visible* (occlusion-aware) mask of every object
on screen. The same config and seed always give the same frames.

Scenes contain textured objects of a few shape classes moving over a textured, optionally
panning/zooming background, with occlusions, objects entering and leaving, lighting
changes, noise and blur. Object appearance (colour + texture) is fixed per object, so
appearance embeddings can tell objects of one class apart.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator

import cv2
import numpy as np

#: class id -> label of the synthetic classes (0 is background in the detector).
CLASS_NAMES: dict[int, str] = {1: "disk", 2: "box", 3: "star"}

PATCH = 96  # side of the pre-rendered object sprite, pixels
MIN_VISIBLE_PX = 24  # objects with fewer visible pixels are not annotated


@dataclasses.dataclass(frozen=True)
class SceneConfig:
    """Parameters of one synthetic sequence. All sizes are in output pixels."""

    width: int = 640
    height: int = 360
    n_frames: int = 120
    seed: int = 0
    n_objects: int = 5  # objects present at frame 0
    spawn_rate: float = 0.02  # expected new objects entering per frame
    max_objects: int = 12
    size_range: tuple[float, float] = (14.0, 44.0)  # object radius
    speed_range: tuple[float, float] = (1.0, 4.0)  # pixels per frame
    bounce_fraction: float = 0.6  # share of objects that bounce off the borders
    pan_speed: float = 0.0  # camera pan, pixels per frame
    zoom_rate: float = 0.0  # camera zoom change per frame (0.002 = +0.2 %/frame)
    lighting_amplitude: float = 0.0  # +- relative brightness change over the sequence
    noise_sigma: float = 4.0
    blur_prob: float = 0.1
    classes: tuple[int, ...] = (1, 2, 3)

    def __post_init__(self) -> None:
        if self.width < 32 or self.height < 32:
            raise ValueError(f"scene size must be at least 32x32, got {self.width}x{self.height}")
        if self.n_frames < 1:
            raise ValueError(f"n_frames must be >= 1, got {self.n_frames}")
        if not set(self.classes) <= set(CLASS_NAMES):
            raise ValueError(f"classes must be among {sorted(CLASS_NAMES)}, got {self.classes}")


@dataclasses.dataclass
class SyntheticFrame:
    """One rendered frame and its ground truth.

    Attributes:
        index: frame index, from 0.
        image: (H, W, 3) uint8 BGR image.
        track_ids: (N,) int64 ground-truth ids, ``class_id * 1000 + instance``.
        class_ids: (N,) int64 class ids (keys of ``CLASS_NAMES``).
        masks: (N, H, W) bool visible masks.
    """

    index: int
    image: np.ndarray
    track_ids: np.ndarray
    class_ids: np.ndarray
    masks: np.ndarray

    @property
    def boxes(self) -> np.ndarray:
        """(N, 4) float32 xyxy boxes of the visible masks."""
        out = np.zeros((len(self.masks), 4), np.float32)
        for i, m in enumerate(self.masks):
            ys, xs = np.nonzero(m)
            out[i] = (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
        return out


@dataclasses.dataclass
class SceneObject:
    uid: int
    class_id: int
    pos: np.ndarray  # world xy
    vel: np.ndarray
    radius: float
    angle: float
    spin: float
    bounce: bool
    sprite: np.ndarray  # (P, P, 3) float32 texture
    alpha: np.ndarray  # (P, P) float32 shape


def shape_alpha(class_id: int, rng: np.random.Generator) -> np.ndarray:
    """Anti-aliased (P, P) float32 alpha of a class's shape, centred, radius ~P/2."""
    big = np.zeros((PATCH * 4, PATCH * 4), np.uint8)
    c = PATCH * 2
    r = PATCH * 2 - 4
    if class_id == 1:
        cv2.ellipse(big, (c, c), (r, int(r * rng.uniform(0.75, 1.0))), 0, 0, 360, 255, -1)
    elif class_id == 2:
        h = int(r * rng.uniform(0.55, 0.8))
        cv2.rectangle(big, (c - r + 8, c - h), (c + r - 8, c + h), 255, -1)
    else:
        pts = []
        for k in range(10):
            rad = r if k % 2 == 0 else r * 0.45
            a = math.pi * k / 5 - math.pi / 2
            pts.append((c + rad * math.cos(a), c + rad * math.sin(a)))
        cv2.fillPoly(big, [np.round(np.array(pts)).astype(np.int32)], 255)
    small = cv2.resize(big, (PATCH, PATCH), interpolation=cv2.INTER_AREA)
    return small.astype(np.float32) / 255.0


def object_texture(rng: np.random.Generator, size: int) -> np.ndarray:
    """A distinctive colour texture (size, size, 3) float32 in [0, 255]."""
    base = rng.uniform(30, 225, 3)
    second = rng.uniform(30, 225, 3)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    kind = rng.integers(0, 4)
    if kind == 0:  # stripes
        f = rng.uniform(0.08, 0.35)
        th = rng.uniform(0, math.pi)
        t = (np.sin((xx * math.cos(th) + yy * math.sin(th)) * f) > 0).astype(np.float32)
    elif kind == 1:  # checker
        s = int(rng.integers(6, 20))
        t = (((xx // s) + (yy // s)) % 2).astype(np.float32)
    elif kind == 2:  # blotches
        t = cv2.GaussianBlur(rng.random((size, size)).astype(np.float32), (0, 0), 4)
        t = (t > np.median(t)).astype(np.float32)
    else:  # radial gradient
        t = np.hypot(xx - size / 2, yy - size / 2) / (size / 2)
        t = np.clip(t, 0, 1)
    tex = base[None, None, :] * (1 - t[..., None]) + second[None, None, :] * t[..., None]
    return tex.astype(np.float32)


def background_image(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """Textured (h, w, 3) uint8 background: low-frequency colour field plus clutter."""
    low = rng.random((max(2, h // 40), max(2, w // 40), 3)).astype(np.float32)
    field = cv2.resize(low, (w, h), interpolation=cv2.INTER_CUBIC)
    bg = 60 + 130 * np.clip(field, 0, 1)
    fine = cv2.GaussianBlur(rng.random((h, w)).astype(np.float32), (0, 0), 1.5)
    bg += (fine[..., None] - 0.5) * 60
    img = np.clip(bg, 0, 255).astype(np.uint8)
    for _ in range(int(w * h / 6000)):  # thin clutter lines and faint blobs
        p1 = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        p2 = (p1[0] + int(rng.integers(-80, 80)), p1[1] + int(rng.integers(-80, 80)))
        col = tuple(int(v) for v in rng.integers(40, 220, 3))
        cv2.line(img, p1, p2, col, int(rng.integers(1, 3)), cv2.LINE_AA)
    return img


class SceneRenderer:
    """Stateful renderer of one sequence; use ``render_sequence`` for the iterator."""

    def __init__(self, cfg: SceneConfig) -> None:
        self.cfg = cfg
        self.rng = np.random.default_rng(cfg.seed)
        margin = int(abs(cfg.pan_speed) * cfg.n_frames) + 64
        self._margin = margin
        self.bg = background_image(self.rng, cfg.width + 2 * margin, cfg.height + 2 * margin)
        self.objects: list[SceneObject] = []
        self._next_instance = {c: 1 for c in CLASS_NAMES}
        self._pan_dir = self.rng.uniform(-math.pi, math.pi)
        for _ in range(cfg.n_objects):
            self._spawn(inside=True)

    # -- objects ---------------------------------------------------------------
    def _spawn(self, inside: bool) -> None:
        cfg, rng = self.cfg, self.rng
        cls = int(rng.choice(cfg.classes))
        uid = cls * 1000 + self._next_instance[cls]
        self._next_instance[cls] += 1
        radius = float(rng.uniform(*cfg.size_range))
        speed = float(rng.uniform(*cfg.speed_range))
        if inside:
            pos = np.array(
                [rng.uniform(radius, cfg.width - radius), rng.uniform(radius, cfg.height - radius)]
            )
            ang = rng.uniform(-math.pi, math.pi)
            bounce = bool(rng.random() < cfg.bounce_fraction)
        else:  # enter from a random border, heading inwards
            side = int(rng.integers(0, 4))
            if side == 0:
                pos, ang = np.array([-radius, rng.uniform(0, cfg.height)]), rng.uniform(-0.8, 0.8)
            elif side == 1:
                pos = np.array([cfg.width + radius, rng.uniform(0, cfg.height)])
                ang = math.pi + rng.uniform(-0.8, 0.8)
            elif side == 2:
                pos = np.array([rng.uniform(0, cfg.width), -radius])
                ang = math.pi / 2 + rng.uniform(-0.8, 0.8)
            else:
                pos = np.array([rng.uniform(0, cfg.width), cfg.height + radius])
                ang = -math.pi / 2 + rng.uniform(-0.8, 0.8)
            bounce = False
        vel = speed * np.array([math.cos(ang), math.sin(ang)])
        self.objects.append(
            SceneObject(
                uid=uid,
                class_id=cls,
                pos=pos.astype(np.float64),
                vel=vel,
                radius=radius,
                angle=float(rng.uniform(0, 360)),
                spin=float(rng.uniform(-3, 3)),
                bounce=bounce,
                sprite=object_texture(rng, PATCH),
                alpha=shape_alpha(cls, rng),
            )
        )

    def _step_objects(self) -> None:
        cfg = self.cfg
        keep = []
        for o in self.objects:
            o.pos += o.vel
            o.angle += o.spin
            if o.bounce:
                for d, lim in ((0, cfg.width), (1, cfg.height)):
                    if (
                        o.pos[d] < o.radius
                        and o.vel[d] < 0
                        or o.pos[d] > lim - o.radius
                        and o.vel[d] > 0
                    ):
                        o.vel[d] = -o.vel[d]
            out = (
                o.pos[0] < -3 * o.radius
                or o.pos[0] > cfg.width + 3 * o.radius
                or o.pos[1] < -3 * o.radius
                or o.pos[1] > cfg.height + 3 * o.radius
            )
            if not out:
                keep.append(o)
        self.objects = keep
        if len(self.objects) < cfg.max_objects and self.rng.random() < cfg.spawn_rate:
            self._spawn(inside=False)

    # -- rendering -------------------------------------------------------------
    def render(self, index: int) -> SyntheticFrame:
        cfg, rng = self.cfg, self.rng
        w, h = cfg.width, cfg.height
        zoom = 1.0 + cfg.zoom_rate * index
        off = self._margin + cfg.pan_speed * index * np.array(
            [math.cos(self._pan_dir), math.sin(self._pan_dir)]
        )
        # camera: world point p -> screen (p - c) * zoom + c, c = screen centre; background
        # canvas is shifted by the pan offset.
        centre = np.array([w / 2, h / 2])
        cam = np.array(
            [
                [zoom, 0, (1 - zoom) * centre[0] + off[0] * zoom - (zoom - 1) * 0],
                [0, zoom, (1 - zoom) * centre[1] + off[1] * zoom],
            ],
            np.float64,
        )
        bg_m = np.array(
            [
                [zoom, 0, -off[0] * zoom + (1 - zoom) * centre[0]],
                [0, zoom, -off[1] * zoom + (1 - zoom) * centre[1]],
            ],
            np.float32,
        )
        del cam
        img = cv2.warpAffine(
            self.bg, bg_m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT
        ).astype(np.float32)
        pan_shift = -(off - self._margin) * zoom
        full_masks, ids, cls_ids = [], [], []
        for o in self.objects:  # painter's order: later objects are on top
            sc = (o.pos - centre) * zoom + centre + pan_shift
            scale = 2 * o.radius * zoom / PATCH
            m = cv2.getRotationMatrix2D((PATCH / 2, PATCH / 2), o.angle, scale)
            m[:, 2] += sc - np.array([PATCH / 2, PATCH / 2])
            alpha = cv2.warpAffine(o.alpha, m, (w, h), flags=cv2.INTER_LINEAR)
            if alpha.max() < 0.5:
                continue
            tex = cv2.warpAffine(o.sprite, m, (w, h), flags=cv2.INTER_LINEAR)
            img = img * (1 - alpha[..., None]) + tex * alpha[..., None]
            full_masks.append(alpha >= 0.5)
            ids.append(o.uid)
            cls_ids.append(o.class_id)
        # visible masks: remove what later (upper) objects cover
        visible = []
        covered = np.zeros((h, w), bool)
        for m in reversed(full_masks):
            visible.append(m & ~covered)
            covered |= m
        visible.reverse()
        keep = [i for i, m in enumerate(visible) if m.sum() >= MIN_VISIBLE_PX]
        if cfg.lighting_amplitude:
            gain = 1.0 + cfg.lighting_amplitude * math.sin(
                2 * math.pi * index / max(cfg.n_frames, 2)
            )
            img = img * gain
        if cfg.blur_prob and rng.random() < cfg.blur_prob:
            img = cv2.GaussianBlur(img, (0, 0), float(rng.uniform(0.6, 1.4)))
        if cfg.noise_sigma:
            img = img + rng.normal(0, cfg.noise_sigma, img.shape).astype(np.float32)
        image = np.clip(img, 0, 255).astype(np.uint8)
        masks = np.stack([visible[i] for i in keep]) if keep else np.zeros((0, h, w), bool)
        return SyntheticFrame(
            index=index,
            image=image,
            track_ids=np.array([ids[i] for i in keep], np.int64),
            class_ids=np.array([cls_ids[i] for i in keep], np.int64),
            masks=masks,
        )


def render_sequence(cfg: SceneConfig) -> Iterator[SyntheticFrame]:
    """Yield ``cfg.n_frames`` frames of the seeded scene described by ``cfg``."""
    renderer = SceneRenderer(cfg)
    for i in range(cfg.n_frames):
        yield renderer.render(i)
        renderer._step_objects()


def random_scene_config(
    rng: np.random.Generator, *, width: int = 640, height: int = 360, n_frames: int = 1
) -> SceneConfig:
    """A randomly varied config for training-data sampling."""
    small = rng.random() < 0.15
    return SceneConfig(
        width=width,
        height=height,
        n_frames=n_frames,
        seed=int(rng.integers(0, 2**31 - 1)),
        n_objects=int(rng.integers(1, 16 if not small else 20)),
        size_range=(6.0, 14.0) if small else (12.0, 50.0),
        pan_speed=float(rng.uniform(0, 3)),
        zoom_rate=float(rng.uniform(-0.002, 0.004)),
        lighting_amplitude=float(rng.uniform(0, 0.3)),
        noise_sigma=float(rng.uniform(0, 8)),
        blur_prob=0.2,
    )
