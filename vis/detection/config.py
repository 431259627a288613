"""The detector's configuration (``detector:`` in a config file), validated at load.

Kept apart from ``factory.py`` (which builds detectors from it) so that the detectors
themselves can name it without importing the factory.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

from vis.config import require, to_mapping
from vis.detection.models import ARCHS


#: (key, lowest, highest) of the detector's integer keys (null is allowed where the key is
#: optional): beyond them a run allocates more than a machine has (docs/limits.md)
LIMITS = (
    ("max_detections", 1, 1000),
    ("batch_size", 1, 64),
    ("threads", 1, 256),
    ("num_classes", 1, 10000),
    ("min_size", 32, 4096),
    ("max_size", 32, 4096),
    ("rpn_pre_nms_top_n", 1, 10000),
    ("rpn_post_nms_top_n", 1, 10000),
)


#: the largest tile side and the number of TTA passes a configuration may ask for
MAX_TILE_SIZE = 4096
MAX_TTA_PASSES = 8


@dataclasses.dataclass(frozen=True)
class TilesConfig:
    """Tiled inference (``detector.tiles``): the frame cut into overlapping square tiles, each
    run through the model, detections merged across tile borders.

    Attributes:
        size: tile side in pixels, [64, 4096].
        overlap: fraction of ``size`` that neighbouring tiles share, [0, 0.9].
    """

    size: int = 640
    overlap: float = 0.2

    def __post_init__(self) -> None:
        require(
            64 <= self.size <= MAX_TILE_SIZE,
            "detector.tiles.size",
            self.size,
            f"must be in [64, {MAX_TILE_SIZE}]",
        )
        require(
            0.0 <= self.overlap <= 0.9,
            "detector.tiles.overlap",
            self.overlap,
            "must be in [0, 0.9]",
        )


@dataclasses.dataclass(frozen=True)
class TtaConfig:
    """Test-time augmentation (``detector.tta``): the model run once per pass (each scale,
    and each mirrored when ``flip``), the passes' instances merged by weighted box and mask
    fusion, and each instance's disagreement between passes kept as its ``uncertainty``.

    Attributes:
        flip: add a horizontally mirrored pass at every scale.
        scales: image scale factors of the passes, each in [0.25, 4] (1 = the frame as is).
    """

    flip: bool = True
    scales: tuple[float, ...] = (1.0,)

    def __post_init__(self) -> None:
        require(
            len(self.scales) >= 1, "detector.tta.scales", list(self.scales), "must not be empty"
        )
        for s in self.scales:
            require(
                0.25 <= s <= 4.0, "detector.tta.scales", list(self.scales), "must be in [0.25, 4]"
            )
        require(
            len(set(self.scales)) == len(self.scales),
            "detector.tta.scales",
            list(self.scales),
            "must not repeat a scale",
        )
        passes = len(self.scales) * (2 if self.flip else 1)
        require(
            2 <= passes <= MAX_TTA_PASSES,
            "detector.tta",
            {"flip": self.flip, "scales": list(self.scales)},
            f"must make 2 to {MAX_TTA_PASSES} passes (scales x 2 with flip): set flip: true "
            "or list more scales",
        )


@dataclasses.dataclass(frozen=True)
class DetectorConfig:
    """Attributes:
    type: ``maskrcnn`` (run the model on keyframes), ``yolo_seg_onnx`` (an ONNX export with
        the Ultralytics segmentation layout, ``weights`` = the .onnx file) or ``precomputed``
        (read ``path``).
    engine: ``torch`` (eager PyTorch), ``onnxruntime`` or ``openvino`` (``maskrcnn``: the
        model exported to ONNX once, cached beside the checkpoint; ``yolo_seg_onnx`` needs
        one of the two ONNX engines).
    precision: the numeric precision, a decision of the configuration, never an engine's
        or a device's default: ``f32`` (IEEE float32 everywhere, CUDA included: the
        reference), ``bf16`` (torch's autocast, or OpenVINO's bf16 inference; onnxruntime has
        none), ``f16`` (CUDA half: torch's float16 autocast; ``device: cuda`` only) or
        ``int8`` (ONNX engines, ``maskrcnn``: the export statically quantised, see
        ``quantize.py``; the rest in float32). ``fp32`` is read as ``f32``. Passed explicitly
        to every engine.
    calibration_images: ``int8``: a folder of real frames to calibrate activation ranges on.
    rpn_pre_nms_top_n, rpn_post_nms_top_n: RPN proposals per image at test time before /
        after NMS (null = the model's own).
    nms_iou: ``yolo_seg_onnx``: per-class NMS IoU (with ``nms: hard``).
    nms: ``hard`` (the model's own non-maximum suppression) or ``soft`` (the model's NMS run
        loose, then Gaussian Soft-NMS: each instance's score decays by
        ``exp(-IoU^2 / soft_nms_sigma)`` against every higher-scoring instance of its class;
        see ``soft_nms.py``). Not for ``precomputed``.
    soft_nms_sigma: the Gaussian's width, (0, 10]: larger decays overlapping instances more.
    soft_nms_min_score: the score floor after decay, [0, 1] (null = ``score_threshold``).
    tta: test-time augmentation ``{flip, scales}`` (null = off; see ``TtaConfig``).
    tiles: tiled inference ``{size, overlap}`` (null = off; see ``TilesConfig``).
    weights: ``coco``, ``coco_v2``, ``demo``, ``people``, ``people_cars`` or a state-dict
        checkpoint path (``maskrcnn``;
        for ``precomputed`` the model whose box head embeds the given boxes, or null to use
        the colour-histogram embedder). COCO weights come from the torch hub cache or are
        downloaded into it (checksum-checked) when online; see ``models.load_model``.
    arch: Mask R-CNN architecture for ``coco`` and bare checkpoints.
    num_classes / labels: classes of a bare checkpoint.
    score_threshold, max_detections: detection filtering.
    classes: allow-list of labels or class ids (null = all).
    min_size, max_size: model input resize (null = the model's own).
    device: ``cpu`` or ``cuda``.
    fp16: deprecated and ignored (it once turned eager torch to float16 on any CUDA device):
        ``precision`` decides, ``f16`` for CUDA half. Accepted with a warning.
    batch_size: keyframes run through the model in one call when several are pending.
    threads: torch intra-op threads.
    appearance: Re-ID embedding of detections: ``box_head`` (the model's box-head
        representation) or ``fused`` (box head + colour histogram inside the mask).
    path: ``precomputed``: vis.frame JSONL file, or a MOTChallenge ``det.txt`` (``.txt``).
    embedder: ``precomputed``: ``box_head`` (needs ``weights``; honours ``appearance``)
        or ``histogram``.
    """

    type: Literal["maskrcnn", "yolo_seg_onnx", "precomputed"] = "maskrcnn"
    # the fastest engine here that gives the same detections as torch (docs/results.md)
    engine: Literal["torch", "onnxruntime", "openvino"] = "openvino"
    precision: Literal["f32", "bf16", "f16", "int8", "fp32"] = "f32"
    calibration_images: str | None = None
    weights: str | None = "demo"
    arch: str = "resnet50_fpn"
    num_classes: int | None = None
    labels: list[str] | None = None
    score_threshold: float = 0.1
    max_detections: int = 50
    classes: list[str | int] | None = None
    min_size: int | None = None
    max_size: int | None = None
    rpn_pre_nms_top_n: int | None = None
    rpn_post_nms_top_n: int | None = None
    nms_iou: float = 0.7
    nms: Literal["hard", "soft"] = "hard"
    soft_nms_sigma: float = 0.5
    soft_nms_min_score: float | None = None
    tta: TtaConfig | None = None
    tiles: TilesConfig | None = None
    device: str = "cpu"
    # kept (default and all) so that the config digest of earlier output folders still matches
    fp16: bool = dataclasses.field(
        default=True,
        metadata={"deprecated": "is deprecated and ignored: precision decides (f16: CUDA half)"},
    )
    batch_size: int = 1
    threads: int = 2
    appearance: Literal["box_head", "fused"] = "fused"
    path: str | None = None
    embedder: Literal["box_head", "histogram"] = "histogram"

    def __post_init__(self) -> None:
        if self.precision == "fp32":  # the key's older spelling
            object.__setattr__(self, "precision", "f32")
        require(
            self.arch in ARCHS, "detector.arch", self.arch, f"must be one of {', '.join(ARCHS)}"
        )
        require(
            0.0 <= self.score_threshold <= 1.0,
            "detector.score_threshold",
            self.score_threshold,
            "must be in [0, 1]",
        )
        # ranges a machine can run: every detection, batch and thread costs memory up front
        for key, low, high in LIMITS:
            value = getattr(self, key)
            require(
                value is None or low <= value <= high,
                f"detector.{key}",
                value,
                f"must be in [{low}, {high}]",
            )
        require(
            self.device == "cpu" or self.device.startswith("cuda"),
            "detector.device",
            self.device,
            "must be cpu or cuda[:N]",
        )
        require(0.0 < self.nms_iou <= 1.0, "detector.nms_iou", self.nms_iou, "must be in (0, 1]")
        require(
            0.0 < self.soft_nms_sigma <= 10.0,
            "detector.soft_nms_sigma",
            self.soft_nms_sigma,
            "must be in (0, 10]",
        )
        require(
            self.soft_nms_min_score is None or 0.0 <= self.soft_nms_min_score <= 1.0,
            "detector.soft_nms_min_score",
            self.soft_nms_min_score,
            "must be in [0, 1] (or null: detector.score_threshold)",
        )
        if self.type == "precomputed":
            for key, off in (("nms", "hard"), ("tta", None), ("tiles", None)):
                require(
                    getattr(self, key) == off,
                    f"detector.{key}",
                    to_mapping(getattr(self, key)),
                    "runs a model: remove it for type precomputed (detections read from a file)",
                )
        require(
            self.engine == "torch" or self.device == "cpu" or self.type == "precomputed",
            "detector.engine",
            self.engine,
            "runs on the CPU: set detector.engine: torch to use detector.device cuda",
        )
        require(
            self.precision != "f16" or self.device.startswith("cuda"),
            "detector.precision",
            self.precision,
            "is CUDA half precision: use f32 or bf16 on the CPU (or detector.device cuda)",
        )
        require(
            self.precision != "int8" or self.engine != "torch",
            "detector.precision",
            self.precision,
            "int8 needs detector.engine onnxruntime or openvino",
        )
        require(
            self.precision != "int8" or bool(self.calibration_images),
            "detector.precision",
            self.precision,
            "needs detector.calibration_images (a folder of real frames like the camera's)",
        )
        require(
            self.precision != "bf16" or self.engine != "onnxruntime",
            "detector.precision",
            self.precision,
            "is not available in onnxruntime's CPU engine: use detector.engine openvino or "
            "torch for bf16",
        )
        if self.type == "yolo_seg_onnx":
            require(
                self.tta is None or max(self.tta.scales) <= 1.0,
                "detector.tta.scales",
                None if self.tta is None else list(self.tta.scales),
                "must be at most 1 for type yolo_seg_onnx (its input size is fixed)",
            )
            require(
                self.engine != "torch",
                "detector.engine",
                self.engine,
                "must be onnxruntime or openvino for type yolo_seg_onnx",
            )
            require(
                bool(self.weights) and str(self.weights).endswith(".onnx"),
                "detector.weights",
                self.weights,
                "must be the path of an .onnx file for type yolo_seg_onnx",
            )
        elif self.type == "maskrcnn":
            require(
                bool(self.weights),
                "detector.weights",
                self.weights,
                "is required for type maskrcnn (coco, coco_v2, demo, people, people_cars or a "
                "checkpoint path)",
            )
        else:
            require(
                bool(self.path),
                "detector.path",
                self.path,
                "is required for type precomputed (a vis.frame JSONL file or a "
                "MOTChallenge det.txt)",
            )
            require(
                self.embedder == "histogram" or bool(self.weights),
                "detector.embedder",
                self.embedder,
                "needs detector.weights (or use histogram)",
            )
