"""Tiled inference for small objects in big frames (``detector.tiles: {size, overlap}``).

Contract: ``TiledDetector(inner, size=..., overlap=...)`` wraps any engine's ``Detector``
and is one itself. For each frame the wrapped detector runs on the whole frame, as it does
without tiles (the model downscales it to its input: large objects come from this pass), and,
only where the frame is larger than the model's input, on overlapping ``size`` x ``size``
tiles cut from the frame at full resolution (small objects come from these). All tiles of a
batch of frames have one shape and go to the wrapped detector in one ``detect_frames`` call.
The detections are merged in frame coordinates (``merge``):

1. tile detections cut by an inner tile border (box within ``TOUCH`` px of a tile edge that
   is not a frame edge) are joined with their other part from a neighbouring tile: same
   class, masks agreeing inside the strip both tiles saw (intersection over the smaller part
   there >= ``PART_IOS``; with ``overlap`` 0, their rows or columns on the shared edge); the
   joined instance's soft mask is the pixel-wise maximum of its parts (a ``BoxMask`` in
   frame pixels), its box their union, its score their highest;
2. tile-made instances larger than ``LARGE`` times the tile side are dropped: large objects
   come from the whole-frame pass (tiles cut them, and the model sees their parts zoomed);
3. duplicates between passes (whole frame, tiles, joined instances; never two instances of
   one pass, whose own NMS has decided) are suppressed: same class and mask IoU >= ``DUP_IOU``
   or intersection over the smaller mask >= ``DUP_IOS``; an instance still cut by a tile
   border loses to one that is not, otherwise the lower score loses;
4. the best ``max_detections`` are kept, by score. Tile-made instances get their colour
   histogram embedding recomputed on the whole frame (the box-head part is the tile's).

A frame that needs no tiles (not larger than the model's input, or no smaller than one
tile) gets the wrapped detector's detections unchanged; so does a frame whose tiles add
nothing. The merge depends only on the detections, so every engine that gives the same
detections at f32 gives the same merged result.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np

from vis.config import require
from vis.detection.base import Detector, WrappedDetector
from vis.ops.masks import BoxMask, pair_iou
from vis.types import Detections, Frame


#: a box this close (pixels) to an inner tile edge is cut by it
TOUCH = 2.0
#: two cut parts are one object when their masks agree this much inside the strip both saw
PART_IOS = 0.5
#: duplicates across passes: mask IoU, or intersection over the smaller mask, at least this
DUP_IOU = 0.5
DUP_IOS = 0.7
#: large objects come from the whole-frame pass: a tile-made instance whose box is longer
#: than this share of the tile side is dropped (measured: bench/results/annotate_tiles.md)
LARGE = 0.5
#: most tiles per frame (each costs one detector run) where less overlap can keep to it
MAX_TILES = 256


@dataclasses.dataclass(frozen=True)
class Tile:
    """A tile's rectangle in frame pixels: [x0, x1) x [y0, y1)."""

    x0: int
    y0: int
    x1: int
    y1: int


def axis_starts(length: int, size: int, stride: int) -> list[int]:
    """Starts of tiles of ``size`` along an axis of ``length`` pixels, ``stride`` apart; the
    last one ends at the frame's edge (every tile has the same size)."""
    if size >= length:
        return [0]
    n = math.ceil((length - size) / stride) + 1
    return sorted({min(i * stride, length - size) for i in range(n)})


def tile_grid(height: int, width: int, size: int, overlap: float) -> list[Tile]:
    """Square tiles of side ``size`` (clipped to a smaller frame's side) covering an
    ``height`` x ``width`` frame, neighbours sharing ``overlap`` of ``size``. Where that makes
    more than ``MAX_TILES`` tiles the overlap shrinks (down to none) until they fit; the
    frame is always covered. Row-major order."""
    stride = max(int(round(size * (1.0 - overlap))), 1)
    while True:
        ys = axis_starts(height, size, stride)
        xs = axis_starts(width, size, stride)
        if len(ys) * len(xs) <= MAX_TILES or stride >= size:
            break
        stride = min(stride + max(stride // 4, 1), size)
    th, tw = min(size, height), min(size, width)
    return [Tile(x, y, x + tw, y + th) for y in ys for x in xs]


def innermost(detector: Detector) -> Detector:
    """The model's own detector inside wrappers (each keeping the one it wraps as ``inner``)."""
    while isinstance(getattr(detector, "inner", None), Detector):
        detector = detector.inner
    return detector


def input_scale(detector: Detector, height: int, width: int) -> float:
    """The factor the wrapped detector's model resizes an ``height`` x ``width`` frame by
    (< 1: the frame is larger than the model's input); 1.0 for a detector without a known
    input size (no tiles)."""
    detector = innermost(detector)
    model = getattr(detector, "model", None)
    transform = getattr(model, "transform", None)
    if transform is not None:  # eager torchvision Mask R-CNN
        low, high = float(transform.min_size[-1]), float(transform.max_size)
    elif hasattr(detector, "min_size") and hasattr(detector, "max_size"):  # ONNX Mask R-CNN
        low, high = float(detector.min_size), float(detector.max_size)
    elif hasattr(detector, "input_size"):  # YOLO-seg: a fixed letterboxed input
        ih, iw = detector.input_size
        return min(ih / height, iw / width)
    else:
        return 1.0
    return min(low / min(height, width), high / max(height, width))


@dataclasses.dataclass
class _Instance:
    """One candidate in frame pixels: the passes (tile indices, -1 = whole frame) it comes
    from, and the tile edges it is cut by that no other part continues."""

    box: np.ndarray
    mask: BoxMask
    score: float
    class_id: int
    embedding: np.ndarray
    tiles: frozenset[int]
    cut: bool
    from_tiles: bool
    order: int = 0


class TiledDetector(WrappedDetector):
    """A ``Detector`` running ``inner`` on the whole frame and on overlapping tiles.

    Args:
        inner: any engine's detector (``detect_frames``), or a wrapper of one (with its own
            ``inner``).
        size: tile side in pixels.
        overlap: fraction of ``size`` neighbouring tiles share, [0, 0.9].
        max_detections: instances kept per frame after the merge (highest scores).
    """

    def __init__(
        self, inner: Detector, *, size: int, overlap: float, max_detections: int = 50
    ) -> None:
        require(size >= 1, "detector.tiles.size", size, "must be a positive number of pixels")
        require(0.0 <= overlap < 1.0, "detector.tiles.overlap", overlap, "must be in [0, 1)")
        self.inner = inner
        self.size = int(size)
        self.overlap = float(overlap)
        self.max_detections = int(max_detections)
        self.labels = inner.labels
        self.engine = inner.engine
        self.precision = inner.precision
        #: tiles run so far (all frames), for the run's accounting and the tests
        self.tiles_run = 0

    def tiles_for(self, height: int, width: int) -> list[Tile]:
        """The tiles of an ``height`` x ``width`` frame: none when the model's input is not
        smaller than the frame or one tile covers it."""
        if input_scale(self.inner, height, width) >= 1.0:
            return []
        if self.size >= height and self.size >= width:
            return []
        return tile_grid(height, width, self.size, self.overlap)

    def detect_frames(self, frames: Sequence[Frame]) -> list[Detections]:
        whole = self.inner.detect_frames(frames)
        grids = [self.tiles_for(f.height, f.width) for f in frames]
        crops = [
            Frame(
                stream_id=f.stream_id,
                index=f.index,
                timestamp_ms=f.timestamp_ms,
                image=np.ascontiguousarray(f.image[t.y0 : t.y1, t.x0 : t.x1]),
                captured_at=f.captured_at,
            )
            for f, grid in zip(frames, grids)
            for t in grid
        ]
        if not crops:
            return whole
        self.tiles_run += len(crops)
        found = iter(self.inner.detect_frames(crops))
        out = []
        for frame, full, grid in zip(frames, whole, grids):
            parts = [next(found) for _ in grid]
            out.append(self.merge(frame.image, full, grid, parts) if grid else full)
        return out

    # -- merging ------------------------------------------------------------------------
    def merge(
        self, image: np.ndarray, full: Detections, grid: list[Tile], parts: list[Detections]
    ) -> Detections:
        """The whole frame's detections ``full`` merged with each tile's (``parts[k]`` in the
        coordinates of ``grid[k]``), as the module docstring says."""
        h, w = image.shape[:2]
        tiles = [_shifted(d, t, (h, w)) for d, t in zip(parts, grid)]
        pieces = [
            _Instance(
                box=d.xyxy[i],
                mask=d.masks[i],
                score=float(d.scores[i]),
                class_id=int(d.class_ids[i]),
                embedding=d.embeddings[i],
                tiles=frozenset([k]),
                cut=bool(_cut_edges(d.xyxy[i], grid[k], (h, w))),
                from_tiles=True,
            )
            for k, d in enumerate(tiles)
            for i in range(len(d))
        ]
        joined = _join_cut_parts(pieces, grid, (h, w))
        side = LARGE * max(max(t.x1 - t.x0, t.y1 - t.y0) for t in grid)
        joined = [c for c in joined if max(c.box[2] - c.box[0], c.box[3] - c.box[1]) <= side]
        whole = [
            _Instance(
                box=full.xyxy[i],
                mask=full.masks[i],
                score=float(full.scores[i]),
                class_id=int(full.class_ids[i]),
                embedding=full.embeddings[i],
                tiles=frozenset([-1]),
                cut=False,
                from_tiles=False,
                order=i,
            )
            for i in range(len(full))
        ]
        kept = _suppress_duplicates(whole + joined)
        kept.sort(key=lambda c: (-c.score, c.from_tiles, c.order))
        kept = kept[: self.max_detections]
        if all(not c.from_tiles for c in kept) and len(kept) == len(full):
            return full
        return self._detections(image, kept, (h, w))

    def _detections(
        self, image: np.ndarray, kept: list[_Instance], size: tuple[int, int]
    ) -> Detections:
        dim = max((c.embedding.shape[0] for c in kept), default=0)
        embeddings = np.zeros((len(kept), dim), np.float32)
        for row, c in zip(embeddings, kept):
            row[: c.embedding.shape[0]] = c.embedding
        det = Detections(
            xyxy=np.array([c.box for c in kept], np.float32).reshape(-1, 4),
            masks=[c.mask for c in kept],
            scores=np.array([c.score for c in kept], np.float32),
            class_ids=np.array([c.class_id for c in kept], np.int64),
            embeddings=embeddings,
            image_size=size,
        )
        made = np.array([c.from_tiles for c in kept], bool)
        if made.any():
            det.embeddings[made] = _rehistogram(self.inner, image, det[made])
        return det


def _shifted(d: Detections, t: Tile, size: tuple[int, int]) -> Detections:
    """A tile's detections in frame pixels."""
    off = np.array([t.x0, t.y0, t.x0, t.y0], np.float32)
    return Detections(
        xyxy=d.xyxy + off,
        masks=[BoxMask(m.x0 + t.x0, m.y0 + t.y0, m.prob, size) for m in d.masks],
        scores=d.scores,
        class_ids=d.class_ids,
        embeddings=d.embeddings,
        image_size=size,
    )


def _cut_edges(box: np.ndarray, t: Tile, size: tuple[int, int]) -> set[str]:
    """The inner edges of tile ``t`` (not the frame's) that ``box`` (frame pixels) reaches."""
    h, w = size
    x0, y0, x1, y1 = (float(v) for v in box)
    edges = set()
    if t.x0 > 0 and x0 <= t.x0 + TOUCH:
        edges.add("left")
    if t.y0 > 0 and y0 <= t.y0 + TOUCH:
        edges.add("top")
    if t.x1 < w and x1 >= t.x1 - TOUCH:
        edges.add("right")
    if t.y1 < h and y1 >= t.y1 - TOUCH:
        edges.add("bottom")
    return edges


def _bits(mask: BoxMask, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    return mask.window(x0, y0, x1, y1) >= 0.5


def _parts_agree(a: _Instance, b: _Instance, ta: Tile, tb: Tile) -> bool:
    """Two cut parts from tiles ``ta`` and ``tb`` show one object: their masks agree where
    both tiles saw the frame, or (tiles that only touch) along the shared edge."""
    x0, y0 = max(ta.x0, tb.x0), max(ta.y0, tb.y0)
    x1, y1 = min(ta.x1, tb.x1), min(ta.y1, tb.y1)
    if x1 > x0 and y1 > y0:  # the strip both tiles saw
        ma, mb = _bits(a.mask, x0, y0, x1, y1), _bits(b.mask, x0, y0, x1, y1)
    elif x1 == x0 and y1 > y0:  # side by side, no overlap: the columns at the shared edge
        left, right = (a, b) if ta.x0 < tb.x0 else (b, a)
        ma = _bits(left.mask, x0 - 1, y0, x0, y1)
        mb = _bits(right.mask, x0, y0, x0 + 1, y1)
    elif y1 == y0 and x1 > x0:  # one above the other: the rows at the shared edge
        top, bottom = (a, b) if ta.y0 < tb.y0 else (b, a)
        ma = _bits(top.mask, x0, y0 - 1, x1, y0)
        mb = _bits(bottom.mask, x0, y0, x1, y0 + 1)
    else:
        return False
    smaller = min(int(ma.sum()), int(mb.sum()))
    return smaller > 0 and int((ma & mb).sum()) >= PART_IOS * smaller


def _join_cut_parts(
    pieces: list[_Instance], grid: list[Tile], size: tuple[int, int]
) -> list[_Instance]:
    """Tile detections with cut parts joined (union-find over agreeing cut pairs)."""
    parent = list(range(len(pieces)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    boxes = np.array([p.box for p in pieces], np.float32).reshape(-1, 4)
    cut = np.flatnonzero([p.cut for p in pieces])
    # boxes that overlap or touch (1 px) across the border
    for i, j in _near_pairs(boxes[cut], boxes, gap=1.0):
        i = int(cut[i])
        a, b = pieces[i], pieces[j]
        (ka,), (kb,) = a.tiles, b.tiles
        if kb == ka or b.class_id != a.class_id or root(i) == root(j):
            continue
        if _parts_agree(a, b, grid[ka], grid[kb]):
            parent[root(j)] = root(i)
    groups: dict[int, list[int]] = {}
    for i in range(len(pieces)):
        groups.setdefault(root(i), []).append(i)
    out = []
    for members in groups.values():
        if len(members) == 1:
            out.append(pieces[members[0]])
        else:
            out.append(_union([pieces[i] for i in members], grid, size))
    return out


def _union(parts: list[_Instance], grid: list[Tile], size: tuple[int, int]) -> _Instance:
    """Cut parts of one object -> one instance (mask: pixel-wise maximum; box: union;
    score: the highest; embedding: the largest part's). Still cut where a part's cut edge is
    not continued by another part's tile."""
    x0 = min(p.mask.x0 for p in parts)
    y0 = min(p.mask.y0 for p in parts)
    x1 = max(p.mask.x1 for p in parts)
    y1 = max(p.mask.y1 for p in parts)
    prob = np.zeros((max(y1 - y0, 0), max(x1 - x0, 0)), np.float32)
    for p in parts:
        np.maximum(prob, p.mask.window(x0, y0, x1, y1), out=prob)
    boxes = np.array([p.box for p in parts], np.float32)
    box = np.concatenate([boxes[:, :2].min(axis=0), boxes[:, 2:].max(axis=0)])
    tiles = frozenset().union(*(p.tiles for p in parts))
    cut = False
    for p in parts:
        (k,) = p.tiles
        t = grid[k]
        for edge in _cut_edges(p.box, t, size):
            if not any(_continues(t, grid[o], edge) for o in tiles if o != k):
                cut = True
    return _Instance(
        box=box,
        mask=BoxMask(x0, y0, prob, size),
        score=max(p.score for p in parts),
        class_id=parts[0].class_id,
        embedding=max(parts, key=lambda p: p.mask.area).embedding,
        tiles=tiles,
        cut=cut,
        from_tiles=True,
    )


def _continues(t: Tile, o: Tile, edge: str) -> bool:
    """Tile ``o`` reaches past ``edge`` of tile ``t``."""
    return {
        "left": o.x0 < t.x0,
        "right": o.x1 > t.x1,
        "top": o.y0 < t.y0,
        "bottom": o.y1 > t.y1,
    }[edge]


def _suppress_duplicates(cands: list[_Instance]) -> list[_Instance]:
    """Greedy suppression across passes: an instance not cut beats a cut one, then the
    higher score wins; instances of one pass (no shared tile set) never suppress each
    other."""
    order = sorted(range(len(cands)), key=lambda i: (cands[i].cut, -cands[i].score, i))
    rects = np.array([[c.mask.x0, c.mask.y0, c.mask.x1, c.mask.y1] for c in cands], np.float32)
    near: dict[int, list[int]] = {}
    for i, j in _near_pairs(rects.reshape(-1, 4), rects.reshape(-1, 4), gap=-0.5):
        if i != j:
            near.setdefault(int(i), []).append(int(j))
    kept: set[int] = set()
    for i in order:
        c = cands[i]
        duplicate = False
        for j in near.get(i, ()):
            k = cands[j]
            if j not in kept or k.class_id != c.class_id:
                continue
            if k.tiles == c.tiles and len(k.tiles) == 1:  # one pass: its own NMS decided
                continue
            if _duplicates(k.mask, c.mask):
                duplicate = True
                break
        if not duplicate:
            kept.add(i)
    return [cands[i] for i in sorted(kept)]


def _near_pairs(a: np.ndarray, b: np.ndarray, gap: float) -> np.ndarray:
    """(K, 2) index pairs (i, j) of (N, 4) and (M, 4) xyxy rectangles ``a[i]`` and ``b[j]``
    no farther apart than ``gap`` on either axis (negative: overlapping by more than it),
    in row chunks so that memory stays bounded."""
    out = [np.zeros((0, 2), np.int64)]
    for start in range(0, len(a), 512):
        r = a[start : start + 512]
        ok = (
            (r[:, None, 0] <= b[None, :, 2] + gap)
            & (b[None, :, 0] <= r[:, None, 2] + gap)
            & (r[:, None, 1] <= b[None, :, 3] + gap)
            & (b[None, :, 1] <= r[:, None, 3] + gap)
        )
        pairs = np.argwhere(ok)
        pairs[:, 0] += start
        out.append(pairs)
    return np.concatenate(out)


def _duplicates(a: BoxMask, b: BoxMask) -> bool:
    if a.x1 <= b.x0 or b.x1 <= a.x0 or a.y1 <= b.y0 or b.y1 <= a.y0:
        return False
    iou = pair_iou(a, b)
    if iou >= DUP_IOU:
        return True
    smaller = min(a.area, b.area)
    if smaller == 0:
        return False
    union = a.area + b.area
    inter = iou * union / (1.0 + iou)  # IoU = I / (A + B - I)
    return inter >= DUP_IOS * smaller


def _rehistogram(detector: Detector, image: np.ndarray, dets: Detections) -> np.ndarray:
    """Embeddings of tile-made instances with their colour histogram part measured on the
    whole frame (what an instance of the whole-frame pass has), the box-head part kept."""
    detector = innermost(detector)
    emb = dets.embeddings
    histogram = getattr(detector, "_histogram", None)  # Mask R-CNN, any engine: fused
    if histogram is not None:
        head = emb.shape[1] - histogram.dim
        if head <= 0:
            return histogram.embed(image, dets)
        part = emb[:, :head]
        part = part / np.maximum(np.linalg.norm(part, axis=1, keepdims=True), 1e-9)
        both = np.concatenate([part, histogram.embed(image, dets)], axis=1)  # as ``fuse``
        return both / np.maximum(np.linalg.norm(both, axis=1, keepdims=True), 1e-9)
    embedder = getattr(detector, "embedder", None)  # YOLO-seg: a histogram only
    if embedder is not None and getattr(embedder, "dim", -1) == emb.shape[1]:
        return embedder.embed(image, dets)
    return emb
