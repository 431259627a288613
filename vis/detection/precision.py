"""Numeric precision: what the configuration asks for, what the CPU offers, what ran.

Contract: the precision of a detector is a decision of its configuration
(``detector.precision``: ``f32``, ``bf16``, ``f16`` or ``int8``; default ``f32``) and is
passed explicitly to every engine, on the CPU and on CUDA alike; no library's default is
trusted (OpenVINO's CPU plugin picks bf16 on CPUs with AMX, which changed the street demo's
tracks; cuDNN runs float32 convolutions in TF32 unless told). ``cpu_features()`` names the
CPU and the features that decide what a lower precision costs and gains; ``pin_torch_f32()``
fixes eager torch's float32 math to IEEE float32; ``autocast_dtype(precision, device_type)``
decides the autocast dtype and ``torch_autocast(precision, device_type)`` is the context the
torch detector runs its network in.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import platform
from pathlib import Path

PRECISIONS = ("f32", "bf16", "f16", "int8")


#: environment variables that cap the instruction set oneDNN (eager torch's and OpenVINO's
#: CPU kernels) may use, e.g. ``ONEDNN_MAX_CPU_ISA=AVX2`` to run as an AVX2-only CPU would
ISA_CAP_VARS = ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA")

#: per oneDNN ISA cap: the ``/proc/cpuinfo`` flags it takes away (caps not named here, such
#: as ``ALL`` or the AMX ones, take none)
_ISA_CAP_DROPS = {
    **dict.fromkeys(("SSE41", "AVX", "AVX2"), ("avx512", "avx_vnni", "amx")),
    **dict.fromkeys(("AVX2_VNNI", "AVX2_VNNI_2"), ("avx512", "amx")),
    "AVX512_CORE": ("avx512_vnni", "avx512_bf16", "avx_vnni", "amx"),
    "AVX512_CORE_VNNI": ("avx512_bf16", "amx"),
    **dict.fromkeys(("AVX512_CORE_BF16", "AVX512_CORE_FP16", "AVX10_1_512"), ("amx",)),
}


@dataclasses.dataclass(frozen=True)
class CpuFeatures:
    """The CPU's model name and its feature flags (``/proc/cpuinfo`` names), less those an
    ISA cap (``cap``, the value of ``ONEDNN_MAX_CPU_ISA``) takes away."""

    model: str
    flags: frozenset[str]
    cap: str | None = None

    def capped(self, cap: str | None) -> CpuFeatures:
        """These features as the kernels see them under the oneDNN ISA cap ``cap``."""
        if not cap:
            return self
        drops = _ISA_CAP_DROPS.get(cap.strip().upper(), ())
        flags = frozenset(f for f in self.flags if not f.startswith(drops))
        return CpuFeatures(model=self.model, flags=flags, cap=cap.strip().upper())

    @property
    def avx2(self) -> bool:
        return "avx2" in self.flags

    @property
    def avx512(self) -> bool:
        return "avx512f" in self.flags

    @property
    def vnni(self) -> bool:
        """INT8 dot products (AVX-512 VNNI or AVX-VNNI)."""
        return bool({"avx512_vnni", "avx_vnni"} & self.flags)

    @property
    def bf16(self) -> bool:
        """bf16 arithmetic in hardware (AVX-512 BF16 or AMX); without it bf16 is emulated."""
        return bool({"avx512_bf16", "amx_bf16"} & self.flags)

    @property
    def amx(self) -> bool:
        return bool({"amx_bf16", "amx_int8", "amx_tile"} & self.flags)

    def names(self) -> list[str]:
        """The features that matter for the detector's precision, in a fixed order."""
        table = [
            ("AVX2", self.avx2),
            ("AVX-512", self.avx512),
            ("VNNI", self.vnni),
            ("BF16", "avx512_bf16" in self.flags),
            ("AMX", self.amx),
        ]
        return [name for name, present in table if present]

    def describe(self) -> str:
        """E.g. ``Intel(R) Xeon(R) Processor (AVX2 AVX-512 VNNI BF16 AMX)``, or with a cap
        ``Intel(R) Xeon(R) Processor (AVX2; capped by ONEDNN_MAX_CPU_ISA=AVX2)``."""
        return f"{self.model} ({feature_text(self.names(), self.cap)})"

    def to_json(self) -> dict:
        return {"model": self.model, "features": self.names(), "isa_cap": self.cap}


def feature_text(names: list[str], cap: str | None) -> str:
    """``AVX2 AVX-512 ...``, and the ISA cap when there is one: how a CPU's features are
    written in the run summary and in ``CpuFeatures.describe``."""
    capped = f"; capped by ONEDNN_MAX_CPU_ISA={cap}" if cap else ""
    return f"{' '.join(names) or 'no AVX2'}{capped}"


def parse_cpuinfo(text: str) -> CpuFeatures:
    """``CpuFeatures`` from the text of ``/proc/cpuinfo`` (the first processor's entry)."""
    model, flags = "", frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and not model:
            model = value.strip()
        elif key in ("flags", "Features") and not flags:
            flags = frozenset(value.split())
    return CpuFeatures(model=model or platform.processor() or "unknown CPU", flags=flags)


@functools.cache
def cpu_features() -> CpuFeatures:
    """This machine's CPU as the kernels see it (read once per process): its features, less
    those an ISA cap in the environment (``ISA_CAP_VARS``) takes away."""
    cap = next((os.environ[v] for v in ISA_CAP_VARS if os.environ.get(v)), None)
    try:
        found = parse_cpuinfo(Path("/proc/cpuinfo").read_text())
    except OSError:
        found = CpuFeatures(model=platform.processor() or "unknown CPU", flags=frozenset())
    return found.capped(cap)


def float_part(precision: str) -> str:
    """The precision of a detector's float operations: ``bf16`` for ``bf16``, ``f16`` for
    ``f16`` (CUDA half), else ``f32`` (``int8`` quantises the convolutions; what stays in float
    runs in float32)."""
    return precision if precision in ("bf16", "f16") else "f32"


def pin_torch_f32(device_type: str = "cpu") -> None:
    """Eager torch's float32 convolutions and matrix products in IEEE float32: never TF32 or
    bf16 fast-math, whatever a library or an environment variable set before. On ``cuda`` the
    CUDA matrix products and cuDNN convolutions too (cuDNN's own default is TF32). Process-wide,
    as torch's setting is."""
    import torch

    torch.backends.mkldnn.fp32_precision = "ieee"
    torch.backends.mkldnn.conv.fp32_precision = "ieee"
    torch.backends.mkldnn.matmul.fp32_precision = "ieee"
    if device_type == "cuda":
        torch.backends.cuda.matmul.fp32_precision = "ieee"
        torch.backends.cudnn.conv.fp32_precision = "ieee"


def autocast_dtype(precision: str, device_type: str) -> str | None:
    """The dtype eager torch's network runs in under autocast for ``precision`` on
    ``device_type`` (``cpu`` or ``cuda``), or None for no autocast (``f32``: IEEE float32).

    The configuration decides on CUDA as on the CPU: ``f32`` -> None, ``bf16`` ->
    ``bfloat16``, ``f16`` -> ``float16`` (CUDA only).

    Raises:
        ValueError: ``f16`` on the CPU, or a precision eager torch does not run.
    """
    if precision == "f32":
        return None
    if precision == "bf16":
        return "bfloat16"
    if precision == "f16":
        if device_type != "cuda":
            raise ValueError(
                "precision f16 is CUDA half precision: use f32 or bf16 on the CPU, or device cuda"
            )
        return "float16"
    raise ValueError(f"precision must be f32, bf16 or f16 for eager torch, not {precision!r}")


def torch_autocast(precision: str, device_type: str = "cpu"):
    """The context eager torch runs the network in on ``device_type``: autocast to
    ``autocast_dtype(precision, device_type)``, or nothing for ``f32`` (IEEE float32, see
    ``pin_torch_f32``)."""
    dtype = autocast_dtype(precision, device_type)
    if dtype is None:
        return contextlib.nullcontext()
    import torch

    return torch.autocast(device_type, dtype=getattr(torch, dtype))
