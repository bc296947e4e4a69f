"""Score what the agent published against the line video's ground truth; write summary.json and report.html.

A result is matched to the ground-truth part whose centre is nearest the result's part box
at the frame the verdict was taken on (``x(f) = x_at_frame0 + speed_px_per_frame * f``).
"""

from __future__ import annotations

import html
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["LineTruth", "Summary", "belt_roi", "match_results", "summarise", "write_report"]


def belt_roi(meta: dict[str, Any]) -> tuple[int, int, int, int]:
    """The belt between the rails of a ``synth --video`` line (its line.json), as an ROI (x, y, w, h)."""
    top, bottom = int(meta["belt_y0"]), int(meta["belt_y1"])
    return (0, top, int(meta["width"]), bottom - top)


@dataclass(frozen=True)
class LineTruth:
    parts: list[dict[str, Any]]
    speed_px_per_frame: float
    frame_count: int
    width: int

    @classmethod
    def load(cls, line_json: Path) -> LineTruth:
        meta = json.loads(line_json.read_text())
        speed, frames, width = float(meta["speed_px_per_frame"]), int(meta["frame_count"]), int(meta["width"])
        return cls(meta["parts"], speed, frames, width)

    def expected(self) -> list[dict[str, Any]]:
        """Parts that cross the frame centre while the video runs, whole (not cut by the frame edge)."""
        out = []
        for part in self.parts:
            x0, _, x1, _ = part["box_at_center"]
            if 0 < part["center_frame"] < self.frame_count - 1 and x0 > 0 and x1 < self.width:
                out.append(part)
        return out


def match_results(results: list[dict[str, Any]], truth: LineTruth) -> list[int | None]:
    """For each result, the id of the ground-truth part it inspected (None = no part there)."""
    matched: list[int | None] = []
    for result in results:
        frame, box = result.get("frame") or {}, result.get("part_box")
        pos = frame.get("source_pos")
        if pos is None or box is None:
            matched.append(None)
            continue
        cx, cy = box[0] + box[2] / 2, box[1] + box[3] / 2
        best, best_d = None, float("inf")
        for part in truth.parts:
            if not part["enter_frame"] <= pos <= part["exit_frame"]:
                continue
            x = part["x_at_frame0"] + truth.speed_px_per_frame * pos
            x0, y0, x1, y1 = part["box_at_center"]
            d = float(np.hypot(cx - x, cy - part["y_center"]))
            if d < max(x1 - x0, y1 - y0) / 2 and d < best_d:
                best, best_d = part["id"], d
        matched.append(best)
    return matched


@dataclass(frozen=True)
class Summary:
    parts_expected: int
    parts_inspected: int  # distinct expected parts with a verdict
    parts_missed: int
    duplicate_verdicts: int  # a second verdict for the same part
    unmatched_verdicts: int  # verdicts where no part was
    true_ng: int
    false_ng: int
    missed_ng: int
    true_ok: int
    ng_precision: float | None
    ng_recall: float | None
    accuracy: float | None
    events: int
    latency_ms_p50: float | None
    latency_ms_p99: float | None


def summarise(results: list[dict[str, Any]], events: list[dict[str, Any]], truth: LineTruth) -> Summary:
    expected = {p["id"]: p for p in truth.expected()}
    ids = match_results(results, truth)
    seen: set[int] = set()
    duplicates = unmatched = tp = fp = fn = tn = 0
    for result, part_id in zip(results, ids, strict=True):
        if part_id is None:
            unmatched += 1
            continue
        if part_id in seen:
            duplicates += 1
            continue
        seen.add(part_id)
        defect = next(p for p in truth.parts if p["id"] == part_id)["label"] != "good"
        ng = result["verdict"] == "NG"
        tp, fp = tp + (ng and defect), fp + (ng and not defect)
        fn, tn = fn + (defect and not ng), tn + (not ng and not defect)
    latencies = [r["latency_ms"] for r in results]
    inspected = len(seen & set(expected))
    decided = tp + fp + fn + tn
    return Summary(
        parts_expected=len(expected),
        parts_inspected=inspected,
        parts_missed=len(expected) - inspected,
        duplicate_verdicts=duplicates,
        unmatched_verdicts=unmatched,
        true_ng=tp,
        false_ng=fp,
        missed_ng=fn,
        true_ok=tn,
        ng_precision=tp / (tp + fp) if tp + fp else None,
        ng_recall=tp / (tp + fn) if tp + fn else None,
        accuracy=(tp + tn) / decided if decided else None,
        events=len(events),
        latency_ms_p50=float(np.percentile(latencies, 50)) if latencies else None,
        latency_ms_p99=float(np.percentile(latencies, 99)) if latencies else None,
    )


_CSS = """
body { font: 14px sans-serif; margin: 2em }
table { border-collapse: collapse }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: left }
figure { display: inline-block; width: 420px; margin: 6px; vertical-align: top }
figure img { width: 100% }
.hit { border: 3px solid #3a3 }
.miss { border: 3px solid #c33 }
"""


def _fmt(value: object) -> str:
    return f"{value:.3f}" if isinstance(value, float) else html.escape(str(value))


def write_report(
    out: Path,
    summary: Summary,
    results: list[dict[str, Any]],
    events: list[dict[str, Any]],
    truth: LineTruth,
    extra: dict[str, Any],
) -> Path:
    """``summary.json`` and a self-contained-folder ``report.html`` whose images sit in ``images/``."""
    (out / "summary.json").write_text(json.dumps({**asdict(summary), **extra}, indent=2) + "\n")
    labels = {p["id"]: p["label"] for p in truth.parts}
    by_seq = dict(zip([r["seq"] for r in results], match_results(results, truth), strict=True))
    table = {**asdict(summary), **extra}
    rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{_fmt(v)}</td></tr>" for k, v in table.items())
    cards = []
    for event in events:
        part_id = by_seq.get(event["seq"])
        truth_label = labels.get(part_id, "no part") if part_id is not None else "no part"
        verdict_ok = truth_label not in ("good", "no part")
        annotated = any(i["kind"] == "annotated" for i in event["images"])
        image = f"images/{event['event_id']}.jpg" if annotated else ""
        frame_class = "hit" if verdict_ok else "miss"
        cards.append(
            f'<figure class="{frame_class}"><img src="{html.escape(image)}" loading="lazy">'
            f"<figcaption>{html.escape(event['event_id'])}<br>agent: {html.escape(event['label'])} "
            f"{event['defect_score']:.2f} &gt; {event['threshold']:.2f}<br>truth: {html.escape(truth_label)}"
            "</figcaption></figure>"
        )
    page = f"""<!doctype html><meta charset="utf-8"><title>inspect-agent demo</title>
<style>{_CSS}</style>
<h1>inspect-agent demo</h1><p>Every NG event the agent published over MQTT, with the ground truth of the part
(green frame: a real defect; red: a good part flagged, or no part).</p>
<table>{rows}</table><h2>NG events ({len(events)})</h2>{"".join(cards)}
"""
    path = out / "report.html"
    path.write_text(page)
    return path
