"""Many processes (on many machines) as workers of one Kafka consumer group.

One concern per file:

* ``jobs`` — ``Job``: one video file, folder or camera as a ``vis.job/1`` record; ``submit``.
* ``kafka_io`` — ``JobsKafka``: the jobs topic and its two companions (status, checkpoints),
  producer/consumer/admin settings built on ``streams/kafka/config.py``.
* ``table`` — ``TopicTable``: the latest value of every key of a compacted topic.
* ``checkpoints`` — ``KafkaCheckpointStore``: a job's checkpoints and finished markers in the
  compacted checkpoints topic (the ``CheckpointStore`` of ``vis_pipeline/resume.py``).
* ``status`` — job states (queued, running on W, done, failed with reason): publish and list.
* ``ledger`` — which offsets of a partition may be committed (only finished jobs).
* ``job_run`` — one job on its own thread: ``run(cfg)`` with the job's source and overrides.
* ``loop`` — ``Worker``: joins the group, runs the jobs of its partitions, commits, shuts down.
* ``cli`` — ``vis-pipeline submit | worker | jobs``.

See docs/scaling.md.
"""
