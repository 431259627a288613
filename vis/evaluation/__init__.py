"""Scoring with kept libraries: mask AP (pycocotools)."""
