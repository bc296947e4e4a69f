"""Evaluation report files: report.json for programs, report.md and report.html for people, PNG plots."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import numpy as np

from tools.dataset import LabelledImages
from tools.metrics import defect_scores
from tools.plots import plot_confusion, plot_localization_gallery, plot_misses, plot_roc
from tools.variants import Variant

__all__ = ["dump_json", "write_reports"]


def dump_json(report: dict[str, Any], path: Path) -> None:
    """JSON without private keys (those starting with '_', e.g. raw probabilities)."""

    def clean(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items() if not str(k).startswith("_")}
        if isinstance(value, list):
            return [clean(v) for v in value]
        return value

    path.write_text(json.dumps(clean(report), indent=2) + "\n")


def _slug(name: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in name)


def _misses(
    variant: Variant, result: dict[str, Any], data: LabelledImages, limit: int
) -> tuple[list[np.ndarray], list[str]]:
    """Wrong decisions first (defects passed as good, then good parts rejected), then wrong defect kinds."""
    probs = result["_probs"]
    good = variant.good_index
    scores = defect_scores(probs, good)
    is_defect = data.labels != good
    flagged = scores > variant.threshold
    predicted = probs.argmax(axis=1)
    escaped = np.flatnonzero(is_defect & ~flagged)
    rejected = np.flatnonzero(~is_defect & flagged)
    wrong_kind = np.flatnonzero(is_defect & flagged & (predicted != data.labels))
    order = np.concatenate([escaped, rejected, wrong_kind])[:limit]
    images, captions = [], []
    for i in order:
        images.append(data.pixels[i])
        captions.append(
            f"{data.class_names[data.labels[i]]} -> {data.class_names[predicted[i]]} ({scores[i]:.2f})"
        )
    return images, captions


def _gallery(
    variant: Variant, heatmaps: np.ndarray, data: LabelledImages, path: Path, count: int = 8
) -> None:
    """Image / heatmap / ground truth for defect images with masks (evenly spread), then two good ones."""
    assert data.masks is not None and data.mask_known is not None
    with_mask = np.flatnonzero(data.mask_known & (data.masks.reshape(len(data), -1).max(1) > 0))
    good = np.flatnonzero(data.labels == variant.good_index)[:2]
    picked = with_mask[np.linspace(0, len(with_mask) - 1, min(count - len(good), len(with_mask))).astype(int)]
    index = np.concatenate([picked, good]).astype(int) if len(with_mask) else good
    kinds = data.kinds or [data.class_names[i] for i in data.labels]
    captions = [f"{kinds[i]}: {Path(data.paths[i]).name}" for i in index]
    plot_localization_gallery(
        data.pixels[index], heatmaps[index], data.masks[index], captions,
        f"{variant.name}: image / heatmap / ground truth", path, variant.pixel_threshold,
    )  # fmt: skip


def write_reports(
    report: dict[str, Any],
    entries: list[tuple[Variant, dict[str, Any], LabelledImages]],
    out: Path,
    max_misses: int,
) -> None:
    from sklearn.metrics import roc_curve

    curves = {}
    for variant, result, data in entries:
        slug = _slug(variant.name)
        plot_confusion(
            result["metrics"]["confusion_matrix"],
            data.class_names,
            variant.name,
            out / f"confusion_{slug}.png",
        )
        images, captions = _misses(variant, result, data, max_misses)
        plot_misses(
            images,
            captions,
            f"{variant.name}: misses at threshold {variant.threshold:.3f}",
            out / f"misses_{slug}.png",
        )
        result["plots"] = {"confusion": f"confusion_{slug}.png", "misses": f"misses_{slug}.png"}
        if "_heatmaps" in result and data.masks is not None:
            _gallery(variant, result["_heatmaps"], data, out / f"gallery_{slug}.png")
            result["plots"]["gallery"] = f"gallery_{slug}.png"
        is_defect = data.labels != variant.good_index
        if is_defect.any() and (~is_defect).any():
            fpr, tpr, _ = roc_curve(is_defect, defect_scores(result["_probs"], variant.good_index))
            curves[variant.name] = (fpr, tpr, result["metrics"]["defect_roc_auc"])
    plot_roc(curves, out / "roc.png")
    report["plots"] = {"roc": "roc.png"}
    dump_json(report, out / "report.json")
    (out / "report.md").write_text(_markdown(report))
    (out / "report.html").write_text(_html(report))


def _summary_rows(report: dict[str, Any]) -> list[list[str]]:
    rows = []
    for r in report["variants"]:
        m, t, v = r["metrics"], r["threshold_for_target_recall"], r["vs_reference"]
        lat = r["latency_ms"]
        rows.append(
            [
                r["name"],
                r["quantization"],
                f"{r['size_bytes']:,}",
                f"{v['size_ratio']:.2f}" if v["size_ratio"] else "",
                f"{100 * m['accuracy']:.2f}",
                f"{v['accuracy_delta_points']:+.2f}",
                f"{v['top1_agreement']:.4f}",
                f"{m['defect_roc_auc']:.4f}" if m["defect_roc_auc"] is not None else "n/a",
                f"{m['defect_threshold']:.3f}: P {m['defect_precision']:.3f} R {m['defect_recall']:.3f}",
                f"{t['threshold']:.3f}: P {t['precision']:.3f} R {t['recall']:.3f}",
                " / ".join(f"{k.split('_')[1]}t {x['p50']:.2f}" for k, x in lat.items()) or "n/a",
            ]
        )
    return rows


_HEADER = [
    "variant",
    "quant",
    "bytes",
    "size vs ref",
    "accuracy %",
    "Δ acc (pts)",
    "agreement",
    "defect AUC",
    "card threshold",
    "threshold @ target recall",
    "p50 ms by threads",
]


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _per_class_rows(result: dict[str, Any]) -> list[list[str]]:
    rows = []
    for name, m in result["metrics"]["per_class"].items():
        if isinstance(m, dict) and "support" in m and name not in ("macro avg", "weighted avg"):
            rows.append(
                [
                    name,
                    f"{m['precision']:.3f}",
                    f"{m['recall']:.3f}",
                    f"{m['f1-score']:.3f}",
                    str(int(m["support"])),
                ]
            )
    return rows


_LOC_HEADER = ["variant", "heatmap", "images (defect)", "pixel AUC", "PRO@0.3", "peak in mask", "IoU @ thr"]


def format_figure(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _localization_rows(report: dict[str, Any]) -> list[list[str]]:
    rows = []
    for r in report["variants"]:
        loc = r.get("localization")
        if loc is None:
            continue
        rows.append(
            [
                r["name"],
                str(r.get("heatmap_kind")),
                f"{loc['images']} ({loc['defect_images']})",
                format_figure(loc["pixel_roc_auc"]),
                format_figure(loc["pro"]),
                format_figure(loc["peak_in_mask"]),
                format_figure(loc["iou_at_threshold"]),
            ]
        )
    return rows


_FLAGGED_HEADER = ["class", "at the card's threshold", "at the target-recall threshold"]


def _flagged_rows(result: dict[str, Any]) -> list[list[str]]:
    flagged = result.get("flagged_by_class")
    if not flagged:
        return []
    card, target = flagged["card_threshold"], flagged["target_threshold"]
    return [[name, format_figure(card[name]), format_figure(target[name])] for name in card]


def _markdown(report: dict[str, Any]) -> str:
    data = report["data"]
    parts = [
        "# Evaluation report",
        "",
        f"Data: `{data['source']}`, {data['images']} images {data['classes']}; skipped {data['skipped']}.",
        f"Target defect recall: {report['target_recall']}. Reference: `{report['variants'][0]['name']}`.",
        "",
        _md_table(_HEADER, _summary_rows(report)),
        "",
        "![ROC](roc.png)",
    ]
    if _localization_rows(report):
        parts += [
            "",
            "## Localization (images with masks)",
            "",
            _md_table(_LOC_HEADER, _localization_rows(report)),
        ]
    for r in report["variants"]:
        parts += [
            "",
            f"## {r['name']}",
            "",
            _md_table(["class", "precision", "recall", "F1", "support"], _per_class_rows(r)),
            "",
            "Flagged NG per true class (good/defect decision: recall per defect kind, false alarms on good):",
            "",
            _md_table(_FLAGGED_HEADER, _flagged_rows(r)),
            "",
            f"![confusion]({r['plots']['confusion']})",
            f"![misses]({r['plots']['misses']})",
        ]
        if "gallery" in r["plots"]:
            parts.append(f"![image / heatmap / ground truth]({r['plots']['gallery']})")
    return "\n".join(parts) + "\n"


def _html_table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _html(report: dict[str, Any]) -> str:
    data = report["data"]
    sections = [
        "<h1>Evaluation report</h1>",
        f"<p>Data: <code>{html.escape(data['source'])}</code>, {data['images']} images "
        f"{html.escape(str(data['classes']))}; skipped {html.escape(str(data['skipped']))}. "
        f"Target defect recall {report['target_recall']}.</p>",
        _html_table(_HEADER, _summary_rows(report)),
        '<img src="roc.png" alt="ROC curves">',
    ]
    if _localization_rows(report):
        sections += [
            "<h2>Localization (images with masks)</h2>",
            _html_table(_LOC_HEADER, _localization_rows(report)),
        ]
    for r in report["variants"]:
        sections += [
            f"<h2>{html.escape(r['name'])}</h2>",
            _html_table(["class", "precision", "recall", "F1", "support"], _per_class_rows(r)),
            "<p>Flagged NG per true class (good/defect decision: recall per defect kind, false alarms on "
            "good):</p>",
            _html_table(_FLAGGED_HEADER, _flagged_rows(r)),
            f'<img src="{r["plots"]["confusion"]}" alt="confusion matrix">',
            f'<img src="{r["plots"]["misses"]}" alt="misses">',
        ]
        if "gallery" in r["plots"]:
            sections.append(f'<img src="{r["plots"]["gallery"]}" alt="image, heatmap, ground truth">')
    style = (
        "body{font-family:sans-serif;margin:2em;max-width:1400px}table{border-collapse:collapse;margin:1em 0}"
        "td,th{border:1px solid #ccc;padding:4px 8px;font-size:13px}th{background:#eee}img{max-width:100%}"
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>Evaluation report</title>"
        f"<style>{style}</style></head><body>{''.join(sections)}</body></html>\n"
    )
