"""Which offset of a jobs partition may be committed: only past finished jobs.

Contract: ``PartitionLedger.take(offset)`` records a job taken from the partition,
``finish(offset)`` records that it is over (done or failed for good: never a job that was
stopped to move to another worker); ``committable()`` returns the offset to commit (one past
the last job of the finished prefix), or None when nothing new may be committed. A job that
runs long (a camera) therefore holds back the commit of later jobs of its partition; a
worker taking the partition over skips those later jobs by their finished markers.
"""

from __future__ import annotations


class PartitionLedger:
    def __init__(self) -> None:
        self._open: dict[int, bool] = {}  # offset -> finished
        self._committed: int | None = None

    def take(self, offset: int) -> None:
        self._open[offset] = False

    def finish(self, offset: int) -> None:
        if offset in self._open:
            self._open[offset] = True

    def first_open(self) -> int | None:
        """The first offset taken and not committed (where a new owner must start)."""
        return min(self._open, default=None)

    @property
    def running(self) -> int:
        return sum(not done for done in self._open.values())

    def committable(self) -> int | None:
        """The next offset to commit, or None; committed prefixes are dropped."""
        last = None
        for offset in sorted(self._open):
            if not self._open[offset]:
                break
            last = offset
            del self._open[offset]
        if last is None:
            return None
        self._committed = last + 1
        return self._committed
