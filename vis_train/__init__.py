"""Training the project's Mask R-CNN models on real instance-segmentation data
(``vis-pipeline train``): dataset readers, the resumable training loop, held-out AP."""
