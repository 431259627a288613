"""The scoring harness and its data (not the product: nothing in ``vis/``, ``streams/`` or
``run_pipeline.py`` imports it).

Scoring with kept libraries: tracking metrics with TrackEval (HOTA, CLEAR/MOTSA, IDF1 on
masks), mask AP with pycocotools, mask IoU of propagated frames.

* ``evaluate`` — the CLI: ``python -m vis_eval.evaluate --gt DIR --pred DIR``.
* ``benchmark`` — folders in, JSON-ready results out (used by the CLI and ``bench/``).
* ``sequences`` — tracks as RLE instances; JSONL / MOTS text / TrackEval conversions (the
  one MOTS reader, strict).
* ``trackeval_mots`` — one TrackEval ``MOTSChallenge`` call for many trackers.
* ``coco_ap`` — pycocotools mask/box AP.
* ``mask_quality`` — mean mask IoU of chosen frames (propagated vs keyframes).
* ``tables`` — text and markdown result tables.
* ``synthetic`` — seeded synthetic scenes with ground truth (the sample video, the demo
  model's training data, test scenes).
* ``benchmark_set`` — the fixed, seeded benchmark scenarios (``bench/make_set.py``).
"""
