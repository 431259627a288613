"""The multi-object tracker (``Tracker.update(detections) -> Detections``), its keyframe
duplicate rule, association (costs + Hungarian) and Kalman box filter."""
