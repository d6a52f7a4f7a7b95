"""The command line through `melodiff.cli.main` and once through the installed `melodiff` console script."""

from __future__ import annotations

import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from melodiff.cli import main
from melodiff.music.melody import Melody, Note
from melodiff.music.midi_io import write_midi


@pytest.fixture
def corrupt(tmp_path: Path) -> Path:
    path = tmp_path / "corrupt.mid"
    path.write_bytes(random.Random(0).randbytes(300))
    return path


def test_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "prepare" in out and "Exit codes" in out
    with pytest.raises(SystemExit) as info:
        main(["prepare", "--help"])
    assert info.value.code == 0 and "music21:folk" in capsys.readouterr().out


def test_usage_error_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["prepare"])  # no sources, no --out
    err = capsys.readouterr().err
    assert info.value.code == 2 and err.startswith("melodiff: error: ") and err.count("\n") == 1
    assert "'melodiff prepare --help'" in err


@pytest.mark.parametrize("quiet", [True, False])
def test_prepare_corrupt_file_is_a_one_line_error(corrupt: Path, tmp_path: Path, quiet: bool,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    code = main([*(["-q"] if quiet else []), "prepare", str(corrupt), "--out", str(out), "--workers", "1"])
    err = capsys.readouterr().err
    assert code == 2
    errors = [line for line in err.splitlines() if "melodiff: error:" in line]
    assert len(errors) == 1 and errors[0].startswith("melodiff: error: ") and "not a readable MIDI file" in errors[0]
    assert "Traceback" not in err
    if quiet:
        assert err.count("\n") == 1
    assert not out.exists()


def test_prepare_writes_a_dataset(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tune = Melody.from_notes([Note(60 + (i % 7), 4 * i, 4 * i + 3) for i in range(16)])
    write_midi(tune, tmp_path / "src" / "tune.mid")
    out = tmp_path / "data"
    assert main(["prepare", str(tmp_path / "src"), "--out", str(out), "--workers", "1", "--test", "0"]) == 0
    assert "1 melodies (4 bars)" in capsys.readouterr().out
    assert (out / "melodies.json").exists() and (out / "report.md").exists()


def test_console_script(corrupt: Path, tmp_path: Path) -> None:
    """The installed entry point maps a bad input file to exit code 2 and one stderr line."""
    script = shutil.which("melodiff", path=str(Path(sys.executable).parent)) or shutil.which("melodiff")
    if script is None:
        pytest.skip("the melodiff console script is not installed (pip install -e .)")
    out = tmp_path / "out"
    run = subprocess.run([script, "-q", "prepare", str(corrupt), "--out", str(out)], capture_output=True, text=True,
                         timeout=60)
    assert run.returncode == 2
    assert run.stderr.count("\n") == 1 and run.stderr.startswith("melodiff: error: ")
    assert run.stdout == "" and not out.exists()
