"""expand_inputs: globs, folders of videos or images, live URIs, unique stream ids."""

from __future__ import annotations

import pytest

from vis.config import ConfigError
from vis_pipeline import load_config
from vis_pipeline.inputs import StreamInput, expand_inputs


def expand(*sources, **cli):
    return expand_inputs(load_config(None, sources=[str(s) for s in sources], **cli))


def test_no_source_is_a_config_error():
    with pytest.raises(ConfigError, match="source is not set"):
        expand_inputs(load_config(None))


def test_folder_of_videos_is_one_stream_each_and_image_folder_is_one(tmp_path):
    videos = tmp_path / "videos"
    videos.mkdir()
    for name in ("b.mp4", "a.MKV", "notes.txt"):
        (videos / name).write_bytes(b"x")
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(3):
        (frames / f"{i}.png").write_bytes(b"x")
    streams, errors = expand(videos, frames)
    assert errors == []
    assert streams == [
        StreamInput(str(videos / "a.MKV"), "a"),
        StreamInput(str(videos / "b.mp4"), "b"),
        StreamInput(str(frames), "frames"),
    ]


def test_globs_missing_paths_live_uris_and_repeated_ids(tmp_path):
    for d in ("x", "y"):
        (tmp_path / d).mkdir()
        (tmp_path / d / "cam.mp4").write_bytes(b"x")
    streams, errors = expand(
        tmp_path / "*" / "cam.mp4",
        tmp_path / "none*.mp4",
        tmp_path / "missing.mp4",
        "rtsp://host:554/live/cam1",
        "0",
    )
    assert errors == [
        f"no file matches {tmp_path / 'none*.mp4'}: check the pattern (quote it in the shell)"
    ]
    assert [s.stream_id for s in streams] == ["cam", "cam-2", "missing", "host_554_live_cam1", "0"]
    assert streams[2].uri == str(tmp_path / "missing.mp4")  # opening it reports the error


def test_configured_stream_id_is_kept(tmp_path):
    (tmp_path / "v.mp4").write_bytes(b"x")
    cfg = load_config(None, source=str(tmp_path / "v.mp4"), stream_id="front door")
    assert expand_inputs(cfg) == ([StreamInput(str(tmp_path / "v.mp4"), "front door")], [])
