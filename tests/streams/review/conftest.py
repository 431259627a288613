"""The review tests share the export tests' scripted run (``story``): tracks 1 (person,
frames 0-9), 2 (car, frames 0-9, absent 4-6) and 5 (person, frames 2-4)."""

from tests.streams.exports.conftest import story  # noqa: F401 - the fixture
