"""The synthetic sensor recording: deterministic by seed, labels that match the anomalies injected."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from tools.cli import main
from tools.timeseries.synth import ANOMALY_KINDS, CHANNELS, generate, read_series, read_spans


def _synth(out: Path, seed: int, *extra: str) -> None:
    argv = ["synth", "--task", "timeseries", "--out", str(out), "--duration", "600", "--seed", str(seed)]
    argv += extra
    assert main(argv) == 0


def test_same_seed_same_bytes_other_seed_other_data(tmp_path: Path) -> None:
    _synth(tmp_path / "a", 3)
    _synth(tmp_path / "b", 3)
    _synth(tmp_path / "c", 4)
    for name in ("series.csv", "spans.csv", "parts.csv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    assert (tmp_path / "a/series.csv").read_bytes() != (tmp_path / "c/series.csv").read_bytes()


def test_labels_are_exactly_the_spans_and_parts_follow_them(tmp_path: Path) -> None:
    _synth(tmp_path, 5, "--anomalies-per-hour", "120")
    channels, t, values, anomaly = read_series(tmp_path)
    spans = read_spans(tmp_path)
    assert channels == list(CHANNELS) and values.shape == (6000, 5)
    assert len(spans) >= 5
    expected = np.zeros(len(t), np.uint8)
    for span in spans:
        expected[(t >= span.start - 1e-6) & (t < span.end - 1e-6)] = 1
        assert span.kind in ANOMALY_KINDS and set(span.channels) <= set(CHANNELS)
    assert np.array_equal(anomaly, expected)
    with (tmp_path / "parts.csv").open() as handle:
        parts = list(csv.DictReader(handle))
    for part in parts:
        start, end = float(part["start"]), float(part["end"])
        assert int(part["ng"]) == int(any(s.start < end and start < s.end for s in spans)), part
    summary = json.loads((tmp_path / "synth.json").read_text())
    assert summary["anomalies"] == len(spans) and summary["parts_ng"] == sum(int(p["ng"]) for p in parts)


@pytest.mark.parametrize("kind", ANOMALY_KINDS)
def test_each_kind_changes_only_its_channels_inside_its_span(kind: str) -> None:
    clean = generate(300, 10, seed=9, anomalies_per_hour=0)
    dirty = generate(300, 10, seed=9, anomalies_per_hour=60, kinds=[kind])
    # the anomaly placement draws come after the normal signal, so the normal signal is the same
    assert dirty.spans and not clean.spans
    changed = np.abs(dirty.values - clean.values) > 1e-9
    inside = dirty.anomaly.astype(bool)
    assert not changed[~inside].any(), "a sample outside every span was changed"
    for span in dirty.spans:
        rows = (clean.times >= span.start - 1e-6) & (clean.times < span.end - 1e-6)
        touched = {list(CHANNELS)[c] for c in np.flatnonzero(changed[rows].any(axis=0))}
        assert touched <= set(span.channels)
        assert touched, f"{kind} at {span.start} changed nothing"


def test_bad_options_exit_with_usage(tmp_path: Path) -> None:
    argv = ["synth", "--task", "timeseries", "--out", str(tmp_path), "--kinds", "spike,meteor"]
    assert main(argv) == 2
