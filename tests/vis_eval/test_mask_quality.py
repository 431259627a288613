import pytest

from tests.vis_eval.conftest import N_FRAMES, tiny_sequence
from vis_eval.mask_quality import frame_mask_iou, propagated_frames
from vis_eval.sequences import TrackSequence


def test_perfect_masks_score_100_and_shifted_less():
    gt = tiny_sequence()
    perfect = frame_mask_iou(gt, tiny_sequence(), range(N_FRAMES))
    assert perfect["miou_matched"] == pytest.approx(100.0)
    r = frame_mask_iou(gt, tiny_sequence(shift=2), range(N_FRAMES))
    assert 50.0 < r["miou_matched"] < 100.0 and r["matched"] == 2 * N_FRAMES


def test_missing_predictions_count_against_miou_gt_only():
    gt = tiny_sequence()
    pred = tiny_sequence()
    for f in range(10):
        pred.frames[f] = pred.frames[f][:1]
    r = frame_mask_iou(gt, pred, range(N_FRAMES))
    assert r["miou_matched"] == pytest.approx(100.0)
    assert r["miou_gt"] == pytest.approx(100.0 * 30 / 40)
    assert frame_mask_iou(gt, TrackSequence(), range(N_FRAMES))["miou_gt"] == 0.0


def test_propagated_frames_need_keyframe_flags():
    pred = tiny_sequence()
    with pytest.raises(ValueError):
        propagated_frames(pred, N_FRAMES)
    pred.keyframes = {0, 10}
    assert propagated_frames(pred, N_FRAMES) == [f for f in range(N_FRAMES) if f not in (0, 10)]


def test_no_frames_means_no_number():
    r = frame_mask_iou(tiny_sequence(), tiny_sequence(), [])
    assert r["miou_matched"] is None and r["frames"] == 0
