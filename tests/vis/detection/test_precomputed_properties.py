"""Property-based: generated vis.frame JSONL records and det.txt rows (hostile class ids,
boxes, masks, frame sizes, order, garbage lines) give detections within the limits or one
PrecomputedError line, in bounded memory."""

from hypothesis import given, settings
from hypothesis import strategies as st

from devtools.hostile import address_space_limit, check_precomputed, det_txt_files, jsonl_files

from tests.mutations import PROPERTY_SETTINGS

PROFILE = settings(PROPERTY_SETTINGS)


@PROFILE
@given(jsonl_files(), st.booleans())
def test_jsonl_records_keep_the_contract(lines, model_labels):
    with address_space_limit():
        check_precomputed(lines, mot=False, model_labels=model_labels)


@PROFILE
@given(det_txt_files())
def test_det_txt_rows_keep_the_contract(rows):
    with address_space_limit():
        check_precomputed(rows, mot=True, model_labels=False)
