import socket

import pytest
import torch

from vis.detection.models import WeightsError, build_tiny_maskrcnn, load_model


def test_demo_model_loads_with_its_labels():
    model, labels = load_model(weights="demo")
    assert labels == ["__background__", "disk", "box", "star"]
    assert not model.training
    assert model.transform.min_size == (320,)


def test_missing_checkpoint_names_the_file(tmp_path):
    with pytest.raises(WeightsError, match="not found") as info:
        load_model(weights=str(tmp_path / "nope.pt"))
    assert "nope.pt" in str(info.value)


def test_garbage_checkpoint_is_rejected(tmp_path):
    p = tmp_path / "garbage.pt"
    p.write_bytes(b"not a checkpoint at all")
    with pytest.raises(WeightsError, match="not a readable torch state dict"):
        load_model(weights=str(p))


class Evil:  # anything but tensors and plain containers must not unpickle
    pass


def test_checkpoint_loading_is_weights_only(tmp_path):
    p = tmp_path / "evil.pt"
    torch.save({"model": Evil()}, p)
    with pytest.raises(WeightsError, match="not a readable torch state dict"):
        load_model(weights=str(p))


def test_checkpoint_of_another_architecture_is_a_clear_error(tmp_path):
    p = tmp_path / "tiny5.pt"
    torch.save(build_tiny_maskrcnn(num_classes=5).state_dict(), p)
    with pytest.raises(WeightsError, match="does not fit arch 'resnet50_fpn'"):
        load_model(weights=str(p), arch="resnet50_fpn")
    with pytest.raises(WeightsError, match="does not fit arch 'tiny_fpn' with 3 classes"):
        load_model(weights=str(p), arch="tiny_fpn", num_classes=3)
    model, labels = load_model(weights=str(p), arch="tiny_fpn")  # classes read from the file
    assert len(labels) == 6


def test_coco_weights_absent_offline_says_where_to_put_them(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(socket, "create_connection", offline)  # offline even when online
    old = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path / "hub"))
    try:
        with pytest.raises(WeightsError) as info:
            load_model(weights="coco", arch="resnet50_fpn")
    finally:
        torch.hub.set_dir(old)
    msg = str(info.value)
    assert "maskrcnn_resnet50_fpn_coco" in msg and str(tmp_path / "hub" / "checkpoints") in msg
    with pytest.raises(WeightsError, match="need arch resnet50_fpn"):
        load_model(weights="coco", arch="tiny_fpn")


def test_mobilenet_arch_builds_and_loads_without_any_pretrained_file(tmp_path, monkeypatch):
    import vis_train.pretrained as pretrained
    from vis.detection.architectures import build_arch as _build

    def no_download(*args, **kwargs):
        raise AssertionError("inference must not need the pretrained backbone file")

    monkeypatch.setattr(pretrained, "fetch_wheel", no_download)
    monkeypatch.setattr(pretrained, "mobilenet_v2_imagenet_state", no_download)
    model = _build("mobilenet_v2_fpn", 2, 320, 480)
    p = tmp_path / "mnv2.pt"
    record = {"model": model.state_dict(), "arch": "mobilenet_v2_fpn", "labels": ["person", "car"]}
    torch.save({**record, "min_size": 320, "max_size": 480}, p)
    assert p.stat().st_size <= 30e6  # the shipped-model budget, in fp32
    loaded, labels = load_model(weights=str(p))
    assert labels == ["__background__", "person", "car"]
    assert loaded.transform.min_size == (320,)
    with torch.no_grad():
        out = loaded([torch.rand(3, 200, 260)])[0]
    assert set(out) == {"boxes", "labels", "scores", "masks"}
    assert out["masks"].shape[1:] == (1, 200, 260)
