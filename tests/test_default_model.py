"""The model shipped inside the package loads (checksums verified) and generates."""

from __future__ import annotations

import shutil

import pytest

from melodiff import Pipeline
from melodiff.errors import MelodiffError
from melodiff.music.melody import STEPS_PER_BAR
from melodiff.pipeline import DEFAULT_MODEL, SamplingOptions


def test_default_model_generates_a_melody() -> None:
    pipe = Pipeline.from_pretrained()
    (melody,) = pipe.generate(4, 1, seed=0, options=SamplingOptions(steps=5))
    assert len(melody) == 4 * STEPS_PER_BAR and melody.num_notes > 0
    assert pipe.generate(4, 1, seed=0, options=SamplingOptions(steps=5)) == [melody]


def test_damaged_model_is_refused(tmp_path) -> None:
    copy = tmp_path / "model"
    shutil.copytree(DEFAULT_MODEL, copy)
    weights = copy / "diffusion" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(MelodiffError, match="checksum"):
        Pipeline.from_pretrained(copy)
