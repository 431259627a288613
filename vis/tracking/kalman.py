"""Constant-velocity Kalman filter on a box, built on filterpy (SORT-style state).

State x = [cx, cy, s, r, vcx, vcy, vs]: centre, area s, aspect ratio r (w/h, constant) and
the velocities of centre and area, in pixels per frame. Measurement z = [cx, cy, s, r].
``predict(kf, dt)`` takes the number of frames elapsed, so keyframe gaps are handled.
"""

from __future__ import annotations

import numpy as np
from filterpy.kalman import KalmanFilter

from vis.ops.boxes import cxcysr_to_xyxy, xyxy_to_cxcysr


def make_box_filter(box: np.ndarray) -> KalmanFilter:
    """A filter initialised at ``box`` (4,) xyxy with zero velocity."""
    kf = KalmanFilter(dim_x=7, dim_z=4)
    kf.F = _transition(1.0)
    # H: we observe position, area and ratio directly, never velocities.
    kf.H = np.zeros((4, 7))
    kf.H[0, 0] = kf.H[1, 1] = kf.H[2, 2] = kf.H[3, 3] = 1.0
    # R: measurement noise; area and ratio are noisier than the centre (masks jitter).
    kf.R = np.diag([1.0, 1.0, 10.0, 0.01])
    # P: initial uncertainty; velocities are unknown at birth, hence large.
    kf.P = np.diag([10.0, 10.0, 10.0, 10.0, 1e3, 1e3, 1e3])
    # Q: process noise per frame; small on velocities (motion is smooth).
    kf.Q = np.diag([1.0, 1.0, 1.0, 1e-4, 0.01, 0.01, 1e-4])
    kf.x[:4, 0] = xyxy_to_cxcysr(box)
    return kf


def _transition(dt: float) -> np.ndarray:
    # F: position += velocity * dt; ratio constant.
    f = np.eye(7)
    f[0, 4] = f[1, 5] = f[2, 6] = dt
    return f


def predict(kf: KalmanFilter, dt: float = 1.0) -> np.ndarray:
    """Advance ``dt`` frames; return the predicted (4,) xyxy box."""
    if dt <= 0:
        return state_box(kf)
    if kf.x[2, 0] + kf.x[6, 0] * dt <= 0:  # area must stay positive
        kf.x[6, 0] = 0.0
    q = kf.Q
    kf.F = _transition(dt)
    kf.predict(Q=q * dt)
    return state_box(kf)


def update(kf: KalmanFilter, box: np.ndarray) -> None:
    """Correct with a measured (4,) xyxy box."""
    kf.update(xyxy_to_cxcysr(box).reshape(4, 1))


def state_box(kf: KalmanFilter) -> np.ndarray:
    """Current (4,) xyxy box."""
    return cxcysr_to_xyxy(kf.x[:4, 0])


def speed(kf: KalmanFilter) -> float:
    """Centre speed in pixels per frame."""
    return float(np.hypot(kf.x[4, 0], kf.x[5, 0]))
