"""ONNX inference engines behind one small interface.

Contract: ``open_session(path, engine=..., threads=..., precision=...)`` loads an ONNX file
into ONNX Runtime (``onnxruntime``) or OpenVINO (``openvino``) on the CPU and returns a
``Session`` whose ``run({name: array})`` returns the graph's outputs as numpy arrays, in
``output_names`` order, and whose ``precision`` is the float precision the engine reports it
really runs at. The precision (``f32`` or ``bf16``) is always passed to the engine: OpenVINO's
CPU plugin would otherwise pick bf16 by itself on CPUs with AMX. A missing engine package, an
unreadable file or a precision the engine cannot run is an ``EngineError`` with a one-line
message naming it and the fix.
"""

from __future__ import annotations

import abc
import ast
import os
from pathlib import Path

import numpy as np

from vis.detection.models import WeightsError

ENGINES = ("onnxruntime", "openvino")
FLOAT_PRECISIONS = ("f32", "bf16")


class EngineError(WeightsError):
    """An inference engine is missing or cannot load a model (a ``WeightsError``, so the CLI
    reports it in one line and exits 2)."""


class Session(abc.ABC):
    """One loaded model. Attributes: ``input_names``, ``output_names``, ``input_shapes``
    (dims are ints or None where dynamic), ``metadata`` (the ONNX file's string props),
    ``precision`` (the float precision the engine runs the graph's float operations at, as
    it reports it: ``f32`` or ``bf16``), ``engine`` (its name in ``detector.engine``)."""

    engine: str
    precision: str
    input_names: list[str]
    output_names: list[str]
    input_shapes: list[list[int | None]]
    metadata: dict[str, str]

    @abc.abstractmethod
    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        """The graph's outputs for ``feeds``, in ``output_names`` order."""


class OrtSession(Session):
    engine = "onnxruntime"

    def __init__(self, path: Path, threads: int, precision: str = "f32") -> None:
        import onnxruntime as ort

        if precision != "f32":
            raise EngineError(
                f"detector.precision {precision} is not available in onnxruntime's CPU engine "
                "(float32 only on x86): use detector.engine openvino or torch for bf16"
            )
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        # no busy-waiting between calls: the pipeline's other stages share these cores
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        # float32 stated, not assumed: no bf16 fast-math in matrix products (an ARM option
        # today; set so that a build which grows it elsewhere keeps float32)
        opts.add_session_config_entry("mlas.enable_gemm_fastmath_arm64_bfloat16", "0")
        self.precision = "f32"
        try:
            self._sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 - ORT raises its own exception types
            raise EngineError(
                f"onnxruntime cannot load {path} ({_first_line(exc)}): re-export the model"
            ) from exc
        self.input_names = [i.name for i in self._sess.get_inputs()]
        self.output_names = [o.name for o in self._sess.get_outputs()]
        self.input_shapes = [
            [d if isinstance(d, int) else None for d in i.shape] for i in self._sess.get_inputs()
        ]
        self.metadata = dict(self._sess.get_modelmeta().custom_metadata_map)

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        return self._sess.run(None, feeds)


class OpenVinoSession(Session):
    engine = "openvino"

    def __init__(self, path: Path, threads: int, precision: str = "f32") -> None:
        import openvino as ov

        from vis.detection.precision import cpu_features

        if precision == "bf16" and not cpu_features().bf16:
            # decided here, not left to the plugin: a CPU without bf16 (or one capped below
            # it, ONEDNN_MAX_CPU_ISA) runs float32, and the session reports f32
            precision = "f32"
        core = ov.Core()
        try:
            model = core.read_model(str(path))
            config = {
                "INFERENCE_NUM_THREADS": threads,
                "PERFORMANCE_HINT": "LATENCY",
                # the plugin's own default is bf16 on CPUs with AMX: always say which
                "INFERENCE_PRECISION_HINT": precision,
            }
            cache = path.parent / ".openvino-cache"
            if os.access(path.parent, os.W_OK):
                # compiled blobs: later processes skip most of the compile
                config["CACHE_DIR"] = str(cache)
            self._compiled = core.compile_model(model, "CPU", config)
        except Exception as exc:  # noqa: BLE001 - OpenVINO raises RuntimeError subclasses
            raise EngineError(
                f"openvino cannot load {path} ({_first_line(exc)}): re-export the model "
                "or use detector.engine: onnxruntime"
            ) from exc
        self._request = self._compiled.create_infer_request()
        # what the compiled model runs at
        self.precision = _precision_name(self._compiled.get_property("INFERENCE_PRECISION_HINT"))
        self.input_names = [i.get_any_name() for i in model.inputs]
        self.output_names = [o.get_any_name() for o in model.outputs]
        self.input_shapes = [
            [d.get_length() if d.is_static else None for d in i.get_partial_shape()]
            for i in model.inputs
        ]
        self.metadata = _onnx_metadata(path)

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        result = self._request.infer(feeds)
        return [np.asarray(result[o]) for o in self._compiled.outputs]


def _precision_name(value: object) -> str:
    """OpenVINO's element type (``<Type: 'bfloat16'>``, ``f32``...) -> ``f32`` / ``bf16`` / ..."""
    text = str(value).lower()
    for name, keys in (("bf16", ("bf16", "bfloat16")), ("f16", ("f16", "float16"))):
        if any(k in text for k in keys):
            return name
    return "f32" if ("f32" in text or "float32" in text) else text


def engine_default_precision(engine: str) -> str:
    """The precision ``engine`` would pick by itself on this CPU if it were not told (the
    project always tells it); for ``--print-config`` and the docs' tables."""
    if engine == "openvino":
        try:
            import openvino as ov
        except ImportError:
            return "unknown (openvino not installed)"
        return _precision_name(ov.Core().get_property("CPU", "INFERENCE_PRECISION_HINT"))
    return "f32"


def _onnx_metadata(path: Path) -> dict[str, str]:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return {p.key: p.value for p in model.metadata_props}


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0][:200] if lines else type(exc).__name__


def open_session(
    path: str | Path, *, engine: str = "onnxruntime", threads: int = 1, precision: str = "f32"
) -> Session:
    """Load ``path`` (an ONNX file) into ``engine`` on the CPU with ``threads`` threads, its
    float operations at ``precision`` (``f32`` or ``bf16``; an INT8 graph's quantised
    operations stay INT8)."""
    path = Path(path)
    if engine not in ENGINES:
        raise EngineError(f"detector.engine {engine!r} is unknown: use one of {ENGINES}")
    if precision not in FLOAT_PRECISIONS:
        raise EngineError(f"precision {precision!r} is unknown: use one of {FLOAT_PRECISIONS}")
    if not path.is_file():
        raise EngineError(f"ONNX model {path} not found: pass an existing .onnx file")
    try:
        __import__(engine)
    except ImportError as exc:
        raise EngineError(
            f"detector.engine {engine} needs the {engine} package: pip install {engine} "
            "(scripts/bootstrap.sh installs it)"
        ) from exc
    kind = OrtSession if engine == "onnxruntime" else OpenVinoSession
    return kind(path, threads, precision)


def class_names(metadata: dict[str, str]) -> list[str] | None:
    """Class names from an Ultralytics-style ``names`` metadata entry (``"{0: 'person',
    ...}"``), ordered by index; None when absent or unreadable."""
    raw = metadata.get("names")
    if not raw:
        return None
    try:
        names = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        return None
    if isinstance(names, dict):
        return [str(names[k]) for k in sorted(names)]
    if isinstance(names, (list, tuple)):
        return [str(n) for n in names]
    return None
