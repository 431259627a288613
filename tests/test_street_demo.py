"""The street demo's pieces that run without the footage: its config and its fetch script."""

import os
import subprocess
from pathlib import Path

from tests.conftest import ROOT
from vis.detection.models import SHIPPED_CHECKPOINTS
from vis_pipeline import load_config

FETCH = ROOT / "scripts" / "get_street_video.sh"


def test_street_config_loads_and_uses_the_shipped_person_model():
    cfg = load_config(ROOT / "configs" / "street.yaml")
    assert cfg.detector.weights == "people"
    assert SHIPPED_CHECKPOINTS["people"].is_file()
    assert cfg.detector.classes == ["person"]
    assert cfg.detector.threads == 1
    assert 3 <= cfg.keyframes.interval <= 5
    assert cfg.sinks.jsonl and cfg.sinks.overlay
    assert Path(cfg.source).name == "vtest.avi"


def test_fetch_without_apt_get_fails_with_one_line(tmp_path):
    bash = "/bin/bash" if Path("/bin/bash").exists() else "/usr/bin/bash"
    env = {"HOME": str(tmp_path), "PATH": str(tmp_path / "empty-bin")}  # no apt-get, no dpkg-deb
    r = subprocess.run(
        [bash, str(FETCH), str(tmp_path / "cache")],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert r.returncode != 0
    assert r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert "apt-get" in lines[0] and "vtest.avi" in lines[0] and "opencv-doc" in lines[0]
    assert not (tmp_path / "cache" / "vtest.avi").exists()


def test_fetch_prints_the_cached_file_without_fetching(tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "vtest.avi").write_bytes(b"x")
    r = subprocess.run(
        ["bash", str(FETCH), str(cache)],
        env={**os.environ, "PATH": str(tmp_path / "empty-bin") + ":" + os.environ["PATH"]},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == str(cache / "vtest.avi")
