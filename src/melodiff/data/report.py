"""The extraction report of `melodiff prepare`: report.json (all numbers) and report.md (a short human summary)."""

from __future__ import annotations

import itertools
import json
from array import array
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from melodiff.music.melody import Melody
from melodiff.music.meter import model_meter
from melodiff.utils.io import atomic_write_text

LENGTH_BINS = (2, 4, 8, 16, 32, 64, 128, 256)  # bars
LISTED_IN_MD = 20  # failed / empty files named in report.md (report.json lists every one)


def _length_histogram(bars: np.ndarray) -> dict[str, int]:
    hist = {}
    edges = [*LENGTH_BINS, np.inf]
    for lo, hi in itertools.pairwise(edges):
        label = f"{lo}-{int(hi) - 1}" if np.isfinite(hi) else f"{lo}+"
        hist[label] = int(((bars >= lo) & (bars < hi)).sum())
    return hist


class MelodyTally:
    """The report's numbers about the kept melodies, added one melody at a time (data/prepare.py streams them):
    16 bytes per melody (its length and notes per bar) and a pitch histogram, not the melodies or their notes."""

    def __init__(self) -> None:
        self.lengths = array("d")  # bars, each in its meter
        self.notes_per_bar = array("d")
        self.chunks = 0  # whole 2-bar chunks
        self.per_meter: Counter = Counter()  # model meter (music/meter.py) -> melodies
        self.per_written_meter: Counter = Counter()  # the meter the files wrote -> melodies
        self.pitch_counts = np.zeros(128, dtype=np.int64)
        self.per_split: Counter = Counter()
        self.per_source: Counter = Counter()
        self.steps = 0

    @property
    def melodies(self) -> int:
        return len(self.lengths)

    def add(self, record: dict, ids: np.ndarray) -> None:
        """One kept melody: its melodies.json ``record`` and its event ``ids``."""
        melody = Melody(ids, model_meter(record.get("meter", "4/4")))
        notes = melody.to_notes()
        self.lengths.append(melody.num_bars)
        self.notes_per_bar.append(len(notes) / melody.num_bars)
        self.chunks += len(melody) // melody.chunk_steps
        self.per_meter[melody.meter.name] += 1
        self.per_written_meter[record.get("meter", "4/4")] += 1
        self.pitch_counts += np.bincount(np.array([n.pitch for n in notes], dtype=np.int64), minlength=128)
        self.per_split[record["split"]] += 1
        self.per_source[record["source"]] += 1
        self.steps += record["length"]


def percentile_of_counts(counts: np.ndarray, q: float) -> float:
    """np.percentile(values, q) (linear interpolation, numpy's arithmetic) of the integers whose histogram is
    ``counts`` (counts[v] = how often v occurs), without building the values."""
    n = int(counts.sum())
    virtual = (n - 1) * np.true_divide(q, 100)
    below = int(np.floor(virtual))
    above = min(below + 1, n - 1)
    cumulative = np.cumsum(counts)
    a, b = (np.int64(np.searchsorted(cumulative, i, side="right")) for i in (below, above))
    gamma = np.float64(virtual - below)
    diff = b - a
    return float(b - diff * (1 - gamma) if gamma >= 0.5 else a + diff * gamma)


def build_report(sources: list[str], records: Iterable[dict], kept_pieces: set[str], tally: MelodyTally,
                 duplicates: Counter, seconds: float) -> dict:
    """The report of a run: ``records`` (every work unit's, in the order of the units; read once), the pieces that
    kept a melody, the kept melodies' ``tally`` and the duplicates dropped."""
    dropped: Counter = Counter()
    errors: Counter = Counter()
    onsets = off_grid = work_units = skipped = parse_errors = pieces = 0
    failed, empty = [], []
    for rec in records:
        work_units += 1
        pieces += len(rec["pieces"])
        if rec.get("skipped"):
            dropped[rec["skipped"]] += 1
            skipped += 1
        if rec["error"]:
            errors[error_reason(rec)] += 1
            parse_errors += 1
            failed.append({"file": _unit_name(rec), "error": error_reason(rec)})
        for p in rec["pieces"]:
            dropped.update(p["dropped"])
            onsets += p["onsets"]
            off_grid += p["off_grid"]
        without = without_melodies(rec, kept_pieces)
        if without is not None:
            empty.append(without)
    dropped.update(duplicates)
    bars = np.frombuffer(tally.lengths, dtype=np.float64)
    notes_per_bar = np.frombuffer(tally.notes_per_bar, dtype=np.float64)
    pitches = np.flatnonzero(tally.pitch_counts)
    return {
        "sources": sources,
        "work_units": work_units,
        "work_units_skipped_by_metadata": skipped,
        "parse_errors": parse_errors,
        "parse_error_reasons": dict(errors.most_common()),
        "failed_files": failed,
        "files_without_melodies": empty,
        "pieces_parsed": pieces,
        "melodies": tally.melodies,
        "melodies_per_split": {s: tally.per_split.get(s, 0) for s in ("train", "validation", "test")},
        "melodies_per_source": dict(tally.per_source.most_common()),
        "melodies_per_meter": dict(tally.per_meter.most_common()),
        "melodies_per_written_meter": dict(tally.per_written_meter.most_common()),
        "dropped": dict(dropped.most_common()),
        "bars_total": float(bars.sum()),
        "two_bar_chunks": tally.chunks,
        "bars_median": float(np.median(bars)),
        "melodies_at_least_bars": {str(k): int((bars >= k).sum()) for k in (16, 32, 64)},
        "length_histogram_bars": _length_histogram(bars),
        "notes_per_bar_mean": float(notes_per_bar.mean()),
        "pitch_min": int(pitches.min()),
        "pitch_max": int(pitches.max()),
        "pitch_p1_p99": [int(percentile_of_counts(tally.pitch_counts, q)) for q in (1, 99)],
        "onsets_off_16th_grid_fraction": off_grid / max(onsets, 1),
        "seconds": round(seconds, 1),
    }


def _unit_name(record: dict) -> str:
    """The file a record was read from (a corpus unit: its id)."""
    return record.get("path") or record["unit"]


def error_reason(record: dict) -> str:
    """A failed work unit's whole error message, without the file name it starts with."""
    return record["error"].removeprefix(_unit_name(record)).removeprefix(": ") or "parse error"


def without_melodies(record: dict, kept_pieces: set[str]) -> dict | None:
    """A work unit that was read but gave no melody to the dataset, with why (dropped reasons and counts); None for
    a unit that failed or kept a melody."""
    if record["error"] or any(p["id"] in kept_pieces for p in record["pieces"]):
        return None
    reasons: Counter = Counter({record["skipped"]: 1} if record.get("skipped") else {})
    for p in record["pieces"]:
        reasons.update(p["dropped"])
        if p["melodies"]:
            reasons["duplicate melody"] += len(p["melodies"])
    return {"file": _unit_name(record), "reasons": dict(reasons.most_common()) or {"no notes": 1}}


def _listing(title: str, rows: list[str], total: int) -> list[str]:
    if not total:
        return []
    more = [f"- … and {total - len(rows)} more (report.json lists every one)"] if total > len(rows) else []
    return ["", f"{title} ({total}):", "", *rows, *more]


def write_report(report: dict, out: Path) -> None:
    atomic_write_text(out / "report.json", json.dumps(report, indent=2))
    lines = [
        f"# Extraction report: {', '.join(report['sources'])}",
        "",
        f"- work units read: {report['work_units']} ({report['work_units_skipped_by_metadata']} skipped from metadata, "
        f"{report['parse_errors']} parse errors), pieces parsed: {report['pieces_parsed']}, time {report['seconds']} s",
        f"- melodies kept: {report['melodies']} (train {report['melodies_per_split']['train']}, validation "
        f"{report['melodies_per_split']['validation']}, test {report['melodies_per_split']['test']}); per meter: "
        + ", ".join(f"{k} {v}" for k, v in report["melodies_per_meter"].items()) + " (as written: "
        + ", ".join(f"{k} {v}" for k, v in report["melodies_per_written_meter"].items()) + ")",
        f"- bars: {report['bars_total']:.0f} in all, median {report['bars_median']:.0f} per melody; 2-bar chunks: "
        f"{report['two_bar_chunks']}; melodies with >= 16/32/64 bars: "
        + " / ".join(str(v) for v in report["melodies_at_least_bars"].values()),
        f"- notes per bar {report['notes_per_bar_mean']:.2f}; pitch range MIDI {report['pitch_min']}-"
        f"{report['pitch_max']} (1st-99th percentile {report['pitch_p1_p99'][0]}-{report['pitch_p1_p99'][1]}); "
        f"onsets off the 16th grid {100 * report['onsets_off_16th_grid_fraction']:.1f} %",
        "",
        "| dropped | count |",
        "|---|---|",
        *[f"| {k} | {v} |" for k, v in report["dropped"].items()],
        "",
        "| length (bars) | melodies |",
        "|---|---|",
        *[f"| {k} | {v} |" for k, v in report["length_histogram_bars"].items()],
    ]
    if report["parse_error_reasons"]:
        lines += ["", "| parse error | count |", "|---|---|",
                  *[f"| {k} | {v} |" for k, v in list(report["parse_error_reasons"].items())[:LISTED_IN_MD]]]
    failed, empty = report["failed_files"], report["files_without_melodies"]
    lines += _listing("Files that could not be read", [f"- `{f['file']}`: {f['error']}" for f in
                                                        failed[:LISTED_IN_MD]], len(failed))
    lines += _listing("Files read but giving no melody", [
        f"- `{f['file']}`: " + ", ".join(f"{k} ({v})" for k, v in f["reasons"].items())
        for f in empty[:LISTED_IN_MD]], len(empty))
    atomic_write_text(out / "report.md", "\n".join(lines) + "\n")
