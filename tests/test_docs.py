"""The configuration reference documents every key the code accepts."""

import dataclasses
import re

from tests.conftest import ROOT
from vis_pipeline import PipelineConfig


def keys(cls, prefix=""):
    for f in dataclasses.fields(cls):
        t = f.default if dataclasses.is_dataclass(f.default) else None
        if t is not None:
            yield from keys(type(t), f"{f.name}.")
        else:
            yield prefix, f.name


def test_every_config_key_is_documented():
    doc = (ROOT / "docs" / "configuration.md").read_text()
    sections = {m.group(1): m.start() for m in re.finditer(r"^## `?(\w[\w ]*?)`?$", doc, re.M)}
    missing = []
    for prefix, name in keys(PipelineConfig):
        section = prefix.rstrip(".") or "Top level"
        start = sections.get(section)
        end = min([s for s in sections.values() if start is not None and s > start] or [len(doc)])
        body = doc[start:end] if start is not None else ""
        if f"`{name}`" not in body:
            missing.append(prefix + name)
    assert not missing, f"undocumented config keys: {missing}"
