"""Meters end to end through the command line with tiny presets: a corpus of waltzes, jigs and 4/4 tunes ->
prepare -> a 4/4 model and a 3/4 + 6/8 model (the VAE started from the 4/4 one, the denoiser told the meter) bundled
into one model folder (meters/triple, in float16) -> generate, infill and evaluate in each meter; and the Pipeline's
and the denoiser's meter contracts on untrained tiny models."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from melodiff.cli import main
from melodiff.data.latents import LatentDataset
from melodiff.data.prepare import PrepareConfig, split_of
from melodiff.diffusion.config import preset as diffusion_preset
from melodiff.diffusion.denoiser import TransformerDenoiser
from melodiff.errors import MelodiffError, MeterOutsideModel
from melodiff.loading import model_meters
from melodiff.music.melody import Melody
from melodiff.music.meter import FOUR_FOUR, SIX_EIGHT, THREE_FOUR
from melodiff.music.midi_io import read_midi_melody, write_midi
from melodiff.pipeline import Pipeline
from test_end_to_end import ok, one_line_error, run
from tiny_model import triple_pipeline, untrained_pipeline

BARS = 16
MakeMelody = Callable[..., Melody]  # conftest's make_melody(seed, bars, meter=FOUR_FOUR)


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory, make_melody: MakeMelody) -> Path:
    """Six tunes in each of 4/4, 3/4 and 6/8 -> prepare -> train the 4/4 model and the triple one -> one folder."""
    root = tmp_path_factory.mktemp("meters")
    (root / "src").mkdir()
    config = PrepareConfig(validation_fraction=0, test_fraction=0.3)
    for j, meter in enumerate((FOUR_FOUR, THREE_FOUR, SIX_EIGHT)):
        names = (f"{meter.name.replace('/', '-')}_{i}.mid" for i in range(1000))
        want = {"train": 4, "test": 2}  # named so that each meter has test tunes (the split hashes the name)
        for name in names:
            split = split_of(f"file:src/{name}", config)
            if want[split]:
                want[split] -= 1  # other seeds per meter: equal melodies are one
                write_midi(make_melody(10 * j + sum(want.values()), BARS, meter), root / "src" / name)
            if not any(want.values()):
                break
    ok(None, "prepare", root / "src", "--out", root / "data", "--workers", 1, "--validation", 0, "--test", 0.3)
    for name, meters in (("duple", ["4/4"]), ("triple", ["3/4", "6/8"])):
        ok(None, "train-vae", "--data", root / "data", "--out", root / name / "vae", "--preset", "tiny", "--steps", 10,
           "--meters", *meters)
        ok(None, "encode", "--vae", root / name / "vae", "--data", root / "data", "--out", root / name / "latents.npz")
        ok(None, "train-diffusion", "--latents", root / name / "latents.npz", "--out", root / name / "diffusion",
           "--preset", "tiny", "--steps", 5)
    ok(None, "bundle", "--vae", root / "duple" / "vae", "--diffusion", root / "duple" / "diffusion", "--out",
       root / "model", "--data", root / "data")
    ok(None, "bundle", "--vae", root / "triple" / "vae", "--diffusion", root / "triple" / "diffusion", "--out",
       root / "model" / "meters" / "triple", "--data", root / "data", "--half")
    return root


def test_prepare_keeps_and_counts_every_meter(work: Path) -> None:
    report = json.loads((work / "data" / "report.json").read_text())
    assert report["melodies_per_meter"] == {"4/4": 6, "3/4": 6, "6/8": 6}
    assert report["melodies_per_written_meter"] == {"4/4": 6, "3/4": 6, "6/8": 6}


def test_evaluate_vae_per_meter(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    chunks = {}
    for meter in ("3/4", "6/8", None):
        argv = ["evaluate-vae", "--vae", work / "triple" / "vae", "--data", work / "data", "--split", "train",
                *(["--meter", meter] if meter else [])]
        assert main([str(a) for a in argv]) == 0
        chunks[meter] = json.loads(capsys.readouterr().out)["chunks"]
    assert chunks["3/4"] > 0 and chunks["6/8"] > 0 and chunks["3/4"] + chunks["6/8"] == chunks[None]
    one_line_error(capsys, "evaluate-vae", "--vae", work / "triple" / "vae", "--data", work / "data", "--meter",
                   "4/4", match="meter '4/4' is outside the model: it makes 3/4, 6/8")


def test_the_triple_model_knows_its_meters(work: Path) -> None:
    latents = LatentDataset.load(work / "triple" / "latents.npz")
    assert latents.meters == ("3/4", "6/8") and sorted(set(latents.meter.tolist())) == [0, 1]
    assert LatentDataset.load(work / "duple" / "latents.npz").meters == ("4/4",)
    vae = json.loads((work / "triple" / "vae" / "config.json").read_text())["model"]
    assert (vae["steps"], vae["meters"]) == (24, ["3/4", "6/8"])
    diffusion = json.loads((work / "triple" / "diffusion" / "config.json").read_text())["model"]
    assert diffusion["meters"] == ["3/4", "6/8"]
    assert model_meters(work / "model") == {"4/4": work / "model", "3/4": work / "model" / "meters" / "triple",
                                            "6/8": work / "model" / "meters" / "triple"}
    weights = load_file(str(work / "model" / "meters" / "triple" / "diffusion" / "model.safetensors"))
    assert {t.dtype for t in weights.values()} == {torch.float16}  # bundle --half
    top = json.loads((work / "model" / "checksums.json").read_text())
    assert not any(name.startswith("meters/") for name in top)  # the triple model has checksums of its own
    assert (work / "model" / "meters" / "triple" / "checksums.json").is_file()


@pytest.mark.parametrize("meter", [FOUR_FOUR, THREE_FOUR, SIX_EIGHT])
def test_generate_in_each_meter(meter, work: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ok(capsys, "generate", "--model", work / "model", "--meter", meter.name, "--bars", 6, "--seed", 3, "--abc",
       "--out", tmp_path)
    melody = read_midi_melody(tmp_path / "sample_000.mid")
    assert melody.meter == meter and len(melody) == 6 * meter.steps_per_bar
    assert f"M:{meter.name}" in (tmp_path / "sample_000.abc").read_text().splitlines()


def test_infill_and_continue_keep_the_melodys_meter(work: Path, tmp_path: Path, make_melody: MakeMelody,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    write_midi(make_melody(50, 8, SIX_EIGHT), tmp_path / "jig.mid")
    ok(capsys, "infill", tmp_path / "jig.mid", "--model", work / "model", "--bars", "3-4", "--seed", 1,
       "--out", tmp_path / "infill")
    source = read_midi_melody(tmp_path / "jig.mid")
    filled = read_midi_melody(tmp_path / "infill" / "infill_000.mid")
    assert filled.meter == SIX_EIGHT and filled.chunks().shape == (4, 24)
    assert np.array_equal(filled.chunks()[[0, 2, 3]], source.chunks()[[0, 2, 3]])
    ok(capsys, "continue", tmp_path / "jig.mid", "--model", work / "model", "--bars", 4, "--seed", 1,
       "--out", tmp_path / "continue")
    longer = read_midi_melody(tmp_path / "continue" / "continue_000.mid")
    assert longer.meter == SIX_EIGHT and len(longer) == 12 * 12


def test_meters_outside_the_model_are_one_line_errors(work: Path, tmp_path: Path, make_melody: MakeMelody,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    write_midi(make_melody(7, 8, THREE_FOUR), tmp_path / "waltz.mid")
    one_line_error(capsys, "infill", tmp_path / "waltz.mid", "--model", work / "duple", "--bars", "1-2", "--seed", 1,
                   "--out", tmp_path / "x", match="waltz.mid: the melody is in 3/4; meter '3/4' is outside the "
                   "model: it makes 4/4")
    assert not (tmp_path / "x").exists()
    code, err = run(capsys, "generate", "--meter", "9/8", "--out", tmp_path / "x")
    assert code == 2 and "invalid choice: '9/8'" in err
    one_line_error(capsys, "train-vae", "--data", work / "data", "--out", tmp_path / "v", "--preset", "tiny",
                   "--meters", "4/4", "3/4", match="do not share one bar length")


def test_evaluate_one_meter_against_its_own_test_melodies(work: Path, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    ok(capsys, "evaluate", "--model", work / "model", "--meter", "3/4", "--data", work / "data", "--num", 4,
       "--samplers", "ddim:5", "--tasks", "unconditional", "--out", tmp_path)
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["settings"]["meter"] == "3/4"
    test_row = next(r for r in results["rows"] if r["name"] == "Test data")
    shares = [test_row["structure"][f"onsets_{c}"]["value"] for c in ("downbeat", "beat", "offbeat", "sixteenth")]
    assert sum(shares) == pytest.approx(1.0)
    assert "onsets on downbeats" in (tmp_path / "results.md").read_text()


def test_a_pipeline_makes_its_meters_and_refuses_others(make_melody: MakeMelody) -> None:
    p = triple_pipeline()
    assert p.meters == ("3/4", "6/8") and p.meter == THREE_FOUR
    waltz = p.generate(4, 1, seed=2, options=_fast())[0]
    assert waltz.meter == THREE_FOUR and len(waltz) == 48
    jig = p.use_meter("6/8").generate(4, 1, seed=2, options=_fast())[0]
    assert jig.meter == SIX_EIGHT and len(jig) == 48
    with pytest.raises(MeterOutsideModel, match="it makes 3/4, 6/8"):
        p.use_meter("4/4")
    with pytest.raises(MelodiffError, match="the melody is in 4/4; this model makes 6/8"):
        p.infill(make_melody(1, 4), 0, 2, options=_fast())
    with pytest.raises(MelodiffError, match="trained on other meters"):
        Pipeline(untrained_pipeline().vae, p.denoiser, p.schedule, p.normalizer)


def test_the_denoiser_is_told_the_meter() -> None:
    config = replace(diffusion_preset("tiny")[0], latent_dim=4, meters=("3/4", "6/8"))
    torch.manual_seed(0)
    net = TransformerDenoiser(config).eval()
    x, level = torch.randn(2, 3, 4), torch.full((2,), 0.5)
    with pytest.raises(ValueError, match="must be told the meter"):
        net(x, level)
    waltz = net(x, level, context={"meter": torch.tensor([0, 0])})
    jig = net(x, level, context={"meter": torch.tensor([1, 1])})
    assert not torch.allclose(waltz, jig)
    assert TransformerDenoiser(replace(config, meters=("4/4",))).meter is None  # one meter: nothing to tell


def _fast():
    from melodiff.options import Sampler, SamplingOptions

    return SamplingOptions(Sampler.DDIM, steps=3)


def test_key_range_and_cadence_edits_keep_the_meter(make_melody: MakeMelody) -> None:
    from melodiff.music.controls import fit_range
    from melodiff.music.keys import in_key, transposed_near

    jig = make_melody(4, 4, SIX_EIGHT)
    for edited in (in_key(jig, 9, True), transposed_near(jig, 5), fit_range(jig, 60, 72), jig.transposed(2),
                   jig.padded(), jig.with_ids(jig.ids[:12])):
        assert edited.meter == SIX_EIGHT
    p = triple_pipeline()
    (cadenced,) = p.use_meter("6/8").generate(4, 1, seed=1, options=replace(_fast(), cadence=8))
    assert cadenced.meter == SIX_EIGHT and len(cadenced) == 48


def test_the_shipped_model_makes_every_meter(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The default model folder holds 4/4 and, in meters/triple, 3/4 and 6/8: a waltz file is infilled in 3/4."""
    from hostile_files import three_four
    from melodiff.pipeline import DEFAULT_MODEL

    assert set(model_meters(DEFAULT_MODEL)) == {"4/4", "3/4", "6/8"}
    for meter in (THREE_FOUR, SIX_EIGHT):
        (melody,) = Pipeline.from_pretrained(meter=meter.name).generate(8, 1, seed=0, options=_fast())
        assert melody.meter == meter and len(melody) == 8 * 12
    waltz = three_four(tmp_path)
    ok(capsys, "infill", waltz, "--bars", "3-4", "--seed", 1, "--out", tmp_path / "out")
    filled = read_midi_melody(tmp_path / "out" / "infill_000.mid")
    assert filled.meter == THREE_FOUR
    assert np.array_equal(filled.chunks()[[0, 2, 3]], read_midi_melody(waltz).chunks()[[0, 2, 3]])
