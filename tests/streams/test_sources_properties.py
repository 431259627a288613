"""Property-based: image headers and folders of hostile files (sizes declared up to 2^32)
are read from their headers, within frame.max_pixels, in bounded memory."""

from hypothesis import given, settings
from hypothesis import strategies as st

from devtools.hostile import (
    address_space_limit,
    check_image_folder,
    check_image_header,
    image_files,
)

from tests.mutations import PROPERTY_SETTINGS

PROFILE = settings(PROPERTY_SETTINGS)


@PROFILE
@given(image_files())
def test_header_size_reads_any_header_without_raising(file):
    with address_space_limit():
        check_image_header(*file)


@PROFILE
@given(st.lists(image_files(), min_size=1, max_size=6))
def test_a_folder_of_hostile_images_yields_frames_of_one_size_or_one_line(files):
    with address_space_limit():
        check_image_folder(files)
