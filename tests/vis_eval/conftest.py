"""A tiny two-object MOTS sequence for the harness tests."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import disk_mask
from vis_eval.sequences import Instance, TrackSequence, encode_rles

H, W, N_FRAMES = 48, 96, 20


def tiny_sequence(*, swap_after: int | None = None, shift: int = 0) -> TrackSequence:
    """Disk 1001 moves right along y=14, box-class 2001 moves left along y=34 (no overlap).

    ``swap_after``: from that frame on the two ids are exchanged (an identity swap);
    ``shift``: every mask moved right by that many pixels (imperfect masks).
    """
    seq = TrackSequence(size=(H, W))
    for f in range(N_FRAMES):
        masks = np.stack(
            [disk_mask(H, W, 10 + 3 * f + shift, 14, 7), disk_mask(H, W, 86 - 3 * f + shift, 34, 7)]
        )
        ids = [1001, 2001]
        if swap_after is not None and f >= swap_after:
            ids = ids[::-1]
        seq.frames[f] = [Instance(t, t // 1000, 0.9, r) for t, r in zip(ids, encode_rles(masks))]
    seq.n_records = N_FRAMES
    return seq


@pytest.fixture
def tiny_gt() -> TrackSequence:
    return tiny_sequence()
