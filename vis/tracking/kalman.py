"""Constant-velocity Kalman filter on a box, in seconds, with noise that scales with the box.

State x = [cx, cy, w, h, vcx, vcy, vw, vh]: centre, width, height and their velocities in
pixels per **second**; measurement z = [cx, cy, w, h]. Every noise term is proportional to
the box height (a near person moves and jitters more pixels than a far one), and process
noise accumulates with the time elapsed (a random walk: variance grows linearly with dt),
so one setting holds at 7 fps and at 30 fps and across keyframe gaps.
``predict(kf, dt_s, noise)`` advances ``dt_s`` seconds.
"""

from __future__ import annotations

import functools

import numpy as np
from filterpy.kalman import KalmanFilter

#: measurement noise (a detector's box jitter), as a fraction of the box height
STD_MEASUREMENT = 1.0 / 20.0
#: prior on a new track's speed, box heights per second: wide enough for a runner or a car
#: (a person walks at about half a height per second)
STD_INITIAL_VELOCITY = 2.0
#: chi-square 0.99 quantile, 2 degrees of freedom: the motion gate on the centre
GATE_CHI2_2D = 9.2103
#: the gate's position uncertainty never falls below this fraction of the box height: a
#: filter that has learned a steady walk must still accept a stop, a turn or a camera pan
GATE_FLOOR = 0.5


def _xyxy_to_z(box: np.ndarray) -> np.ndarray:
    x1, y1, x2, y2 = (float(v) for v in box)
    return np.array([(x1 + x2) / 2, (y1 + y2) / 2, max(x2 - x1, 1.0), max(y2 - y1, 1.0)])


def make_box_filter(box: np.ndarray) -> KalmanFilter:
    """A filter initialised at ``box`` (4,) xyxy with zero, uncertain velocity."""
    kf = KalmanFilter(dim_x=8, dim_z=4)
    z = _xyxy_to_z(box)
    kf.x[:4, 0] = z
    # H: we observe centre and size directly, never velocities.
    kf.H = np.hstack([np.eye(4), np.zeros((4, 4))])
    # P: the position is known to twice the measurement noise; the velocity is unknown.
    h = z[3]
    pos = 2 * STD_MEASUREMENT * h
    vel = STD_INITIAL_VELOCITY * h
    kf.P = np.diag(np.square([pos, pos, pos, pos, vel, vel, vel, vel]))
    return kf


@functools.lru_cache(maxsize=64)
def _transition(dt_s: float) -> np.ndarray:
    # F: position += velocity * dt (one read-only matrix per dt, shared by every track).
    f = np.eye(8)
    f[:4, 4:] = np.eye(4) * dt_s
    f.flags.writeable = False
    return f


@functools.lru_cache(maxsize=64)
def _unit_noise(dt_s: float, position_noise: float, velocity_noise: float) -> np.ndarray:
    """``process_noise`` for a box one pixel high (Q scales with the height squared)."""
    q = process_noise(dt_s, position_noise**2, velocity_noise**2)
    q.flags.writeable = False
    return q


def process_noise(dt_s: float, position_var: float, velocity_var: float) -> np.ndarray:
    """Q (8, 8) of ``dt_s`` seconds: the position takes a random walk of ``position_var`` per
    second, the velocity one of ``velocity_var`` per second, and the position also integrates
    the velocity's walk (the dt^3/3 and dt^2/2 terms). This is the exact discretisation of the
    continuous model, so one step of 3 s predicts what 90 steps of 1/30 s do: a stream gap
    (a camera outage) widens the motion gate as much as the same time spent in view."""
    pp = position_var * dt_s + velocity_var * dt_s**3 / 3.0
    pv = velocity_var * dt_s**2 / 2.0
    vv = velocity_var * dt_s
    eye = np.eye(4)
    return np.block([[pp * eye, pv * eye], [pv * eye, vv * eye]])


def predict(
    kf: KalmanFilter, dt_s: float, *, position_noise: float, velocity_noise: float
) -> np.ndarray:
    """Advance ``dt_s`` seconds; return the predicted (4,) xyxy box.

    Args:
        position_noise: random drift of the box, box heights per sqrt(second).
        velocity_noise: random change of its velocity, box heights per second per sqrt(second).
    """
    predict_many([kf], dt_s, position_noise=position_noise, velocity_noise=velocity_noise)
    return state_box(kf)


def predict_many(
    kfs: list[KalmanFilter], dt_s: float, *, position_noise: float, velocity_noise: float
) -> None:
    """``predict`` of every filter in ``kfs`` by the same ``dt_s``, as one batched product
    (a per-filter call costs more in Python than in arithmetic). The filters' ``x`` and ``P``
    are replaced; filterpy's ``x_prior``/``P_prior`` copies, which nothing here reads, are
    not kept."""
    if dt_s <= 0 or not kfs:
        return
    f = _transition(dt_s)
    x = f @ np.stack([kf.x for kf in kfs])  # (N, 8, 1)
    h = np.maximum(np.array([kf.x[3, 0] for kf in kfs], np.float64), 1.0)
    p = f @ np.stack([kf.P for kf in kfs]) @ f.T
    p += _unit_noise(dt_s, position_noise, velocity_noise) * (h * h)[:, None, None]
    np.maximum(x[:, 2:4], 1.0, out=x[:, 2:4])  # the size stays positive
    for kf, xi, pi in zip(kfs, x, p):
        kf.x, kf.P = xi, pi


def _measurement_std(h: float | np.ndarray) -> float | np.ndarray:
    """Standard deviation of a measured box coordinate for boxes ``h`` pixels high."""
    return STD_MEASUREMENT * np.maximum(h, 1.0)


def _measurement_noise(h: float) -> np.ndarray:
    return np.eye(4) * float(_measurement_std(h)) ** 2


def update(kf: KalmanFilter, box: np.ndarray) -> None:
    """Correct with a measured (4,) xyxy box."""
    z = _xyxy_to_z(box)
    kf.update(z.reshape(4, 1), R=_measurement_noise(z[3]))


def forget_velocity(kf: KalmanFilter) -> None:
    """Back to a new track's knowledge of the motion: zero velocity, ``STD_INITIAL_VELOCITY``
    uncertainty, no correlation with the position (after a gap in the stream)."""
    h = max(float(kf.x[3, 0]), 1.0)
    kf.x[4:, 0] = 0.0
    kf.P[4:, :] = 0.0
    kf.P[:, 4:] = 0.0
    kf.P[4:, 4:] = np.eye(4) * (STD_INITIAL_VELOCITY * h) ** 2


def state_box(kf: KalmanFilter) -> np.ndarray:
    """Current (4,) xyxy box (float32)."""
    cx, cy, w, h = kf.x[:4, 0]
    return np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], np.float32)


def centre_distance2(kf: KalmanFilter, boxes: np.ndarray) -> np.ndarray:
    """(M, 4) xyxy -> (M,) squared Mahalanobis distance of their centres from the filter's
    predicted centre, under the predicted position covariance plus measurement noise (and at
    least ``GATE_FLOOR`` heights). Compare with ``GATE_CHI2_2D``."""
    return centre_distance2_many([kf], boxes)[0]


def centre_distance2_many(kfs: list[KalmanFilter], boxes: np.ndarray) -> np.ndarray:
    """``centre_distance2`` of N filters at once: (M, 4) xyxy -> (N, M)."""
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    if len(b) == 0 or not kfs:
        return np.zeros((len(kfs), len(b)))
    x = np.stack([kf.x[:4, 0] for kf in kfs])  # (N, 4) cx cy w h
    cov = np.stack([kf.P[:2, :2] for kf in kfs])  # (N, 2, 2)
    h = x[:, 3]
    extra = _measurement_std(h) ** 2 + (GATE_FLOOR * h) ** 2
    s = cov + extra[:, None, None] * np.eye(2)
    inv = np.linalg.inv(s)
    d = ((b[:, :2] + b[:, 2:]) / 2)[None, :, :] - x[:, None, :2]  # (N, M, 2)
    return np.einsum("nmi,nij,nmj->nm", d, inv, d)


def speed(kf: KalmanFilter) -> float:
    """Centre speed in pixels per second."""
    return float(np.hypot(kf.x[4, 0], kf.x[5, 0]))
