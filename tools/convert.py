"""``inspect-model convert``: Keras/SavedModel -> TFLite variants, each with its model card, each verified.

    inspect-model convert --model runs/parts/model.keras --rep-data data/parts --out models/ --name parts

Variants: ``float32`` (reference), ``float16`` (half the size, float kernels),
``dynamic`` (int8 weights, float activations), ``int8`` (full integer with uint8 or
int8 input/output, calibrated on ``--rep-samples`` images from ``--rep-data``).
Every variant is loaded back in the device's interpreter (ai-edge-litert) and
compared with the source model on the representative images; a variant whose
top-1 agreement falls below ``--min-agreement`` makes the command exit 3.
"""

from __future__ import annotations

import argparse
import logging
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from agent.bundle import HEATMAP, find_output, scores_output
from agent.model import TFLiteModel
from agent.modelcard import (
    InputSpec,
    ModelCard,
    Thresholds,
    card_path_for,
    file_sha256,
    save_card,
)
from agent.status import ExitStatus, InspectError
from tools._cli_util import HelpFormatter, add_tflite_output_arguments, ensure_output_dir
from tools.dataset import sample_images
from tools.source_model import ModelMeta, SourceModel, input_spec, load_source_model, meta_from_training_json
from tools.tf_util import captured_native_output, import_tensorflow, tool_versions
from tools.variants import tflite_all_outputs

__all__ = ["VARIANTS", "Verification", "add_parser", "convert_variant", "run"]

log = logging.getLogger(__name__)

VARIANTS = ("float32", "float16", "dynamic", "int8")
MIN_REP_SAMPLES = 100  # fewer calibration images than this gives noisy int8 ranges (anomalib warns at 300)


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "convert",
        help="convert and quantize to TFLite, write model cards, verify against the source model",
        description=__doc__,
        formatter_class=HelpFormatter,
    )
    p.add_argument("--model", type=Path, required=True, help=".keras, legacy .h5 or a SavedModel folder")
    add_tflite_output_arguments(p, VARIANTS)
    p.add_argument(
        "--rep-data",
        type=Path,
        help="images for int8 calibration and verification (default: the training data)",
    )
    p.add_argument("--rep-samples", type=int, default=200, help="representative images drawn (seeded)")
    p.add_argument(
        "--int8-io", choices=["uint8", "int8"], default="uint8", help="input/output type of the int8 model"
    )
    p.add_argument(
        "--min-agreement",
        type=float,
        default=0.97,
        help="least top-1 agreement with the source model on images it is confident about",
    )
    p.add_argument("--seed", type=int, default=0)
    meta = p.add_argument_group("model facts (default: from training.json beside the model)")
    meta.add_argument("--training-json", type=Path, help="training record written by `inspect-model train`")
    meta.add_argument("--labels", type=Path, help="text file, one label per line, in output order")
    meta.add_argument("--good-label", help="the label meaning a good part")
    meta.add_argument("--color-order", choices=["RGB", "BGR", "GRAY"], help="channel order the model expects")
    meta.add_argument("--mean", type=float, nargs="+", help="per-channel mean subtracted from 0..255 pixels")
    meta.add_argument("--std", type=float, nargs="+", help="per-channel std dividing (pixel - mean)")
    p.set_defaults(func=run)


CONFIDENT_MARGIN = 0.05  # top-1 minus top-2 probability of the source model


@dataclass(frozen=True)
class Verification:
    """How closely a TFLite variant reproduces the source model on the representative images.

    ``top1_agreement`` counts every image. The gate uses ``confident_agreement``: images
    where the source model itself is torn between two classes (margin < 0.05, common in
    an under-trained model) flip under any rounding and say nothing about quantization.
    """

    samples: int
    top1_agreement: float
    confident_samples: int
    confident_agreement: float
    max_abs_diff: float
    mean_abs_diff: float
    heatmap: dict[str, float] | None = None  # heatmap fidelity: abs diffs, peak-cell agreement

    def passed(self, bound: float) -> bool:
        return self.confident_agreement >= bound


def run(args: argparse.Namespace) -> int:
    from tools import detect_export

    if detect_export.is_detector_run(args):
        return detect_export.run(args)
    variants = _parse_variants(args.variants)
    out = ensure_output_dir(args.out)
    source = load_source_model(args.model)
    meta = _resolve_meta(args, source)
    name = args.name or (args.model.parent.name if args.model.stem == "model" else args.model.stem)
    float_spec = input_spec(meta, source.input_shape)
    rep_dir = args.rep_data or Path(str(meta.training.get("data", {}).get("source", "")))
    if args.rep_data is None and not str(rep_dir):
        raise InspectError(
            "--rep-data is needed (no training record names the training data)", ExitStatus.USAGE
        )
    rep = sample_images(rep_dir, float_spec, args.rep_samples, args.seed)
    if len(rep) < MIN_REP_SAMPLES:
        log.warning(
            "only %d representative images (< %d): int8 ranges may be poorly calibrated",
            len(rep),
            MIN_REP_SAMPLES,
        )
    reference = source.predict(rep)
    reference_maps = source.predict_outputs(rep).get(HEATMAP) if meta.heatmap else None
    failed = []
    print(
        f"{'variant':<9} {'bytes':>10} {'agree':>7} {'confident (n)':>14} {'max |diff|':>10} "
        f"{'mean |diff|':>11}  file"
    )
    for variant in variants:
        path = out / f"{name}_{variant}.tflite"
        path.write_bytes(convert_variant(source, variant, rep, args.int8_io))
        model = TFLiteModel(path, num_threads=1)
        spec = input_spec(meta, source.input_shape, model.inputs[0])
        check = _verify(model, spec, rep, reference, reference_maps, meta)
        card = _card(name, args, variant, path, model, spec, meta, source, check)
        save_card(card, card_path_for(path))
        if not check.passed(args.min_agreement):
            failed.append(variant)
        print(
            f"{variant:<9} {path.stat().st_size:>10} {check.top1_agreement:>7.4f} "
            f"{check.confident_agreement:>7.4f} ({check.confident_samples:>4}) "
            f"{check.max_abs_diff:>10.4f} "
            f"{check.mean_abs_diff:>11.5f}  {path}"
        )
    if failed:
        raise InspectError(
            f"top-1 agreement with the source model below --min-agreement {args.min_agreement} for {failed} "
            f"(on the confident ones of {len(rep)} representative images); "
            "their cards say verification.passed=false",
            ExitStatus.CHECK_FAILED,
        )
    return int(ExitStatus.OK)


def _parse_variants(text: str) -> list[str]:
    variants = [v.strip() for v in text.split(",") if v.strip()]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown or not variants:
        raise InspectError(
            f"--variants: unknown {unknown or text!r}, choose from {', '.join(VARIANTS)}", ExitStatus.USAGE
        )
    return variants


def _resolve_meta(args: argparse.Namespace, source: SourceModel) -> ModelMeta:
    record = args.training_json or args.model.parent / "training.json"
    if args.labels:
        labels = [line.strip() for line in args.labels.read_text().splitlines() if line.strip()]
        meta = ModelMeta(labels=labels, good_label=args.good_label)
    elif record.is_file():
        meta = meta_from_training_json(record)
    else:
        raise InspectError(
            f"no training record at {record}: pass --labels FILE "
            "(and --good-label, --color-order, --mean/--std) "
            "for a model trained elsewhere",
            ExitStatus.NO_INPUT,
        )
    meta.good_label = args.good_label or meta.good_label
    meta.color_order = args.color_order or meta.color_order
    meta.mean, meta.std = args.mean or meta.mean, args.std or meta.std
    expected = 1 if meta.task == "anomaly" else len(meta.labels)  # an anomaly model has one score
    if expected != source.num_outputs:
        raise InspectError(
            f"{len(meta.labels)} labels {meta.labels} but the model has {source.num_outputs} outputs",
            ExitStatus.DATA_ERROR,
        )
    return meta


def convert_variant(
    source: SourceModel,
    variant: str,
    rep_pixels: np.ndarray,
    int8_io: str = "uint8",
    float_outputs: bool = False,
) -> bytes:
    """TFLite flatbuffer bytes for one variant; converter failures become one clear error.

    ``float_outputs`` keeps an int8 model's outputs float32 (a detector's class ids and boxes).
    """
    tf = import_tensorflow()
    converter = source.converter()
    if variant != "float32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if variant == "float16":
        converter.target_spec.supported_types = [tf.float16]
    elif variant == "int8":
        samples = rep_pixels.astype(np.float32)
        # Pin the observed input range to the full 0..255 so the input quantization is
        # the identity (scale 1): a brighter frame than any calibration image must not
        # saturate, and the device can feed pixels with a cast. Two pixels barely move
        # the inner activation ranges.
        samples[0].reshape(-1)[0] = 0.0
        samples[0].reshape(-1)[-1] = 255.0

        def representative() -> Any:
            for i in range(len(samples)):
                yield [samples[i : i + 1]]

        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.uint8 if int8_io == "uint8" else tf.int8
        if not float_outputs:
            converter.inference_output_type = converter.inference_input_type
    try:
        with captured_native_output() as chatter:
            return bytes(converter.convert())
    except Exception as exc:  # ConverterError and friends
        log.debug("converter output:\n%s", "\n".join(chatter))
        raise InspectError(
            f"TFLite converter failed for the {variant} variant: {_converter_reason(str(exc))}",
            ExitStatus.DATA_ERROR,
        ) from exc


def _converter_reason(message: str) -> str:
    """The converter's error is pages of MLIR; users need the op names."""
    ops = sorted(set(re.findall(r"'tf\.(\w+)' op is neither a custom op nor a flex op", message)))
    for line in message.splitlines():
        match = re.match(r"\s*(?:Custom|Flex|Select TF) ops: (.+)", line)
        if match:
            ops += [op.strip() for op in match.group(1).split(",") if op.strip() not in ops]
    if ops:
        return (
            f"unsupported op(s) {', '.join(ops)}: not TFLite builtins; replace the layer that uses them "
            "with supported layers (see the TFLite op compatibility guide)"
        )
    lines = [ln.strip() for ln in message.splitlines() if ln.strip()]
    return " | ".join(lines[:2]) or "no reason given"


def _verify(
    model: TFLiteModel,
    spec: InputSpec,
    rep: np.ndarray,
    reference: np.ndarray,
    reference_maps: np.ndarray | None,
    meta: ModelMeta,
) -> Verification:
    all_outputs = tflite_all_outputs(model, spec, rep)
    scores_index = scores_output(model.outputs)
    if scores_index is None:
        raise InspectError(f"{model.path}: the converted model has no scores output", ExitStatus.DATA_ERROR)
    outputs = all_outputs[scores_index]
    diff = np.abs(outputs - reference)
    if meta.task == "anomaly":  # one score: agreement = same side of the image threshold
        norm = meta.anomaly_normalization()
        assert norm is not None, "an anomaly training record always has its normalisation"
        threshold, spread = norm.image_threshold, norm.max - norm.min
        same = (outputs[:, 0] > threshold) == (reference[:, 0] > threshold)
        confident = np.abs(reference[:, 0] - threshold) >= CONFIDENT_MARGIN * spread
        diff = diff / spread  # in units of the normalised score, comparable with probabilities
    else:
        same = outputs.argmax(axis=1) == reference.argmax(axis=1)
        top2 = np.sort(reference, axis=1)[:, -2:]
        confident = (top2[:, 1] - top2[:, 0]) >= CONFIDENT_MARGIN
    heatmap = None
    heatmap_index = find_output(model.outputs, HEATMAP, 4)
    if reference_maps is not None and heatmap_index is not None:
        heatmap = _heatmap_fidelity(all_outputs[heatmap_index], reference_maps)
    if not confident.any():  # nothing to go by but the raw figure
        confident = np.ones_like(same)
    return Verification(
        samples=len(rep),
        top1_agreement=float(same.mean()),
        confident_samples=int(confident.sum()),
        confident_agreement=float(same[confident].mean()),
        max_abs_diff=float(diff.max()),
        mean_abs_diff=float(diff.mean()),
        heatmap=heatmap,
    )


def _heatmap_fidelity(maps: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    """How the variant's heatmaps differ from the source model's: relative to the maps' range."""
    spread = max(float(reference.max() - reference.min()), 1e-6)
    diff = np.abs(maps - reference) / spread
    flat, ref_flat = maps.reshape(len(maps), -1), reference.reshape(len(reference), -1)
    return {
        "max_abs_diff_of_range": float(diff.max()),
        "mean_abs_diff_of_range": float(diff.mean()),
        "peak_cell_agreement": float(np.mean(flat.argmax(1) == ref_flat.argmax(1))),
    }


def _card(
    name: str,
    args: argparse.Namespace,
    variant: str,
    path: Path,
    model: TFLiteModel,
    spec: InputSpec,
    meta: ModelMeta,
    source: SourceModel,
    check: Verification,
) -> ModelCard:
    thresholds = Thresholds(
        defect=float(meta.thresholds.get("defect", 0.5)),
        target_recall=meta.thresholds.get("target_recall"),
        source=str(meta.thresholds.get("source", "default")),
    )
    heatmap = meta.heatmap_spec()
    if heatmap is not None and all(o.signature_name != heatmap.output for o in model.outputs):
        heatmap = None  # a model trained elsewhere whose heatmap output did not survive conversion
    return ModelCard(
        name=name,
        version=args.model_version,
        task=meta.task,  # type: ignore[arg-type]
        labels=meta.labels,
        good_label=meta.good_label,
        quantization=variant,  # type: ignore[arg-type]
        input=spec,
        outputs=model.outputs,
        thresholds=thresholds,
        heatmap=heatmap,
        anomaly=meta.anomaly_normalization(),
        metrics={
            "validation_source_model": meta.validation,
            "verification": {
                "samples": check.samples,
                "top1_agreement": check.top1_agreement,
                "confident_samples": check.confident_samples,
                "confident_agreement": check.confident_agreement,
                "confident_margin": CONFIDENT_MARGIN,
                "max_abs_diff": check.max_abs_diff,
                "mean_abs_diff": check.mean_abs_diff,
                "min_agreement": args.min_agreement,
                "passed": check.passed(args.min_agreement),
                "interpreter": model.backend,
                "heatmap": check.heatmap,
            },
            "validation_localization": meta.heatmap.get("validation"),
        },
        training=meta.training,
        source_model={"path": str(source.path), "format": source.format, "sha256": source.sha256},
        tflite_file=path.name,
        tflite_sha256=file_sha256(path),
        tflite_bytes=path.stat().st_size,
        tools=tool_versions(),
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )
