import numpy as np
import pytest

from vis.tracking.association import (
    GATED,
    association_cost,
    cosine_distance,
    geometry_similarity,
    linear_assignment,
    reach_gate,
)


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


def test_association_cost_gates_on_place_appearance_motion_and_class():
    geo = np.array([[0.8, 0.05, 0.9, 0.9]])
    emb = np.array([[0.1, 0.1, 0.9, 0.1]])
    same = np.array([[True, True, True, True]])
    kw = dict(appearance_weight=0.5, min_geometry=0.1, max_emb_dist=0.5)
    c = association_cost(geo, emb, same, **kw)
    assert c[0, 0] == pytest.approx(0.5 * 0.2 + 0.5 * 0.1)
    assert c[0, 1] == GATED  # place below the gate
    assert c[0, 2] == GATED  # appearance too different
    assert c[0, 3] < GATED
    moved = association_cost(geo, emb, same, motion_ok=np.array([[True, True, True, False]]), **kw)
    assert moved[0, 3] == GATED  # outside the motion model's reach
    penalised = association_cost(geo, emb, ~same, class_penalty=0.2, **kw)
    assert penalised[0, 0] == pytest.approx(c[0, 0] + 0.2)
    assert (association_cost(geo, emb, ~same, **kw) == GATED).all()  # None: classes gated
    assert np.array_equal(geo, [[0.8, 0.05, 0.9, 0.9]])  # inputs untouched


def test_geometry_mixes_mask_and_box_iou_with_each_tracks_weight():
    box = np.array([[0.2, 0.0], [0.6, 0.1]])
    mask = np.array([[0.8, 0.4], [0.0, 0.0]])
    g = geometry_similarity(box, mask, np.array([0.5, 0.0]))  # track 2 carries no mask
    assert np.allclose(g, [[0.5, 0.2], [0.6, 0.1]])
    assert np.allclose(geometry_similarity(box, mask, np.array([1.0, 1.0])), mask)
    assert geometry_similarity(np.zeros((0, 3)), np.zeros((0, 3)), np.zeros(0)).shape == (0, 3)


def test_reach_grows_with_time_lost_and_handles_empty_inputs():
    last = np.array([[100.0, 100.0, 120.0, 140.0]])  # 40 px tall, centre (110, 120)
    dets = np.array([[150.0, 100.0, 170.0, 140.0]])  # 50 px to the right
    assert not reach_gate(last, np.array([0.5]), dets, max_speed=1.0)[0, 0]  # reach 40 px
    assert reach_gate(last, np.array([1.0]), dets, max_speed=1.0)[0, 0]  # reach 60 px
    assert reach_gate(np.zeros((0, 4)), np.zeros(0), dets, max_speed=1.0).shape == (0, 1)
