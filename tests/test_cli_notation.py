"""Sheet music from the command line: --musicxml --abc --sheet next to the MIDI, with the shipped model (few steps);
what cannot be written is one warning line, and the MIDI is still written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from melodiff.cli import main
from melodiff.music import notation
from melodiff.music.melody import Melody, Note
from melodiff.music.midi_io import read_midi_melody, write_midi

FAST = ["--sampler", "ddim", "--steps", "5"]


def measures(svg: Path) -> list[str]:
    return re.findall(r'<g id="[^"]*" class="(measure[^"]*)"', svg.read_text())


def test_generate_writes_musicxml_abc_and_svg(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["generate", "--bars", "4", "-n", "2", "--seed", "3", *FAST, "--musicxml", "--abc", "--sheet",
                 "--tempo", "90", "--out", str(tmp_path)])
    out, err = capsys.readouterr()
    assert code == 0 and "warning" not in err
    for i in range(2):
        base = tmp_path / f"sample_{i:03d}"
        assert f"{base}.abc" in out and f"{base}.musicxml" in out and f"{base}.svg" in out
        notes = read_midi_melody(base.with_suffix(".mid")).to_notes()
        abc = base.with_suffix(".abc").read_text()
        assert f"T:melodiff generate, seed 3, #{i + 1}" in abc and "Q:1/4=90" in abc
        assert notation.read_notes(abc, "abc") == notes
        assert notation.read_notes(base.with_suffix(".musicxml").read_text(), "musicxml") == notes
        assert measures(base.with_suffix(".svg")) == ["measure"] * 4


def test_infill_sheet_shows_the_new_bars(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_midi(Melody.from_notes([Note(62 + i % 5, 4 * i, 4 * i + 3) for i in range(16)]), tmp_path / "tune.mid")
    code = main(["-q", "infill", str(tmp_path / "tune.mid"), "--bars", "3-4", "--seed", "1", *FAST, "--sheet",
                 "--out", str(tmp_path / "out")])
    assert code == 0 and capsys.readouterr().err == ""
    assert measures(tmp_path / "out" / "infill_000.svg") == ["measure", "measure"] + ["measure highlight"] * 2
    assert not (tmp_path / "out" / "infill_000.abc").exists()  # only what was asked for


@pytest.mark.parametrize(("broken", "skipped"), [("engrave", "sheet music"),
                                                 ("to_musicxml", "MusicXML and sheet music")])
def test_a_notation_failure_is_one_warning_and_the_midi_is_written(
        broken: str, skipped: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    def fail(*args, **kwargs):
        raise notation.NotationError("the engraver broke")

    monkeypatch.setattr(notation, broken, fail)
    code = main(["-q", "generate", "--bars", "2", "--seed", "1", *FAST, "--abc", "--musicxml", "--sheet", "--out",
                 str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 0
    assert err == f"melodiff: warning: sample_000: {skipped} skipped (the engraver broke); the MIDI is written\n"
    assert (tmp_path / "sample_000.mid").is_file() and (tmp_path / "sample_000.abc").is_file()
    assert not (tmp_path / "sample_000.svg").exists()
