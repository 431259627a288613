"""ONNX inference engines behind one small interface.

Contract: ``open_session(path, engine=..., threads=...)`` loads an ONNX file into ONNX Runtime
(``onnxruntime``) or OpenVINO (``openvino``) on the CPU and returns a ``Session`` whose
``run({name: array})`` returns the graph's outputs as numpy arrays, in ``output_names``
order. A missing engine package or an unreadable file is an ``EngineError`` with a one-line
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


class EngineError(WeightsError):
    """An inference engine is missing or cannot load a model (a ``WeightsError``, so the CLI
    reports it in one line and exits 2)."""


class Session(abc.ABC):
    """One loaded model. Attributes: ``input_names``, ``output_names``, ``input_shapes``
    (dims are ints or None where dynamic), ``metadata`` (the ONNX file's string props)."""

    input_names: list[str]
    output_names: list[str]
    input_shapes: list[list[int | None]]
    metadata: dict[str, str]

    @abc.abstractmethod
    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        """The graph's outputs for ``feeds``, in ``output_names`` order."""


class OrtSession(Session):
    def __init__(self, path: Path, threads: int) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        # no busy-waiting between calls: the pipeline's other stages share these cores
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
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
    def __init__(self, path: Path, threads: int) -> None:
        import openvino as ov

        core = ov.Core()
        try:
            model = core.read_model(str(path))
            config = {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY"}
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


def _onnx_metadata(path: Path) -> dict[str, str]:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return {p.key: p.value for p in model.metadata_props}


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0][:200] if lines else type(exc).__name__


def open_session(path: str | Path, *, engine: str = "onnxruntime", threads: int = 1) -> Session:
    """Load ``path`` (an ONNX file) into ``engine`` on the CPU with ``threads`` threads."""
    path = Path(path)
    if engine not in ENGINES:
        raise EngineError(f"detector.engine {engine!r} is unknown: use one of {ENGINES}")
    if not path.is_file():
        raise EngineError(f"ONNX model {path} not found: pass an existing .onnx file")
    try:
        __import__(engine)
    except ImportError as exc:
        raise EngineError(
            f"detector.engine {engine} needs the {engine} package: pip install {engine} "
            "(scripts/bootstrap.sh installs it)"
        ) from exc
    return OrtSession(path, threads) if engine == "onnxruntime" else OpenVinoSession(path, threads)


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
