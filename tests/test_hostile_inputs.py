"""Hostile input, as a hostile but fair user would try it: every bad file or argument ends in exit 2 with one
``melodiff: error:`` line, no traceback, nothing written, in bounded time and memory (docs/LIMITS.md)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hostile_files import MIDI_INPUTS, SCORE_INPUTS, midi_bytes, run_measured
from melodiff.cli import main
from melodiff.errors import MelodiffError
from melodiff.music.limits import MAX_STEPS
from melodiff.music.melody import Melody, Note
from melodiff.music.midi_io import read_midi_melody, write_midi

ALL_INPUTS = {**MIDI_INPUTS, **SCORE_INPUTS}
MAX_RSS_BYTES = 2**30  # the targets: 1 GB and 10 s a case
MAX_SECONDS = 10.0


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("hostile")
    made = {name: make(folder) for name, make in ALL_INPUTS.items()}
    good = Melody.from_notes([Note(60 + i % 7, 4 * i, 4 * i + 3) for i in range(16)])
    write_midi(good, folder / "good" / "good.mid")
    made["good"] = folder / "good" / "good.mid"
    return made


def _one_error_line(err: str) -> str:
    assert "Traceback" not in err, err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("melodiff: error: "), err
    return lines[0]


@pytest.mark.parametrize("name", sorted(ALL_INPUTS))
def test_music_commands_refuse_hostile_files(name: str, files: dict[str, Path], tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    bad, good, out = str(files[name]), str(files["good"]), tmp_path / "out"
    seed = ["--seed", "1"]
    commands = [["infill", bad, "--bars", "1-2", *seed], ["continue", bad, *seed], ["interpolate", good, bad, *seed],
                ["prepare", bad, "--workers", "1"]]
    track = ["infill", bad, "--bars", "1-2", "--track", "0", *seed]
    if name in ("late_event", "seven_eight"):  # extraction reads these (the way out the error names): a far "all
        assert main(["-q", *track, "--out", str(out)]) == 0  # notes off" marker matters only to a MIDI's direct
        assert len(list(out.glob("*.mid"))) == 1  # read; the 4/4 bars before a 7/8 are a tune of their own
        shutil.rmtree(out)
    else:
        commands.append(track)
    for argv in commands:
        assert main(["-q", *argv, "--out", str(out)]) == 2, argv
        line = _one_error_line(capsys.readouterr().err)
        assert Path(bad).name in line, line
        assert not out.exists()


@pytest.mark.parametrize("argv, message", [
    (["generate", "--seed", "99999999999999999999999"], "a seed is an integer in 0..2147483647"),
    (["generate", "--seed", "-1"], "a seed is an integer"),
    (["generate", "--temperature", "inf"], "finite"),
    (["generate", "--temperature", "nan"], "finite"),
    (["generate", "--temperature", "3"], "temperature must be in 0..2"),
    (["generate", "--steps", "5000"], "sampling steps must be in 1..1000"),
    (["generate", "--tempo", "inf"], "finite"),
    (["generate", "--out", ""], "an empty path"),
    (["generate", "--out", "  "], "an empty path"),
    (["evaluate", "--data", "x", "--samplers", "foo"], "unknown sampler 'foo'"),
    (["evaluate", "--data", "x", "--samplers", "ddim:abc"], "not an integer: 'abc'"),
    (["evaluate", "--data", "x", "--samplers", "ddim:0"], "must be at least 1"),
    (["train-diffusion", "--latents", "x", "--out", "y", "--max-minutes", "nan"], "finite"),
    (["train-diffusion", "--latents", "x", "--out", "y", "--max-minutes", "-1"], "must be > 0"),
    (["nonsense"], "invalid choice"),
])
def test_bad_arguments_are_one_line(argv: list[str], message: str, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    os.chdir(tmp_path)  # --out "" must not write into the current folder
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own refusals
        code = exc.code
    assert code == 2
    assert message in _one_error_line(capsys.readouterr().err)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("argv, message", [
    (["generate", "--form", "ABC", "--bars", "32"], "form ABC: 3 sections of 8 bars last 24 bars, not 32"),
    (["generate", "--form", "AB", "--section-bars", "3"], "even number of bars"),
    (["generate", "--form", "A'B"], "has not come yet"),
    (["generate", "--form", "A-B"], "write sections as letters"),
    (["generate", "--section-bars", "4"], "--section-bars needs a written --form"),
    (["generate", "--form", "none", "--section-bars", "4"], "section bars need a form"),
    (["evaluate", "--data", "nowhere", "--form", "ABC", "--bars", "16"], "not 16"),
])
def test_forms_that_cannot_fit_fail_before_the_model_loads(argv: list[str], message: str, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-q", *argv, "--out", str(tmp_path / "out"), "--model", str(tmp_path / "no-model")]) == 2
    assert message in _one_error_line(capsys.readouterr().err)  # the missing --model was never looked at
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("name", ["bomb", "late_event", "long_note", "many_notes", "abc_long_note"])
def test_bomb_files_take_little_memory_and_time(name: str, files: dict[str, Path], tmp_path: Path) -> None:
    """Measured in a process of its own: before, the 45-byte bomb took `infill` to 8-14 GB."""
    code, err, seconds, rss = run_measured(["infill", str(files[name]), "--bars", "1-2", "--out", "out"], tmp_path)
    assert code == 2 and "melodiff reads at most" in _one_error_line(err)
    assert seconds < MAX_SECONDS and rss < MAX_RSS_BYTES, (seconds, rss)
    assert list(tmp_path.iterdir()) == []


def test_prepare_lists_every_failed_file(files: dict[str, Path], tmp_path: Path) -> None:
    """A folder of hostile files beside one good one: a dataset of the good one, in bounded memory, and a report
    naming every file that failed with its whole reason."""
    folder = files["good"].parent.parent  # all the hostile files and good/good.mid
    code, err, seconds, rss = run_measured(["prepare", str(folder), "--out", "data", "--workers", "1"], tmp_path)
    assert code == 0, err
    assert seconds < 3 * MAX_SECONDS and rss < MAX_RSS_BYTES, (seconds, rss)
    report = json.loads((tmp_path / "data" / "report.json").read_text())
    failed = {Path(f["file"]).name: f["error"] for f in report["failed_files"]}
    assert failed["bomb.mid"] == "the melody would last 33,554,432 bars; melodiff reads at most 4096 bars"
    assert failed["tpq0.mid"] == "not a readable MIDI file (0 ticks per quarter note)"
    assert "MiniMidi: Invaild midi file! File header is not MThd!: iostream error" in failed["random.mid"]
    assert set(failed) >= {"bomb.mid", "late_note.mid", "long_note.mid", "many_notes.mid", "truncated.mid",
                           "huge.mid", "long.abc", "long.musicxml"}
    empty = {Path(f["file"]).name: f["reasons"] for f in report["files_without_melodies"]}
    assert empty["five_eight.mid"] == {"meter 5/8": 1}
    assert "meter 7/8" in empty["seven_eight.mid"]
    assert "good.mid" not in failed and "good.mid" not in empty and report["melodies"] == 1
    md = (tmp_path / "data" / "report.md").read_text()
    assert f"Files that could not be read ({len(failed)})" in md and "bomb.mid`: the melody would last" in md
    assert "Files read but giving no melody" in md and "five_eight.mid`: meter 5/8 (1)" in md


# ---- fuzzing: mutated MIDI files ------------------------------------------------------------------------------------
GOOD_MIDI = midi_bytes([e for i in range(32) for e in
                        ((0, bytes([0x90, 60 + i % 12, 100])), (240, bytes([0x80, 60 + i % 12, 0])))])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edits=st.lists(st.tuples(st.integers(0, len(GOOD_MIDI) - 1), st.integers(0, 255)), max_size=8),
       cut=st.integers(1, len(GOOD_MIDI)), tpq=st.one_of(st.none(), st.integers(0, 0xFFFF)))
def test_mutated_midi_files_give_a_melody_or_a_one_line_error(tmp_path: Path, edits, cut: int, tpq) -> None:
    """Random byte edits, truncations and time units: a Melody within the limits, or a MelodiffError; never another
    exception, never a melody past MAX_STEPS."""
    data = bytearray(GOOD_MIDI)
    if tpq is not None:
        data[12:14] = tpq.to_bytes(2, "big")
    for position, value in edits:
        data[position] = value
    path = tmp_path / "fuzz.mid"
    path.write_bytes(bytes(data[:cut]))
    try:
        melody = read_midi_melody(path)
    except MelodiffError as exc:
        assert "\n" not in str(exc)
        return
    assert len(melody) <= MAX_STEPS
