"""vis: the vision library (types, detection, association, tracking, propagation).

Pure computation: it never imports ``streams`` (I/O). ``run_pipeline.py`` wires the two.
"""
