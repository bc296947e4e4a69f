"""Small CNNs built from scratch for the edge (no pretrained weights can be downloaded).

MobileNet-style depthwise-separable blocks with ReLU6 (bounded activations
quantize well), batch norm (folded into the convolutions by the converter), and a
global-average-pooling head so class activation maps stay cheap later. Pixels
enter as 0..255 and are scaled inside the graph: an int8 model's input is then
the raw pixel and the device's preprocessing is a resize and a cast.
"""

from __future__ import annotations

from typing import Any

__all__ = ["build_classifier"]

# (output channels at width 1.0, stride) after the 3x3 stem.
_BLOCKS = ((32, 1), (64, 2), (64, 1), (128, 2), (128, 1), (192, 2), (192, 1))


def _channels(base: int, width: float) -> int:
    return max(8, round(base * width / 8) * 8)


def build_classifier(
    input_shape: tuple[int, int, int], num_classes: int, width: float = 1.0, dropout: float = 0.2
) -> Any:
    """A Keras model: uint8-range image (H, W, C) -> class probabilities, named ``probabilities``."""
    import keras
    from keras import layers

    def conv_bn(x: Any, filters: int, kernel: int, stride: int, name: str) -> Any:
        x = layers.Conv2D(
            filters, kernel, strides=stride, padding="same", use_bias=False, name=f"{name}_conv"
        )(x)
        x = layers.BatchNormalization(momentum=0.9, name=f"{name}_bn")(x)
        return layers.ReLU(6.0, name=f"{name}_relu")(x)

    inputs = keras.Input(shape=input_shape, name="image")
    x = layers.Rescaling(1.0 / 255.0, name="scale")(inputs)
    x = conv_bn(x, _channels(24, width), 3, 2, "stem")
    for i, (base, stride) in enumerate(_BLOCKS):
        name = f"block{i + 1}"
        x = layers.DepthwiseConv2D(3, strides=stride, padding="same", use_bias=False, name=f"{name}_dw")(x)
        x = layers.BatchNormalization(momentum=0.9, name=f"{name}_dw_bn")(x)
        x = layers.ReLU(6.0, name=f"{name}_dw_relu")(x)
        x = conv_bn(x, _channels(base, width), 1, 1, f"{name}_pw")
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    x = layers.Dropout(dropout, name="dropout")(x)
    logits = layers.Dense(num_classes, name="logits")(x)
    outputs = layers.Softmax(name="probabilities")(logits)
    return keras.Model(inputs, outputs, name="inspect_cnn")
