"""Small CNNs built from scratch for the edge (no pretrained weights can be downloaded).

Full convolutions early and MobileNet-style depthwise-separable blocks late, with ReLU6
(bounded activations quantize well), batch norm (folded into the convolutions by the
converter), and a pooled head (average and max) so class activation maps stay cheap later. Pixels
enter as 0..255 and are scaled inside the graph: an int8 model's input is then
the raw pixel and the device's preprocessing is a resize and a cast.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["MAP_STRIDE", "build_classifier", "deployable"]

# (output channels at width 1.0, stride) after the 3x3 stem (stride 2): full convolutions to 1/8,
# where the defect-map head reads, then depthwise-separable blocks to 1/16 for the classifier.
_DENSE_BLOCKS = ((32, 1), (48, 2), (48, 1), (64, 2), (64, 1))
_BLOCKS = ((128, 2), (128, 1), (192, 1))
MAP_STRIDE = 8


def _channels(base: int, width: float) -> int:
    return max(8, round(base * width / 8) * 8)


def build_classifier(
    input_shape: tuple[int, int, int],
    num_classes: int,
    width: float = 1.0,
    dropout: float = 0.2,
    defect_map: bool = False,
    map_context: bool = False,
) -> Any:
    """A Keras model: uint8-range image (H, W, C) -> class probabilities, named ``probabilities``.

    With ``defect_map`` the outputs are a dict that adds ``defect_map``, a sigmoid map at
    1/8 of the input for training with defect masks; ``deployable`` keeps it as the ``heatmap`` output.
    ``map_context`` lets the map also read the last 1/16 features (upsampled): a receptive field
    of ~120 px instead of ~43 px at the 1/8 cells, for defects that are a change of the part's shape.
    """
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
    # Full 3x3 convolutions down to 1/8: a defect is a few pixels of texture that depthwise
    # filters alone picked up far more slowly here (held-out AUC 0.5 vs 0.79 after 15 epochs
    # of the same 1,600 images, defect map supervised in both).
    for i, (base, stride) in enumerate(_DENSE_BLOCKS):
        x = conv_bn(x, _channels(base, width), 3, stride, f"dense{i + 1}")
    features = x
    for i, (base, stride) in enumerate(_BLOCKS):
        name = f"block{i + 1}"
        x = layers.DepthwiseConv2D(3, strides=stride, padding="same", use_bias=False, name=f"{name}_dw")(x)
        x = layers.BatchNormalization(momentum=0.9, name=f"{name}_dw_bn")(x)
        x = layers.ReLU(6.0, name=f"{name}_dw_relu")(x)
        x = conv_bn(x, _channels(base, width), 1, 1, f"{name}_pw")
    # Average pooling alone dilutes a defect covering one cell of 16x16 by 256x; the max
    # keeps it. Both together: measured +0.06..0.1 validation AUC on the synthetic set.
    pooled = [
        layers.GlobalAveragePooling2D(name="pool_avg")(x),
        layers.GlobalMaxPooling2D(name="pool_max")(x),
    ]
    heat = None
    if defect_map:
        # Where the defect is, supervised by the masks: it teaches the early blocks what a defect
        # looks like from a few hundred images, where the class label alone leaves the loss flat
        # for many epochs (the segmentation-then-decision idea of Tabernik et al., 2019). The
        # classifier also reads the map's peak, so the deployed model keeps this evidence.
        if map_context:
            # A chipped edge is background where the outline should continue: a cell sees a notch
            # only against the arc around it, wider than the 1/8 features' ~43 px reach at 160 px.
            wide = layers.UpSampling2D(2, interpolation="bilinear", name="map_context_up")(x)
            features = layers.Concatenate(name="map_features")([features, wide])
        heat = layers.Conv2D(1, 1, activation="sigmoid", name="defect_map")(features)
        pooled += [
            layers.GlobalMaxPooling2D(name="map_max")(heat),
            layers.GlobalAveragePooling2D(name="map_avg")(heat),
        ]
    x = layers.Concatenate(name="pool")(pooled)
    x = layers.Dropout(dropout, name="dropout")(x)
    logits = layers.Dense(num_classes, name="logits")(x)
    outputs = layers.Softmax(name="probabilities")(logits)
    if heat is None:
        return keras.Model(inputs, outputs, name="inspect_cnn")
    return keras.Model(inputs, {"probabilities": outputs, "defect_map": heat}, name="inspect_cnn_train")


def deployable(model: Any, good_index: int) -> tuple[Any, str]:
    """The exported model: image -> {"probabilities", "heatmap"}, sharing the trained layers.

    The heatmap is the defect map when the model was trained with masks (kind ``defect_map``);
    otherwise a class activation map baked into the graph (kind ``class_activation``): the
    classifier's dense layer applied to each 1/16 cell's features as if that cell filled both
    pooling slots, then 1 - p(good) per cell. No gradients on the device, one 1x1 convolution
    and a softmax over a 10x10 grid at 160 px: it costs a fraction of a percent of the invoke.
    """
    import keras
    from keras import layers

    probabilities = model.get_layer("probabilities").output
    if any(layer.name == "defect_map" for layer in model.layers):
        # A twin of the map head for the output: the int8 converter gives the map the scale of the
        # ReLU6 features it is concatenated with (0..6 in 255 steps: 42 levels for 0..1), while a
        # sigmoid of its own keeps ~1/256. An exact copy would be merged back by the converter, so
        # the twin computes 1 - sigmoid(-z), the same value from different constants. Measured at
        # 64 px: peak-cell agreement of int8 with the float map 0.895 through the shared tensor.
        # Cost: one 1x1 convolution to one channel at 1/8 resolution.
        trained = model.get_layer("defect_map")
        kernel, bias = trained.get_weights()
        twin = layers.Conv2D(1, 1, activation="sigmoid", name="heatmap_head")
        heat = layers.Rescaling(-1.0, offset=1.0, name="heatmap_flip")(twin(trained.input))
        twin.set_weights([-kernel, -bias])
        kind = "defect_map"
    else:
        features = model.get_layer("pool_avg").input
        kernel, bias = model.get_layer("logits").get_weights()
        channels = features.shape[-1]
        if kernel.shape[0] != 2 * channels:
            raise ValueError(f"expected avg+max pooled features of {2 * channels}, dense has {kernel.shape}")
        local = layers.Conv2D(kernel.shape[1], 1, name="cam_logits")
        logits = local(features)
        # The pooled vector is [avg, max]; one cell standing for the whole part fills both.
        local.set_weights([(kernel[:channels] + kernel[channels:])[None, None], bias])
        local.trainable = False
        cell_probs = layers.Softmax(name="cam_softmax")(logits)
        # 1 - p(good) as a fixed 1x1 convolution (a Lambda would not reload from .keras safely).
        defect = layers.Conv2D(1, 1, name="cam")
        heat = defect(cell_probs)
        pick = np.zeros((1, 1, kernel.shape[1], 1), np.float32)
        pick[0, 0, good_index, 0] = -1.0
        defect.set_weights([pick, np.ones(1, np.float32)])
        kind = "class_activation"
    outputs = {"probabilities": probabilities, "heatmap": heat}
    return keras.Model(model.inputs, outputs, name="inspect_cnn"), kind
