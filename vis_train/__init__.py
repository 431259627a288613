"""Training the project's Mask R-CNN models on real instance-segmentation data
(``tools/train.py``): dataset readers, the resumable training loop, held-out AP."""
