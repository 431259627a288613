"""The shipped demo model on held-out synthetic frames (real inference, CPU)."""

import numpy as np
import pytest

from vis_eval.synthetic import SceneConfig, render_sequence
from vis.detection.detector import BoxHeadEmbedder, HistogramEmbedder, MaskRCNNDetector
from vis.detection.models import WeightsError, load_model


@pytest.fixture(scope="module")
def held_out():
    cfg = SceneConfig(n_frames=12, seed=987654, n_objects=6, spawn_rate=0.0)
    return [f for i, f in enumerate(render_sequence(cfg)) if i % 4 == 0]


def mask_iou(a, b):
    return (a & b).sum() / max((a | b).sum(), 1)


def test_detects_held_out_objects_with_good_masks(demo_detector, held_out):
    found, total = 0, 0
    for f, d in zip(held_out, demo_detector.detect([f.image for f in held_out])):
        for gm, gc in zip(f.masks, f.class_ids):
            if gm.sum() < 300:  # heavily occluded slivers are not counted
                continue
            total += 1
            ious = [mask_iou(gm, pm) for pm, pc in zip(d.full_masks(), d.class_ids) if pc == gc]
            found += bool(ious) and max(ious) >= 0.5
    assert total >= 10
    assert found / total >= 0.7


def test_outputs_are_consistent(demo_detector, held_out):
    d = demo_detector.detect([held_out[0].image])[0]
    n = len(d)
    assert n > 0
    h, w = held_out[0].image.shape[:2]
    assert len(d.masks) == n and d.image_size == (h, w) and d.full_masks().shape == (n, h, w)
    assert d.embeddings.shape == (n, demo_detector.dim) == (n, 256)  # appearance=box_head
    assert np.allclose(np.linalg.norm(d.embeddings, axis=1), 1.0, atol=1e-4)
    assert (d.scores >= 0.5).all() and set(d.class_ids.tolist()) <= {1, 2, 3}
    # masks are box-local: each crop lies inside the image and around its box
    for m, box in zip(d.masks, d.xyxy):
        assert 0 <= m.x0 and 0 <= m.y0 and m.x1 <= w and m.y1 <= h
        assert m.prob.shape[0] * m.prob.shape[1] < h * w
        assert m.x0 <= box[0] + 1 and m.x1 >= box[2] - 1
    # embedding the same boxes again through the box head gives the same vectors
    again = demo_detector.embed_boxes([held_out[0].image], [d.xyxy])[0]
    assert np.allclose((again * d.embeddings).sum(1), 1.0, atol=1e-3)
    assert demo_detector.detect([]) == []


def reid_accuracy(embedder) -> float:
    """Nearest-neighbour re-identification of the same objects 19 frames apart."""
    from vis.types import Detections

    hits, total = 0, 0
    for seed in range(3):
        cfg = SceneConfig(n_frames=20, seed=4242 + seed, n_objects=6, spawn_rate=0.0)
        embs = []
        for i, f in enumerate(render_sequence(cfg)):
            if i in (0, 19):
                d = Detections(
                    xyxy=f.boxes, masks=f.masks, scores=np.ones(len(f.masks)), class_ids=f.class_ids
                )
                embs.append(dict(zip(f.track_ids.tolist(), embedder.embed(f.image, d))))
        common = sorted(set(embs[0]) & set(embs[1]))
        a = np.stack([embs[0][t] for t in common])
        b = np.stack([embs[1][t] for t in common])
        hits += int(((a @ b.T).argmax(1) == np.arange(len(common))).sum())
        total += len(common)
    return hits / total


@pytest.mark.slow
def test_fused_appearance_re_identifies_objects():
    model, labels = load_model(weights="demo")
    fused = BoxHeadEmbedder(MaskRCNNDetector(model=model, labels=labels, appearance="fused"))
    head = BoxHeadEmbedder(MaskRCNNDetector(model=model, labels=labels, appearance="box_head"))
    assert fused.dim == 256 + HistogramEmbedder().dim and head.dim == 256
    acc_fused, acc_head = reid_accuracy(fused), reid_accuracy(head)
    assert acc_fused >= 0.85
    assert acc_fused >= acc_head  # the histogram adds identity the class-trained head lacks
    assert acc_head > 1 / 6  # better than chance among ~6 objects


def test_class_allow_list(held_out):
    model, labels = load_model(weights="demo")
    det = MaskRCNNDetector(model=model, labels=labels, classes=["star"], score_threshold=0.3)
    ds = det.detect([f.image for f in held_out])
    assert sum(len(d) for d in ds) > 0
    assert all(set(d.class_ids.tolist()) <= {3} for d in ds)
    with pytest.raises(WeightsError, match="'person' is not a class"):
        MaskRCNNDetector(model=model, labels=labels, classes=["person"])


def test_cuda_request_without_gpu_is_a_clear_error():
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    model, labels = load_model(weights="demo")
    with pytest.raises(WeightsError, match="no CUDA device"):
        MaskRCNNDetector(model=model, labels=labels, device="cuda")


def test_histogram_embedder_shapes_and_empty(held_out):
    from vis.types import Detections

    f = held_out[0]
    d = Detections(xyxy=f.boxes, masks=f.masks, scores=np.ones(len(f.masks)), class_ids=f.class_ids)
    e = HistogramEmbedder().embed(f.image, d)
    assert e.shape == (len(d), HistogramEmbedder().dim)
    assert np.allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-4)
    assert HistogramEmbedder().embed(f.image, d[np.zeros(len(d), bool)]).shape == (0, 112)


@pytest.mark.parametrize("relative_value", [True, False])
def test_histogram_reidentifies_objects_after_the_light_dims(held_out, relative_value):
    """Each object of a frame, embedded again after the whole scene got 40 % darker, must be
    nearest to itself; measuring brightness relative to the frame is what makes that hold."""
    from vis.types import Detections

    f = held_out[0]
    keep = f.masks.reshape(len(f.masks), -1).sum(1) >= 300
    d = Detections(
        xyxy=f.boxes[keep],
        masks=f.masks[keep],
        scores=np.ones(int(keep.sum())),
        class_ids=f.class_ids[keep],
    )
    emb = HistogramEmbedder(relative_value=relative_value)
    bright = emb.embed(f.image, d)
    dim = emb.embed((f.image * 0.6).astype(np.uint8), d)
    nearest = np.argmax(dim @ bright.T, axis=1)
    correct = (nearest == np.arange(len(d))).mean()
    if relative_value:
        assert len(d) >= 4 and correct == 1.0
    else:
        assert correct < 1.0


def test_box_local_masks_equal_what_torchvision_pastes_into_the_frame(demo_detector, held_out):
    """The detector pastes the mask head's output into each box only; the soft values and
    the binary masks are the ones torchvision's own full-frame paste gives."""
    import torch

    image = held_out[1].image
    d = demo_detector.detect([image])[0]
    assert len(d) > 0
    with torch.inference_mode():
        x = torch.from_numpy(image[:, :, ::-1].copy()).permute(2, 0, 1).float() / 255.0
        ref = demo_detector.model([x])[0]
    np.testing.assert_allclose(d.xyxy, ref["boxes"].numpy(), atol=1e-3)
    want = ref["masks"][:, 0].numpy()
    for i, m in enumerate(d.masks):
        np.testing.assert_allclose(m.prob, want[i, m.y0 : m.y1, m.x0 : m.x1], atol=1e-5)
        outside = want[i].copy()
        outside[m.y0 : m.y1, m.x0 : m.x1] = 0
        assert outside.max() <= 1e-6  # nothing of the pasted mask lies outside the crop
    np.testing.assert_array_equal(d.full_masks(), want >= 0.5)
