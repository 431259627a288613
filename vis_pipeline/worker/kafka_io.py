"""The Kafka side of the workers: one jobs topic and its two compacted companions.

Contract: ``JobsKafka(bootstrap_servers, jobs_topic, security)`` names the topics
(``<jobs>.status``: job states by job id; ``<jobs>.checkpoints``: tracker state by job id
and stream) and makes clients with the shared connection settings of
``streams/kafka/config.py``. Producers here send each record on its own and wait for it
(acks=all, no linger): state records are few, and a record is written once the call returns.
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Any

from streams.kafka.config import KafkaSecurity, servers

#: the largest checkpoint record (tracker state of a busy stream stays far below it)
MAX_STATE_BYTES = 16 * 1024 * 1024


@dataclasses.dataclass(frozen=True)
class JobsKafka:
    """Where the jobs, their states and their checkpoints live.

    Attributes:
        bootstrap_servers: ``host:port[,host:port]``.
        jobs_topic: the job records (several partitions: the parallelism limit).
        security: connection security (shared with the Kafka sink's settings).
        client_id: Kafka client id prefix.
    """

    bootstrap_servers: str
    jobs_topic: str = "vis.jobs"
    security: KafkaSecurity = dataclasses.field(default_factory=KafkaSecurity)
    client_id: str = "vis-worker"

    @property
    def status_topic(self) -> str:
        return f"{self.jobs_topic}.status"

    @property
    def checkpoints_topic(self) -> str:
        return f"{self.jobs_topic}.checkpoints"

    def client_kwargs(self) -> dict[str, Any]:
        return {
            "bootstrap_servers": servers(self.bootstrap_servers),
            "client_id": self.client_id,
            **self.security.client_kwargs(),
        }

    def producer(self) -> Any:
        """A producer for job and state records (acks=all, zstd, one record per request)."""
        from kafka import KafkaProducer

        return KafkaProducer(
            acks="all",
            linger_ms=0,
            compression_type="zstd",
            max_request_size=MAX_STATE_BYTES,
            request_timeout_ms=30000,
            bootstrap_timeout_ms=10000,
            **self.client_kwargs(),
        )

    def consumer(self, **kwargs: Any) -> Any:
        """A consumer without a group unless ``group_id`` is given; offsets never auto-committed."""
        from kafka import KafkaConsumer

        return KafkaConsumer(
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_partition_fetch_bytes=MAX_STATE_BYTES,
            fetch_max_bytes=4 * MAX_STATE_BYTES,
            bootstrap_timeout_ms=10000,
            **{**self.client_kwargs(), **kwargs},
        )

    def ensure_topics(self, partitions: int, replication: int = 1) -> None:
        """Create missing topics: the jobs topic with ``partitions``, the status and
        checkpoint topics compacted (``cleanup.policy=compact``) with as many; each with
        ``replication`` replicas (use 3 on a production cluster)."""
        from kafka.admin import KafkaAdminClient, NewTopic
        from kafka.errors import TopicAlreadyExistsError

        admin = KafkaAdminClient(request_timeout_ms=10000, **self.client_kwargs())
        compact = {"cleanup.policy": "compact"}
        try:
            for name, configs in (
                (self.jobs_topic, {}),
                (self.status_topic, compact),
                (self.checkpoints_topic, compact),
            ):
                with contextlib.suppress(TopicAlreadyExistsError):
                    admin.create_topics(
                        [NewTopic(name, partitions, replication, topic_configs=configs)]
                    )
        finally:
            admin.close()
