"""One job on a thread of its own: the worker's config, the job's overrides, ``run(cfg)``.

Contract: ``JobRun(job, context).start()`` publishes ``running`` and runs the job with the
worker's config file and overrides, then the job's overrides (only keys of
``JOB_OVERRIDABLE``; a job asking for more fails with the reason), its source and stream id,
checkpointing to the Kafka checkpoints topic. When the thread ends, ``outcome`` is one of
``done`` (every result delivered and acknowledged: the sinks were flushed and closed),
``failed`` (bad input, config or weights: ``reason`` says which; not retried), ``stopped``
(``stop`` was set: the job checkpointed after its last delivered frame and another worker
resumes it) or ``sink`` (a sink could not deliver: the job is not finished, the worker
stops so its partitions move).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from kafka.errors import KafkaError

from streams.sinks import SinkError
from streams.sources import SourceError
from vis.config import ConfigError
from vis.detection.models import WeightsError
from vis.detection.precomputed import PrecomputedError
from vis_pipeline.config import load_config
from vis_pipeline.logs import JOB_ID
from vis_pipeline.resume import ResumeError, config_digest
from vis_pipeline.runner import run
from vis_pipeline.summary import EXIT_OK, EXIT_SINK
from vis_pipeline.worker.checkpoints import KafkaCheckpointStore
from vis_pipeline.worker.jobs import Job, JobError, check_overrides
from vis_pipeline.worker.status import StatusLog
from vis_pipeline.worker.table import TopicTable

if TYPE_CHECKING:
    from vis_pipeline.telemetry import Telemetry

log = logging.getLogger(__name__)
status = logging.getLogger("vis.status")

BAD_INPUT = (ConfigError, SourceError, WeightsError, PrecomputedError, ResumeError, JobError)


@dataclasses.dataclass(frozen=True)
class JobContext:
    """What the worker's jobs share.

    Attributes:
        config_path: the worker's YAML config (None: defaults).
        overrides: the worker's ``--set`` overrides (the job's come after them).
        checkpoints: the checkpoints topic, mirrored.
        send_checkpoint: writes a checkpoint record, returns once acknowledged.
        status: publishes job states.
        telemetry: the worker's metrics and health, shared by its jobs (None: off).
    """

    config_path: str | None
    overrides: tuple[str, ...]
    checkpoints: TopicTable
    send_checkpoint: Callable[[str, bytes], None]
    status: StatusLog
    telemetry: Telemetry | None = None


class JobRun:
    """A job being processed (see the module docstring).

    Args:
        job: the job.
        context: shared by the worker's jobs.
        partition, offset: where the job record is.
    """

    def __init__(self, job: Job, context: JobContext, partition: int, offset: int) -> None:
        self.job = job
        self.context = context
        self.partition = partition
        self.offset = offset
        self.stop = threading.Event()  # handed to run(), which also sets it when it ends
        self.stopping = threading.Event()  # the worker asked the job to stop
        self.outcome: str | None = None
        self.reason = ""
        self.frames = 0  # processed by this worker (a job resumed from another's checkpoint
        # counts only the frames after it)
        self.last_checkpoint = -1
        self.started = time.monotonic()
        self.checkpoint_at = self.started  # the last checkpoint's time (or the start)
        self.thread = threading.Thread(target=self._run, name=f"job-{job.job_id}", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def request_stop(self) -> None:
        """Stop after the frames in flight; the job checkpoints and ends as ``stopped``."""
        self.stopping.set()
        self.stop.set()

    @property
    def finished(self) -> bool:
        return self.outcome is not None and not self.thread.is_alive()

    def _on_checkpoint(self, _stream_id: str, frame_index: int) -> None:
        self.last_checkpoint = frame_index
        self.checkpoint_at = time.monotonic()
        self.context.status.publish(self.job, "running", frame=frame_index)

    def _run(self) -> None:
        job, ctx = self.job, self.context
        JOB_ID.set(job.job_id)  # this thread's log records (and those of the run's threads)
        status.info(
            "job %s (%s) started t=%.3f: %s",
            job.job_id,
            job.stream_id,
            time.time(),
            job.source,
            extra={"stream_id": job.stream_id, "event": "job_started"},
        )
        try:
            prior = ctx.status.latest(job.job_id)
            if prior is not None and prior.state in ("done", "failed"):
                # finished before, its offset not committed (e.g. a job after it ran long)
                self._end(prior.state, prior.reason, publish=False)
                return
            ctx.status.publish(job, "running")
            check_overrides(job.overrides)  # a job changes processing only (JOB_OVERRIDABLE)
            cfg = load_config(
                ctx.config_path,
                [*ctx.overrides, *job.overrides],
                sources=[job.source],
                stream_id=job.stream_id,
            )
            store = KafkaCheckpointStore(
                ctx.checkpoints,
                ctx.send_checkpoint,
                job.job_id,
                config_digest(cfg),
                on_save=self._on_checkpoint,
            )
            summary = run(cfg, progress=False, stop=self.stop, store=store, telemetry=ctx.telemetry)
            self.frames = summary.frames_this_run
            if summary.exit_code == EXIT_SINK:
                self._end("sink", summary.error or "a sink could not deliver")
            elif self.stopping.is_set():
                self._end("stopped", f"checkpoint after frame {self.last_checkpoint}")
            elif summary.exit_code != EXIT_OK:
                self._end("failed", summary.error or f"exit code {summary.exit_code}")
            else:
                self._end("done")
        except BAD_INPUT as exc:
            self._end("failed", str(exc))
        except (SinkError, TimeoutError, KafkaError) as exc:  # not the job's fault: kept
            self._end("sink", str(exc))
        except Exception as exc:  # noqa: BLE001 - a job must not take the worker down
            log.exception("job %s crashed", job.job_id)
            self._end("failed", f"internal error: {exc!r}")

    def _end(self, outcome: str, reason: str = "", *, publish: bool = True) -> None:
        """Publish the final state (a job whose state cannot be published stays uncommitted:
        ``sink``), log the end line, then set ``outcome`` (the worker acts on it)."""
        job = self.job
        seconds = time.monotonic() - self.started
        if publish and outcome in ("done", "failed", "stopped"):
            try:
                self.context.status.publish(job, outcome, reason=reason, frame=self.last_checkpoint)
            except Exception as exc:  # noqa: BLE001 - the job is re-run (or skipped as done)
                log.warning("job %s: its state could not be published: %s", job.job_id, exc)
                if outcome != "stopped":
                    outcome, reason = "sink", f"status topic: {exc}"
        self.reason = reason
        status.info(
            "job %s (%s) %s t=%.3f after %.1f s, %d frames%s",
            job.job_id,
            job.stream_id,
            outcome,
            time.time(),
            seconds,
            self.frames,
            f": {reason}" if reason else "",
            extra={"stream_id": job.stream_id, "event": f"job_{outcome}"},
        )
        self.outcome = outcome
