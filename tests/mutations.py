"""Hypothesis strategies for hostile JSON: any JSON value, and a valid document with one
value replaced or removed (what a careless or hostile producer writes). Shared by the
property tests of every reader of untrusted input."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

#: modest and deterministic: the same examples on every machine and run
PROPERTY_SETTINGS = settings(
    max_examples=150,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

#: values that broke readers before: huge, negative, non-finite, wrong type, long
SPECIAL = st.sampled_from(
    [
        2_000_000_000,
        -1,
        -7,
        10**400,
        2**63,
        float("nan"),
        float("inf"),
        -float("inf"),
        1e30,
        "x",
        "sideways",
        "../../outside.npz",
        "a" * 5000,
        None,
        True,
        {},
        [],
        [0, 0, 60000, 60000],
        {"__array__": "missing"},
        100000,
    ]
)

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
    | SPECIAL,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


def paths(doc: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path (keys and indices) to a value inside ``doc``, ``()`` included."""
    out = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += paths(v, (*prefix, i))
    return out


def replaced(doc: Any, path: tuple, value: Any, *, remove: bool = False) -> Any:
    """A deep copy of ``doc`` with the value at ``path`` replaced (or removed)."""
    if not path:
        return value
    out = copy.deepcopy(doc)
    cur = out
    for key in path[:-1]:
        cur = cur[key]
    if remove:
        del cur[path[-1]]
    else:
        cur[path[-1]] = value
    return out


@st.composite
def mutated(draw: st.DrawFn, doc: Any, *, keep_keys: bool = False) -> Any:
    """``doc`` with one to three values replaced by any JSON (or removed, unless
    ``keep_keys``)."""
    out = doc
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(paths(out)))
        remove = bool(path) and not keep_keys and draw(st.booleans())
        out = replaced(out, path, None if remove else draw(JSON), remove=remove)
    return out
