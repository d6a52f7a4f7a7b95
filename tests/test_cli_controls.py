"""--key, --range, --density and --style on the command line: obeyed by the shipped model, and bad values refused
with one line and exit 2 before a model is loaded or anything is written."""

from __future__ import annotations

from pathlib import Path

import pytest

from melodiff.cli import main
from melodiff.music.keys import melody_key
from melodiff.music.midi_io import read_midi_melody


def run(args: list[str]) -> int:
    try:
        return main(args)
    except SystemExit as exc:  # argparse's own errors
        return int(exc.code)


@pytest.mark.parametrize("args, message", [
    (["--key", "H"], "unknown key"),
    (["--range", "C4-D4"], "at least a fifth"),
    (["--range", "C0-C4"], "outside MIDI 21..108"),
    (["--range", "C4"], "LOW-HIGH"),
    (["--density", "0"], "density"),
    (["--density", "0.5"], "density"),
    (["--density", "40"], "density"),
    (["--style", "klingon"], "unknown style 'klingon': this model knows airdsAirs, essenFolksong"),
    (["--density", "4", "--guidance", "30"], "guidance must be in 0..20"),
    (["--cadence", "999"], "cadence must be in 0..256"),
])
def test_bad_controls_are_one_line_errors(args: list[str], message: str, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert run(["generate", "--bars", "8", "--seed", "1", "--out", str(out), "-q", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("melodiff: error: ") and message in err and err.count("\n") == 1
    assert not out.exists()


def test_the_key_of_music_around_a_given_melody_is_its_own(tmp_path: Path, capsys) -> None:
    assert main(["generate", "--bars", "8", "--seed", "1", "--out", str(tmp_path), "-q"]) == 0
    tune = tmp_path / "sample_000.mid"
    assert run(["continue", str(tune), "--key", "Em", "--out", str(tmp_path / "c"), "-q"]) == 2
    assert "--key" in capsys.readouterr().err


def test_the_shipped_model_obeys_density_style_and_a_minor_key(tmp_path: Path) -> None:
    """The shipped model's guide (diffusion/guide.py) steers to a density and a style; --key's mode holds."""
    assert main(["generate", "--bars", "16", "-n", "4", "--seed", "2", "--key", "Em", "--density", "3",
                 "--style", "oneills1850", "--out", str(tmp_path), "-q"]) == 0
    melodies = [read_midi_melody(tmp_path / f"sample_00{i}.mid") for i in range(4)]
    assert sum(melody_key(m) == (4, True) for m in melodies) >= 3  # 95 % of 200 pieces in the evaluation
    assert abs(sum(m.notes_per_bar for m in melodies) / 4 - 3) < 0.6  # ±20 %


def test_the_shipped_model_obeys_key_and_range(tmp_path: Path) -> None:
    assert main(["generate", "--bars", "16", "-n", "3", "--seed", "4", "--key", "Bb", "--range", "D4-B5",
                 "--out", str(tmp_path), "-q"]) == 0
    melodies = [read_midi_melody(tmp_path / f"sample_00{i}.mid") for i in range(3)]
    assert all(62 <= n.pitch <= 83 for m in melodies for n in m.to_notes())
    assert all(melody_key(m)[0] == 10 for m in melodies)  # the tonic asked for (moving by octaves keeps it)
