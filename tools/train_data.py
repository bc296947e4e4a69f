"""The tf.data pipeline for ``train``: shuffling, augmentation, class weights, defect-map targets.

Elements are ``(image, label, weight)``, or with defect masks
``(image, {"probabilities": label, "defect_map": map}, {"probabilities": weight, "defect_map": known})``
so that images whose mask is unknown teach the classifier but not the map.
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np

from tools.dataset import LabelledImages

__all__ = ["class_weights", "make_dataset"]


def class_weights(labels: np.ndarray, num_classes: int, good_index: int | None = None) -> dict[int, float]:
    """Inverse-frequency weights so rare defects count as much as good parts.

    Without ``good_index``: scikit-learn's 'balanced' (every class the same total weight). With it,
    good parts weigh as much as all defects together, and the defect kinds share their half equally.
    'Balanced' over six classes gives the five defect kinds 5x the good parts' total weight: the
    classifier then learns that an uncertain part is a defect, and good parts pay for it.
    """
    from sklearn.utils.class_weight import compute_class_weight

    present = np.unique(labels)
    result = dict.fromkeys(range(num_classes), 1.0)
    defects = present[present != good_index] if good_index is not None else present
    if good_index is None or good_index not in present or defects.size == 0:
        weights = compute_class_weight("balanced", classes=present, y=labels)
        result.update({int(c): float(w) for c, w in zip(present, weights, strict=True)})
        return result
    total = len(labels)
    result[good_index] = total / (2.0 * np.count_nonzero(labels == good_index))
    for c in defects:
        result[int(c)] = total / (2.0 * defects.size * np.count_nonzero(labels == c))
    return result


def _layers(args: argparse.Namespace) -> tuple[Any, Any]:
    """(geometric, photometric) Keras augmentation stacks; either may be None."""
    from keras import Sequential, layers

    geometric: list[Any] = []
    if args.flip != "none":
        geometric.append(layers.RandomFlip("horizontal_and_vertical" if args.flip == "both" else args.flip))
    if args.rotate > 0:
        geometric.append(layers.RandomRotation(args.rotate / 360.0, fill_mode="reflect"))
    if args.shift > 0:
        geometric.append(layers.RandomTranslation(args.shift, args.shift, fill_mode="reflect"))
    photometric: list[Any] = []
    if args.brightness > 0:
        photometric.append(layers.RandomBrightness(args.brightness, value_range=(0, 255)))
    if args.contrast > 0:
        photometric.append(layers.RandomContrast(args.contrast, value_range=(0, 255)))
    return (
        Sequential(geometric, name="geometric") if geometric else None,
        Sequential(photometric, name="photometric") if photometric else None,
    )


def make_dataset(
    tf: Any,
    data: LabelledImages,
    args: argparse.Namespace,
    training: bool,
    weights: dict[int, float] | None,
    map_stride: int | None,
) -> Any:
    """Batched, augmented (when ``training``) dataset; ``map_stride`` adds defect-map targets."""
    per_image = np.asarray([weights[int(i)] if weights else 1.0 for i in data.labels], np.float32)
    use_maps = map_stride is not None and data.masks is not None and data.mask_known is not None
    if use_maps:
        assert data.masks is not None and data.mask_known is not None
        masks = data.masks[..., None]
        tensors: tuple[Any, ...] = (data.pixels, masks, data.labels, per_image, data.mask_known)
    else:
        tensors = (data.pixels, data.labels, per_image)
    ds = tf.data.Dataset.from_tensor_slices(tensors)
    if training:
        ds = ds.shuffle(len(data), seed=args.seed, reshuffle_each_iteration=True)
    ds = ds.batch(args.batch_size)
    geometric, photometric = _layers(args) if training and not args.no_augment else (None, None)
    sigma = float(args.noise) if training and not args.no_augment else 0.0

    def prepare(x: Any, mask: Any) -> tuple[Any, Any]:
        x = tf.cast(x, tf.float32)
        if geometric is not None:  # one random transform for the image and its mask together
            channels = x.shape[-1]
            both = geometric(tf.concat([x, tf.cast(mask, tf.float32)], axis=-1), training=True)
            x, mask = both[..., :channels], both[..., channels:]
        if photometric is not None:
            x = photometric(x, training=True)
        if sigma > 0:  # Keras' GaussianNoise only takes sigma <= 1; ours is on the 0..255 scale
            x = x + tf.random.normal(tf.shape(x), stddev=sigma)
        return tf.clip_by_value(x, 0.0, 255.0), mask

    if use_maps:

        def with_maps(x: Any, mask: Any, y: Any, w: Any, known: Any) -> Any:
            x, mask = prepare(x, mask)
            # A cell is "defect" when any of its pixels is: thin scratches cover a few percent of a
            # cell, and an averaged target that small taught the map nothing.
            cells = tf.nn.max_pool2d(tf.cast(mask, tf.float32), map_stride, map_stride, "SAME")
            target = tf.cast(cells > 127.0, tf.float32)
            return (
                x,
                {"probabilities": y, "defect_map": target},
                {
                    "probabilities": w,
                    # per map cell: the loss is not reduced over the map before weighting
                    "defect_map": tf.ones_like(target[..., 0]) * tf.cast(known, tf.float32)[:, None, None],
                },
            )

        ds = ds.map(with_maps, num_parallel_calls=tf.data.AUTOTUNE)
    else:

        def plain(x: Any, y: Any, w: Any) -> Any:
            x, _ = prepare(x, tf.zeros_like(x[..., :1]))
            return x, y, w

        ds = ds.map(plain, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)
