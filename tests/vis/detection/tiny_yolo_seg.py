"""A tiny hand-weighted model with the Ultralytics YOLO-seg ONNX layout, built by the tests.

Input ``[1, 3, 64, 64]`` RGB in [0, 1]; 64 anchors on a stride-8 grid (row-major), classes
``red`` and ``green``. Its weights are chosen so its output is known exactly:

* anchor (i, j) has the fixed box centred on its 8x8 cell, 8 pixels wide and high;
* class score = sigmoid(20 * mean over the cell of (own channel - the other two) - 10):
  about 1 on a cell that is pure red (or green), about 0 on grey or partly filled cells;
* mask coefficients are (1, 0, ..., 0) for every anchor, and prototype 0 is
  20 * (max - min colour channel) - 10 at stride 4: +10 on saturated colour, -10 on grey.

So a pure red square covering exactly one grid cell in the letterboxed input is one ``red``
detection with that cell's box and a mask equal to the square.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

SIZE, STRIDE, N_CLASSES = 64, 8, 2
NAMES = "{0: 'red', 1: 'green'}"


class TinyYoloSeg(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.cls = nn.Conv2d(3, N_CLASSES, STRIDE, STRIDE)
        w = torch.zeros(N_CLASSES, 3, STRIDE, STRIDE)
        for c in range(N_CLASSES):
            w[c] = -1.0
            w[c, c] = 1.0
        with torch.no_grad():
            self.cls.weight.copy_(w * 20.0 / (STRIDE * STRIDE))
            self.cls.bias.fill_(-10.0)
        g = SIZE // STRIDE
        ii, jj = torch.meshgrid(torch.arange(g), torch.arange(g), indexing="ij")
        cx = (jj.flatten().float() + 0.5) * STRIDE
        cy = (ii.flatten().float() + 0.5) * STRIDE
        side = torch.full_like(cx, float(STRIDE))
        self.register_buffer("boxes", torch.stack([cx, cy, side, side])[None])
        coef = torch.zeros(1, 32, g * g)
        coef[:, 0] = 1.0
        self.register_buffer("coef", coef)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        scores = torch.sigmoid(self.cls(x)).flatten(2)
        n = x.shape[0]
        out0 = torch.cat([self.boxes.expand(n, -1, -1), scores, self.coef.expand(n, -1, -1)], 1)
        p = F.avg_pool2d(x, 4)
        proto0 = 20.0 * (p.amax(dim=1) - p.amin(dim=1)) - 10.0
        protos = torch.cat([proto0[:, None], torch.zeros_like(p[:, :1]).repeat(1, 31, 1, 1)], 1)
        return out0, protos


def export(path: Path, *, names: str | None = NAMES, dynamic_batch: bool = False) -> Path:
    """Write the tiny model to ``path`` (ONNX, with Ultralytics-style ``names`` metadata;
    batch 1, or any batch with ``dynamic_batch``)."""
    import warnings

    import onnx

    with warnings.catch_warnings():  # the TorchScript exporter's deprecation notices
        warnings.simplefilter("ignore")
        torch.onnx.export(
            TinyYoloSeg().eval(),
            (torch.zeros(1, 3, SIZE, SIZE),),
            str(path),
            dynamo=False,
            opset_version=17,
            input_names=["images"],
            output_names=["output0", "output1"],
            dynamic_axes=(
                {"images": {0: "batch"}, "output0": {0: "batch"}, "output1": {0: "batch"}}
                if dynamic_batch
                else None
            ),
        )
    if names is not None:
        model = onnx.load(str(path))
        onnx.helper.set_model_props(model, {"names": names, "stride": str(STRIDE)})
        onnx.save(model, str(path))
    return path
