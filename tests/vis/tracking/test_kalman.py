import numpy as np

from vis.tracking import kalman


def test_constant_velocity_is_learned_and_extrapolated_over_gaps():
    kf = kalman.make_box_filter(np.array([0.0, 0.0, 10.0, 10.0]))
    for t in range(1, 15):
        kalman.predict(kf, 1)
        kalman.update(kf, np.array([2.0 * t, 0.0, 10 + 2.0 * t, 10.0]))
    pred = kalman.predict(kf, 5)  # five frames without a measurement
    assert np.allclose(pred, [38, 0, 48, 10], atol=1.0)
    assert abs(kalman.speed(kf) - 2.0) < 0.2


def test_zero_dt_changes_nothing():
    kf = kalman.make_box_filter(np.array([5.0, 5.0, 15.0, 25.0]))
    assert np.allclose(kalman.predict(kf, 0), [5, 5, 15, 25])
