import numpy as np
import pytest

from vis.tracking import kalman

NOISE = dict(position_noise=0.13, velocity_noise=0.12)


@pytest.mark.parametrize("fps", [7.0, 30.0])
def test_constant_velocity_is_learned_in_seconds_and_extrapolated_over_gaps(fps):
    """A box moving 20 px/s, measured at 7 or 30 fps for 2 s, then 0.5 s unseen: the same
    prediction either way, since the filter works in seconds."""
    kf = kalman.make_box_filter(np.array([0.0, 0.0, 10.0, 20.0]))
    n = int(2 * fps)
    for i in range(1, n + 1):
        kalman.predict(kf, 1 / fps, **NOISE)
        x = 20.0 * i / fps
        kalman.update(kf, np.array([x, 0.0, 10 + x, 20.0]))
    pred = kalman.predict(kf, 0.5, **NOISE)
    assert np.allclose(pred, [50, 0, 60, 20], atol=1.5)
    assert abs(kalman.speed(kf) - 20.0) < 2.0


def test_zero_dt_changes_nothing():
    kf = kalman.make_box_filter(np.array([5.0, 5.0, 15.0, 25.0]))
    assert np.allclose(kalman.predict(kf, 0, **NOISE), [5, 5, 15, 25])


def test_the_motion_gate_widens_while_unseen():
    kf = kalman.make_box_filter(np.array([100.0, 100.0, 120.0, 160.0]))
    for _ in range(10):
        kalman.predict(kf, 0.1, **NOISE)
        kalman.update(kf, np.array([100.0, 100.0, 120.0, 160.0]))
    far = np.array([[200.0, 100.0, 220.0, 160.0]])  # 100 px = 1.7 heights away
    assert kalman.centre_distance2(kf, far)[0] > kalman.GATE_CHI2_2D
    for _ in range(40):  # four seconds unseen
        kalman.predict(kf, 0.1, **NOISE)
    assert kalman.centre_distance2(kf, far)[0] < kalman.GATE_CHI2_2D


def test_one_long_step_predicts_what_many_short_ones_do():
    """A stream gap is one predict of seconds; the frames it replaces would have been many
    short ones. Both must give the same mean and uncertainty (the exact discretisation)."""
    box = np.array([100.0, 100.0, 120.0, 160.0])
    one, many = kalman.make_box_filter(box), kalman.make_box_filter(box)
    for kf in (one, many):  # a learned walk first
        for i in range(1, 15):
            kalman.predict(kf, 1 / 7, **NOISE)
            kalman.update(kf, box + np.array([5.0, 0, 5.0, 0]) * i)
    kalman.predict(one, 3.0, **NOISE)
    for _ in range(90):
        kalman.predict(many, 3.0 / 90, **NOISE)
    assert np.allclose(one.x, many.x)
    assert np.allclose(one.P, many.P, rtol=1e-6)


def test_forgetting_the_velocity_keeps_the_place_and_opens_the_gate():
    kf = kalman.make_box_filter(np.array([100.0, 100.0, 120.0, 160.0]))
    for i in range(1, 15):  # walking right at 35 px/s
        kalman.predict(kf, 1 / 7, **NOISE)
        kalman.update(kf, np.array([100.0 + 5 * i, 100.0, 120.0 + 5 * i, 160.0]))
    kalman.forget_velocity(kf)
    pred = kalman.predict(kf, 3.0, **NOISE)
    assert abs((pred[0] + pred[2]) / 2 - 180.0) < 3  # stays where it was last seen
    turned_back = np.array([[60.0, 100.0, 80.0, 160.0]])  # 110 px back the other way
    assert kalman.centre_distance2(kf, turned_back)[0] < kalman.GATE_CHI2_2D


def test_batched_prediction_equals_filterpy_per_filter():
    """``predict_many`` (the tracker's path) gives each filter what filterpy's own predict
    with F and Q gives it, boxes of different sizes and velocities together."""
    rng = np.random.default_rng(3)
    kfs, ref = [], []
    for _ in range(5):
        x0, y0 = rng.uniform(0, 500, 2)
        box = np.array([x0, y0, x0 + rng.uniform(5, 80), y0 + rng.uniform(10, 200)])
        a, b = kalman.make_box_filter(box), kalman.make_box_filter(box)
        a.x[4:, 0] = b.x[4:, 0] = rng.normal(0, 30, 4)
        kfs.append(a)
        ref.append(b)
    dt = 0.2
    kalman.predict_many(kfs, dt, **NOISE)
    for kf, r in zip(kfs, ref):
        h = r.x[3, 0]
        r.F = kalman._transition(dt)
        q = kalman.process_noise(dt, NOISE["position_noise"] ** 2, NOISE["velocity_noise"] ** 2)
        r.predict(Q=q * h * h)
        assert np.allclose(kf.x, r.x) and np.allclose(kf.P, r.P)
    kalman.predict_many(kfs, 0.0, **NOISE)  # no time passed: nothing moves
    assert np.allclose(kfs[0].x, ref[0].x)
