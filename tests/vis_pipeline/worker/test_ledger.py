"""Which offsets of a jobs partition a worker may commit: only past finished jobs."""

from vis_pipeline.worker.ledger import PartitionLedger


def test_commit_waits_for_every_earlier_job():
    ledger = PartitionLedger()
    for offset in (4, 5, 6):
        ledger.take(offset)
    assert ledger.committable() is None
    ledger.finish(6)  # a later job finishing first commits nothing
    assert ledger.committable() is None
    ledger.finish(4)
    assert ledger.committable() == 5  # job 5 still runs: 6 stays uncommitted
    assert ledger.committable() is None  # nothing new
    ledger.finish(5)
    assert ledger.committable() == 7
    assert ledger.running == 0


def test_a_long_running_job_holds_back_the_commit():
    ledger = PartitionLedger()
    ledger.take(0)  # a camera: never finishes
    ledger.take(1)
    ledger.finish(1)
    assert ledger.committable() is None
    assert ledger.running == 1
    assert ledger.first_open() == 0  # a new owner starts over at the camera's record


def test_empty_ledger_and_unknown_offsets():
    ledger = PartitionLedger()
    assert ledger.committable() is None and ledger.first_open() is None
    ledger.finish(3)  # never taken: ignored
    assert ledger.committable() is None
