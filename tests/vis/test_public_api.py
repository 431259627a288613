"""``from vis import ...``: the library's public names, imported lazily, and its example."""

from __future__ import annotations

import importlib
import subprocess
import sys
import textwrap

import cv2
import pytest

import vis
from tests.conftest import ROOT, SAMPLE_VIDEO

#: the names the README's Python example imports from ``vis``
README_NAMES = (
    "Frame",
    "Detections",
    "FrameResult",
    "BoxMask",
    "DetectorConfig",
    "TrackerConfig",
    "PropagationConfig",
    "KeyframeConfig",
    "build_detector",
    "StreamProcessor",
    "Tracker",
)


def test_every_public_name_is_the_object_its_module_defines():
    assert set(README_NAMES) <= set(vis.__all__)
    assert sorted(vis.__all__) == sorted(vis._EXPORTS)  # noqa: SLF001 - the table itself
    for name in vis.__all__:
        module = importlib.import_module(vis._EXPORTS[name])  # noqa: SLF001
        assert getattr(vis, name) is getattr(module, name), name
    assert set(vis.__all__) <= set(dir(vis))


def test_from_vis_import_each_name():
    for name in README_NAMES:
        namespace: dict = {}
        exec(f"from vis import {name}", namespace)  # noqa: S102 - the statement a user writes
        assert namespace[name] is getattr(vis, name)


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'Pipeline'"):
        vis.Pipeline  # noqa: B018


@pytest.mark.slow
def test_importing_vis_and_its_torch_free_names_does_not_import_torch():
    """Only the detector factory needs torch; the types, configs, tracker and stream processor
    load without it (a fresh interpreter, as a user's script starts)."""
    light = [n for n in vis.__all__ if n not in ("DetectorConfig", "build_detector")]
    code = textwrap.dedent(
        f"""
        import sys
        import vis
        for name in {light!r}:
            getattr(vis, name)
        print("torch" in sys.modules)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"


def _example() -> str:
    """The code block of ``vis.__doc__``."""
    block = vis.__doc__.split("::\n", 1)[1].split("\n\n``", 1)[0]
    return textwrap.dedent(block)


@pytest.mark.slow
def test_the_module_docstring_example_runs_on_the_sample_video():
    cap = cv2.VideoCapture(str(SAMPLE_VIDEO))
    images = [cap.read()[1] for _ in range(7)]
    cap.release()
    namespace = {"images": images}
    exec(compile(_example(), "vis.__doc__", "exec"), namespace)  # noqa: S102
    result = namespace["result"]
    assert isinstance(result, vis.FrameResult) and result.frame_index == 6
    assert not result.keyframe and len(result.detections) > 0
    assert (result.detections.track_ids >= 1).all()
