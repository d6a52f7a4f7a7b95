"""Model folders (loading.py, bundle.py): forms.json written from the training melodies, refused when damaged, and
dropped when a folder is bundled again without data; damaged checksums.json."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from melodiff.bundle import checksum
from melodiff.errors import MelodiffError
from melodiff.loading import load_model, read_forms, verify_model
from melodiff.pipeline import DEFAULT_MODEL


@pytest.fixture
def model(tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    shutil.copytree(DEFAULT_MODEL, folder)
    return folder


def test_the_shipped_forms_load(model: Path) -> None:
    forms = load_model(model)[4]
    assert set(forms) == {"8", "16", "32"} and forms["32"]["section_bars"] == 2
    assert sum(forms["32"]["forms"].values()) == forms["32"]["melodies"]
    assert not any("'" in f for entry in forms.values() for f in entry["forms"])  # 2-bar sections: no variations


@pytest.mark.parametrize("text", ["not json", '{"forms": []}', '{"forms": {"32": {"section_bars": 2, "forms": {}}}}',
                                  '{"forms": {"32": {"section_bars": 3, "forms": {"AB": 1}}}}',
                                  '{"forms": {"32": {"section_bars": 2, "forms": {"ABC": 1}}}}',
                                  '{"forms": {"8": {"section_bars": 2, "forms": {"AB\'CD": 1}}}}'])
def test_damaged_forms_are_one_line_errors(model: Path, text: str) -> None:
    (model / "forms.json").write_text(text)
    with pytest.raises(MelodiffError, match="not a forms file"):
        read_forms(model)


def test_damaged_checksums(model: Path) -> None:
    (model / "checksums.json").write_text("{broken")
    with pytest.raises(MelodiffError, match=r"checksums\.json: damaged"):
        verify_model(model)
    (model / "forms.json").write_text('{"forms": {}}')
    checksum(model)
    verify_model(model)
    (model / "forms.json").write_text('{"forms": {"8": {}}}')
    with pytest.raises(MelodiffError, match=r"forms\.json: missing or damaged"):
        verify_model(model)


def test_bundling_again_without_data_drops_the_old_forms(model: Path, tmp_path: Path) -> None:
    from melodiff.bundle import bundle_model

    shutil.copytree(model, tmp_path / "checkpoints")
    bundle_model(tmp_path / "checkpoints" / "vae", tmp_path / "checkpoints" / "diffusion", model)
    assert not (model / "forms.json").exists()
    assert "forms.json" not in json.loads((model / "checksums.json").read_text())
    assert load_model(model)[4] == {}
