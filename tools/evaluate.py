"""``inspect-model evaluate``: any mix of Keras and TFLite variants on one labelled folder.

    inspect-model evaluate --data data/holdout --out reports/parts \\
        --model runs/parts/model.keras --model models/parts_float32.tflite --model models/parts_int8.tflite

The first ``--model`` is the reference the others are compared with. Writes
``report.json``, ``report.md``, ``report.html``, ``roc.png`` and per variant a
confusion matrix and a grid of misses. ``--write-threshold`` stores the threshold
that reaches ``--target-recall`` on this data back into each TFLite model card
(use a validation set for that, not the final test set).
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from agent.modelcard import card_path_for, load_card, save_card, with_defect_threshold
from agent.status import ExitStatus, InspectError
from tools._cli_util import HelpFormatter, ensure_output_dir
from tools.dataset import LabelledImages, load_images
from tools.localization import localization_metrics, upsample
from tools.metrics import (
    classification_metrics,
    defect_scores,
    flagged_by_class,
    flagged_per_folder,
    threshold_for_recall,
)
from tools.report import format_figure, write_reports
from tools.variants import Variant, load_variant

__all__ = ["add_parser", "evaluate_variant", "run"]

log = logging.getLogger(__name__)


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "evaluate",
        help="accuracy, P/R/F1, ROC-AUC, threshold for a target recall, size and latency per variant",
        description=__doc__,
        formatter_class=HelpFormatter,
    )
    p.add_argument("--data", type=Path, required=True, help="labelled ImageFolder tree or manifest .csv")
    p.add_argument(
        "--model",
        type=Path,
        action="append",
        required=True,
        help=".keras/.h5 or .tflite (card beside it); repeat",
    )
    p.add_argument("--out", type=Path, required=True, help="report folder")
    p.add_argument(
        "--target-recall", type=float, default=0.98, help="defect recall the reported threshold keeps"
    )
    p.add_argument(
        "--write-threshold", action="store_true", help="store that threshold into each TFLite card"
    )
    p.add_argument(
        "--threads", type=int, nargs="+", default=[1, os.cpu_count() or 1], help="interpreter threads timed"
    )
    p.add_argument("--latency-runs", type=int, default=50, help="timed invokes per thread count")
    p.add_argument("--max-misses", type=int, default=24, help="images in each misses grid")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tools import detect_eval

    if detect_eval.is_detector(args.model):
        return detect_eval.run(args)
    out = ensure_output_dir(args.out)
    variants = [load_variant(path) for path in args.model]
    labels = variants[0].labels
    for variant in variants[1:]:
        if variant.labels != labels:
            raise InspectError(
                f"{variant.path} has labels {variant.labels}, {variants[0].path} has {labels}: "
                "compare like with like",
                ExitStatus.DATA_ERROR,
            )
    datasets: dict[str, LabelledImages] = {}  # one load per distinct input size/colour
    entries = []
    for variant in variants:
        key = variant.spec.model_dump_json(include={"shape", "color_order", "resize"})
        if key not in datasets:
            datasets[key] = _load_data(args.data, variant)
        entries.append((variant, evaluate_variant(variant, datasets[key], args), datasets[key]))
    results = [result for _, result, _ in entries]
    data = entries[0][2]
    _compare(results)
    report = {
        "data": {"source": str(args.data), **data.summary()},
        "target_recall": args.target_recall,
        "variants": results,
    }
    write_reports(report, entries, out, args.max_misses)
    if args.write_threshold:
        _write_thresholds(variants, results, args)
    _print_table(results)
    for result in results:
        if "localization" in result:
            loc = result["localization"]
            figures = ", ".join(
                f"{label} {format_figure(loc[key])}"
                for label, key in (
                    ("pixel AUC", "pixel_roc_auc"),
                    ("PRO", "pro"),
                    ("peak in mask", "peak_in_mask"),
                    ("IoU", "iou_at_threshold"),
                )
            )
            print(f"{result['name']:<28} localization on {loc['images']} images: {figures}")
    print(f"wrote {out / 'report.json'}, {out / 'report.md'}, {out / 'report.html'}")
    return int(ExitStatus.OK)


def _load_data(source: Path, variant: Variant) -> LabelledImages:
    """The labelled data as this variant sees it; masks come along when the variant has a heatmap.

    An anomaly model knows only good/anomaly: every defect folder counts as its anomaly label,
    which also makes the defect kinds it never saw part of the test.
    """
    good = variant.good_label if variant.heatmap_kind else None
    if variant.task != "anomaly":
        return load_images(source, variant.spec, class_names=variant.labels, good_label=good)
    data = load_images(source, variant.spec, good_label=variant.good_label)
    if variant.good_label not in data.class_names:
        raise InspectError(
            f"{source} has no {variant.good_label!r} folder: an anomaly evaluation needs good images",
            ExitStatus.DATA_ERROR,
        )
    is_good = data.labels == data.class_names.index(variant.good_label)
    data.kinds = [data.class_names[i] for i in data.labels]
    data.labels = np.where(is_good, variant.good_index, 1 - variant.good_index).astype(np.int64)
    data.class_names = list(variant.labels)
    return data


def evaluate_variant(variant: Variant, data: LabelledImages, args: argparse.Namespace) -> dict[str, Any]:
    probs, heatmaps = variant.predict_with_heatmaps(data.pixels)
    good = variant.good_index
    is_defect = data.labels != good
    scores = defect_scores(probs, good)
    choice = threshold_for_recall(is_defect, scores, args.target_recall)
    result: dict[str, Any] = {
        "name": variant.name,
        "path": str(variant.path),
        "kind": variant.kind,
        "quantization": variant.quantization,
        "size_bytes": variant.size_bytes,
        "task": variant.task,
        "heatmap_kind": variant.heatmap_kind,
        "metrics": classification_metrics(data.labels, probs, data.class_names, good, variant.threshold),
        "threshold_for_target_recall": choice.as_dict(),
        "metrics_at_target_threshold": classification_metrics(
            data.labels, probs, data.class_names, good, choice.threshold
        ),
        "latency_ms": variant.latency(data.pixels[0], args.threads, args.latency_runs),
        "_probs": probs,
    }
    # Recall per defect kind of the good/defect decision (the one the agent acts on), not of the
    # kind argmax: a chip called "crack" is still caught, a chip called "good" is the miss that matters.
    flagged = scores > variant.threshold
    result["flagged_by_class"] = {
        "card_threshold": flagged_by_class(data.labels, data.class_names, flagged),
        "target_threshold": flagged_by_class(data.labels, data.class_names, scores > choice.threshold),
    }
    if variant.task == "anomaly" and data.kinds:
        result["flagged_per_folder"] = flagged_per_folder(data.kinds, flagged)
    if heatmaps is not None and data.masks is not None and data.mask_known is not None:
        maps = upsample(heatmaps, variant.spec.height, variant.spec.width)
        result["localization"] = localization_metrics(
            maps, data.masks, data.mask_known, variant.pixel_threshold
        )
        result["_heatmaps"] = maps
    return result


def _compare(results: list[dict[str, Any]]) -> None:
    """Each variant against the first: accuracy delta, size ratio, prediction agreement."""
    ref = results[0]
    for result in results:
        result["vs_reference"] = {
            "reference": ref["name"],
            "accuracy_delta_points": 100.0 * (result["metrics"]["accuracy"] - ref["metrics"]["accuracy"]),
            "size_ratio": result["size_bytes"] / ref["size_bytes"] if ref["size_bytes"] else None,
            "top1_agreement": float(np.mean(result["_probs"].argmax(1) == ref["_probs"].argmax(1))),
        }


def _write_thresholds(
    variants: list[Variant], results: list[dict[str, Any]], args: argparse.Namespace
) -> None:
    for variant, result in zip(variants, results, strict=True):
        if variant.kind != "tflite":
            continue
        card_path = card_path_for(variant.path)
        choice = result["threshold_for_target_recall"]
        source = f"evaluate on {args.data} ({result['metrics']['images']} images)"
        card = with_defect_threshold(load_card(card_path), choice["threshold"], source, args.target_recall)
        save_card(card, card_path)
        print(f"stored defect threshold {choice['threshold']:.4f} in {card_path}")


def _print_table(results: list[dict[str, Any]]) -> None:
    print(
        f"{'variant':<28} {'bytes':>9} {'acc':>7} {'AUC':>7} {'thr@R':>7} {'P@R':>6} {'R':>6} "
        f"{'ms 1t':>6} {'ms Nt':>6}"
    )
    for r in results:
        m, t, lat = r["metrics"], r["threshold_for_target_recall"], r["latency_ms"]
        auc = f"{m['defect_roc_auc']:.4f}" if m["defect_roc_auc"] is not None else "n/a"
        times = [f"{v['p50']:.2f}" for v in lat.values()] + ["n/a", "n/a"]
        print(
            f"{r['name']:<28} {r['size_bytes']:>9} {m['accuracy']:>7.4f} {auc:>7} {t['threshold']:>7.4f} "
            f"{t['precision']:>6.3f} {t['recall']:>6.3f} {times[0]:>6} {times[1]:>6}"
        )
