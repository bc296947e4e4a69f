"""The sensor models: Conv1D -> LSTM -> Dense(sigmoid), or Conv1D only, over (window, channels) inputs.

The convolutions find local shapes (spikes, steps, oscillation) on every channel; the LSTM reads
their order over the window (a drift, a stuck stretch); one sigmoid unit is the anomaly score.
Standardisation happens before the model (its mean/std are in the card), so the graph stays the
same for any sensor scale.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ARCHITECTURES", "build_model", "export_model"]

ARCHITECTURES = ("cnn-lstm", "cnn")


def build_model(
    architecture: str,
    length: int,
    channels: int,
    width: int = 16,
    batch_size: int | None = None,
    unroll: bool = False,
) -> Any:
    """A Keras model; ``batch_size=1, unroll=True`` is the form TFLite can convert (and fully quantize)."""
    import keras
    from keras import layers

    inputs = keras.Input(shape=(length, channels), batch_size=batch_size, name="window")
    x = layers.Conv1D(width, 5, padding="same", activation="relu", name="conv1")(inputs)
    x = layers.MaxPooling1D(2, name="pool1")(x)
    x = layers.Conv1D(2 * width, 3, padding="same", activation="relu", name="conv2")(x)
    if architecture == "cnn-lstm":
        x = layers.MaxPooling1D(2, name="pool2")(x)
        x = layers.LSTM(2 * width, unroll=unroll, name="lstm")(x)
    elif architecture == "cnn":
        x = layers.Conv1D(2 * width, 3, padding="same", activation="relu", name="conv3")(x)
        x = layers.GlobalMaxPooling1D(name="pool")(x)
    else:
        raise ValueError(f"architecture must be one of {ARCHITECTURES}, got {architecture!r}")
    x = layers.Dropout(0.2, name="dropout")(x)
    outputs = layers.Dense(1, activation="sigmoid", name="anomaly")(x)
    return keras.Model(inputs, outputs, name=architecture.replace("-", "_"))


def export_model(trained: Any, architecture: str) -> Any:
    """The trained weights in the converter-friendly form: fixed batch 1, LSTM unrolled."""
    _, length, channels = trained.input_shape
    width = trained.get_layer("conv1").filters
    model = build_model(architecture, length, channels, width, batch_size=1, unroll=True)
    model.set_weights(trained.get_weights())
    return model
