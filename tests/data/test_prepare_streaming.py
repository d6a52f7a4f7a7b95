"""`prepare` streams: its files are byte for byte what the whole-corpus-in-memory version wrote (np.save, json.dumps
of the whole index, np.percentile of every pitch), and a cache line cut short by a crash costs one re-parse."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest

from melodiff.data.prepare import PrepareConfig, _npy_header, load_melodies, prepare
from melodiff.data.report import percentile_of_counts
from melodiff.music.melody import Melody, Note
from melodiff.music.midi_io import write_midi


@pytest.mark.parametrize("length", [0, 1, 5, 127, 128, 10**6, 2**40])
def test_npy_header_is_np_save_s(length: int) -> None:
    buf = io.BytesIO()
    np.save(buf, np.zeros(min(length, 200), dtype=np.int8))
    header = _npy_header(length)
    assert len(header) == len(_npy_header(0))
    if length <= 200:
        assert buf.getvalue() == header + bytes(length)


def test_percentile_of_counts_is_np_percentile() -> None:
    rng = np.random.default_rng(0)
    for _ in range(400):
        n = int(rng.integers(1, 300))
        values = rng.integers(21, 109, n) if rng.random() < 0.5 else rng.integers(50, 54, n)
        counts = np.bincount(values, minlength=128)
        for q in (0, 1, 25, 50, 99, 100):
            assert int(percentile_of_counts(counts, q)) == int(np.percentile(values, q))
            assert percentile_of_counts(counts, q) == float(np.percentile(values, q))


def _corpus(folder: Path) -> None:
    rng = np.random.default_rng(3)
    for i in range(6):
        notes, t = [], 0
        while t < 80:
            duration = int(rng.integers(1, 6))
            notes.append(Note(int(rng.integers(50, 90)), t, t + duration))
            t += duration + int(rng.integers(0, 3))
        write_midi(Melody.from_notes(notes), folder / f"t{i}.mid")
    (folder / "t0_again.mid").write_bytes((folder / "t0.mid").read_bytes())


def test_files_are_what_the_in_memory_version_wrote(tmp_path: Path) -> None:
    _corpus(tmp_path / "src")
    out = tmp_path / "data"
    report = prepare([str(tmp_path / "src")], out, PrepareConfig(test_fraction=0.3), workers=1, quiet=True)
    melodies, index = load_melodies(out)
    assert (out / "melodies.json").read_text() == json.dumps(index, indent=0)
    events = np.concatenate([m.ids for m in melodies]).astype(np.int8)
    buf = io.BytesIO()
    np.save(buf, events)
    assert (out / "events.npy").read_bytes() == buf.getvalue()
    pitches = np.array([n.pitch for m in melodies for n in m.to_notes()])
    assert report["pitch_p1_p99"] == [int(np.percentile(pitches, 1)), int(np.percentile(pitches, 99))]
    assert report["melodies"] == 6 and report["dropped"]["duplicate melody"] == 1
    assert report["files_without_melodies"] == [{"file": str((tmp_path / "src" / "t0_again.mid").resolve()),
                                                 "reasons": {"duplicate melody": 1}}]
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


def test_a_cut_cache_line_is_parsed_again(tmp_path: Path) -> None:
    _corpus(tmp_path / "src")
    out = tmp_path / "data"
    prepare([str(tmp_path / "src")], out, workers=1, quiet=True)
    before = {name: (out / name).read_bytes() for name in ("events.npy", "melodies.json")}
    cache = out / "cache.jsonl"
    lines = cache.read_bytes().splitlines(keepends=True)
    cache.write_bytes(b"".join(lines[:-1]) + lines[-1][:40])  # the last record cut short, no newline
    prepare([str(tmp_path / "src")], out, workers=1, quiet=True)
    assert {name: (out / name).read_bytes() for name in before} == before
    rows = cache.read_bytes().splitlines()
    assert len(rows) == len(lines) + 1 and rows[-2] == lines[-1][:40]  # the cut line stays alone on its line
