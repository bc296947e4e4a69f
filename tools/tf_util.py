"""TensorFlow import with a clear error, tool versions for provenance, a tqdm epoch bar."""

from __future__ import annotations

import contextlib
import os
import platform
import sys
import tempfile
from collections.abc import Iterator
from typing import Any

from agent import __version__
from agent.status import ExitStatus, InspectError

__all__ = ["captured_native_output", "import_tensorflow", "tool_versions", "tqdm_epochs"]


def import_tensorflow() -> Any:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep oneDNN/CUDA banners out of users' logs
    try:
        # The import prints oneDNN/absl banners from C++ that no log level silences.
        with captured_native_output():
            import tensorflow as tf
    except ImportError as exc:
        raise InspectError(
            "TensorFlow is not installed: pip install 'inspect-edge[train]' on the workstation",
            ExitStatus.UNAVAILABLE,
        ) from exc
    return tf


def tool_versions() -> dict[str, str]:
    import numpy

    versions = {"inspect-edge": __version__, "python": platform.python_version(), "numpy": numpy.__version__}
    try:
        import keras
        import tensorflow as tf

        versions.update(tensorflow=tf.__version__, keras=keras.__version__)
    except ImportError:
        pass
    return versions


def tqdm_epochs(epochs: int) -> Any:
    """A Keras callback: one progress bar over epochs with the latest losses.

    Keras' own per-batch bar floods CI logs. Built in a function so that importing
    this module does not import TensorFlow.
    """
    import keras
    from tqdm import tqdm

    class TqdmEpochs(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self._bar = tqdm(total=epochs, unit="epoch", dynamic_ncols=True)

        def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
            logs = logs or {}
            shown = {}
            for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
                # two-output runs log the classifier's accuracy as probabilities_accuracy
                value = logs.get(key, logs.get(key.replace("accuracy", "probabilities_accuracy")))
                if value is not None:
                    shown[key] = f"{value:.4f}"
            self._bar.set_postfix(shown)
            self._bar.update(1)

        def on_train_end(self, logs: dict[str, float] | None = None) -> None:
            self._bar.close()

    return TqdmEpochs()


@contextlib.contextmanager
def captured_native_output() -> Iterator[list[str]]:
    """Send the C++ converter's stdout/stderr chatter to a buffer instead of the user's terminal.

    The TFLite converter prints hundreds of lines (captured tensors, MLIR banners) at
    the file-descriptor level, so ``contextlib.redirect_stdout`` cannot catch it. The
    yielded list receives the captured lines afterwards, for error messages.
    """
    lines: list[str] = []
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        try:
            yield lines
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
            sink.seek(0)
            lines.extend(sink.read().decode(errors="replace").splitlines())
