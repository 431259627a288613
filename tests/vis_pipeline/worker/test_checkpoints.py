"""Checkpoints in the compacted Kafka topic: data only, the latest per job, across workers.

Against the real embedded broker (one for the module, on loopback)."""

from __future__ import annotations

import io
import uuid

import numpy as np
import pytest

from devtools.broker import EmbeddedBroker
from vis_pipeline.resume import ResumeError, encode_state
from vis_pipeline.worker.checkpoints import KafkaCheckpointStore, pack, unpack
from vis_pipeline.worker.kafka_io import JobsKafka
from vis_pipeline.worker.table import TopicTable


@pytest.fixture(scope="module")
def kafka():
    with EmbeddedBroker() as broker:
        k = JobsKafka(broker.bootstrap_servers, f"jobs-{uuid.uuid4().hex[:6]}")
        k.ensure_topics(3)
        yield k


def _sender(kafka: JobsKafka):
    producer = kafka.producer()

    def send(key: str, value: bytes | None) -> None:
        producer.send(kafka.checkpoints_topic, key=key.encode(), value=value).get(timeout=30)

    return send


def test_pack_unpack_keeps_arrays_and_dtypes():
    arrays = {"a0": np.arange(6, dtype=np.float32).reshape(2, 3), "a1": np.array(True)}
    document, back = unpack(pack({"x": [1, None, "s"]}, arrays), "k")
    assert document == {"x": [1, None, "s"]}
    assert back["a0"].dtype == np.float32 and np.array_equal(back["a0"], arrays["a0"])
    assert back["a1"].dtype == bool


def test_unpack_refuses_pickles_and_garbage():
    buf = io.BytesIO()
    np.savez(buf, __document__=np.frombuffer(b"{}", np.uint8), bad=np.array([{"a": 1}], object))
    with pytest.raises(ResumeError, match="k1 is not a checkpoint of this program"):
        unpack(buf.getvalue(), "k1")
    with pytest.raises(ResumeError, match="k2"):
        unpack(b"garbage", "k2")


def test_another_worker_resumes_from_the_latest_checkpoint(kafka):
    send = _sender(kafka)
    mine = KafkaCheckpointStore(TopicTable(kafka, kafka.checkpoints_topic), send, "job1", "d1")
    assert mine.resume_point("cam").frame_index == -1  # nothing yet: a fresh start
    for frame in (9, 19):
        mine.save("cam", frame, encode_state({"frame": frame, "boxes": np.full((2, 4), frame)}))
    mine.save("other", 5, encode_state({"frame": 5}))
    # a worker started later reads the topic from the start: only the latest value counts
    table = TopicTable(kafka, kafka.checkpoints_topic)
    theirs = KafkaCheckpointStore(table, send, "job1", "d1")
    point = theirs.resume_point("cam")
    assert point.frame_index == 19 and not point.complete
    assert point.state["frame"] == 19 and np.array_equal(point.state["boxes"], np.full((2, 4), 19))
    assert theirs.resume_point("other").frame_index == 5
    theirs.mark_done("cam", {"frames": 30})
    assert mine.resume_point("cam").complete  # the first store catches up too
    with pytest.raises(ResumeError, match="different config"):
        KafkaCheckpointStore(table, send, "job1", "another-digest").resume_point("other")


def test_table_keeps_only_the_latest_value_and_drops_tombstones(kafka):
    send = _sender(kafka)
    table = TopicTable(kafka, kafka.checkpoints_topic)
    send("t/a", b"1")
    send("t/a", b"2")
    send("t/b", b"x")
    table.catch_up()
    assert table.get("t/a") == b"2" and table.get("t/b") == b"x"
    send("t/b", None)
    table.catch_up()
    assert table.get("t/b") is None
    table.close()
