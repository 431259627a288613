"""Synthetic scenes with ground truth, and MOTS text ground-truth I/O."""
