"""Pinned quality on real video with mask ground truth: DAVIS 2016's one-person sequences
(``lucia``, ``dance-twirl`` in ``../shared/data/davis2016``) through ``configs/street.yaml``
with the shipped ``people_cars`` model: J of the one track following the person, and the ids
it was handed between. The figures: ``tests/data/expected_scores.json``. Skips, in one
line, without the shared data."""

import pytest

from tests.quality.cases import DAVIS_INTERVALS, MEASURE, check
from vis_eval import davis

pytestmark = pytest.mark.slow

missing = davis.available(davis.DATA, davis.PEOPLE)
if missing:
    pytest.skip(f"DAVIS quality pins skipped: {missing}", allow_module_level=True)


@pytest.mark.parametrize("interval", DAVIS_INTERVALS)
def test_davis_people_j_and_ids(interval):
    check(f"davis_people_N{interval}", MEASURE[f"davis_people_N{interval}"]())
