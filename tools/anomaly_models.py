"""Good-only anomaly models built from scratch, with the anomaly map computed inside the graph.

Two designs, both trainable in minutes on 2 CPU cores (docs/anomaly.md has the figures):

``student-teacher`` (the default): a frozen, randomly initialised convolutional teacher
    describes every local patch; a student of the same shape learns to reproduce the
    teacher's (standardised) features on good images only. Where the student fails, the
    patch looks like nothing it saw: the anomaly map is the squared feature error per
    cell (Bergmann et al., "Uninformed Students", 2020, here with a random teacher since no
    pretrained weights can be downloaded).
``autoencoder``: a convolutional autoencoder reconstructs the image through a narrow
    bottleneck; the map is the blurred absolute error plus the local variance the
    reconstruction lost or invented (SSIM's structure term without its division).

Both export one model: image (0..255) -> {"anomaly_score": (N, 1), "heatmap": (N, h, w, 1)}.
The score is the map's peak (after a 3x3 mean, so one noisy cell cannot decide a part) above
the map's own level (see ``_score_and_map``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["METHODS", "PEAK_OVER_MEAN", "build_anomaly_model", "fit_teacher_statistics"]

METHODS = ("student-teacher", "autoencoder")
PEAK_OVER_MEAN = 4.0
_WINDOW = 7  # local statistics window (SSIM's usual 7x7)
_VARIANCE_WEIGHT = 10.0  # variances of 0..1 pixels are ~10x smaller than their absolute errors


def _conv_stack(layers: Any, x: Any, widths: tuple[int, ...], strides: tuple[int, ...], prefix: str) -> Any:
    for i, (filters, stride) in enumerate(zip(widths, strides, strict=True)):
        last = i == len(widths) - 1
        x = layers.Conv2D(filters, 3, strides=stride, padding="same", name=f"{prefix}{i + 1}")(x)
        if not last:
            x = layers.LeakyReLU(0.1, name=f"{prefix}{i + 1}_act")(x)
    return x


def _score_and_map(keras: Any, layers: Any, inputs: Any, heat: Any, name: str) -> Any:
    """Image score = peak of the 3x3-smoothed map minus ``PEAK_OVER_MEAN`` times the map's mean.

    A defect is a local peak; a busy background or texture lifts the whole map. Subtracting the
    image's own level (no division: it stays a cheap int8 op) measured image ROC-AUC 0.63 for the
    plain maximum and 0.74 / 0.77 for 3 / 5 times the mean on the grey-washer set of docs/anomaly.md.
    """
    smooth = layers.AveragePooling2D(3, strides=1, padding="same", name="score_smooth")(heat)
    peak = layers.GlobalMaxPooling2D(name="map_peak")(smooth)
    level = layers.Rescaling(PEAK_OVER_MEAN, name="map_level")(
        layers.GlobalAveragePooling2D(name="map_mean")(heat)
    )
    score = layers.Subtract(name="anomaly_score")([peak, level])
    return keras.Model(inputs, {"anomaly_score": score, "heatmap": heat}, name=name)


def build_student_teacher(input_shape: tuple[int, int, int], width: float, seed: int) -> tuple[Any, Any]:
    """(training model: image -> squared error map, deployable model). The teacher is frozen at init.

    Teacher and student see 19x19 input patches (four 3x3 convolutions, two of stride 2) at 1/4
    resolution; the teacher's features are standardised per channel by ``fit_teacher_statistics``.
    """
    import keras
    from keras import layers

    channels = max(16, round(64 * width / 8) * 8)
    widths, strides = (channels // 2, channels, channels, channels), (2, 1, 2, 1)
    inputs = keras.Input(shape=input_shape, name="image")
    x = layers.Rescaling(1.0 / 255.0, name="scale")(inputs)
    # Texture and edges only: without the local mean the error no longer grows with the brightness
    # of the part (the image score's correlation with mean brightness fell from 0.62 to 0.12; pixel
    # ROC-AUC rose from 0.81 to 0.89 on the grey-washer set of docs/anomaly.md).
    local = layers.AveragePooling2D(_WINDOW, strides=1, padding="same", name="input_local_mean")(x)
    x = layers.Subtract(name="high_pass")([x, local])
    keras.utils.set_random_seed(seed + 1)
    teacher = _conv_stack(layers, x, widths, strides, "teacher")
    teacher = layers.Normalization(axis=-1, name="teacher_norm")(teacher)
    student = _conv_stack(layers, x, (*widths[:-1], channels * 2), strides, "student")
    student = layers.Conv2D(channels, 1, name="student_head")(student)
    diff = layers.Subtract(name="error")([teacher, student])
    squared = layers.Multiply(name="squared")([diff, diff])
    # Mean over channels as a fixed 1x1 convolution (TFLite int8 has no cheap channel mean).
    heat = layers.Conv2D(1, 1, use_bias=False, trainable=False, name="heatmap_mean")(squared)
    train = keras.Model(inputs, heat, name="student_teacher_train")
    train.get_layer("heatmap_mean").set_weights([np.full((1, 1, channels, 1), 1.0 / channels, np.float32)])
    for layer in train.layers:
        if layer.name.startswith("teacher"):
            layer.trainable = False
    return train, _score_and_map(keras, layers, inputs, heat, "student_teacher")


def fit_teacher_statistics(train: Any, pixels: np.ndarray) -> None:
    """Standardise the teacher's features on the good training images (so every channel counts)."""
    import keras

    features = keras.Model(train.inputs, train.get_layer("teacher4").output)
    values = features.predict(pixels.astype(np.float32), batch_size=64, verbose=0)
    train.get_layer("teacher_norm").adapt(values)


def build_autoencoder(input_shape: tuple[int, int, int], width: float, seed: int) -> tuple[Any, Any]:
    """(training model: image -> reconstruction in 0..1, deployable model with the SSIM map)."""
    import keras
    from keras import layers

    del seed  # initialisation follows keras.utils.set_random_seed set by the caller
    c = max(8, round(32 * width / 8) * 8)
    inputs = keras.Input(shape=input_shape, name="image")
    x = layers.Rescaling(1.0 / 255.0, name="scale")(inputs)
    h = x
    for i, filters in enumerate((c, 2 * c, 2 * c, 4 * c)):  # to 1/16
        h = layers.Conv2D(filters, 3, strides=2, padding="same", name=f"enc{i + 1}")(h)
        h = layers.LeakyReLU(0.1, name=f"enc{i + 1}_act")(h)
    h = layers.Conv2D(c // 2, 1, name="bottleneck")(h)  # the narrow part that forces generalisation
    for i, filters in enumerate((4 * c, 2 * c, 2 * c, c)):
        # Transposed convolutions, not UpSampling2D + Conv2D: the converter left the convolutions after
        # Keras 3's upsampling with dynamic shapes it could not lower to TFLite builtins.
        h = layers.Conv2DTranspose(filters, 3, strides=2, padding="same", name=f"dec{i + 1}")(h)
        h = layers.LeakyReLU(0.1, name=f"dec{i + 1}_act")(h)
    recon = layers.Conv2D(input_shape[-1], 3, padding="same", activation="sigmoid", name="reconstruction")(h)
    train = keras.Model(inputs, recon, name="autoencoder_train")
    heat = _structural_error_map(layers, x, recon, input_shape[-1])
    return train, _score_and_map(keras, layers, inputs, heat, "autoencoder")


def _structural_error_map(layers: Any, x: Any, y: Any, channels: int) -> Any:
    """Blurred |x - y| plus |local variance of x - that of y| (7x7), averaged over channels.

    The variance term is SSIM's contrast/structure idea without its division (no cheap int8
    kernel): an autoencoder redraws a scratch as smooth surface, so the local variance it
    loses is the defect even where the mean error is small.
    """
    pool = layers.AveragePooling2D(_WINDOW, strides=1, padding="same", name="local_mean")

    def variance(t: Any, name: str) -> Any:
        mean = pool(t)
        return layers.Subtract(name=f"{name}_var")(
            [
                pool(layers.Multiply(name=f"{name}_sq")([t, t])),
                layers.Multiply(name=f"{name}_mean_sq")([mean, mean]),
            ]
        )

    abs_error = pool(_absolute(layers, x, y, "pixel"))
    contrast = _absolute(layers, variance(x, "input"), variance(y, "recon"), "contrast")
    both = layers.Add(name="structural_error")([abs_error, layers.Rescaling(_VARIANCE_WEIGHT)(contrast)])
    mean_over_channels = layers.Conv2D(1, 1, use_bias=False, trainable=False, name="heatmap_mean")
    heat = mean_over_channels(both)
    mean_over_channels.set_weights([np.full((1, 1, channels, 1), 1.0 / channels, np.float32)])
    return heat


def _absolute(layers: Any, x: Any, y: Any, name: str) -> Any:
    diff = layers.Subtract(name=f"{name}_diff")([x, y])
    return layers.Maximum(name=f"{name}_abs")([diff, layers.Rescaling(-1.0, name=f"{name}_neg")(diff)])


def build_anomaly_model(
    method: str, input_shape: tuple[int, int, int], width: float, seed: int
) -> tuple[Any, Any]:
    if method == "student-teacher":
        return build_student_teacher(input_shape, width, seed)
    if method == "autoencoder":
        return build_autoencoder(input_shape, width, seed)
    raise ValueError(f"unknown anomaly method {method!r}, choose from {', '.join(METHODS)}")
