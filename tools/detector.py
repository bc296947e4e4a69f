"""A tiny CenterNet-style detector built from scratch, and the graph that gives it the standard 4 outputs.

Training sees one tensor per image, ``(G, G, C + 4)`` at 1/``STRIDE`` of the input: C class heatmaps
(a Gaussian peak at each box centre), then the box width and height (fractions of the input) and the
centre's offset inside its cell. ``with_postprocess`` appends the decoding in-graph, so the exported
TFLite model ends in the outputs of TFLite_Detection_PostProcess: ``boxes`` [1, K, 4] (normalised
ymin, xmin, ymax, xmax), ``classes`` [1, K], ``scores`` [1, K], ``count`` [1]. Its NMS is CenterNet's:
a 3x3 max-pool keeps local peaks, then top-K over every class and cell.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["STRIDE", "build_detector", "encode_targets", "heads_loss", "with_postprocess"]

STRIDE = 4
_PRIOR = 0.01  # initial heatmap probability (focal-loss paper): the first steps are not swamped by background


def build_detector(input_shape: tuple[int, int, int], num_classes: int, width: float = 1.0) -> Any:
    """uint8-range image (H, W, C) -> ``heads`` (H/4, W/4, num_classes + 4); H and W multiples of 8."""
    import keras
    from keras import layers

    def conv_bn(x: Any, filters: int, stride: int, name: str) -> Any:
        channels = max(8, round(filters * width / 8) * 8)
        x = layers.Conv2D(channels, 3, strides=stride, padding="same", use_bias=False, name=f"{name}_conv")(x)
        x = layers.BatchNormalization(momentum=0.9, name=f"{name}_bn")(x)
        return layers.ReLU(6.0, name=f"{name}_relu")(x)

    inputs = keras.Input(shape=input_shape, name="image")
    x = layers.Rescaling(1.0 / 255.0, name="scale")(inputs)
    x = conv_bn(x, 16, 2, "stem")
    x = conv_bn(x, 32, 2, "down4")
    fine = conv_bn(x, 32, 1, "fine4")
    x = conv_bn(fine, 64, 2, "down8")
    x = conv_bn(x, 64, 1, "ctx8a")
    x = conv_bn(x, 64, 1, "ctx8b")
    # Context from 1/8 back to 1/4, where a small defect still has a cell of its own.
    x = layers.UpSampling2D(2, name="up4")(x)
    x = layers.Concatenate(name="merge4")([x, fine])
    x = conv_bn(x, 48, 1, "head")
    bias = float(-np.log((1 - _PRIOR) / _PRIOR))
    heat = layers.Conv2D(
        num_classes, 1, activation="sigmoid", bias_initializer=keras.initializers.Constant(bias), name="heat"
    )(x)
    boxes = layers.Conv2D(4, 1, activation="sigmoid", name="size_offset")(x)
    heads = layers.Concatenate(name="heads")([heat, boxes])
    return keras.Model(inputs, heads, name="detector")


def encode_targets(
    boxes: list[list[tuple[int, float, float, float, float]]], grid: int, num_classes: int, input_size: int
) -> np.ndarray:
    """Per image a list of (class, x0, y0, x1, y1) in input pixels -> (N, G, G, C + 5) training targets.

    The last channel marks box centres (where size and offset are learned).
    """
    targets = np.zeros((len(boxes), grid, grid, num_classes + 5), np.float32)
    ys, xs = np.mgrid[0:grid, 0:grid].astype(np.float32)
    for n, image_boxes in enumerate(boxes):
        for class_id, x0, y0, x1, y1 in image_boxes:
            cx, cy = (x0 + x1) / 2 / STRIDE, (y0 + y1) / 2 / STRIDE
            col, row = min(int(cx), grid - 1), min(int(cy), grid - 1)
            w, h = (x1 - x0) / STRIDE, (y1 - y0) / STRIDE
            sigma = max(0.5, (w + h) / 12)  # CenterNet: radius from the box size; small boxes stay sharp
            peak = np.exp(-((xs - col) ** 2 + (ys - row) ** 2) / (2 * sigma**2))
            targets[n, :, :, class_id] = np.maximum(targets[n, :, :, class_id], peak)
            size = ((x1 - x0) / input_size, (y1 - y0) / input_size, cx - col, cy - row)
            targets[n, row, col, num_classes : num_classes + 4] = size
            targets[n, row, col, num_classes + 4] = 1.0
    return targets


def heads_loss(num_classes: int, size_weight: float = 5.0) -> Any:
    """CenterNet's penalty-reduced focal loss on the heatmaps plus L1 on size and offset at centres."""
    import keras

    ops = keras.ops

    def loss(target: Any, predicted: Any) -> Any:
        heat_t, heat_p = target[..., :num_classes], ops.clip(predicted[..., :num_classes], 1e-4, 1 - 1e-4)
        centre = ops.cast(heat_t >= 0.999, "float32")
        positives = ops.maximum(ops.sum(centre), 1.0)
        pos = centre * ops.log(heat_p) * (1 - heat_p) ** 2
        neg = (1 - centre) * ops.log(1 - heat_p) * heat_p**2 * (1 - heat_t) ** 4
        focal = -ops.sum(pos + neg) / positives
        mask = target[..., num_classes + 4 :]
        l1 = ops.abs(target[..., num_classes : num_classes + 4] - predicted[..., num_classes:]) * mask
        return focal + size_weight * ops.sum(l1) / positives

    return loss


def with_postprocess(heads_model: Any, num_classes: int, max_detections: int, layout: str = "named") -> Any:
    """A batch-1 model: image -> {boxes, classes, scores, count}, the decoding done in the graph.

    ``layout="tf2"`` returns the same four as a list in the order TF2 detection exports use
    (count, scores, classes, boxes; signature keys output_0..3), to test readers against it.
    """
    import keras
    from keras import layers

    ops = keras.ops
    _, height, width, channels = heads_model.inputs[0].shape
    inputs = keras.Input(shape=(height, width, channels), batch_size=1, name="image")
    heads = heads_model(inputs)
    grid_h, grid_w = height // STRIDE, width // STRIDE
    heat = heads[..., :num_classes]
    peaks = layers.MaxPooling2D(3, strides=1, padding="same", name="peaks")(heat)
    kept = heat * ops.cast(ops.equal(heat, peaks), "float32")
    scores, index = ops.top_k(ops.reshape(kept, (1, grid_h * grid_w * num_classes)), k=max_detections)
    classes = ops.cast(index % num_classes, "float32")
    cell = index // num_classes
    sizes = ops.take(ops.reshape(heads[..., num_classes:], (grid_h * grid_w, 4)), cell[0], axis=0)
    row, col = ops.cast(cell[0] // grid_w, "float32"), ops.cast(cell[0] % grid_w, "float32")
    cy = (row + sizes[:, 3]) * STRIDE / height
    cx = (col + sizes[:, 2]) * STRIDE / width
    half_w, half_h = sizes[:, 0] / 2, sizes[:, 1] / 2
    boxes = ops.clip(ops.stack([cy - half_h, cx - half_w, cy + half_h, cx + half_w], axis=-1), 0.0, 1.0)
    count = ops.sum(ops.ones_like(scores), axis=1)  # K rows, every one valid (low scores filter out)
    outputs = {
        "boxes": ops.expand_dims(boxes, 0),
        "classes": classes,
        "scores": scores,
        "count": count,
    }
    if layout == "tf2":
        return keras.Model(inputs, [outputs[k] for k in ("count", "scores", "classes", "boxes")])
    return keras.Model(inputs, outputs, name="detector_postprocess")
