"""vis: the vision library (types, detection, association, tracking, propagation).

Pure computation: it never imports ``streams`` (I/O). ``vis_pipeline`` wires the two.
"""
