"""Load a ``.tflite`` file and run it; outputs come back dequantized as float32.

Interpreter import order: ai-edge-litert (maintained, numpy 2, Python 3.9-3.13)
-> tflite-runtime (older device images, numpy<2) -> tensorflow.lite (workstation).
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any

import numpy as np

from agent.modelcard import QuantParams, TensorSpec
from agent.status import ExitStatus, InspectError

__all__ = ["TFLiteModel", "interpreter_backend", "load_interpreter_class"]

_BACKENDS = (
    ("ai_edge_litert.interpreter", "ai-edge-litert"),
    ("tflite_runtime.interpreter", "tflite-runtime"),
    ("tensorflow.lite", "tensorflow"),
)


def load_interpreter_class() -> tuple[Any, str]:
    """The first importable interpreter class and the name of the package it came from."""
    for module_name, backend in _BACKENDS:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        return module.Interpreter, backend
    raise InspectError(
        "no TFLite interpreter found: pip install ai-edge-litert (or tflite-runtime on old images)",
        ExitStatus.UNAVAILABLE,
    )


def interpreter_backend() -> str:
    return load_interpreter_class()[1]


def _spec(detail: dict[str, Any], signature_name: str | None = None) -> TensorSpec:
    scale, zero_point = detail.get("quantization", (0.0, 0))
    quant = QuantParams(scale=float(scale), zero_point=int(zero_point)) if scale else None
    return TensorSpec(
        name=str(detail["name"]),
        shape=[int(d) for d in detail["shape"]],
        dtype=np.dtype(detail["dtype"]).name,
        quantization=quant,
        signature_name=signature_name,
    )


def _signature_output_names(interpreter: Any) -> dict[int, str]:
    """Tensor index -> the output's name in the model's signature (the Keras output name), if any.

    TFLite tensor names (``StatefulPartitionedCall_1:0``) say nothing and the converter orders
    a multi-output model's outputs its own way (alphabetically here), so roles come from the
    signature. Old runtimes without signature runners, or models without a signature, give {}.
    """
    try:
        runner = interpreter.get_signature_runner()
        return {int(d["index"]): str(name) for name, d in runner.get_output_details().items()}
    except (AttributeError, ValueError, RuntimeError, KeyError):
        return {}


class TFLiteModel:
    """A loaded interpreter with its tensor specs; ``run`` returns float32 outputs."""

    def __init__(self, path: Path, num_threads: int | None = None) -> None:
        if not path.is_file():
            raise InspectError(f"model file not found: {path}", ExitStatus.NO_INPUT)
        interpreter_class, self.backend = load_interpreter_class()
        self.path = path
        self.num_threads = num_threads or os.cpu_count() or 1
        try:
            self._interpreter = interpreter_class(model_path=str(path), num_threads=self.num_threads)
            self._interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise InspectError(
                f"cannot load {path} as a TFLite model ({self.backend}): {str(exc).splitlines()[0]}",
                ExitStatus.DATA_ERROR,
            ) from exc
        self._input_details = self._interpreter.get_input_details()
        self._output_details = self._interpreter.get_output_details()
        self.inputs = [_spec(d) for d in self._input_details]
        names = _signature_output_names(self._interpreter)
        self.outputs = [_spec(d, names.get(int(d["index"]))) for d in self._output_details]

    def run(self, tensor: np.ndarray) -> list[np.ndarray]:
        detail = self._input_details[0]
        if tensor.dtype != detail["dtype"] or list(tensor.shape) != list(detail["shape"]):
            raise ValueError(
                f"input must be {np.dtype(detail['dtype']).name}{list(detail['shape'])}, "
                f"got {tensor.dtype.name}{list(tensor.shape)} (model {self.path})"
            )
        self._interpreter.set_tensor(detail["index"], tensor)
        self._interpreter.invoke()
        return [self._dequantized(d) for d in self._output_details]

    def _dequantized(self, detail: dict[str, Any]) -> np.ndarray:
        raw = self._interpreter.get_tensor(detail["index"])
        scale, zero_point = detail.get("quantization", (0.0, 0))
        if not scale:
            return raw.astype(np.float32, copy=False)
        # int64 before subtracting so uint8 - zero_point cannot wrap (as pycoral does).
        return (scale * (raw.astype(np.int64) - zero_point)).astype(np.float32)
