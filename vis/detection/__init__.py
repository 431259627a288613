"""Detectors: torchvision Mask R-CNN (with box-head Re-ID embeddings) and precomputed detections."""
