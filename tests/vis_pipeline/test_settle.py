"""A stopped run settles: it checkpoints after its last delivered frame, so resuming it
repeats no result and gives the results of an uninterrupted run."""

from __future__ import annotations

import threading

import pytest

from devtools.workers import write_clips
from streams.sinks import MemorySink
from vis_pipeline import load_config, run
from vis_pipeline.resume import ResumeStore, config_digest


class StopAfter(MemorySink):
    """Sets ``stop`` once frame ``n`` was written (as a signal would, mid-run)."""

    def __init__(self, n: int, stop: threading.Event) -> None:
        super().__init__()
        self.n, self.stop = n, stop

    def write(self, result, image=None) -> None:
        super().write(result, image)
        if result.frame_index >= self.n:
            self.stop.set()


def _key(r):
    return (r.frame_index, r.detections.track_ids.tolist(), r.detections.xyxy.round(2).tolist())


@pytest.mark.slow
def test_stopped_run_checkpoints_at_its_last_frame_and_resumes_without_repeats(tmp_path):
    # 90 frames: offline, identity repair writes held frames in bursts (up to its 48-frame
    # window), so a shorter clip could be written whole before the stop lands
    (clip,) = write_clips(tmp_path / "in", 1, 90)
    overrides = [
        "detector.threads=1",
        "keyframes.interval=5",
        "checkpoint_every=50",  # no periodic checkpoint before the stop
        "sinks.jsonl=false",
        "sinks.overlay=false",
    ]
    cfg = load_config("configs/demo.yaml", overrides, sources=[str(clip)], output=str(tmp_path))
    whole = MemorySink()
    assert run(cfg, progress=False, extra_sinks=[whole], restart=True).exit_code == 0

    stop = threading.Event()
    first = StopAfter(12, stop)
    run(cfg, progress=False, stop=stop, extra_sinks=[first], restart=True)
    delivered = [r.frame_index for r in first.results]
    assert delivered == list(range(len(delivered))) and 12 <= delivered[-1] < 89
    saved = ResumeStore(tmp_path, config_digest(cfg)).load("clip0")
    assert saved is not None and saved.frame_index == delivered[-1]

    rest = MemorySink()
    summary = run(cfg, progress=False, extra_sinks=[rest])
    assert summary.exit_code == 0
    assert summary.streams[0]["resumed_after_frame"] == delivered[-1]
    assert [r.frame_index for r in rest.results][0] == delivered[-1] + 1  # nothing repeated
    assert [_key(r) for r in first.results + rest.results] == [_key(r) for r in whole.results]
