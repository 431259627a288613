"""Hostile inputs through the command line, in a process with bounded address space.

Each row is a small file (or option) built to hurt: an image header declaring 20000x20000
pixels, detections with absurd class ids, boxes and sizes, a 5000-character stream id, an
output under a regular file, a binary config, numbers no machine can run. Every row runs
``vis_pipeline.cli.main`` in one child process (torch is imported once) whose address space
is limited to what a normal run of the same command needs plus 2 GiB, measured by the child
first. Each row must end with its exit code (0 done, 2 bad input), at most one ``error:``
line and no traceback on stderr, a peak resident size under 2 GiB, and an output with
nothing half-written: every JSONL line parses as strict JSON and no temporary file is left.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.conftest import ROOT
from vis_pipeline.inputs import MAX_STREAM_ID, stream_id_problem

GIB = 1 << 30
RSS_LIMIT = 2 * GIB  # no hostile input takes the process above this
W, H, FRAMES = 96, 64, 8  # the good frames of the test folder

# (name, arguments after the common ones, exit codes allowed, a word the error line names).
# ``{d}`` is the folder of the built inputs, ``{out}`` the row's own output folder. A record
# that breaks a limit may be skipped (counted, exit 0) or refuse the whole file (exit 2).
PRE = ["--set", "detector.type=precomputed", "--source", "{d}/frames"]
ROWS: list[tuple[str, list[str], set[int], str | None]] = [
    ("normal run (measures the address space)", [*PRE, "--set", "detector.path={d}/good.jsonl"],
     {0}, None),
    ("20000x20000 PNG first in the folder", ["--set", "detector.type=precomputed",
     "--set", "detector.path={d}/good.jsonl", "--source", "{d}/huge_first"], {0}, None),
    ("20000x20000 PNG in the middle of the folder", ["--set", "detector.type=precomputed",
     "--set", "detector.path={d}/good.jsonl", "--source", "{d}/huge_middle"], {0}, None),
    ("precomputed class_id 2e9", [*PRE, "--set", "detector.path={d}/class_id.jsonl"],
     {0, 2}, "class_id.jsonl"),
    ("precomputed bbox of strings", [*PRE, "--set", "detector.path={d}/bbox_str.jsonl"],
     {0, 2}, "bbox_str.jsonl"),
    ("precomputed NaN boxes", [*PRE, "--set", "detector.path={d}/bbox_nan.jsonl"],
     {0, 2}, "bbox_nan.jsonl"),
    ("precomputed mask declared 100000x100000",
     [*PRE, "--set", "detector.path={d}/mask_huge.jsonl"], {0, 2}, "mask_huge.jsonl"),
    ("precomputed frame declared 100000x100000",
     [*PRE, "--set", "detector.path={d}/frame_huge.jsonl"], {0, 2}, "frame_huge.jsonl"),
    ("precomputed 200000 instances in a frame",
     [*PRE, "--set", "detector.path={d}/crowd.jsonl"], {0, 2}, "crowd.jsonl"),
    ("precomputed negative and huge frame_index",
     [*PRE, "--set", "detector.path={d}/index.jsonl"], {0, 2}, "index.jsonl"),
    ("precomputed frames out of order", [*PRE, "--set", "detector.path={d}/order.jsonl"],
     {2}, "order.jsonl"),
    ("det.txt with NaN", [*PRE, "--set", "detector.path={d}/nan.txt"], {0, 2}, "nan.txt"),
    ("det.txt with inf", [*PRE, "--set", "detector.path={d}/inf.txt"], {0, 2}, "inf.txt"),
    ("det.txt with 1e30", [*PRE, "--set", "detector.path={d}/big.txt"], {0, 2}, "big.txt"),
    ("det.txt box 0,0,60000,60000", [*PRE, "--set", "detector.path={d}/wide.txt"], {0}, None),
    ("5000-character stream id", [*PRE, "--set", "detector.path={d}/good.jsonl",
     "--stream-id", "s" * 5000], {2}, "--stream-id"),
    ("output under a regular file", [*PRE, "--set", "detector.path={d}/good.jsonl",
     "-o", "{d}/a_file/out"], {2}, "--output"),
    ("binary config", [*PRE, "--set", "detector.path={d}/good.jsonl", "-c", "{d}/binary.yaml"],
     {2}, "config"),
    ("fps=.nan", [*PRE, "--set", "detector.path={d}/good.jsonl", "--set", "fps=.nan"],
     {2}, "fps"),
    ("detector.batch_size=100000", ["--set", "detector.batch_size=100000",
     "--source", "{d}/frames"], {2}, "batch_size"),
    ("detector.max_detections=1000000000", ["--set", "detector.max_detections=1000000000",
     "--source", "{d}/frames"], {2}, "max_detections"),
    ("detector.threads=100000", ["--set", "detector.threads=100000", "--source", "{d}/frames"],
     {2}, "threads"),
]  # fmt: skip


def huge_png(width: int, height: int) -> bytes:
    """A valid greyscale PNG of ``width`` x ``height`` zeros: ~1 MB for 20000x20000."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    row = b"\0" * (width + 1)  # filter byte + pixels
    z = zlib.compressobj(9)
    pixels = b"".join(z.compress(row) for _ in range(height)) + z.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


def record(i: int, instances: list, **over) -> dict:
    r = {
        "schema": "vis.frame/2",
        "stream_id": "frames",
        "frame_index": i,
        "timestamp_ms": i * 40.0,
        "keyframe": True,
        "propagated_from": [],
        "width": W,
        "height": H,
        "instances": instances,
    }
    r.update(over)
    return r


def box(i: int, **over) -> dict:
    inst = {"track_id": -1, "class_id": 1, "label": "person", "score": 0.9}
    inst["bbox"] = [10.0 + i, 10.0, 30.0 + i, 40.0]
    inst.update(over)
    return inst


def write_jsonl(path: Path, records: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


def build_inputs(d: Path) -> None:
    frames = d / "frames"
    frames.mkdir()
    for i in range(FRAMES):
        image = np.zeros((H, W, 3), np.uint8)
        cv2.rectangle(image, (10 + i, 10), (30 + i, 40), (200, 100, 50), -1)
        cv2.imwrite(str(frames / f"{i:04d}.png"), image)
    big = huge_png(20000, 20000)
    for name, at in (("huge_first", 0), ("huge_middle", 3)):
        folder = d / name
        folder.mkdir()
        good = sorted(frames.iterdir())[:5]
        names = [f"{k:04d}.png" for k in range(6)]
        for k, target in enumerate(names):
            path = folder / target
            if k == at:
                path.write_bytes(big)
            else:
                path.write_bytes(good.pop(0).read_bytes())
    write_jsonl(d / "good.jsonl", [record(i, [box(i)]) for i in range(FRAMES)])
    write_jsonl(
        d / "class_id.jsonl", [record(i, [box(i, class_id=2_000_000_000)]) for i in range(3)]
    )
    write_jsonl(
        d / "bbox_str.jsonl", [record(i, [box(i, bbox=["10", "10", "30", "40"])]) for i in range(3)]
    )
    (d / "bbox_nan.jsonl").write_text(
        "".join(
            json.dumps(record(i, [box(i, bbox=[float("nan"), 1.0, 30.0, 40.0])])) + "\n"
            for i in range(3)
        )
    )
    mask = {"x": 0, "y": 0, "size": [100000, 100000], "counts": "0"}
    write_jsonl(d / "mask_huge.jsonl", [record(i, [box(i, mask=mask)]) for i in range(3)])
    write_jsonl(
        d / "frame_huge.jsonl",
        [record(i, [box(i)], width=100000, height=100000) for i in range(3)],
    )
    crowd = [box(0, bbox=[k % 80, k % 50, k % 80 + 8.0, k % 50 + 8.0]) for k in range(200_000)]
    write_jsonl(d / "crowd.jsonl", [record(0, crowd), *(record(i, [box(i)]) for i in (1, 2))])
    write_jsonl(d / "index.jsonl", [record(-7, [box(0)]), record(10**30, [box(1)])])
    write_jsonl(d / "order.jsonl", [record(i, [box(i)]) for i in (5, 6, 7, 0, 1, 2, 3, 4)])
    rows = [f"{f},-1,10,10,20,30,0.9,-1,-1,-1" for f in range(1, FRAMES + 1)]
    for name, bad in (("nan", "nan"), ("inf", "inf"), ("big", "1e30")):
        (d / f"{name}.txt").write_text(
            "\n".join([*rows[:2], f"3,-1,{bad},10,20,30,0.9,-1,-1,-1", *rows[3:]]) + "\n"
        )
    (d / "wide.txt").write_text(
        "\n".join([*rows[:2], "3,-1,0,0,60000,60000,0.9,-1,-1,-1", *rows[3:]]) + "\n"
    )
    (d / "a_file").write_text("not a folder\n")
    (d / "binary.yaml").write_bytes(bytes(range(256)) * 8)


# -- the child process ------------------------------------------------------------------------
def _status(key: str) -> int:
    """A ``/proc/self/status`` size, in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(key)


def _run_rows(rows_file: str, results_file: str) -> None:
    """Run each row's command in this process; one JSON result line per row, written as it
    ends (a row that kills the process is the one after the last line)."""
    import resource
    import traceback

    from vis_pipeline.cli import main

    rows = json.loads(Path(rows_file).read_text())
    with open(results_file, "w") as results:
        for k, (name, argv) in enumerate(rows):
            Path("/proc/self/clear_refs").write_text("5")  # restart the peak resident size
            out_path, err_path = Path(results_file + f".{k}.out"), Path(results_file + f".{k}.err")
            sys.stdout.flush()
            sys.stderr.flush()
            saved = os.dup(1), os.dup(2)
            with open(out_path, "w") as out, open(err_path, "w") as err:
                os.dup2(out.fileno(), 1)
                os.dup2(err.fileno(), 2)
                try:
                    code: int | str = main(argv)
                except SystemExit as exc:
                    code = exc.code if isinstance(exc.code, int) else 2
                except BaseException:  # noqa: BLE001 - the row's failure, reported below
                    traceback.print_exc()
                    code = "exception"
                finally:
                    sys.stdout.flush()
                    sys.stderr.flush()
                    os.dup2(saved[0], 1)
                    os.dup2(saved[1], 2)
                    os.close(saved[0])
                    os.close(saved[1])
            peak_rss = _status("VmHWM")
            if k == 0:  # the normal run: what a run needs, plus 2 GiB for any other input
                limit = _status("VmPeak") + RSS_LIMIT
                resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
            result = {
                "name": name,
                "code": code,
                "stderr": err_path.read_text(errors="replace"),
                "peak_rss": peak_rss,
                "address_limit": resource.getrlimit(resource.RLIMIT_AS)[0],
            }
            results.write(json.dumps(result) + "\n")
            results.flush()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict[str, dict]:
    d = tmp_path_factory.mktemp("hostile")
    build_inputs(d)
    rows = []
    for k, (name, extra, _, _) in enumerate(ROWS):
        out = d / f"out{k}"
        argv = ["-c", str(ROOT / "configs/demo.yaml"), "-o", str(out), "--no-progress"]
        argv += ["--set", "sinks.overlay=false", "--set", "sinks.jsonl=true"]
        argv += [a.format(d=d, out=out) for a in extra]
        rows.append((name, argv))
    (d / "rows.json").write_text(json.dumps(rows))
    results = d / "results.jsonl"
    proc = subprocess.run(
        [sys.executable, __file__, str(d / "rows.json"), str(results)],
        cwd=ROOT,
        env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    done = {}
    if results.exists():
        for line in results.read_text().splitlines():
            r = json.loads(line)
            done[r["name"]] = r
    if len(done) < len(ROWS):  # the child died: blame the row it was on
        dead = ROWS[len(done)][0]
        done[dead] = {"name": dead, "code": f"died ({proc.returncode})", "stderr": proc.stderr}
    for k, (name, *_) in enumerate(ROWS):
        if name in done:
            done[name]["out"] = d / f"out{k}"
    return done


def _strict_json(line: str) -> dict:
    def refuse(constant: str) -> None:
        raise ValueError(f"{constant} is not JSON")

    return json.loads(line, parse_constant=refuse)


@pytest.mark.slow
@pytest.mark.parametrize("row", ROWS, ids=[r[0] for r in ROWS])
def test_hostile_input_through_the_cli(corpus, row):
    name, _, codes, names = row
    assert name in corpus, "the child died on an earlier row"
    r = corpus[name]
    err = r["stderr"]
    assert "Traceback" not in err and r["code"] != "exception", err[-2000:]
    assert r["code"] in codes, (r["code"], err[-1000:])
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    if r["code"] == 0:
        assert not errors, errors
    else:
        assert len(errors) == 1 and names.lower() in errors[0].lower(), err[-1000:]
    assert r["peak_rss"] < RSS_LIMIT, f"peak RSS {r['peak_rss'] / GIB:.2f} GiB"
    assert r["address_limit"] > 0  # every row after the first ran under the limit
    out: Path = r["out"]
    if out.is_dir():
        assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]
        for path in out.glob("*.jsonl"):
            text = path.read_text()
            assert not text or text.endswith("\n"), f"{path.name}: a torn last line"
            for line in text.splitlines():
                _strict_json(line)
    if name.startswith("20000x20000"):  # the five good frames of the folder are all there
        lines = next(out.glob("*.jsonl")).read_text().splitlines()
        assert len(lines) == 5, len(lines)


if __name__ == "__main__":
    _run_rows(sys.argv[1], sys.argv[2])


def test_a_stream_id_has_a_limit_a_file_name_can_hold():
    assert stream_id_problem("s" * MAX_STREAM_ID) is None
    assert "--stream-id" in stream_id_problem("s" * (MAX_STREAM_ID + 1))
    assert stream_id_problem("é" * MAX_STREAM_ID) is not None  # 400 bytes as a file name
    longest = f"{'s' * MAX_STREAM_ID}.ckpt-{2**53}.npz.tmp"
    assert len(longest.encode()) <= 255
