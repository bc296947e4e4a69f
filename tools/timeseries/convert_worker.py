"""One TFLite conversion in its own process: ``python -m tools.timeseries.convert_worker``.

The converter can abort the whole process on recurrent graphs (a segfault in MLIR when an LSTM is
not unrolled, seen with TF 2.21): run here, such a crash is an exit code the parent turns into one
clear error instead of taking ``inspect-model`` down with it.

    python -m tools.timeseries.convert_worker MODEL.keras ARCH VARIANT OUT.tflite REP.npy
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

from tools.tf_util import captured_native_output, import_tensorflow


def convert(model_path: Path, architecture: str, variant: str, rep: np.ndarray) -> bytes:
    tf = import_tensorflow()
    import keras

    from tools.timeseries.model import export_model

    model = export_model(keras.models.load_model(str(model_path), compile=False), architecture)
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if variant != "float32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if variant == "int8":

        def representative() -> Any:
            for i in range(len(rep)):
                yield [rep[i : i + 1].astype(np.float32)]

        converter.representative_dataset = representative
        # Integer kernels throughout; input and output stay float32 (a quantize op in, a dequantize op
        # out), so the device feeds standardised floats to every variant alike.
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    return bytes(converter.convert())


def main(argv: list[str]) -> int:
    model_path, architecture, variant, out, rep_path = argv
    with captured_native_output() as chatter:
        try:
            data = convert(Path(model_path), architecture, variant, np.load(rep_path))
        except Exception as exc:  # ConverterError and friends: one line for the parent
            error = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
        else:
            error = ""
    if error:
        print(error, file=sys.stderr)
        print("\n".join(chatter[-20:]), file=sys.stderr)
        return 1
    Path(out).write_bytes(data)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
