"""The benchmarks behind the figures of docs/results.md: one command each
(``PYTHONPATH=. .venv/bin/python -m bench.<name>``), writing ``bench/results/<name>.{json,md}``.

Figures: ``demo_fps`` (speed of the keyframe design), ``real_tracking`` (ours against peer
trackers on PETS09; ``peers_runner`` runs the peers in their own venv), ``tracker_cv`` (tracker
settings judged on two folds), ``street`` (the street demo's model), ``keyframe_sweep`` and
``peers`` (the synthetic set; ``make_set`` and ``detections`` write its inputs),
``davis_propagation`` and ``davis`` (DAVIS 2016), ``engines`` and ``precision`` (detector
engines), ``adapt`` (adapting a model to a camera), ``analytics`` (lines and zones),
``kafka_bench``, ``scaling``, ``soak`` (with ``soak_clip``, ``soak_metrics``, ``soak_report``),
``workers``, ``live_latency``, ``batch_parallelism`` and ``review_auc``. ``common`` and
``pets09`` are shared helpers. The studies that led to the design are in git history
(docs/history.md).
"""
