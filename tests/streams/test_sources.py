import cv2
import numpy as np
import pytest

from streams.sources import ImageFolderSource, SourceError, VideoFileSource, open_source
from tests.conftest import mjpeg_copy_with_corrupt_frames


def test_video_file_frames_are_ordered_with_timestamps(small_video):
    path, _ = small_video
    src = open_source(str(path))
    frames = list(src)
    assert [f.index for f in frames] == list(range(40))
    assert frames[0].image.shape == (192, 320, 3)
    assert frames[10].timestamp_ms == pytest.approx(400.0)
    assert src.stream_id == "small" and src.stats == {
        "frames": 40,
        "corrupt": 0,
        "truncated": False,
    }


def test_folder_of_frames_natural_order_and_corrupt_files_skipped(tmp_path):
    img = np.full((32, 48, 3), 100, np.uint8)
    for i in (1, 2, 10):
        img[:] = i
        cv2.imwrite(str(tmp_path / f"frame_{i}.png"), img)
    (tmp_path / "frame_3.png").write_bytes(b"\x89PNG garbage")  # corrupt
    (tmp_path / "notes.txt").write_text("not an image")
    src = ImageFolderSource(tmp_path, fps=10)
    frames = list(src)
    assert [int(f.image[0, 0, 0]) for f in frames] == [1, 2, 10]
    assert [f.index for f in frames] == [0, 1, 3]  # the corrupt frame leaves a gap
    assert src.stats["corrupt"] == 1


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: p, "not found"),
        (lambda p: (p.write_bytes(b""), p)[1], r"empty \(0 bytes\)"),
        (
            lambda p: (p.write_text("hello, not a video " * 100), p)[1],
            "cannot be opened|no decodable",
        ),
    ],
)
def test_bad_inputs_raise_one_line_errors_naming_the_path(tmp_path, make, message):
    path = make(tmp_path / "input.mp4")
    with pytest.raises(SourceError, match=message) as info:
        VideoFileSource(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_empty_folder_is_an_error(tmp_path):
    with pytest.raises(SourceError, match="has no images"):
        open_source(str(tmp_path))


def test_truncated_video_is_reported(small_video, tmp_path):
    path, _ = small_video
    # an AVI (MJPEG) keeps its frame count in the header; cut its payload in half
    avi = tmp_path / "clip.avi"
    w = cv2.VideoWriter(str(avi), cv2.VideoWriter_fourcc(*"MJPG"), 25, (320, 192))
    for f in VideoFileSource(path):
        w.write(f.image)
    w.release()
    data = avi.read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: len(data) // 2])
    src = VideoFileSource(cut)
    frames = list(src)
    assert 0 < len(frames) < 40
    assert src.stats["truncated"] is True


def test_corrupt_frames_mid_video_are_skipped_and_the_rest_keeps_its_indices(small_video, tmp_path):
    path, _ = small_video
    clean = [f.image for f in VideoFileSource(path)]
    bad = tmp_path / "bad.avi"
    assert mjpeg_copy_with_corrupt_frames(path, bad, {7, 8, 25}) == 40
    src = VideoFileSource(bad)
    frames = list(src)
    assert [f.index for f in frames] == [i for i in range(40) if i not in (7, 8, 25)]
    # each frame after a gap is the frame of that index (not shifted by the skipped ones)
    for f in frames:
        assert np.abs(f.image.astype(int) - clean[f.index].astype(int)).mean() < 6
    assert src.stats == {"frames": 37, "corrupt": 3, "truncated": False}


def png_header(width: int, height: int) -> bytes:
    """A PNG whose IHDR declares ``width`` x ``height`` (RGB, 8 bit) and whose pixel data is
    a few bytes: what a hostile upload looks like to a header reader."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def _folder(tmp_path, names_sizes):
    for name, (w, h) in names_sizes:
        img = np.full((h, w, 3), 7, np.uint8)
        cv2.imwrite(str(tmp_path / name), img)
    return tmp_path


@pytest.mark.parametrize("where", [0, 3])
def test_an_image_over_max_pixels_is_skipped_from_its_header_not_decoded(tmp_path, where):
    _folder(tmp_path, [(f"f{i}.png", (48, 32)) for i in range(6) if i != where])
    (tmp_path / f"f{where}.png").write_bytes(png_header(20000, 20000))
    src = ImageFolderSource(tmp_path, max_pixels=7680 * 4320)
    frames = list(src)
    assert (src.width, src.height) == (48, 32)
    assert [f.index for f in frames] == [i for i in range(6) if i != where]
    assert src.stats["oversized"] == 1 and src.stats["corrupt"] == 1


def test_a_folder_whose_first_image_has_another_size_keeps_the_frames_after_it(tmp_path):
    """The folder's size is the one most images have: the odd first image is skipped, not
    the five good frames after it."""
    _folder(tmp_path, [("a0.png", (16, 16))] + [(f"a{i}.png", (48, 32)) for i in range(1, 6)])
    src = ImageFolderSource(tmp_path)
    assert [f.index for f in src] == [1, 2, 3, 4, 5]
    assert (src.width, src.height) == (48, 32) and src.stats["corrupt"] == 1


def test_a_folder_of_two_sizes_equally_often_takes_the_first(tmp_path):
    _folder(tmp_path, [("b0.png", (16, 16)), ("b1.png", (48, 32))])
    src = ImageFolderSource(tmp_path)
    assert (src.width, src.height) == (16, 16) and [f.index for f in src] == [0]


def test_a_folder_of_only_oversized_images_is_refused_in_one_line(tmp_path):
    (tmp_path / "x.png").write_bytes(png_header(100000, 100000))
    with pytest.raises(SourceError, match=r"frame.max_pixels") as info:
        open_source(str(tmp_path))
    assert "\n" not in str(info.value) and str(tmp_path) in str(info.value)


def test_a_video_over_max_pixels_is_refused_before_a_frame_is_read(small_video):
    path, _ = small_video
    with pytest.raises(SourceError, match=r"320x192, over frame.max_pixels=1000") as info:
        open_source(str(path), max_pixels=1000)
    assert "\n" not in str(info.value)
    assert len(list(open_source(str(path), max_pixels=320 * 192))) == 40


@pytest.mark.parametrize("ext", [".png", ".jpg", ".bmp", ".tif", ".webp", ".ppm", ".pgm"])
def test_header_size_agrees_with_the_decoder(tmp_path, ext):
    from streams.image_header import header_size

    path = tmp_path / f"i{ext}"
    cv2.imwrite(str(path), np.zeros((37, 53) if ext == ".pgm" else (37, 53, 3), np.uint8))
    assert header_size(path) == (53, 37)
    decoded = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert decoded.shape[:2] == (37, 53)


def test_header_size_of_a_progressive_jpeg_with_exif_and_of_garbage(tmp_path):
    from PIL import Image

    from streams.image_header import header_size

    path = tmp_path / "p.jpg"
    exif = Image.Exif()
    exif[0x010E] = "x" * 5000  # a long APP1 segment before the frame header
    Image.new("RGB", (61, 29)).save(path, progressive=True, exif=exif)
    assert header_size(path) == (61, 29)
    (tmp_path / "g.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 10)
    assert header_size(tmp_path / "g.png") is None
    (tmp_path / "t.jpg").write_bytes(b"\xff\xd8\xff\xe1\x00")
    assert header_size(tmp_path / "t.jpg") is None
