import numpy as np
import pytest

from vis.tracking.association import GATED, combined_cost, cosine_distance, linear_assignment


@pytest.mark.parametrize("shape", [(0, 0), (0, 3), (3, 0)])
def test_linear_assignment_empty(shape):
    m = linear_assignment(np.zeros(shape), 1.0)
    assert m.pairs.shape == (0, 2)
    assert len(m.unmatched_rows) == shape[0] and len(m.unmatched_cols) == shape[1]


def test_linear_assignment_rejects_costly_and_gated_pairs_without_mutating():
    cost = np.array([[0.1, 0.9], [GATED, GATED], [0.8, 0.2]])
    before = cost.copy()
    m = linear_assignment(cost, max_cost=0.5)
    assert sorted(map(tuple, m.pairs.tolist())) == [(0, 0), (2, 1)]
    assert m.unmatched_rows.tolist() == [1] and m.unmatched_cols.tolist() == []
    assert np.array_equal(cost, before)


def test_cosine_distance_and_no_embeddings():
    a = np.array([[1.0, 0.0], [0.0, 1.0]])
    assert np.allclose(cosine_distance(a, a), [[0, 1], [1, 0]])
    assert cosine_distance(np.zeros((2, 0)), np.zeros((3, 0))).shape == (2, 3)


def test_combined_cost_gates_on_iou_embedding_and_class():
    iou = np.array([[0.8, 0.05, 0.9]])
    emb = np.array([[0.1, 0.1, 0.9]])
    same = np.array([[True, True, True]])
    c = combined_cost(iou, emb, same, iou_weight=0.5, min_iou=0.1, max_emb_dist=0.5)
    assert c[0, 0] == pytest.approx(0.5 * 0.2 + 0.5 * 0.1)
    assert c[0, 1] == GATED  # IoU below gate
    assert c[0, 2] == GATED  # appearance too different
    rescue = combined_cost(iou, emb, same, iou_weight=0.5, min_iou=0.1, max_emb_dist=0.5,
                           geometry_ok=np.array([[False, True, False]]))
    assert rescue[0, 1] < GATED
    other_class = combined_cost(iou, emb, ~same, iou_weight=0.5, min_iou=0.1, max_emb_dist=0.5)
    assert (other_class == GATED).all()
