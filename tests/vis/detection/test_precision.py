"""``detector.precision``: a decision of the configuration, passed to every engine, reported as
the engine really ran it; the CPU's features named for the summary."""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pytest
import torch

from vis.config import ConfigError, from_mapping
from vis.detection.engines import EngineError, open_session
from vis.detection.factory import DetectorConfig
from vis.detection.precision import (
    autocast_dtype,
    cpu_features,
    float_part,
    parse_cpuinfo,
    pin_torch_f32,
    torch_autocast,
)

EPYC = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 7B13
flags\t\t: fpu sse sse2 avx f16c fma avx2 bmi2 sha_ni
processor\t: 1
model name\t: AMD EPYC 7B13
flags\t\t: fpu sse sse2 avx f16c fma avx2 bmi2 sha_ni
"""
XEON = """processor\t: 0
model name\t: Intel(R) Xeon(R) Processor
flags\t\t: fpu avx2 avx512f avx512bw avx_vnni avx512_bf16 avx512_vnni amx_bf16 amx_tile amx_int8
"""


@pytest.mark.parametrize(
    ("text", "model", "names", "bf16"),
    [
        (EPYC, "AMD EPYC 7B13", ["AVX2"], False),
        (XEON, "Intel(R) Xeon(R) Processor", ["AVX2", "AVX-512", "VNNI", "BF16", "AMX"], True),
        ("", None, [], False),  # no /proc/cpuinfo text: a name, no features
    ],
)
def test_cpu_features_from_cpuinfo(text, model, names, bf16):
    cpu = parse_cpuinfo(text)
    assert cpu.names() == names and cpu.bf16 is bf16
    if model:
        assert cpu.describe() == f"{model} ({' '.join(names)})"
    assert cpu.to_json()["features"] == names


@pytest.mark.parametrize(
    ("cap", "names", "bf16"),
    [
        ("AVX2", ["AVX2"], False),  # the AMD EPYC machines' kernels, on this Xeon
        ("avx512_core", ["AVX2", "AVX-512"], False),
        ("AVX512_CORE_BF16", ["AVX2", "AVX-512", "VNNI", "BF16"], True),
        ("ALL", ["AVX2", "AVX-512", "VNNI", "BF16", "AMX"], True),
        (None, ["AVX2", "AVX-512", "VNNI", "BF16", "AMX"], True),
    ],
)
def test_an_isa_cap_takes_the_features_it_hides_from_the_kernels(cap, names, bf16):
    """``ONEDNN_MAX_CPU_ISA`` caps what oneDNN (eager torch's and OpenVINO's kernels) may use;
    the features the precision decisions read must be the capped ones, or a Xeon capped to
    AVX2 would ask OpenVINO for a bf16 it can no longer compile."""
    cpu = parse_cpuinfo(XEON).capped(cap)
    assert cpu.names() == names and cpu.bf16 is bf16
    assert cpu.to_json()["isa_cap"] == (cap.upper() if cap else None)
    assert ("capped by ONEDNN_MAX_CPU_ISA" in cpu.describe()) is bool(cap)


def test_this_machines_cpu_is_read():
    cpu = cpu_features()
    assert cpu.model and cpu is cpu_features()  # read once


@pytest.mark.parametrize(("value", "want"), [("f32", "f32"), ("fp32", "f32"), ("bf16", "bf16")])
def test_precision_values_and_the_older_spelling(value, want):
    cfg = from_mapping(DetectorConfig, {"precision": value, "engine": "openvino"}, "detector")
    assert cfg.precision == want and float_part(cfg.precision) == want


def test_default_precision_is_f32_on_every_engine():
    for engine in ("torch", "onnxruntime", "openvino"):
        assert DetectorConfig(engine=engine).precision == "f32"


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        ({"precision": "fp16"}, "detector.precision='fp16' is not one of"),
        ({"precision": "bf16", "engine": "onnxruntime"}, "use detector.engine openvino or torch"),
        ({"precision": "int8", "engine": "torch"}, "int8 needs detector.engine"),
    ],
)
def test_precisions_an_engine_cannot_run_are_refused_at_load(data, needle):
    with pytest.raises(ConfigError, match=needle):
        from_mapping(DetectorConfig, data, "detector")


def test_torch_f32_is_pinned_whatever_was_set_before():
    torch.backends.mkldnn.conv.fp32_precision = "bf16"
    try:
        pin_torch_f32()
        assert torch.backends.mkldnn.conv.fp32_precision == "ieee"
        assert torch.backends.mkldnn.matmul.fp32_precision == "ieee"
    finally:
        pin_torch_f32()


@pytest.fixture(scope="module")
def conv_onnx(tmp_path_factory):
    """A small convolution network exported to ONNX (float32 weights)."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        net = torch.nn.Sequential(
            torch.nn.Conv2d(3, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(16, 8, 3)
        ).eval()
    path = tmp_path_factory.mktemp("onnx") / "conv.onnx"
    with warnings.catch_warnings():  # the TorchScript exporter's deprecation notices
        warnings.simplefilter("ignore")
        torch.onnx.export(
            net, (torch.zeros(1, 3, 32, 32),), str(path), input_names=["x"], dynamo=False
        )
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want = net(x).numpy()
    return path, x.numpy(), want


def test_openvino_runs_what_it_is_told_and_reports_it(conv_onnx):
    path, x, want = conv_onnx
    f32 = open_session(path, engine="openvino", precision="f32")
    assert f32.precision == "f32" and f32.engine == "openvino"
    (got,) = f32.run({"x": x})
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    bf16 = open_session(path, engine="openvino", precision="bf16")
    # the engine's own word: bf16 where the CPU has it, f32 where OpenVINO falls back
    assert bf16.precision == ("bf16" if cpu_features().bf16 else "f32")
    if bf16.precision == "bf16":
        (lossy,) = bf16.run({"x": x})
        assert np.abs(lossy - want).max() > 1e-4  # bf16 really ran: 8 bits of mantissa


def test_onnxruntime_is_float32_and_refuses_bf16(conv_onnx):
    path, x, want = conv_onnx
    sess = open_session(path, engine="onnxruntime", precision="f32")
    assert sess.precision == "f32"
    np.testing.assert_allclose(sess.run({"x": x})[0], want, rtol=1e-4, atol=1e-5)
    with pytest.raises(EngineError, match="bf16.*openvino or torch"):
        open_session(path, engine="onnxruntime", precision="bf16")
    with pytest.raises(EngineError, match="precision 'f16' is unknown"):
        open_session(path, engine="openvino", precision="f16")


def test_the_torch_detector_reports_its_precision(demo_detector):
    assert demo_detector.engine == "torch" and demo_detector.precision == "f32"
    assert torch.backends.mkldnn.conv.fp32_precision == "ieee"


@pytest.mark.parametrize(
    ("precision", "device", "want"),
    [
        ("f32", "cpu", None),
        ("f32", "cuda", None),  # IEEE float32 on CUDA too: the device does not decide
        ("bf16", "cpu", "bfloat16"),
        ("bf16", "cuda", "bfloat16"),
        ("f16", "cuda", "float16"),
    ],
)
@pytest.mark.filterwarnings("ignore:CUDA is not available")  # the context is only built
def test_the_configuration_decides_the_autocast_on_every_device(precision, device, want):
    assert autocast_dtype(precision, device) == want
    context = torch_autocast(precision, device)
    if want is None:
        assert not isinstance(context, torch.autocast)
    else:
        assert context.device == device and context.fast_dtype == getattr(torch, want)


@pytest.mark.parametrize(("precision", "needle"), [("f16", "CUDA half"), ("int8", "not 'int8'")])
def test_eager_torch_refuses_a_precision_it_cannot_run_on_the_device(precision, needle):
    with pytest.raises(ValueError, match=needle):
        autocast_dtype(precision, "cpu")


def test_a_cuda_config_runs_f32_unless_it_asks_for_f16():
    """``fp16: true`` (the old default) once turned every CUDA run to float16."""
    default = DetectorConfig(device="cuda", engine="torch")
    assert autocast_dtype(float_part(default.precision), "cuda") is None
    half = from_mapping(
        DetectorConfig, {"device": "cuda:0", "engine": "torch", "precision": "f16"}, "detector"
    )
    assert autocast_dtype(float_part(half.precision), "cuda") == "float16"


def test_f16_on_the_cpu_is_refused_at_load_in_one_line():
    with pytest.raises(ConfigError, match=r"detector.precision='f16' is CUDA half precision"):
        from_mapping(DetectorConfig, {"precision": "f16", "engine": "torch"}, "detector")


def test_the_torch_detector_refuses_f16_on_the_cpu(demo_detector):
    from vis.detection.detector import MaskRCNNDetector

    with pytest.raises(ValueError, match="CUDA half"):
        MaskRCNNDetector(model=demo_detector.model, labels=demo_detector.labels, precision="f16")


def test_the_deprecated_fp16_key_is_read_with_one_warning_and_changes_nothing(caplog):
    with caplog.at_level(logging.WARNING, logger="vis.config"):
        old = from_mapping(DetectorConfig, {"fp16": True, "device": "cpu"}, "detector")
    assert [r.getMessage() for r in caplog.records] == [
        "detector.fp16 is deprecated and ignored: precision decides (f16: CUDA half)"
    ]
    assert old == DetectorConfig()  # the same settings (and config digest) as no key at all
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="vis.config"):
        from_mapping(DetectorConfig, {"precision": "f32"}, "detector")
    assert caplog.records == []
