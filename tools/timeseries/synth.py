"""``inspect-model synth --task timeseries``: a multivariate line-sensor recording with labelled anomalies.

    inspect-model synth --task timeseries --out data/sensors --duration 3600 --seed 0

Writes::

    DIR/series.csv     t,temperature,pressure,vibration,speed,current,anomaly,part_id
    DIR/spans.csv      start,end,kind,channels           (one row per anomaly; seconds, end exclusive)
    DIR/parts.csv      part_id,start,end,ng              (a produced part is NG when an anomaly overlaps it)
    DIR/synth.json     the arguments, channels, units, sample rate and counts

``t`` is seconds from the start at ``--rate`` Hz; ``anomaly`` is 1 inside a labelled span. Anomaly kinds:
``spike`` (a few samples far off), ``drift`` (a slow ramp away), ``level_shift`` (a step),
``oscillation`` (a sine on top), ``stuck`` (the sensor repeats its last value). The whole recording is drawn
from ``numpy.random.default_rng(seed)``, so a seed gives byte-identical files.
``--format parquet`` writes series.parquet instead of series.csv (needs pyarrow).
"""

from __future__ import annotations

import argparse
import csv
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from agent import __version__
from agent.status import ExitStatus, InspectError
from tools._cli_util import ensure_output_dir

__all__ = [
    "ANOMALY_KINDS",
    "CHANNELS",
    "Recording",
    "Span",
    "add_arguments",
    "generate",
    "read_parts",
    "read_series",
    "read_spans",
    "run",
    "write_recording",
]

# name -> (unit, nominal level, noise sigma)
CHANNELS: dict[str, tuple[str, float, float]] = {
    "temperature": ("degC", 62.0, 0.15),
    "pressure": ("bar", 5.0, 0.03),
    "vibration": ("mm/s", 2.0, 0.12),
    "speed": ("rpm", 1500.0, 4.0),
    "current": ("A", 12.0, 0.08),
}
ANOMALY_KINDS = ("spike", "drift", "level_shift", "oscillation", "stuck")
_DURATION_S = {  # (min, max) seconds per kind; spikes are a handful of samples
    "spike": (0.3, 0.8),
    "drift": (8.0, 20.0),
    "level_shift": (5.0, 15.0),
    "oscillation": (5.0, 15.0),
    "stuck": (6.0, 15.0),
}


@dataclass(frozen=True)
class Span:
    """One labelled anomaly: [start, end) in seconds, its kind and the channels it touches."""

    start: float
    end: float
    kind: str
    channels: tuple[str, ...]

    def overlaps(self, start: float, end: float) -> bool:
        return self.start < end and start < self.end


@dataclass
class Recording:
    rate_hz: float
    channels: list[str]
    values: np.ndarray  # (N, C) float64
    anomaly: np.ndarray  # (N,) uint8
    spans: list[Span]
    part_s: float

    @property
    def times(self) -> np.ndarray:
        return np.arange(len(self.values)) / self.rate_hz

    @property
    def part_ids(self) -> np.ndarray:
        return (self.times // self.part_s).astype(np.int64)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--duration", type=float, default=1800.0, help="seconds of recording")
    p.add_argument("--rate", type=float, default=10.0, help="samples per second")
    p.add_argument(
        "--anomalies-per-hour", type=float, default=90.0, help="mean anomaly count per hour of recording"
    )
    p.add_argument(
        "--kinds",
        default=",".join(ANOMALY_KINDS),
        help=f"comma-separated subset of {','.join(ANOMALY_KINDS)}",
    )
    p.add_argument(
        "--part-seconds", type=float, default=6.0, help="one produced part every this many seconds"
    )
    p.add_argument("--format", choices=["csv", "parquet"], default="csv", help="series file format")


def run(args: argparse.Namespace) -> int:
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    unknown = sorted(set(kinds) - set(ANOMALY_KINDS))
    if unknown or not kinds:
        raise InspectError(
            f"--kinds: unknown {unknown or args.kinds!r}, choose from {ANOMALY_KINDS}", ExitStatus.USAGE
        )
    if args.duration <= 0 or args.rate <= 0 or args.part_seconds <= 0:
        raise InspectError("--duration, --rate and --part-seconds must be > 0", ExitStatus.USAGE)
    out = ensure_output_dir(args.out)
    recording = generate(
        args.duration, args.rate, args.seed, args.anomalies_per_hour, kinds, args.part_seconds
    )
    write_recording(recording, out, args.format, {k: v for k, v in vars(args).items() if k != "func"})
    print(
        f"{len(recording.values)} samples x {len(recording.channels)} channels at {args.rate:g} Hz, "
        f"{len(recording.spans)} anomalies ({recording.anomaly.mean():.1%} of samples) -> {out}"
    )
    return int(ExitStatus.OK)


def generate(
    duration_s: float,
    rate_hz: float,
    seed: int,
    anomalies_per_hour: float = 90.0,
    kinds: list[str] | None = None,
    part_s: float = 6.0,
) -> Recording:
    """A recording of ``duration_s`` seconds: correlated normal behaviour, then anomalies placed apart."""
    rng = np.random.default_rng(seed)
    n = round(duration_s * rate_hz)
    t = np.arange(n) / rate_hz
    names = list(CHANNELS)
    values = np.empty((n, len(names)))
    # Normal behaviour: a slow production cycle (speed set-points changing every few minutes), and the
    # physics that ties channels together (current and vibration follow speed, temperature lags it).
    setpoint = _piecewise(rng, n, rate_hz, hold_s=(120.0, 300.0), levels=(1400.0, 1600.0))
    speed = setpoint + rng.normal(0, CHANNELS["speed"][2], n)
    lagged = _lowpass(setpoint - 1500.0, rate_hz, tau_s=60.0)
    values[:, 0] = 62.0 + 0.01 * lagged + 0.4 * np.sin(2 * np.pi * t / 900.0) + rng.normal(0, 0.15, n)
    values[:, 1] = 5.0 + 0.05 * np.sin(2 * np.pi * t / 37.0) + rng.normal(0, 0.03, n)
    values[:, 2] = 2.0 * speed / 1500.0 + rng.normal(0, 0.12, n)
    values[:, 3] = speed
    values[:, 4] = 12.0 + 0.006 * (speed - 1500.0) + rng.normal(0, 0.08, n)
    anomaly = np.zeros(n, dtype=np.uint8)
    spans: list[Span] = []
    count = rng.poisson(anomalies_per_hour * duration_s / 3600.0)
    for _ in range(count):
        span = _place(rng, kinds or list(ANOMALY_KINDS), names, duration_s, spans)
        if span is not None:
            _inject(rng, values, span, rate_hz)
            anomaly[round(span.start * rate_hz) : round(span.end * rate_hz)] = 1
            spans.append(span)
    spans.sort(key=lambda s: s.start)
    return Recording(rate_hz, names, values, anomaly, spans, part_s)


def _piecewise(
    rng: np.random.Generator, n: int, rate_hz: float, hold_s: tuple[float, float], levels: tuple[float, float]
) -> np.ndarray:
    out, i = np.empty(n), 0
    while i < n:
        hold = int(rng.uniform(*hold_s) * rate_hz)
        out[i : i + hold] = rng.uniform(*levels)
        i += hold
    return _lowpass(out, rate_hz, tau_s=5.0)  # ramps, not steps: a step would look like a level shift


def _lowpass(x: np.ndarray, rate_hz: float, tau_s: float) -> np.ndarray:
    alpha = 1.0 / (1.0 + tau_s * rate_hz)
    out, acc = np.empty_like(x), float(x[0]) if len(x) else 0.0
    for i, v in enumerate(x):
        acc += alpha * (float(v) - acc)
        out[i] = acc
    return out


_GAP_S = 10.0  # normal time kept between anomalies, so each span is a separate event


def _place(
    rng: np.random.Generator, kinds: list[str], names: list[str], duration_s: float, taken: list[Span]
) -> Span | None:
    """A span of a random kind on one or two channels, not within ``_GAP_S`` of another; None if none fits."""
    kind = str(rng.choice(kinds))
    length = rng.uniform(*_DURATION_S[kind])
    picked = rng.choice(len(names), size=int(rng.integers(1, 3)), replace=False)
    channels = tuple(names[i] for i in sorted(picked))
    for _ in range(20):  # bounded: a crowded recording just gets fewer anomalies
        start = round(float(rng.uniform(30.0, max(30.0, duration_s - length - 5.0))), 1)
        if not any(s.overlaps(start - _GAP_S, start + length + _GAP_S) for s in taken):
            return Span(start, round(start + length, 1), kind, channels)
    return None


def _inject(rng: np.random.Generator, values: np.ndarray, span: Span, rate_hz: float) -> None:
    i0, i1 = round(span.start * rate_hz), round(span.end * rate_hz)
    n = max(1, i1 - i0)
    ramp = np.linspace(0.3, 1.0, n)  # a drift that starts at 0 would be invisible for its first seconds
    for name in span.channels:
        c = list(CHANNELS).index(name)
        sigma = CHANNELS[name][2]
        sign = rng.choice([-1.0, 1.0])
        segment = values[i0:i1, c]
        if span.kind == "spike":
            segment += sign * sigma * rng.uniform(12.0, 25.0)
        elif span.kind == "drift":
            segment += sign * sigma * rng.uniform(10.0, 20.0) * ramp
        elif span.kind == "level_shift":
            segment += sign * sigma * rng.uniform(8.0, 15.0)
        elif span.kind == "oscillation":
            period = rng.uniform(0.6, 2.0)
            segment += sigma * rng.uniform(6.0, 12.0) * np.sin(2 * np.pi * np.arange(n) / (period * rate_hz))
        elif span.kind == "stuck":
            segment[:] = values[max(0, i0 - 1), c]


def write_recording(recording: Recording, out: Path, fmt: str, arguments: dict[str, Any]) -> None:
    t = recording.times
    columns = ["t", *recording.channels, "anomaly", "part_id"]
    if fmt == "parquet":
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError as exc:
            raise InspectError(
                "--format parquet needs pyarrow: pip install pyarrow", ExitStatus.UNAVAILABLE
            ) from exc
        table = {"t": t, **{c: recording.values[:, i] for i, c in enumerate(recording.channels)}}
        table.update(anomaly=recording.anomaly, part_id=recording.part_ids)
        pq.write_table(pa.table(table), out / "series.parquet")
    else:
        part_ids = recording.part_ids
        with (out / "series.csv").open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(columns)
            for i, values in enumerate(recording.values.tolist()):
                row = [f"{t[i]:.3f}", *(f"{v:.4f}" for v in values)]
                writer.writerow([*row, int(recording.anomaly[i]), int(part_ids[i])])
    with (out / "spans.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["start", "end", "kind", "channels"])
        for span in recording.spans:
            writer.writerow([span.start, span.end, span.kind, ";".join(span.channels)])
    parts = _parts(recording)
    with (out / "parts.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["part_id", "start", "end", "ng"])
        writer.writerows(parts)
    summary = {
        "generator": f"inspect-edge {__version__} timeseries",
        "arguments": {k: str(v) if isinstance(v, Path) else v for k, v in arguments.items()},
        "rate_hz": recording.rate_hz,
        "samples": len(t),
        "channels": {name: {"unit": CHANNELS[name][0]} for name in recording.channels},
        "anomalies": len(recording.spans),
        "anomalies_by_kind": {k: sum(s.kind == k for s in recording.spans) for k in ANOMALY_KINDS},
        "anomalous_fraction": float(recording.anomaly.mean()) if len(t) else 0.0,
        "parts": len(parts),
        "parts_ng": sum(p[3] for p in parts),
        "spans": [asdict(s) for s in recording.spans],
    }
    (out / "synth.json").write_text(json.dumps(summary, indent=2) + "\n")


def _parts(recording: Recording) -> list[tuple[int, float, float, int]]:
    duration = len(recording.values) / recording.rate_hz
    rows = []
    for part in range(int(np.ceil(duration / recording.part_s))):
        start, end = part * recording.part_s, min(duration, (part + 1) * recording.part_s)
        ng = int(any(s.overlaps(start, end) for s in recording.spans))
        rows.append((part, round(start, 3), round(end, 3), ng))
    return rows


def read_series(folder: Path) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """(channel names, t (N,), values (N, C) float32, anomaly (N,) uint8) from a synth folder or CSV."""
    path = folder / "series.csv" if folder.is_dir() else folder
    if folder.is_dir() and not path.is_file() and (folder / "series.parquet").is_file():
        return _read_parquet(folder / "series.parquet")
    if not path.is_file():
        raise InspectError(f"no series.csv (or series.parquet) in {folder}", ExitStatus.NO_INPUT)
    with path.open(newline="") as handle:
        header = next(csv.reader(handle))
    if "t" not in header:
        raise InspectError(
            f"{path}: the first column must be t (seconds), got {header[:3]}", ExitStatus.DATA_ERROR
        )
    data = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
    channels = [c for c in header if c not in ("t", "anomaly", "part_id")]
    index = [header.index(c) for c in channels]
    anomaly = (
        data[:, header.index("anomaly")].astype(np.uint8)
        if "anomaly" in header
        else np.zeros(len(data), np.uint8)
    )
    return channels, data[:, header.index("t")], data[:, index].astype(np.float32), anomaly


def _read_parquet(path: Path) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    try:
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise InspectError(f"{path} needs pyarrow: pip install pyarrow", ExitStatus.UNAVAILABLE) from exc
    table = pq.read_table(path)
    channels = [c for c in table.column_names if c not in ("t", "anomaly", "part_id")]
    values = np.stack([table[c].to_numpy() for c in channels], axis=1).astype(np.float32)
    anomaly = table["anomaly"].to_numpy().astype(np.uint8)
    return channels, table["t"].to_numpy(), values, anomaly


def read_parts(folder: Path) -> list[tuple[float, float, bool]]:
    """(start, end, ng) of every produced part in ``parts.csv``; empty when the folder has none."""
    path = folder / "parts.csv"
    if not path.is_file():
        return []
    with path.open(newline="") as handle:
        return [(float(r["start"]), float(r["end"]), r["ng"] == "1") for r in csv.DictReader(handle)]


def read_spans(folder: Path) -> list[Span]:
    path = folder / "spans.csv"
    if not path.is_file():
        raise InspectError(f"no spans.csv in {folder}", ExitStatus.NO_INPUT)
    with path.open(newline="") as handle:
        return [
            Span(
                float(r["start"]), float(r["end"]), r["kind"], tuple(c for c in r["channels"].split(";") if c)
            )
            for r in csv.DictReader(handle)
        ]
