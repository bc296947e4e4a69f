"""What the heatmap output costs on the device: the same trained classifier exported twice.

    python scripts/heatmap_cost.py --model runs/parts/model.keras --data data/parts --runs 300

Exports ``model.keras`` (written by ``inspect-model train``) as int8 with the heatmap output and
as int8 with probabilities only, then times single-image invokes of the two alternately (so
machine noise hits both alike), plus the event thread's work per NG part (heatmap statistics
and regions, and the overlay on a 1280x720 frame). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np


def _median_ms(samples: list[float]) -> float:
    return round(float(np.median(samples)) * 1000.0, 4)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", type=Path, required=True, help="model.keras from inspect-model train")
    parser.add_argument("--data", type=Path, required=True, help="images for int8 calibration")
    parser.add_argument("--runs", type=int, default=300, help="timed invokes per model")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    import keras

    from agent.bundle import Heatmap
    from agent.localize import summarize_heatmap
    from agent.model import TFLiteModel
    from agent.preprocess import Transform
    from agent.render import overlay_heatmap
    from tools.convert import convert_variant
    from tools.dataset import sample_images
    from tools.source_model import input_spec, load_source_model, meta_from_training_json

    source = load_source_model(args.model)
    spec = input_spec(meta_from_training_json(args.model.parent / "training.json"), source.input_shape)
    rep = sample_images(args.data, spec, 100, 0)
    probabilities = keras.Model(source.keras_model.inputs, source.keras_model.output["probabilities"])
    plain = replace(source, _model=probabilities, primary_output=None)
    models = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, exported in (("with_heatmap", source), ("probabilities_only", plain)):
            path = Path(tmp) / f"{name}.tflite"
            path.write_bytes(convert_variant(exported, "int8", rep))
            models[name] = TFLiteModel(path, num_threads=args.threads)
        tensor = rep[:1].astype(np.uint8)
        timings: dict[str, list[float]] = {name: [] for name in models}
        for i in range(args.runs + 10):
            for name, model in models.items():
                start = time.perf_counter()
                model.run(tensor)
                if i >= 10:
                    timings[name].append(time.perf_counter() - start)
        outputs = models["with_heatmap"].run(tensor)
    values = next(o for o in outputs if o.ndim == 4)[0, :, :, 0]
    heatmap = Heatmap(values, (spec.width, spec.height), Transform(spec.width / 400, spec.height / 400), 0.5,
                      "defect_map")  # fmt: skip
    frame = np.full((720, 1280, 3), 100, np.uint8)
    crop = (400, 160, 400, 400)
    event_s, overlay_s = [], []
    for _ in range(args.runs):
        start = time.perf_counter()
        summary = summarize_heatmap(heatmap, crop, frame.shape)
        event_s.append(time.perf_counter() - start)
        start = time.perf_counter()
        overlay_heatmap(frame, summary.unit, heatmap.transform, crop, summary.threshold)
        overlay_s.append(time.perf_counter() - start)
    with_ms, plain_ms = _median_ms(timings["with_heatmap"]), _median_ms(timings["probabilities_only"])
    print(json.dumps({
        "input": spec.shape, "heatmap": list(values.shape), "threads": args.threads, "runs": args.runs,
        "invoke_ms_p50": {"with_heatmap": with_ms, "probabilities_only": plain_ms},
        "extra_invoke_percent": round(100.0 * (with_ms - plain_ms) / plain_ms, 2),
        "event_thread_ms_p50": {
            "summary_and_regions": _median_ms(event_s), "overlay_1280x720": _median_ms(overlay_s),
        },
    }, indent=2))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
