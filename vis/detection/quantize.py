"""INT8 post-training static quantisation of an exported Mask R-CNN graph (``precision: int8``).

Contract: ``quantized(fp32_path, calibration=folder)`` returns the path of an INT8 copy of the
graph (``<name>-int8-<key>.onnx`` beside it), made on first use with ONNX Runtime's static
quantiser: per-channel symmetric weights and per-tensor activation ranges (min/max) observed
while running the fp32 graph on up to ``MAX_CALIBRATION_IMAGES`` images of the folder, in QDQ
form, so that both ONNX Runtime and OpenVINO run it. Only the backbone's and the FPN's
convolutions are quantised: on the shipped people model, quantising the RPN and RoI heads
as well cost another point of mask AP for no measurable speed (bench/results/engines.md);
proposals, NMS, RoIAlign and the mask probabilities stay float. (Percentile and entropy
calibration fail on this graph: its RoI tensors change shape from image to image.)
The key covers the calibration images' names and sizes: new images make a new copy.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from pathlib import Path

import cv2
import numpy as np

from vis.detection.engines import EngineError
from vis.detection.onnx_export import resized_size

log = logging.getLogger(__name__)

MAX_CALIBRATION_IMAGES = 32
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


def calibration_files(folder: str | Path | None) -> list[Path]:
    """Up to ``MAX_CALIBRATION_IMAGES`` image files of ``folder``, evenly spread by name."""
    if not folder:
        raise EngineError(
            "detector.precision int8 needs detector.calibration_images: a folder of real "
            "frames like the ones the camera sees (32 are used)"
        )
    folder = Path(folder).expanduser()
    files = (
        sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        if folder.is_dir()
        else []
    )
    if not files:
        raise EngineError(
            f"detector.calibration_images {folder} holds no .jpg/.png images: point it at a "
            "folder of real frames"
        )
    step = max(len(files) // MAX_CALIBRATION_IMAGES, 1)
    return files[::step][:MAX_CALIBRATION_IMAGES]


class _Reader:
    """ONNX Runtime ``CalibrationDataReader``: one feed per calibration image."""

    def __init__(self, files: list[Path], sizes: tuple[int, int], batch: int) -> None:
        self._files = iter(files)
        self._sizes = sizes
        self._batch = batch

    def get_next(self) -> dict | None:
        path = next(self._files, None)
        if path is None:
            return None
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            return self.get_next()
        x = bgr[:, :, ::-1].transpose(2, 0, 1)[None].astype(np.float32) / 255.0
        rh, rw = resized_size(bgr.shape[:2], *self._sizes)
        return {
            "images": np.repeat(x, self._batch, axis=0),
            "resized": np.zeros((0, rh, rw), np.uint8),
        }

    def rewind(self) -> None:  # pragma: no cover - not used by the MinMax calibrator
        pass


def quantized(
    fp32_path: Path, *, calibration: str | Path | None, sizes: tuple[int, int], batch: int
) -> Path:
    """The INT8 copy of ``fp32_path`` (see the module doc); ``sizes`` = the model's
    (min_size, max_size), ``batch`` = the graph's batch size."""
    files = calibration_files(calibration)
    key = hashlib.sha256(
        "|".join(f"{p.name}:{p.stat().st_size}" for p in files).encode()
    ).hexdigest()[:12]
    out = fp32_path.with_name(f"{fp32_path.stem.removesuffix('-fp32')}-int8-{key}.onnx")
    if out.is_file():
        return out
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    log.info("quantising %s to INT8 on %d calibration images, once", fp32_path.name, len(files))
    fd, tmp = tempfile.mkstemp(suffix=".onnx", dir=out.parent)
    os.close(fd)
    pre = tmp + ".pre.onnx"
    try:
        quant_pre_process(str(fp32_path), pre, skip_symbolic_shape=True)
        import onnx

        heads = [
            n.name
            for n in onnx.load(pre).graph.node
            if n.op_type == "Conv" and ("roi_heads" in n.name or "rpn" in n.name)
        ]
        quantize_static(
            pre,
            tmp,
            _Reader(files, sizes, batch),
            quant_format=QuantFormat.QDQ,
            op_types_to_quantize=["Conv"],
            nodes_to_exclude=heads,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
            extra_options={"ActivationSymmetric": False, "WeightSymmetric": True},
        )
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    finally:
        for leftover in (tmp, pre):
            if os.path.exists(leftover):
                os.unlink(leftover)
    return out
