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
import io
import json
import logging
import multiprocessing as mp
import os
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
from tqdm import tqdm

from melodiff.data.report import MelodyTally, build_report, write_report
from melodiff.errors import MelodiffError
from melodiff.music.corpus import CorpusWork, corpus_works, parse_work, skip_reason
from melodiff.music.extract import MIDI_SUFFIXES, SCORE_SUFFIXES, Extraction, extract_file, extract_score
from melodiff.music.melody import Melody
from melodiff.music.meter import METERS, model_meter
from melodiff.utils.io import atomic_open, atomic_write_text

log = logging.getLogger(__name__)
SPLITS = ("train", "validation", "test")
RECORDS = 2  # the format of cache.jsonl's records: 2 = file pieces named within their source (FileWork)


@dataclass(frozen=True)
class PrepareConfig:
    """``meters``: the model meters kept (music/meter.py); melodies written in others are dropped ("meter 9/8")."""

    min_bars: int = 4
    validation_fraction: float = 0.05
    test_fraction: float = 0.05
    meters: tuple[str, ...] = tuple(METERS)

    def __post_init__(self) -> None:
        if not self.meters or any(m not in METERS for m in self.meters):
            raise MelodiffError(f"--meters must name model meters: {', '.join(METERS)}")
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
@dataclass(frozen=True)
class FileWork:
    """One file of a source: ``path`` (absolute, where it is read) and ``name``, what its pieces are called: the
    source folder's name and the path within it, or a file source's name. A piece's split is a hash of its name, so
    a corpus gets the same splits wherever it lies."""

    path: str
    name: str


def expand_sources(sources: list[str]) -> list[FileWork | CorpusWork]:
    """Each source -> work units: CorpusWork for music21:NAME, FileWork for files/folders."""
    units: list[FileWork | CorpusWork] = []
    for source in sources:
        if source.startswith("music21:"):
            units.extend(corpus_works(source.removeprefix("music21:")))
            continue
        path = Path(source)
        if path.is_dir():
            suffixes = MIDI_SUFFIXES | SCORE_SUFFIXES
            root = path.resolve()
            found = sorted(p for p in root.rglob("*") if p.suffix.lower() in suffixes)
            if not found:
                raise MelodiffError(f"{source}: no MIDI, MusicXML, ABC or kern files in this folder")
            units.extend(FileWork(str(p), (Path(root.name) / p.relative_to(root)).as_posix()) for p in found)
        elif path.is_file():
            units.append(FileWork(str(path.resolve()), path.name))
        else:
            raise MelodiffError(f"{source}: no such file or folder (or use music21:folk, music21:classical, ...)")
    names: dict[str, str] = {}
    for unit in units:
        if isinstance(unit, FileWork) and names.setdefault(unit.name, unit.path) != unit.path:
            raise MelodiffError(f"{unit.path} and {names[unit.name]} would both be called {unit.name!r} in the "
                                "dataset: give folders of different names (or the files under one folder)")
    return units


def unit_id(unit: FileWork | CorpusWork) -> str:
    """The key of a unit's record in the cache: a file's names it as read and as called (:class:`FileWork`)."""
    return unit.id if isinstance(unit, CorpusWork) else f"file:{unit.name} @ {unit.path}"


def _encode(piece_id: str, ex: Extraction) -> dict:
    return {
        "id": piece_id,
        "melodies": [{"ids": m.melody.ids.tobytes().hex(), "part": m.part, "meter": m.meter, "key": m.key}
                     for m in ex.melodies],
        "dropped": dict(ex.dropped),
        "onsets": ex.onsets,
        "off_grid": ex.onsets_off_grid,
    }


def process_unit(args: tuple[FileWork | CorpusWork, int, tuple[str, ...]]) -> dict:
    """Parse one work unit; never raises: errors are returned as a reason."""
    unit, min_bars, meters = args
    record: dict = {"unit": unit_id(unit), "pieces": [], "error": None}
    if isinstance(unit, FileWork):
        record["path"] = unit.path
    try:
        if isinstance(unit, CorpusWork):
            reason = skip_reason(unit, meters)
            if reason:
                record["skipped"] = reason
                return record
            record["pieces"] = [_encode(unit.id, extract_score(parse_work(unit), min_bars, meters=meters))]
        else:
            pieces = extract_file(unit.path, min_bars, meters)  # piece ids: the path, then #n in an ABC opus
            if not all(pid.startswith(unit.path) for pid, _ in pieces):
                raise RuntimeError(f"piece ids of {unit.path} do not start with its path")
            record["pieces"] = [_encode(f"file:{unit.name}{pid.removeprefix(unit.path)}", ex) for pid, ex in pieces]
    except MelodiffError as exc:
        record["error"] = str(exc)
    except Exception as exc:  # a parser bug on one file must not kill a corpus run
        record["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    return record


def _scan_cache(path: Path, config_key: str) -> dict[str, int]:
    """Unit id -> byte offset in ``path`` of its record parsed with this config (the last one written)."""
    done: dict[str, int] = {}
    if not path.exists():
        return done
    offset = 0
    with path.open("rb") as f:
        for line in f:
            try:
                rec = json.loads(line)
            except ValueError:  # a line cut short by a crash
                rec = None
            if isinstance(rec, dict) and rec.get("config") == config_key and "unit" in rec:
                done[rec["unit"]] = offset
            offset += len(line)
    return done


def run_units(units: list, config: PrepareConfig, cache_path: Path, workers: int, quiet: bool) -> list[int]:
    """Parse every unit the cache does not hold yet, appending its record to ``cache_path`` as it comes; returns
    each unit's record offset in that file, in the order of ``units`` (the records stay on disk: :class:`Records`)."""
    config_key = hashlib.sha256(json.dumps([asdict(config), RECORDS], sort_keys=True).encode()).hexdigest()[:16]
    done = _scan_cache(cache_path, config_key)
    todo = [u for u in units if unit_id(u) not in done]
    if done:
        log.info("resuming: %d of %d work units already parsed", len(units) - len(todo), len(units))
    with cache_path.open("ab") as cache, tqdm(total=len(todo), desc="parsing", unit="piece", disable=quiet) as bar:
        if cache.tell() and not _ends_with_newline(cache_path):
            cache.write(b"\n")  # a line cut short by a crash stays a line of its own
        for rec in _imap(todo, config, workers):
            rec["config"] = config_key
            done[rec["unit"]] = cache.tell()
            cache.write((json.dumps(rec) + "\n").encode())
            cache.flush()
            bar.update()
    return [done[unit_id(u)] for u in units]


def _ends_with_newline(path: Path) -> bool:
    with path.open("rb") as f:
        f.seek(-1, os.SEEK_END)
        return f.read(1) == b"\n"


def _imap(todo: list, config: PrepareConfig, workers: int) -> Iterator[dict]:
    args = [(u, config.min_bars, config.meters) for u in todo]
    if workers <= 1 or len(todo) <= 1:
        yield from map(process_unit, args)
        return
    with mp.get_context("fork").Pool(workers) as pool:
        yield from pool.imap_unordered(process_unit, args, chunksize=4)


class Records:
    """The parsed records of a run, read back one at a time from the cache file by byte offset (the last one read
    is kept): assembling a corpus holds one record in memory, not all of them."""

    def __init__(self, path: Path, offsets: list[int]) -> None:
        self.offsets = offsets  # one per work unit, in the order of the units
        self._file = path.open("rb")
        self._last: tuple[int, dict] | None = None

    def at(self, offset: int) -> dict:
        if self._last is None or self._last[0] != offset:
            self._file.seek(offset)
            self._last = (offset, json.loads(self._file.readline()))
        return self._last[1]

    def __iter__(self) -> Iterator[dict]:
        """Every unit's record, in the order of the units."""
        return (self.at(offset) for offset in self.offsets)

    def close(self) -> None:
        self._file.close()


# ---- assembly ----------------------------------------------------------------------------------------------------
def assemble(records: Records, config: PrepareConfig, events: BinaryIO, index: BinaryIO,
             tally: MelodyTally) -> tuple[Counter, set[str]]:
    """Stream the melodies of ``records`` in piece-id order into ``events`` (their int8 ids, concatenated) and
    ``index`` (melodies.json: a JSON list of one record per melody), de-duplicating identical melodies (the first
    piece id keeps it); each kept melody is added to ``tally``. Returns (the duplicates dropped, the ids of pieces
    that kept a melody). Memory: a piece id per piece and a 16-byte digest per kept melody, not the melodies."""
    keys = sorted((piece["id"], n, offset, k) for n, offset in enumerate(records.offsets)
                  for k, piece in enumerate(records.at(offset)["pieces"]))  # n: ties keep the units' order
    seen: set[bytes] = set()
    dropped: Counter = Counter()
    kept: set[str] = set()
    start = 0
    index.write(b"[")
    for piece_id, _, offset, k in keys:
        piece = records.at(offset)["pieces"][k]
        split = split_of(piece_id, config)
        for j, mel in enumerate(piece["melodies"]):
            ids = bytes.fromhex(mel["ids"])
            digest = hashlib.blake2b(ids, digest_size=16).digest()
            if digest in seen:
                dropped["duplicate melody"] += 1
                continue
            seen.add(digest)
            events.write(ids)
            entry = {"id": f"{piece_id}/{j}", "piece": piece_id, "source": piece_id.split("/")[0],
                     "part": mel["part"], "meter": mel["meter"], "key": mel["key"], "split": split,
                     "start": start, "length": len(ids)}
            index.write((",\n" if kept else "\n").encode() + json.dumps(entry, indent=0).encode())
            tally.add(entry, np.frombuffer(ids, dtype=np.int8))
            kept.add(piece_id)
            start += len(ids)
    index.write(b"\n]" if kept else b"]")  # byte for byte what json.dumps(all entries, indent=0) writes
    return dropped, kept


def _npy_header(length: int) -> bytes:
    """The header np.save writes for an int8 array of ``length``. numpy pads it to one size for every length below
    10^21, so it is written last, over a placeholder, once the length is known."""
    header = np.lib.format.header_data_from_array_1_0(np.zeros(0, dtype=np.int8))
    header["shape"] = (length,)
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, header)
    return buf.getvalue()


def prepare(sources: list[str], out: str | Path, config: PrepareConfig | None = None, workers: int | None = None,
            quiet: bool = False) -> dict:
    """Build a dataset from sources into ``out``; returns the report dict. Resumable through ``out/cache.jsonl``.

    Memory does not grow with the corpus: records go to the cache file as the parsers finish them and are streamed
    from it into events.npy, melodies.json and the report's tallies (docs/SCALING.md)."""
    config = config or PrepareConfig()
    out = Path(out)
    units = expand_sources(sources)
    single_file = len(units) == 1 and not isinstance(units[0], CorpusWork)
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    records = None
    try:
        offsets = run_units(units, config, out / "cache.jsonl", workers or os.cpu_count() or 1, quiet)
        records = Records(out / "cache.jsonl", offsets)
        if single_file and records.at(offsets[0])["error"]:
            raise MelodiffError(records.at(offsets[0])["error"])
        tally = MelodyTally()
        with atomic_open(out / "events.npy") as events, atomic_open(out / "melodies.json") as index:
            placeholder = _npy_header(0)
            events.write(placeholder)
            duplicates, kept = assemble(records, config, events, index, tally)
            if not kept:
                where = f"{units[0].path}: no melodies could be extracted" if single_file else "no melodies could be " \
                    "extracted from the sources"
                raise MelodiffError(f"{where} ({_why_nothing(records)})")
            header = _npy_header(tally.steps)
            if len(header) != len(placeholder):
                raise RuntimeError(f"the .npy header of {tally.steps} steps is not {len(placeholder)} bytes long")
            events.seek(0)
            events.write(header)
            report = build_report(sources, records, kept, tally, duplicates, time.perf_counter() - t0)
    except MelodiffError:
        if records is not None:
            records.close()
            records = None
        if created:  # leave no half-made dataset folder behind (an interrupt keeps the cache to resume from)
            (out / "cache.jsonl").unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                out.rmdir()
        raise
    finally:
        if records is not None:
            records.close()
    atomic_write_text(out / "prepare.json", json.dumps({"sources": sources, "config": asdict(config)}, indent=2))
    write_report(report, out)
    return report


def _why_nothing(records: Iterable[dict]) -> str:
    """The commonest reasons no melody was kept, for a one-line error."""
    reasons: Counter = Counter()
    for rec in records:
        reasons["unreadable file"] += bool(rec["error"])
        if rec.get("skipped"):
            reasons[rec["skipped"]] += 1
        for piece in rec["pieces"]:
            reasons.update(piece["dropped"])
    return "; ".join(f"{k}: {v}" for k, v in reasons.most_common(4) if v) or "no notes found"


def load_melodies(data_dir: str | Path, split: str | None = None,
                  meters: tuple[str, ...] | None = None) -> tuple[list[Melody], list[dict]]:
    """Read a prepared dataset: melodies (optionally of one split, and only those in the model ``meters``), each in
    the model meter of its record's written meter (music/meter.py), and their index records."""
    data_dir = Path(data_dir)
    if not (data_dir / "melodies.json").exists():
        raise MelodiffError(f"{data_dir}: not a prepared dataset (run `melodiff prepare` first)")
    if split is not None and split not in SPLITS:
        raise MelodiffError(f"unknown split {split!r}: use one of {', '.join(SPLITS)}")
    events = np.load(data_dir / "events.npy", mmap_mode="r")
    index = json.loads((data_dir / "melodies.json").read_text())
    if split is not None:
        index = [r for r in index if r["split"] == split]
    kept = [(r, model_meter(r.get("meter", "4/4"))) for r in index]  # records from before meters: 4/4
    if meters is not None:
        kept = [(r, m) for r, m in kept if m.name in meters]
    return ([Melody(np.asarray(events[r["start"]:r["start"] + r["length"]]), m) for r, m in kept],
            [r for r, _ in kept])
