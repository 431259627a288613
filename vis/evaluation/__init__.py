"""Scoring with kept libraries: tracking metrics with TrackEval (HOTA, CLEAR/MOTSA, IDF1 on
masks), mask AP with pycocotools, mask IoU of propagated frames.

* ``sequences`` — tracks as RLE instances; JSONL / MOTS / TrackEval conversions.
* ``trackeval_mots`` — one TrackEval ``MOTSChallenge`` call for many trackers.
* ``coco_ap`` — pycocotools mask/box AP.
* ``mask_quality`` — mean mask IoU of chosen frames (propagated vs keyframes).
* ``benchmark`` — folders in, JSON-ready results out (used by ``python -m vis.evaluate``).
"""
