"""The extraction report of `melodiff prepare`: report.json (all numbers) and report.md (a short human summary)."""

from __future__ import annotations

import itertools
import json
from collections import Counter
from pathlib import Path

import numpy as np

from melodiff.music.melody import STEPS_PER_BAR, Melody
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


def build_report(sources: list[str], records: list[dict], index: list[dict], events: np.ndarray, duplicates: Counter,
                 seconds: float) -> dict:
    dropped: Counter = Counter()
    errors: Counter = Counter()
    onsets = off_grid = 0
    for rec in records:
        if rec.get("skipped"):
            dropped[rec["skipped"]] += 1
        if rec["error"]:
            errors[error_reason(rec)] += 1
        for p in rec["pieces"]:
            dropped.update(p["dropped"])
            onsets += p["onsets"]
            off_grid += p["off_grid"]
    dropped.update(duplicates)
    bars = np.array([r["length"] / STEPS_PER_BAR for r in index])
    notes = [Melody(events[r["start"]:r["start"] + r["length"]]).to_notes() for r in index]
    pitches = np.array([n.pitch for ns in notes for n in ns])
    notes_per_bar = np.array([len(ns) / b for ns, b in zip(notes, bars, strict=True)])
    per_split = Counter(r["split"] for r in index)
    per_source = Counter(r["source"] for r in index)
    return {
        "sources": sources,
        "work_units": len(records),
        "work_units_skipped_by_metadata": sum(1 for r in records if r.get("skipped")),
        "parse_errors": sum(1 for r in records if r["error"]),
        "parse_error_reasons": dict(errors.most_common()),
        "failed_files": [{"file": _unit_name(r), "error": error_reason(r)} for r in records if r["error"]],
        "files_without_melodies": files_without_melodies(records, index),
        "pieces_parsed": sum(len(r["pieces"]) for r in records),
        "melodies": len(index),
        "melodies_per_split": {s: per_split.get(s, 0) for s in ("train", "validation", "test")},
        "melodies_per_source": dict(per_source.most_common()),
        "dropped": dict(dropped.most_common()),
        "bars_total": float(bars.sum()),
        "two_bar_chunks": int(sum(r["length"] // (2 * STEPS_PER_BAR) for r in index)),
        "bars_median": float(np.median(bars)),
        "melodies_at_least_bars": {str(k): int((bars >= k).sum()) for k in (16, 32, 64)},
        "length_histogram_bars": _length_histogram(bars),
        "notes_per_bar_mean": float(notes_per_bar.mean()),
        "pitch_min": int(pitches.min()),
        "pitch_max": int(pitches.max()),
        "pitch_p1_p99": [int(np.percentile(pitches, 1)), int(np.percentile(pitches, 99))],
        "onsets_off_16th_grid_fraction": off_grid / max(onsets, 1),
        "seconds": round(seconds, 1),
    }


def _unit_name(record: dict) -> str:
    return record["unit"].removeprefix("file:")


def error_reason(record: dict) -> str:
    """A failed work unit's whole error message, without the file name it starts with."""
    return record["error"].removeprefix(_unit_name(record)).removeprefix(": ") or "parse error"


def files_without_melodies(records: list[dict], index: list[dict]) -> list[dict]:
    """Every work unit that was read but gave no melody to the dataset, with why (dropped reasons and counts)."""
    kept = {r["piece"] for r in index}
    out = []
    for rec in records:
        if rec["error"] or any(p["id"] in kept for p in rec["pieces"]):
            continue
        reasons: Counter = Counter({rec["skipped"]: 1} if rec.get("skipped") else {})
        for p in rec["pieces"]:
            reasons.update(p["dropped"])
            if p["melodies"]:
                reasons["duplicate melody"] += len(p["melodies"])
        out.append({"file": _unit_name(rec), "reasons": dict(reasons.most_common()) or {"no notes": 1}})
    return out


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
        f"{report['melodies_per_split']['validation']}, test {report['melodies_per_split']['test']})",
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
