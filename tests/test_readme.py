"""The README's Python example runs as written, from the repository root, and tracks the
bundled sample: a line of track ids for every frame, the same objects under the same ids."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_FRAMES = 150  # data/sample/sample.mp4


def readme_python() -> str:
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert len(blocks) == 1, "the README has one Python example"
    return blocks[0]


def test_the_example_uses_the_public_face_of_the_library():
    code = readme_python()
    assert "from vis import" in code
    assert "from vis." not in code  # no reaching into the submodules


@pytest.mark.slow
def test_the_readme_example_prints_track_ids_for_every_frame_and_keeps_them():
    proc = subprocess.run(
        [sys.executable, "-c", readme_python()],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    ids_by_frame: dict[int, list[int]] = {}
    for line in proc.stdout.splitlines():
        index, _, ids = line.partition(" ")
        ids_by_frame[int(index)] = [int(t) for t in re.findall(r"-?\d+", ids)]
    assert sorted(ids_by_frame) == list(range(SAMPLE_FRAMES))
    # every frame after the first keyframe's confirmation shows tracked objects
    assert sum(bool(ids) for ids in ids_by_frame.values()) >= SAMPLE_FRAMES - 5
    assert all(t >= 0 for ids in ids_by_frame.values() for t in ids)
    # identities persist: some id is on at least 100 of the 150 frames
    counts: dict[int, int] = {}
    for ids in ids_by_frame.values():
        for t in ids:
            counts[t] = counts.get(t, 0) + 1
    assert max(counts.values()) >= 100
