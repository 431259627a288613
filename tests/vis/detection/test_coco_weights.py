"""``detector.weights: coco`` / ``coco_v2`` through torchvision's weights API, all offline.

The checkpoints are real: a torchvision Mask R-CNN of the right architecture built without
weights, saved with ``torch.save`` under the official file name in a temporary torch hub dir
(the real cache is never touched). The network is blocked in every test, so nothing here can
download 170 MB even on a machine that is online.
"""

from __future__ import annotations

import shutil
import socket
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch

from vis.detection.factory import DetectorConfig, build_detector
from vis.detection.models import WeightsError, coco_weights_file, load_model
from vis.types import Detections
from vis_pipeline.cli import main

V1_FILE = "maskrcnn_resnet50_fpn_coco-bf2d0c1e.pth"
V2_FILE = "maskrcnn_resnet50_fpn_v2_coco-73cbd019.pth"


@pytest.fixture
def network(monkeypatch) -> list[str]:
    """No network: socket connects, ``urlopen`` and torch hub's download all raise OSError
    (as they do on a machine without one) and are recorded in the returned list."""
    attempts: list[str] = []

    def unreachable(name):
        def fail(*args, **kwargs):
            attempts.append(name)
            raise OSError(101, "Network is unreachable (blocked by the test)")

        return fail

    monkeypatch.setattr(socket.socket, "connect", unreachable("socket.connect"))
    monkeypatch.setattr(socket, "create_connection", unreachable("socket.create_connection"))
    monkeypatch.setattr(urllib.request, "urlopen", unreachable("urllib.request.urlopen"))
    monkeypatch.setattr(torch.hub, "urlopen", unreachable("torch.hub.urlopen"))
    monkeypatch.setattr(
        torch.hub, "download_url_to_file", unreachable("torch.hub.download_url_to_file")
    )
    return attempts


@pytest.fixture
def hub(tmp_path, monkeypatch, network) -> Path:
    """A fresh torch hub dir (the real cache is untouched; restored afterwards), offline.
    Returns its ``checkpoints`` folder (not created)."""
    old = torch.hub.get_dir()
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    torch.hub.set_dir(str(tmp_path / "hub"))
    yield tmp_path / "hub" / "checkpoints"
    torch.hub.set_dir(old)


def _save_random(builder, folder: Path) -> Path:
    """A real state dict of ``builder``'s architecture (random weights, 91 classes)."""
    torch.manual_seed(0)
    path = folder / f"{builder.__name__}.pth"
    torch.save(builder(weights=None, weights_backbone=None).state_dict(), path)
    return path


@pytest.fixture(scope="module")
def r50_checkpoint(tmp_path_factory) -> Path:
    from torchvision.models.detection import maskrcnn_resnet50_fpn

    return _save_random(maskrcnn_resnet50_fpn, tmp_path_factory.mktemp("r50"))


@pytest.fixture(scope="module")
def r50_v2_checkpoint(tmp_path_factory) -> Path:
    from torchvision.models.detection import maskrcnn_resnet50_fpn_v2

    return _save_random(maskrcnn_resnet50_fpn_v2, tmp_path_factory.mktemp("r50v2"))


def _place(src: Path, checkpoints: Path, name: str) -> Path:
    checkpoints.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copyfile(src, checkpoints / name))


def test_hub_path_is_torchvisions_file_name(hub):
    assert coco_weights_file("resnet50_fpn") == hub / V1_FILE
    assert coco_weights_file("resnet50_fpn_v2") == hub / V2_FILE


@pytest.mark.slow
def test_cached_coco_checkpoint_loads_and_runs(hub, network, r50_checkpoint):
    file = _place(r50_checkpoint, hub, V1_FILE)
    det = build_detector(
        DetectorConfig(
            weights="coco",
            arch="resnet50_fpn",
            min_size=240,
            max_size=320,
            score_threshold=0.0,
            max_detections=5,
            threads=2,
            engine="torch",  # the test inspects the torch model itself
        )
    )
    assert det.labels[0] == "__background__" and det.labels[1] == "person" and len(det.labels) == 91
    saved = torch.load(file, weights_only=True)
    loaded = det.model.state_dict()
    assert saved.keys() == loaded.keys()
    assert all(torch.equal(saved[k], loaded[k]) for k in saved)
    assert not det.model.training
    # torchvision's own COCO_V1 model has eps 0 in its frozen backbone norms
    assert {
        m.eps for m in det.model.backbone.body.modules() if isinstance(m, torch.nn.BatchNorm2d)
    } == {0.0}

    image = np.random.default_rng(0).integers(0, 255, (240, 320, 3), dtype=np.uint8)
    [out] = det.detect([image])  # random weights: any detections, the right shapes
    assert isinstance(out, Detections)
    n = len(out.scores)
    assert n <= 5
    assert out.xyxy.shape == (n, 4) and out.full_masks().shape == (n, 240, 320)
    assert out.full_masks().dtype == bool and out.class_ids.shape == (n,)
    assert out.embeddings.shape[0] == n
    assert ((out.class_ids >= 1) & (out.class_ids <= 90)).all()
    det.close()
    assert network == []


@pytest.mark.parametrize(
    "weights, name, checkpoint",
    [
        ("coco", V1_FILE, "r50_checkpoint"),
        pytest.param("coco_v2", V2_FILE, "r50_v2_checkpoint", marks=pytest.mark.slow),
    ],
)
def test_cached_file_is_used_without_any_network_call(
    hub, network, request, weights, name, checkpoint
):
    """Connect, urlopen and torch hub's download all raise: loading from the cache must not
    reach any of them (nor the online probe)."""
    src = request.getfixturevalue(checkpoint)
    _place(src, hub, name)
    model, labels = load_model(weights=weights, min_size=240, max_size=320)
    assert network == []
    assert len(labels) == 91 and labels[1] == "person"
    saved, loaded = torch.load(src, weights_only=True), model.state_dict()
    assert saved.keys() == loaded.keys()
    assert all(torch.equal(saved[k], loaded[k]) for k in saved)


@pytest.mark.parametrize(
    "weights, arch, name",
    [
        ("coco", "resnet50_fpn", V1_FILE),
        ("coco", "resnet50_fpn_v2", V2_FILE),
        ("coco_v2", "resnet50_fpn", V2_FILE),  # coco_v2 names its own arch
    ],
)
def test_absent_and_offline_is_one_line_naming_file_and_place(hub, network, weights, arch, name):
    with pytest.raises(WeightsError) as info:
        load_model(weights=weights, arch=arch)
    msg = str(info.value)
    assert len(msg.splitlines()) == 1
    assert "offline" in msg and f"place it at {hub / name}" in msg
    assert f"https://download.pytorch.org/models/{name}" in msg
    assert not (hub / name).exists()
    assert network == ["socket.create_connection"]  # the probe only; no download attempted


@pytest.mark.parametrize(
    "proxies, target",
    [
        ({}, ("download.pytorch.org", 443)),
        ({"https": "http://proxy.example:3128"}, ("proxy.example", 3128)),  # urllib's route
    ],
)
def test_offline_probe_is_bounded(tmp_path, monkeypatch, proxies, target):
    """Offline detection: one TCP connect with a short timeout, whose failure is reported."""
    calls = []
    monkeypatch.setattr(urllib.request, "getproxies", lambda: proxies)

    def refuse(address, timeout=None, *args):
        calls.append((address, timeout))
        raise TimeoutError("timed out")

    old = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path / "hub"))
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(torch.hub, "download_url_to_file", None)  # must not be reached
    try:
        with pytest.raises(
            WeightsError,
            match=f"offline: {target[0]}:{target[1]} unreachable, TimeoutError: timed out",
        ):
            load_model(weights="coco")
    finally:
        torch.hub.set_dir(old)
    assert calls == [(target, 5.0)]


@pytest.mark.parametrize("weights, name", [("coco", V1_FILE), ("coco_v2", V2_FILE)])
def test_corrupt_cached_file_is_one_line_naming_file_and_fix(hub, r50_checkpoint, weights, name):
    hub.mkdir(parents=True)
    (hub / name).write_bytes(r50_checkpoint.read_bytes()[:1_000_000])  # a cut-off download
    with pytest.raises(WeightsError) as info:
        load_model(weights=weights)
    msg = str(info.value)
    assert len(msg.splitlines()) == 1
    assert f"COCO weights file {hub / name} is corrupt or truncated" in msg
    assert "delete it and run again online to re-download it" in msg
    assert f"place a good copy of https://download.pytorch.org/models/{name}" in msg


def test_cached_file_of_another_architecture_is_one_line(hub, r50_checkpoint):
    """The R50 v1 file under the v2 name: readable, but it does not fit."""
    _place(r50_checkpoint, hub, V2_FILE)
    with pytest.raises(WeightsError) as info:
        load_model(weights="coco_v2")
    msg = str(info.value)
    assert len(msg.splitlines()) == 1
    assert f"{hub / V2_FILE} does not fit arch 'resnet50_fpn_v2'" in msg


def test_failed_checksum_on_download_is_one_line_and_keeps_nothing(
    hub, r50_checkpoint, monkeypatch
):
    """Online, the download goes through torch.hub with torchvision's checksum check: here
    the transport serves our random checkpoint (a local file) instead of the real one, so
    torch.hub's own SHA-256 check rejects it and nothing is left in the cache."""
    import vis.detection.models as models

    monkeypatch.setattr(models, "_offline_reason", lambda url, timeout=5.0: None)
    monkeypatch.setattr(torch.hub, "download_url_to_file", _DOWNLOAD)
    monkeypatch.setattr(torch.hub, "urlopen", lambda req: _real_urlopen(r50_checkpoint.as_uri()))
    with pytest.raises(WeightsError) as info:
        load_model(weights="coco", progress=False)
    msg = str(info.value)
    assert len(msg.splitlines()) == 1
    assert "failed torchvision's checksum check" in msg and 'expected "bf2d0c1e"' in msg
    assert f"place a good copy of https://download.pytorch.org/models/{V1_FILE}" in msg
    assert list(hub.iterdir()) == []  # no file, no .partial left behind


_DOWNLOAD = torch.hub.download_url_to_file  # the real functions, before `network` blocks them
_real_urlopen = urllib.request.urlopen


def test_cli_exits_2_on_corrupt_and_on_missing_coco_weights(hub, tmp_path, capsys):
    args = [
        "--config",
        "configs/demo.yaml",
        "--set",
        "detector.weights=coco",
        "--set",
        "detector.arch=resnet50_fpn",
        "--output",
        str(tmp_path / "out"),
        "--no-progress",
    ]
    code = main(args)
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert f"place it at {hub / V1_FILE}" in err

    hub.mkdir(parents=True)
    (hub / V1_FILE).write_bytes(b"PK\x03\x04 cut off")
    code = main(args)
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert f"{hub / V1_FILE} is corrupt or truncated" in err and "delete it" in err
