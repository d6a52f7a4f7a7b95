"""`melodiff prepare`: sources -> de-duplicated, split melody dataset on disk + extraction report.

On disk (DIR):
- ``events.npy``   int8, all melodies' event ids concatenated;
- ``melodies.json`` one record per melody: id, piece, source, part, meter, key, split, start, length (steps);
- ``report.json`` / ``report.md`` what was read, kept and dropped, and why;
- ``cache.jsonl``  one line per parsed work unit, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import multiprocessing as mp
import os
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from melodiff.data.report import build_report, write_report
from melodiff.errors import MelodiffError
from melodiff.music.corpus import CorpusWork, corpus_works, parse_work, skip_reason
from melodiff.music.extract import MIDI_SUFFIXES, SCORE_SUFFIXES, Extraction, extract_file, extract_score
from melodiff.music.melody import Melody
from melodiff.utils.io import atomic_write_bytes, atomic_write_text

log = logging.getLogger(__name__)
SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class PrepareConfig:
    min_bars: int = 4
    validation_fraction: float = 0.05
    test_fraction: float = 0.05

    def __post_init__(self) -> None:
        if self.min_bars < 2:
            raise MelodiffError("--min-bars must be at least 2 (one 2-bar chunk)")
        if not (0 <= self.validation_fraction < 1 and 0 <= self.test_fraction < 1
                and self.validation_fraction + self.test_fraction < 1):
            raise MelodiffError("split fractions must be in [0, 1) and sum to less than 1")


def split_of(piece_id: str, config: PrepareConfig) -> str:
    """Deterministic split by a stable hash of the piece id, so all melodies of a tune share one split."""
    u = int.from_bytes(hashlib.sha256(piece_id.encode()).digest()[:8], "big") / 2**64
    if u < config.test_fraction:
        return "test"
    if u < config.test_fraction + config.validation_fraction:
        return "validation"
    return "train"


# ---- work units --------------------------------------------------------------------------------------------------
def expand_sources(sources: list[str]) -> list[str | CorpusWork]:
    """Each source -> work units: CorpusWork for music21:NAME, file paths for files/folders."""
    units: list[str | CorpusWork] = []
    for source in sources:
        if source.startswith("music21:"):
            units.extend(corpus_works(source.removeprefix("music21:")))
            continue
        path = Path(source)
        if path.is_dir():
            suffixes = MIDI_SUFFIXES | SCORE_SUFFIXES
            found = sorted(str(p) for p in path.resolve().rglob("*") if p.suffix.lower() in suffixes)
            if not found:
                raise MelodiffError(f"{source}: no MIDI, MusicXML, ABC or kern files in this folder")
            units.extend(found)
        elif path.is_file():
            units.append(str(path.resolve()))
        else:
            raise MelodiffError(f"{source}: no such file or folder (or use music21:folk, music21:classical, ...)")
    return units


def unit_id(unit: str | CorpusWork) -> str:
    return unit.id if isinstance(unit, CorpusWork) else f"file:{unit}"


def _encode(piece_id: str, ex: Extraction) -> dict:
    return {
        "id": piece_id,
        "melodies": [{"ids": m.melody.ids.tobytes().hex(), "part": m.part, "meter": m.meter, "key": m.key}
                     for m in ex.melodies],
        "dropped": dict(ex.dropped),
        "onsets": ex.onsets,
        "off_grid": ex.onsets_off_grid,
    }


def process_unit(args: tuple[str | CorpusWork, int]) -> dict:
    """Parse one work unit; never raises: errors are returned as a reason."""
    unit, min_bars = args
    record: dict = {"unit": unit_id(unit), "pieces": [], "error": None}
    try:
        if isinstance(unit, CorpusWork):
            reason = skip_reason(unit)
            if reason:
                record["skipped"] = reason
                return record
            record["pieces"] = [_encode(unit.id, extract_score(parse_work(unit), min_bars))]
        else:
            record["pieces"] = [_encode(f"file:{pid}", ex) for pid, ex in extract_file(unit, min_bars)]
    except MelodiffError as exc:
        record["error"] = str(exc)
    except Exception as exc:  # a parser bug on one file must not kill a corpus run
        record["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    return record


def _read_cache(path: Path, config_key: str) -> dict[str, dict]:
    done: dict[str, dict] = {}
    if not path.exists():
        return done
    for line in path.read_text().splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:  # a line cut short by a crash
            continue
        if rec.get("config") == config_key:
            done[rec["unit"]] = rec
    return done


def run_units(units: list, config: PrepareConfig, cache_path: Path, workers: int, quiet: bool) -> list[dict]:
    config_key = hashlib.sha256(json.dumps(asdict(config), sort_keys=True).encode()).hexdigest()[:16]
    done = _read_cache(cache_path, config_key)
    todo = [u for u in units if unit_id(u) not in done]
    if done:
        log.info("resuming: %d of %d work units already parsed", len(units) - len(todo), len(units))
    with cache_path.open("a") as cache, tqdm(total=len(todo), desc="parsing", unit="piece", disable=quiet) as bar:
        for rec in _imap(todo, config.min_bars, workers):
            rec["config"] = config_key
            cache.write(json.dumps(rec) + "\n")
            cache.flush()
            done[rec["unit"]] = rec
            bar.update()
    return [done[unit_id(u)] for u in units]


def _imap(todo: list, min_bars: int, workers: int) -> Iterator[dict]:
    args = [(u, min_bars) for u in todo]
    if workers <= 1 or len(todo) <= 1:
        yield from map(process_unit, args)
        return
    with mp.get_context("fork").Pool(workers) as pool:
        yield from pool.imap_unordered(process_unit, args, chunksize=4)


# ---- assembly ----------------------------------------------------------------------------------------------------
def assemble(records: list[dict], config: PrepareConfig) -> tuple[np.ndarray, list[dict], Counter]:
    """Flatten records into (events, melody index), de-duplicating identical melodies (first piece id wins)."""
    pieces = sorted((p for r in records for p in r["pieces"]), key=lambda p: p["id"])
    seen: set[bytes] = set()
    dropped: Counter = Counter()
    arrays, index, start = [], [], 0
    for piece in pieces:
        split = split_of(piece["id"], config)
        for k, mel in enumerate(piece["melodies"]):
            ids = bytes.fromhex(mel["ids"])
            if ids in seen:
                dropped["duplicate melody"] += 1
                continue
            seen.add(ids)
            arr = np.frombuffer(ids, dtype=np.int8)
            arrays.append(arr)
            index.append({"id": f"{piece['id']}/{k}", "piece": piece["id"], "source": piece["id"].split("/")[0],
                          "part": mel["part"], "meter": mel["meter"], "key": mel["key"], "split": split,
                          "start": start, "length": int(arr.size)})
            start += arr.size
    events = np.concatenate(arrays) if arrays else np.zeros(0, dtype=np.int8)
    return events, index, dropped


def prepare(sources: list[str], out: str | Path, config: PrepareConfig | None = None, workers: int | None = None,
            quiet: bool = False) -> dict:
    """Build a dataset from sources into ``out``; returns the report dict. Resumable through ``out/cache.jsonl``."""
    config = config or PrepareConfig()
    out = Path(out)
    units = expand_sources(sources)
    single_file = len(units) == 1 and not isinstance(units[0], CorpusWork)
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    try:
        records = run_units(units, config, out / "cache.jsonl", workers or os.cpu_count() or 1, quiet)
        if single_file and records[0]["error"]:
            raise MelodiffError(records[0]["error"])
        events, index, dup = assemble(records, config)
        if not index:
            where = f"{units[0]}: no melodies could be extracted" if single_file else "no melodies could be " \
                "extracted from the sources"
            raise MelodiffError(f"{where} ({_why_nothing(records)})")
    except MelodiffError:
        if created:  # leave no half-made dataset folder behind (an interrupt keeps the cache to resume from)
            (out / "cache.jsonl").unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                out.rmdir()
        raise
    seconds = time.perf_counter() - t0
    report = build_report(sources, records, index, events, dup, seconds)
    buf = _npy_bytes(events)
    atomic_write_bytes(out / "events.npy", buf)
    atomic_write_text(out / "melodies.json", json.dumps(index, indent=0))
    atomic_write_text(out / "prepare.json", json.dumps({"sources": sources, "config": asdict(config)}, indent=2))
    write_report(report, out)
    return report


def _why_nothing(records: list[dict]) -> str:
    """The commonest reasons no melody was kept, for a one-line error."""
    reasons: Counter = Counter()
    for rec in records:
        reasons["unreadable file"] += bool(rec["error"])
        if rec.get("skipped"):
            reasons[rec["skipped"]] += 1
        for piece in rec["pieces"]:
            reasons.update(piece["dropped"])
    return "; ".join(f"{k}: {v}" for k, v in reasons.most_common(4) if v) or "no notes found"


def _npy_bytes(arr: np.ndarray) -> bytes:
    import io

    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()


def load_melodies(data_dir: str | Path, split: str | None = None) -> tuple[list[Melody], list[dict]]:
    """Read a prepared dataset: melodies (optionally of one split) and their index records."""
    data_dir = Path(data_dir)
    if not (data_dir / "melodies.json").exists():
        raise MelodiffError(f"{data_dir}: not a prepared dataset (run `melodiff prepare` first)")
    if split is not None and split not in SPLITS:
        raise MelodiffError(f"unknown split {split!r}: use one of {', '.join(SPLITS)}")
    events = np.load(data_dir / "events.npy", mmap_mode="r")
    index = json.loads((data_dir / "melodies.json").read_text())
    if split is not None:
        index = [r for r in index if r["split"] == split]
    return [Melody(np.asarray(events[r["start"]:r["start"] + r["length"]])) for r in index], index
