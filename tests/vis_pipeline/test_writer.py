"""The writer thread: typed messages reach the sinks in order; a failing sink stops the run
without blocking the processing loop."""

from __future__ import annotations

import errno
import io
import json
import os
import subprocess
import sys
import threading

import cv2
import numpy as np
import pytest

from streams.sinks import JsonlSink, MemorySink, Sink, SinkError
from tests.conftest import ROOT
from tests.streams.test_sinks import result
from vis.schema import json_of
from vis_pipeline.messages import CheckpointMsg, RedrawMsg, ResultMsg, StreamDoneMsg
from vis_pipeline.resume import ResumeStore, encode_state
from vis_pipeline.writer import Writer


class RecordingSink(Sink):
    def __init__(self, log: list, fail_on_write: int | None = None) -> None:
        self.log = log
        self.fail_on_write = fail_on_write
        self.writes = 0

    def write(self, result, image=None):
        self.writes += 1
        if self.writes == self.fail_on_write:
            raise SinkError("disk full")
        self.log.append(("write", result.frame_index, image is not None))

    def end_stream(self, stream_id):
        self.log.append(("end_stream", stream_id))

    def flush(self):
        self.log.append(("flush",))

    def close(self):
        self.log.append(("close",))

    def stats(self):
        return {"writes": self.writes}


def test_messages_reach_every_sink_in_order(tmp_path):
    log: list = []
    memory = MemorySink()
    store = ResumeStore(tmp_path, "d")
    writer = Writer([RecordingSink(log), memory], stop=threading.Event(), queue_size=2, store=store)
    writer.start()
    image = np.zeros((48, 64, 3), np.uint8)
    for i in range(3):
        assert writer.put(ResultMsg(result(i), image))
    writer.put(CheckpointMsg("cam/1", 2, encode_state({"x": np.ones(2)})))
    writer.put(StreamDoneMsg("cam/1", {"frames": 3}))
    writer.put(StreamDoneMsg("other"))  # no summary: the stream gets no finished marker
    writer.finish()
    writer.close_sinks()
    assert log == [
        ("write", 0, True),
        ("write", 1, True),
        ("write", 2, True),
        ("flush",),
        ("end_stream", "cam/1"),
        ("end_stream", "other"),
        ("close",),
    ]
    assert [r.frame_index for r in memory.results] == [0, 1, 2]
    assert memory.ended == ["cam/1", "other"] and memory.closed
    assert store.resume_point("cam/1").complete  # done marker written, checkpoint removed
    assert not store.resume_point("other").complete
    assert not writer.errors and writer.timer.calls["sink"] == 6


def test_a_failing_sink_stops_the_run_and_the_rest_is_drained():
    log: list = []
    stop = threading.Event()
    writer = Writer([RecordingSink(log, fail_on_write=2)], stop=stop, queue_size=1)
    writer.start()
    for i in range(5):  # never blocks: later messages are taken off the queue unhandled
        writer.put(ResultMsg(result(i), None))
    writer.finish()
    assert stop.is_set()
    assert [str(e) for e in writer.errors] == ["disk full"]
    assert log == [("write", 0, False)]
    writer.close_sinks()
    assert log[-1] == ("close",)


def test_put_gives_up_once_the_run_stopped():
    stop = threading.Event()
    writer = Writer([MemorySink()], stop=stop, queue_size=1)  # not started: nobody drains
    assert writer.put(ResultMsg(result(0), None))
    stop.set()
    assert not writer.put(ResultMsg(result(1), None))


def test_redraw_without_an_overlay_is_ignored_and_unknown_messages_fail():
    writer = Writer([MemorySink()], stop=threading.Event(), queue_size=4)
    writer._handle(RedrawMsg("s", np.zeros((4, 4, 3), np.uint8)))
    with pytest.raises(TypeError, match="unknown message"):
        writer._handle(("result", None, None))


class FillingFile(io.FileIO):
    """A real file on a disk that fills after ``room`` bytes: the write that does not fit
    stores what fits, then fails with ENOSPC, as a full file system does."""

    def __init__(self, path, mode, room: int) -> None:
        super().__init__(path, mode)
        self.room = room

    def write(self, data) -> int:
        data = bytes(data)
        if len(data) > self.room:
            if self.room:
                super().write(data[: self.room])
            self.room = 0
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.room -= len(data)
        return super().write(data)


def test_a_full_disk_cuts_back_the_torn_line_and_the_counts_say_what_was_written(tmp_path):
    line_bytes = len(json_of(result(0))) + 1
    room = 3 * line_bytes + line_bytes // 2  # three lines and half of the fourth fit

    def opener(path, append):
        return FillingFile(path, "ab" if append else "wb", room)

    sink = JsonlSink(tmp_path, opener=opener)
    stop = threading.Event()
    writer = Writer([sink], stop=stop, queue_size=8)
    writer.start()
    for i in range(6):
        writer.put(ResultMsg(result(i), None))
    writer.finish()
    writer.close_sinks()
    assert stop.is_set() and "No space left" in str(writer.errors[0])
    text = sink.path_for("cam/1").read_text()
    assert text.endswith("\n")  # nothing half-written
    assert [json.loads(x)["frame_index"] for x in text.splitlines()] == [0, 1, 2]
    assert sink.stats() == {"lines": 3, "failed": 1}
    assert writer.delivered == {"cam/1": 3} and writer.undelivered == {"cam/1": 3}


def test_a_checkpoint_that_does_not_fit_leaves_no_temporary_and_is_a_sink_error(
    tmp_path, monkeypatch
):
    store = ResumeStore(tmp_path, "d")
    store.save("cam/1", 4, encode_state({"x": np.ones(2)}))  # an earlier checkpoint
    real_savez = np.savez

    def savez_on_a_full_disk(fh, **arrays):
        real_savez(fh, **arrays)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(np, "savez", savez_on_a_full_disk)
    stop = threading.Event()
    writer = Writer([MemorySink()], stop=stop, queue_size=2, store=store)
    writer.start()
    writer.put(CheckpointMsg("cam/1", 9, encode_state({"x": np.zeros(3)})))
    writer.finish()
    assert isinstance(writer.errors[0], SinkError) and "checkpoint of cam/1" in str(
        writer.errors[0]
    )
    assert not list(tmp_path.rglob("*.tmp"))
    assert store.resume_point("cam/1").frame_index == 4  # the earlier checkpoint holds


def _cli_in_subprocess(code: str, args: list[str]) -> subprocess.CompletedProcess:
    """``code`` (Python that ends by running the CLI on ``sys.argv[1:]``) run with ``args`` in
    a fresh interpreter from the project root, one thread, at most 5 minutes."""
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        timeout=300,
    )


@pytest.mark.slow
def test_cli_on_a_full_disk_exits_3_and_counts_only_the_lines_written(tmp_path):
    """The whole run in a process whose files may not grow past a limit (RLIMIT_FSIZE, with
    SIGXFSZ ignored so the write fails with EFBIG as on a full disk)."""
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(40):
        image = np.zeros((48, 64, 3), np.uint8)
        image[10:30, 5 + i : 20 + i] = 200
        cv2.imwrite(str(frames / f"{i:04d}.png"), image)
    limit = 4000  # a few lines of vis.frame records
    code = (
        "import resource, signal, sys\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        f"resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))\n"
        "from vis_pipeline.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    out = tmp_path / "out"
    args = ["-c", "configs/demo.yaml", "--source", str(frames), "-o", str(out), "--no-progress"]
    args += ["--set", "sinks.overlay=false", "--set", "checkpoint_every=5"]
    args += ["--summary-json", str(tmp_path / "summary.json")]
    proc = _cli_in_subprocess(code, args)
    assert proc.returncode == 3, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("error: cannot write")
    text = (out / "frames.jsonl").read_text()
    assert text.endswith("\n") and len(text) <= limit
    lines = [json.loads(x) for x in text.splitlines()]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["written_frames"] == len(lines) == summary["sink_stats"]["JsonlSink"]["lines"]
    assert summary["unwritten_frames"] >= 1
    assert summary["sink_stats"]["JsonlSink"]["failed"] == 1
    assert not list(out.rglob("*.tmp"))


@pytest.mark.slow
@pytest.mark.parametrize("case", ["folder_in_the_way", "file_size_limit"])
def test_cli_an_overlay_that_cannot_be_written_exits_3_and_the_jsonl_is_complete(
    small_video, tmp_path, case
):
    """The overlay video cannot be opened (a folder has its name) or is cut short (files may
    not grow past a limit, as on a full disk; OpenCV reports nothing, the file is read
    back): one line naming it and the fix, exit code 3, the video listed as NOT written, and
    every result still in the JSONL."""
    video, _ = small_video  # 40 frames; its JSONL ~43 kB, its overlay ~110 kB
    out = tmp_path / "out"
    overlay = out / "small.overlay.mp4"
    code = "import sys\n"
    if case == "folder_in_the_way":
        overlay.mkdir(parents=True)
    else:
        code += (
            "import resource, signal\n"
            "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
            "resource.setrlimit(resource.RLIMIT_FSIZE, (80000, 80000))\n"
        )
    code += "from vis_pipeline.cli import main\nsys.exit(main(sys.argv[1:]))\n"
    args = ["-c", "configs/demo.yaml", "--source", str(video), "-o", str(out), "--no-progress"]
    args += ["--summary-json", str(tmp_path / "summary.json")]
    proc = _cli_in_subprocess(code, args)
    assert proc.returncode == 3, proc.stderr
    assert "Traceback" not in proc.stderr
    error = proc.stderr.strip().splitlines()[-1]
    assert error.startswith(f"error: cannot write the overlay video {overlay}: "), error
    assert "--restart" in error
    assert ("folder is in the way" if case == "folder_in_the_way" else "of the 40 frames") in error
    lines = [json.loads(x) for x in (out / "small.jsonl").read_text().splitlines()]
    assert [x["frame_index"] for x in lines] == list(range(40))
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["exit_code"] == 3 and summary["failed_outputs"] == [error[len("error: ") :]]
    assert summary["outputs"] == [str(out / "small.jsonl")]  # the video is not listed
    assert summary["written_frames"] == 40 and summary["sink_stats"]["JsonlSink"]["lines"] == 40
    assert f"NOT written: {error[len('error: ') :]}" in proc.stdout
    assert f"wrote {overlay}" not in proc.stdout
