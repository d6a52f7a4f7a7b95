"""`prepare` on a small folder of generated MIDI files: outputs, report counts, split by piece, cache, loading."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from melodiff.data import prepare as prepare_module
from melodiff.data.prepare import PrepareConfig, load_melodies, prepare, split_of
from melodiff.errors import MelodiffError
from melodiff.music.melody import Melody, Note
from melodiff.music.midi_io import write_midi

CONFIG = PrepareConfig(min_bars=4, validation_fraction=0.3, test_fraction=0.3)
Corpus = tuple[Path, list[Melody]]  # (source folder, the melodies expected from it)
Prepared = tuple[Path, dict]  # (dataset folder, report)


def random_melody(rng: np.random.Generator) -> Melody:
    """Notes of 1..8 steps with gaps of 0..3 steps (an onset in every 2-bar chunk); the last starts in steps 66..76."""
    notes, t = [], 0
    while not notes or notes[-1].start < 66:
        t += int(rng.integers(0, 4))
        duration = int(rng.integers(1, 9))
        notes.append(Note(int(rng.integers(55, 80)), t, t + duration))
        t += duration
    return Melody.from_notes(notes)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    """8 one-track pieces, 1 two-track piece, 1 copy of a piece (a duplicate) and 1 corrupt file."""
    folder = tmp_path_factory.mktemp("corpus")
    rng = np.random.default_rng(7)
    expected = []
    for i in range(8):
        m = random_melody(rng)
        write_midi(m, folder / f"tune{i}.mid")
        expected.append(m.padded())
    duet = [random_melody(rng), random_melody(rng)]
    write_midi(duet, folder / "sub" / "duet.mid")
    expected += [m.padded() for m in duet]
    shutil.copy(folder / "tune0.mid", folder / "tune0_copy.midi")
    (folder / "corrupt.mid").write_bytes(b"MThd not really a MIDI file")
    return folder, expected


@pytest.fixture(scope="module")
def prepared(corpus: Corpus, tmp_path_factory: pytest.TempPathFactory) -> Prepared:
    out = tmp_path_factory.mktemp("prepared") / "data"
    return out, prepare([str(corpus[0])], out, CONFIG, workers=1, quiet=True)


def test_outputs_and_report(corpus: Corpus, prepared: Prepared) -> None:
    out, report = prepared
    names = {p.name for p in out.iterdir()}
    assert {"events.npy", "melodies.json", "report.json", "report.md", "cache.jsonl", "prepare.json"} <= names
    assert not [n for n in names if n.endswith(".tmp")]
    assert report == json.loads((out / "report.json").read_text()) and report["sources"] == [str(corpus[0])]
    assert report["work_units"] == 11 and report["parse_errors"] == 1 and report["pieces_parsed"] == 10
    assert report["melodies"] == 10 and report["dropped"] == {"duplicate melody": 1}
    assert sum(report["melodies_per_split"].values()) == 10
    assert report["two_bar_chunks"] == sum(len(m) // 32 for m in corpus[1])
    assert "melodies kept: 10" in (out / "report.md").read_text()


def test_melodies_round_trip_through_the_dataset(corpus: Corpus, prepared: Prepared) -> None:
    melodies, index = load_melodies(prepared[0])
    assert sorted(m.ids.tobytes() for m in melodies) == sorted(m.ids.tobytes() for m in corpus[1])
    assert [r["length"] for r in index] == [len(m) for m in melodies]
    per_split = [load_melodies(prepared[0], split)[0] for split in ("train", "validation", "test")]
    assert sum(len(s) for s in per_split) == 10
    with pytest.raises(MelodiffError, match="unknown split"):
        load_melodies(prepared[0], "dev")
    with pytest.raises(MelodiffError, match="not a prepared dataset"):
        load_melodies(corpus[0])


def test_split_is_by_piece_and_deterministic(corpus: Corpus, prepared: Prepared,
                                             tmp_path: Path) -> None:
    _, index = load_melodies(prepared[0])
    for record in index:
        assert record["split"] == split_of(record["piece"], CONFIG)
    duet = [r for r in index if r["piece"].endswith("duet.mid")]
    assert len(duet) == 2 and duet[0]["split"] == duet[1]["split"]
    assert not any(r["piece"].endswith("tune0_copy.midi") for r in index)  # the first piece id keeps the melody
    again = tmp_path / "again"
    prepare([str(corpus[0])], again, CONFIG, workers=1, quiet=True)
    assert (again / "melodies.json").read_text() == (prepared[0] / "melodies.json").read_text()
    assert (again / "events.npy").read_bytes() == (prepared[0] / "events.npy").read_bytes()


def test_pieces_are_named_within_their_source_so_splits_do_not_depend_on_where_it_lies(
        corpus: Corpus, prepared: Prepared, tmp_path: Path) -> None:
    _, index = load_melodies(prepared[0])
    folder = corpus[0].name
    assert {r["piece"] for r in index} >= {f"file:{folder}/tune1.mid", f"file:{folder}/sub/duet.mid"}
    assert {r["source"] for r in index} == {f"file:{folder}"}  # the folder's name: the collection (--style)
    moved = tmp_path / "elsewhere" / folder
    shutil.copytree(corpus[0], moved)
    prepare([str(moved)], tmp_path / "moved", CONFIG, workers=1, quiet=True)
    assert (tmp_path / "moved" / "melodies.json").read_text() == (prepared[0] / "melodies.json").read_text()
    alone = prepare([str(moved / "tune1.mid")], tmp_path / "alone", CONFIG, workers=1, quiet=True)
    assert alone["melodies"] == 1 and load_melodies(tmp_path / "alone")[1][0]["piece"] == "file:tune1.mid"
    # the same files named from another folder are parsed again, not taken from the cache under their old names
    prepare([str(moved / "sub")], tmp_path / "moved", CONFIG, workers=1, quiet=True)
    assert [r["piece"] for r in load_melodies(tmp_path / "moved")[1]] == ["file:sub/duet.mid"] * 2
    with pytest.raises(MelodiffError, match=r"would both be called 'tune1\.mid'"):
        prepare([str(moved / "tune1.mid"), str(corpus[0] / "tune1.mid")], tmp_path / "clash", CONFIG, workers=1,
                quiet=True)
    assert not (tmp_path / "clash").exists()


def test_rerun_uses_the_cache(corpus: Corpus, prepared: Prepared,
                              monkeypatch: pytest.MonkeyPatch) -> None:
    out = prepared[0]
    before = (out / "melodies.json").read_text()

    def must_not_parse(args: tuple) -> dict:
        raise AssertionError(f"{args[0]} parsed again despite the cache")

    monkeypatch.setattr(prepare_module, "process_unit", must_not_parse)
    report = prepare([str(corpus[0])], out, CONFIG, workers=1, quiet=True)
    assert report["melodies"] == 10 and (out / "melodies.json").read_text() == before
    with pytest.raises(AssertionError, match="parsed again"):  # another config is another cache key
        prepare([str(corpus[0])], out, PrepareConfig(min_bars=2), workers=1, quiet=True)


def test_bad_sources_and_config(tmp_path: Path) -> None:
    with pytest.raises(MelodiffError, match="no such file or folder"):
        prepare([str(tmp_path / "missing")], tmp_path / "out", quiet=True)
    (tmp_path / "empty").mkdir()
    with pytest.raises(MelodiffError, match="no MIDI"):
        prepare([str(tmp_path / "empty")], tmp_path / "out", quiet=True)
    with pytest.raises(MelodiffError, match="min-bars"):
        PrepareConfig(min_bars=1)
    with pytest.raises(MelodiffError, match="fractions"):
        PrepareConfig(validation_fraction=0.6, test_fraction=0.5)
    assert not (tmp_path / "out").exists()


def test_nothing_extracted_leaves_no_folder(tmp_path: Path) -> None:
    src = tmp_path / "src"
    write_midi(Melody.from_notes([Note(60, 0, 8)]), src / "short.mid")  # half a bar: too short
    (src / "corrupt.mid").write_bytes(b"\x00" * 64)
    with pytest.raises(MelodiffError, match="no melodies could be extracted") as info:
        prepare([str(src)], tmp_path / "out", workers=1, quiet=True)
    assert "too short: 1" in str(info.value) and "unreadable file: 1" in str(info.value)
    assert not (tmp_path / "out").exists()
