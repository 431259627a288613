import numpy as np
import pytest

from vis.types import Detections


def make(n, h=8, w=10):
    return Detections(
        xyxy=np.zeros((n, 4)),
        masks=np.zeros((n, h, w), bool),
        scores=np.linspace(0, 1, n),
        class_ids=np.arange(n),
    )


@pytest.mark.parametrize("n", [0, 1, 5])
def test_detections_defaults_and_lengths(n):
    d = make(n)
    assert len(d) == n
    assert d.track_ids.tolist() == [-1] * n
    assert d.embeddings.shape == (n, 0)
    assert d.image_size == (8, 10)


def test_detections_boolean_and_integer_indexing():
    d = make(4)
    d.track_ids = np.array([5, 6, 7, 8])
    sub = d[d.scores > 0.5]
    assert sub.track_ids.tolist() == [7, 8]
    assert d[1].track_ids.tolist() == [6]
    assert len(d[np.zeros(4, bool)]) == 0


def test_detections_rejects_mismatched_masks():
    with pytest.raises(ValueError, match="masks must be"):
        Detections(
            xyxy=np.zeros((2, 4)),
            masks=np.zeros((3, 4, 4), bool),
            scores=np.zeros(2),
            class_ids=np.zeros(2),
        )


def test_concatenate_keeps_order_and_handles_empty():
    a, b = make(2), make(3)
    a.track_ids = np.array([1, 2])
    b.track_ids = np.array([3, 4, 5])
    c = Detections.concatenate([a, Detections.empty(8, 10), b], 8, 10)
    assert c.track_ids.tolist() == [1, 2, 3, 4, 5]
    assert len(Detections.concatenate([], 8, 10)) == 0


def test_per_instance_signals_survive_indexing_and_concatenation():
    a, b = make(2), make(1)
    a.mask_confidence, a.agreement = np.array([0.9, 0.8]), np.array([np.nan, 0.5])
    b.mask_confidence, b.agreement = np.array([0.7]), np.array([0.25])
    assert a[1].mask_confidence.tolist() == pytest.approx([0.8])
    assert a[1].agreement.tolist() == [0.5]
    c = Detections.concatenate([a, b], 8, 10)
    assert c.mask_confidence.tolist() == pytest.approx([0.9, 0.8, 0.7])
    assert np.isnan(c.agreement[0]) and c.agreement[1:].tolist() == [0.5, 0.25]
    assert Detections.concatenate([a, make(1)], 8, 10).agreement is None  # not on every part
