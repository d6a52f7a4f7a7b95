"""Melody -> MIDI -> Melody round trips, MIDI metadata, argument checks, WAV rendering and piano-roll PNGs."""

from __future__ import annotations

import shutil
import wave
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from melody_strategies import melodies
from symusic import Note as MidiNote
from symusic import Score, Track

from melodiff.errors import MelodiffError
from melodiff.music import midi_io
from melodiff.music.extract import extract_midi
from melodiff.music.melody import Melody, Note
from melodiff.music.midi_io import draw_piano_roll, draw_piano_roll_sheet, read_midi_melody, render_wav, write_midi

TUNE = Melody.from_notes([Note(60, 0, 4), Note(62, 4, 8), Note(64, 8, 10), Note(65, 12, 16), Note(67, 16, 32),
                          Note(72, 32, 36), Note(71, 36, 40), Note(69, 40, 48), Note(67, 52, 54)], 64)


@pytest.fixture(scope="module")
def midi_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("midi")


@settings(max_examples=50, deadline=None)
@given(melodies(min_notes=1))
def test_write_read_round_trip(midi_dir: Path, m: Melody) -> None:
    path = midi_dir / "round_trip.mid"
    write_midi(m, path)
    assert read_midi_melody(path) == m


@settings(max_examples=20, deadline=None)
@given(melodies(min_notes=1), melodies(min_notes=1))
def test_several_melodies_are_several_tracks(midi_dir: Path, a: Melody, b: Melody) -> None:
    path = midi_dir / "two.mid"
    write_midi([a, b], path)
    score = Score(str(path))
    assert len(score.tracks) == 2
    assert read_midi_melody(path) == a  # the first track


def test_tempo_program_meter_are_written(tmp_path: Path) -> None:
    path = tmp_path / "meta.mid"
    write_midi(TUNE, path, tempo_qpm=90.0, program=40, velocity=77)
    score = Score(str(path))
    assert score.ticks_per_quarter == midi_io.TICKS_PER_QUARTER
    assert len(score.tempos) == 1 and score.tempos[0].qpm == pytest.approx(90.0, rel=1e-4)
    assert [(ts.numerator, ts.denominator) for ts in score.time_signatures] == [(4, 4)]
    (track,) = score.tracks
    assert track.program == 40 and not track.is_drum
    assert {n.velocity for n in track.notes} == {77}
    assert [(n.time, n.duration, n.pitch) for n in track.notes][:2] == [(0, 480, 60), (480, 480, 62)]


def test_written_midi_extracts_to_the_same_melody(tmp_path: Path) -> None:
    path = tmp_path / "tune.mid"
    write_midi(TUNE, path)
    (extracted,) = extract_midi(path, min_bars=2).melodies
    assert extracted.melody == TUNE and extracted.meter == "4/4"


def test_read_rounds_off_grid_notes_and_keeps_the_highest(tmp_path: Path) -> None:
    score = Score(96)  # 24 ticks per step
    track = Track(name="lead", program=0)
    for time, duration, pitch in [(0, 48, 60), (0, 48, 64), (50, 22, 67), (96, 30, 20)]:
        track.notes.append(MidiNote(time, duration, pitch, 90))
    score.tracks.append(track)
    path = tmp_path / "offgrid.mid"
    path.write_bytes(score.dumps_midi())
    assert read_midi_melody(path).ids.tolist() == [45, 0, 48]  # E4 over C4; G4 at steps 2..3; MIDI 20 dropped


@pytest.mark.parametrize("kwargs", [
    {"tempo_qpm": 0}, {"tempo_qpm": -10.0}, {"tempo_qpm": 1000.5}, {"tempo_qpm": float("nan")},
    {"tempo_qpm": "fast"}, {"program": -1}, {"program": 128}, {"program": 1.5}, {"velocity": 0},
    {"velocity": 128},
])
def test_bad_arguments_raise_one_line_errors(tmp_path: Path, kwargs: dict) -> None:
    with pytest.raises(MelodiffError) as info:
        write_midi(TUNE, tmp_path / "bad.mid", **kwargs)
    assert "\n" not in str(info.value)
    assert not list(tmp_path.iterdir())


def test_bad_melody_arguments(tmp_path: Path) -> None:
    with pytest.raises(MelodiffError):
        write_midi([], tmp_path / "empty.mid")
    with pytest.raises(MelodiffError):
        write_midi([TUNE, "not a melody"], tmp_path / "mixed.mid")  # type: ignore[list-item]


def test_unreadable_midi_raises(tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.mid"
    corrupt.write_bytes(np.random.default_rng(0).integers(0, 256, 300, dtype=np.uint8).tobytes())
    with pytest.raises(MelodiffError, match="not a readable MIDI file"):
        read_midi_melody(corrupt)
    with pytest.raises(MelodiffError, match="no such file"):
        read_midi_melody(tmp_path / "missing.mid")
    rest = tmp_path / "rest.mid"
    write_midi(Melody([0] * 16), rest)  # no notes at all: nothing to read back
    with pytest.raises(MelodiffError, match="no non-drum track"):
        read_midi_melody(rest)


def test_piano_roll_png(tmp_path: Path) -> None:
    png = tmp_path / "roll.png"
    draw_piano_roll(TUNE, png, title="tune")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    two = tmp_path / "sub" / "two.png"
    draw_piano_roll([TUNE, TUNE.transposed(-12), Melody([])], two, highlight=(16, 48))
    assert two.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(MelodiffError, match="highlight"):
        draw_piano_roll(TUNE, tmp_path / "bad.png", highlight=(8, 8))
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["roll.png", "two.png"]


def test_piano_roll_sheet_png(tmp_path: Path) -> None:
    sheet = tmp_path / "sheet.png"
    draw_piano_roll_sheet([("real", [TUNE, TUNE.transposed(2)]), ("generated", [Melody([0] * 32)])], sheet,
                          title="real vs generated")
    assert sheet.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(MelodiffError, match="at least one melody"):
        draw_piano_roll_sheet([("empty", [])], tmp_path / "none.png")
    assert not (tmp_path / "none.png").exists()


@pytest.mark.skipif(shutil.which("fluidsynth") is None, reason="the fluidsynth binary is not installed "
                    "(apt-get install fluidsynth fluid-soundfont-gm)")
def test_render_wav(tmp_path: Path) -> None:
    try:
        midi_io.find_soundfont()
    except MelodiffError as exc:
        pytest.skip(str(exc))
    mid, wav_path = tmp_path / "tune.mid", tmp_path / "out" / "tune.wav"
    write_midi(TUNE, mid, tempo_qpm=240.0)  # 4 bars at 240 qpm = 4 s
    render_wav(mid, wav_path, sample_rate=22050)
    with wave.open(str(wav_path)) as w:
        assert w.getframerate() == 22050
        assert 3.5 < w.getnframes() / w.getframerate() < 10
    assert [p.name for p in wav_path.parent.iterdir()] == ["tune.wav"]  # no temporary file left
    assert wav_path.stat().st_mode & 0o777 == mid.stat().st_mode & 0o777  # as any other new file, not 0600


def test_render_wav_explains_what_is_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mid = tmp_path / "tune.mid"
    write_midi(TUNE, mid)
    monkeypatch.setattr(midi_io.shutil, "which", lambda name: None)
    with pytest.raises(MelodiffError, match="apt-get install fluidsynth fluid-soundfont-gm"):
        render_wav(mid, tmp_path / "x.wav")
    monkeypatch.setattr(midi_io.shutil, "which", lambda name: "/usr/bin/fluidsynth")
    monkeypatch.setattr(midi_io, "SOUNDFONT_PATHS", (str(tmp_path / "none.sf2"),))
    monkeypatch.delenv(midi_io.SOUNDFONT_ENV, raising=False)
    with pytest.raises(MelodiffError, match="fluid-soundfont-gm"):
        render_wav(mid, tmp_path / "x.wav")
    monkeypatch.setenv(midi_io.SOUNDFONT_ENV, str(tmp_path / "missing.sf2"))
    with pytest.raises(MelodiffError, match="MELODIFF_SOUNDFONT"):
        render_wav(mid, tmp_path / "x.wav")
    with pytest.raises(MelodiffError, match="no such file"):
        render_wav(tmp_path / "missing.mid", tmp_path / "x.wav")
    assert [p.name for p in tmp_path.iterdir()] == ["tune.mid"]
