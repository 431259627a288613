"""Orchestration of the vis pipeline: configuration, streams, threads, resume, summary, CLI.

``vis/`` computes and ``streams/`` does I/O; this package wires them (see
docs/architecture.md). The command line is ``vis_pipeline.cli.main`` (``run_pipeline.py``
and the ``vis-pipeline`` console script); from code, ``run(load_config(...))``.
"""

from vis_pipeline.config import PipelineConfig, load_config
from vis_pipeline.runner import run
from vis_pipeline.summary import RunSummary

__all__ = ["PipelineConfig", "RunSummary", "load_config", "run"]
