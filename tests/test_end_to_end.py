"""The whole workflow through the command line with tiny presets: prepare -> train-vae -> encode -> train-diffusion
-> train-mdn -> bundle -> generate -> infill -> evaluate, and one-line errors for bad arguments."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from melodiff.cli import main
from melodiff.data.prepare import PrepareConfig, load_melodies, split_of
from melodiff.diffusion.sampling import Sampler
from melodiff.evaluation import Evaluator
from melodiff.loading import load_mdn
from melodiff.metrics.stats import DESCRIPTIVE
from melodiff.metrics.structure import STRUCTURE
from melodiff.music.melody import CHUNK_STEPS, STEPS_PER_BAR, Melody
from melodiff.music.midi_io import read_midi_melody, write_midi
from melodiff.pipeline import Pipeline

TEST_FRACTION = 0.3
BARS = 16  # one tiny-preset window (8 chunks), so `evaluate` has test windows to infill


def write_corpus(folder: Path, make_melody: Callable[[int, int], Melody], train: int = 4, test: int = 2) -> None:
    """``train`` + ``test`` MIDI tunes, named so that the split (a hash of the file's path within ``folder``) puts
    exactly ``test`` of them in the test split and none in validation."""
    config = PrepareConfig(validation_fraction=0.0, test_fraction=TEST_FRACTION)
    want = {"train": train, "test": test}
    folder.mkdir(parents=True)
    for i in range(1000):
        path = folder / f"tune{i}.mid"
        split = split_of(f"file:{folder.name}/{path.name}", config)
        if want[split]:
            want[split] -= 1
            write_midi(make_melody(i, BARS), path)
        if not any(want.values()):
            return
    raise AssertionError("no file names for the splits")


def run(capsys: pytest.CaptureFixture[str] | None, *argv: object) -> tuple[int, str]:
    """main(argv) -> (exit code, stderr); argparse's usage errors (SystemExit) become their exit code."""
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:
        code = exc.code
    return code, capsys.readouterr().err if capsys else ""


def ok(capsys: pytest.CaptureFixture[str] | None, *argv: object) -> None:
    code, err = run(capsys, "-q", *argv)
    assert code == 0, f"{argv[0]} failed: {err}"


def one_line_error(capsys: pytest.CaptureFixture[str], *argv: object, match: str) -> None:
    code, err = run(capsys, "-q", *argv)
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("melodiff: error: ") and match in err, err


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory, make_melody: Callable[[int, int], Melody]) -> Path:
    """prepare -> train-vae -> encode -> train-diffusion -> train-mdn -> bundle, all in one folder."""
    root = tmp_path_factory.mktemp("workflow")
    write_corpus(root / "src", make_melody)
    ok(None, "prepare", root / "src", "--out", root / "data", "--workers", 1, "--validation", 0,
       "--test", TEST_FRACTION)
    ok(None, "train-vae", "--data", root / "data", "--out", root / "vae", "--preset", "tiny", "--steps", 20)
    ok(None, "encode", "--vae", root / "vae", "--data", root / "data", "--out", root / "latents.npz")
    ok(None, "train-diffusion", "--latents", root / "latents.npz", "--out", root / "diffusion", "--preset", "tiny",
       "--steps", 10)
    ok(None, "train-mdn", "--latents", root / "latents.npz", "--out", root / "mdn", "--preset", "tiny",
       "--steps", 10)
    ok(None, "bundle", "--vae", root / "vae", "--diffusion", root / "diffusion", "--out", root / "model")
    ok(None, "train-guide", "--latents", root / "latents.npz", "--data", root / "data", "--diffusion",
       root / "diffusion", "--out", root / "guide", "--steps", 10)
    ok(None, "bundle", "--vae", root / "vae", "--diffusion", root / "diffusion", "--guide", root / "guide",
       "--out", root / "guided")
    return root


def test_training_outputs(work: Path) -> None:
    assert len(load_melodies(work / "data", "train")[0]) == 4 and len(load_melodies(work / "data", "test")[0]) == 2
    for name in ("vae", "diffusion", "mdn"):
        assert {"model.safetensors", "config.json", "state.pt", "log.csv"} <= {p.name for p in (work / name).iterdir()}
    assert json.loads((work / "diffusion" / "config.json").read_text())["step"] == 10
    assert json.loads((work / "vae" / "config.json").read_text())["step"] == 20
    model = work / "model"
    assert sorted(p.relative_to(model).as_posix() for p in model.rglob("*")) == [
        "checksums.json", "diffusion", "diffusion/config.json", "diffusion/model.safetensors",
        "vae", "vae/config.json", "vae/model.safetensors"]


def test_generate(work: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ok(capsys, "generate", "--model", work / "model", "--bars", 6, "-n", 2, "--png", "--out", tmp_path, "--seed", 1)
    for i in range(2):
        assert (tmp_path / f"sample_{i:03d}.png").stat().st_size > 0
        assert len(read_midi_melody(tmp_path / f"sample_{i:03d}.mid")) == 6 * STEPS_PER_BAR


def test_infill(work: Path, tmp_path: Path, make_melody: Callable[[int, int], Melody],
                capsys: pytest.CaptureFixture[str]) -> None:
    write_midi(make_melody(99, 8), tmp_path / "tune.mid")
    ok(capsys, "infill", tmp_path / "tune.mid", "--model", work / "model", "--bars", "3-4", "--png",
       "--sampler", "ddim", "--steps", 5, "--temperature", 1, "--resample", 2, "--out", tmp_path / "out")
    filled = read_midi_melody(tmp_path / "out" / "infill_000.mid").padded().chunks()
    source = read_midi_melody(tmp_path / "tune.mid").padded().chunks()
    assert filled.shape == source.shape == (8 * STEPS_PER_BAR // CHUNK_STEPS, CHUNK_STEPS)
    assert np.array_equal(filled[[0, 2, 3]], source[[0, 2, 3]])
    assert (tmp_path / "out" / "infill_000.png").stat().st_size > 0


def test_continue_and_interpolate(work: Path, tmp_path: Path, make_melody: Callable[[int, int], Melody],
                                  capsys: pytest.CaptureFixture[str]) -> None:
    write_midi(make_melody(1, 8), tmp_path / "a.mid")
    write_midi(make_melody(2, 6), tmp_path / "b.mid")
    model, out = work / "model", tmp_path / "out"
    ok(capsys, "continue", tmp_path / "a.mid", "--model", model, "--bars", 4, "--steps", 4, "--png", "--out", out)
    longer, source = read_midi_melody(out / "continue_000.mid"), read_midi_melody(tmp_path / "a.mid").padded()
    assert len(longer) == 12 * STEPS_PER_BAR and np.array_equal(longer.ids[:len(source)], source.ids)
    one_line_error(capsys, "continue", tmp_path / "a.mid", "--model", model, "--bars", 0, "--out", out,
                   match="--bars: must be at least 1")
    ok(capsys, "interpolate", tmp_path / "a.mid", tmp_path / "b.mid", "--model", model, "--num", 2, "--steps", 4,
       "--temperature", 1, "--out", out)
    for stem in ("interpolate", "slerp"):
        assert [len(read_midi_melody(out / f"{stem}_{i:03d}.mid")) for i in range(2)] == [6 * STEPS_PER_BAR] * 2
    ok(capsys, "interpolate", tmp_path / "a.mid", tmp_path / "b.mid", "--model", model, "--bridge", 4, "--steps", 4,
       "--out", out)
    assert len(read_midi_melody(out / "bridge_000.mid")) == (8 + 4 + 6) * STEPS_PER_BAR


def test_evaluate(work: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "eval"
    ok(capsys, "evaluate", "--model", work / "model", "--data", work / "data", "--mdn", work / "mdn", "--num", 4,
       "--samplers", "ddim:5", "--out", out)
    assert sorted(p.name for p in out.iterdir()) == ["pianorolls.png", "results.json", "results.md", "statistics.png",
                                                    "structure.png"]
    results = json.loads((out / "results.json").read_text())
    assert results["settings"]["num_samples"] == 4 and results["settings"]["window_bars"] == BARS
    rows = {(r["task"], r["name"]): r for r in results["rows"]}
    assert set(rows) == {("unconditional", "Test data"), ("unconditional", "Test data through the VAE"),
                         ("unconditional", "Diffusion (ddim, 5 steps)"),
                         ("unconditional", "TransformerMDN"), ("unconditional", "Prior (N(0,1) latents)"),
                         ("infilling", "Test data"), ("infilling", "Diffusion (ddim, 5 steps)"),
                         ("infilling", "Interpolation (slerp)"), ("infilling", "Prior (N(0,1) latents)")}
    gt = results["ground_truth"]
    for (task, name), row in rows.items():
        assert set(DESCRIPTIVE) <= set(row["statistics"]) and "pitch_consistency" in row["scores"]
        assert set(row["structure"]) == set(STRUCTURE) and {"accuracy", "auc"} <= set(row["classifier"])
        for attr in ("pitch", "duration"):  # C and V follow from the raw values written beside them
            raw, truth = row["scores"], gt[attr]
            assert raw[f"{attr}_consistency"] == pytest.approx(
                max(0.0, 1 - abs(raw[f"{attr}_oa_mean"] - truth["oa_mean"]) / truth["oa_mean"]))
            assert raw[f"{attr}_variance"] == pytest.approx(
                max(0.0, 1 - abs(raw[f"{attr}_oa_variance"] - truth["oa_variance"]) / truth["oa_variance"]))
        if name == "Test data":
            assert row["real"] and row["seconds"] is None and row["seconds_per_sample"] is None
        else:
            assert row["seconds_per_sample"] == pytest.approx(row["seconds"] / row["num_samples"])
            windows = rows[task, "Test data"]["num_samples"]
            generated = {"unconditional": 4 if "VAE" not in name else windows,  # windows: the test melodies here
                         "infilling": windows if "slerp" in name else -(-4 // windows) * windows}[task]
            assert row["num_samples"] == generated
    # the test tunes are one window long, so this row's melodies are the whole reference
    assert rows["unconditional", "Test data"]["statistics"]["pitch_class_distance"] == pytest.approx(0.0, abs=1e-12)
    text = (out / "results.md").read_text()
    assert "## Infilling" in text and "s / sample" in text and text.count("### Descriptive statistics") == 2
    assert text.count("### Tune structure") == 2 and "classifier accuracy" in text
    assert rows["unconditional", "Test data"]["structure"]["interval_distance"]["value"] == pytest.approx(0.0)
    for png in ("pianorolls.png", "statistics.png", "structure.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # same seed, same numbers: the library run again (without the plots, which take most of the time)
    evaluator = Evaluator(Pipeline.from_pretrained(work / "model"), load_melodies(work / "data", "train")[0],
                          load_melodies(work / "data", "test")[0], seed=0)
    evaluator.unconditional(4, [(Sampler.DDIM, 5)], load_mdn(work / "mdn"))
    evaluator.infilling(Sampler.DDIM, 5, 4)
    for a, b in zip(results["rows"], evaluator.rows, strict=True):
        assert (a["scores"], a["statistics"]) == (b.to_json()["scores"], b.to_json()["statistics"])
    # one table only: its rows, no piano-roll sheet (it shows unconditional rows)
    ok(capsys, "evaluate", "--model", work / "model", "--data", work / "data", "--num", 4, "--samplers", "ddim:5",
       "--tasks", "infilling", "--out", tmp_path / "infill")
    only = json.loads((tmp_path / "infill" / "results.json").read_text())["rows"]
    assert [(r["task"], r["name"]) for r in only] == [k for k in rows if k[0] == "infilling"]
    assert [r["scores"] for r in only] == [rows[k]["scores"] for k in rows if k[0] == "infilling"]
    assert not (tmp_path / "infill" / "pianorolls.png").exists()
    assert "## Unconditional" not in (tmp_path / "infill" / "results.md").read_text()
    one_line_error(capsys, "evaluate", "--model", work / "model", "--data", work / "data", "--out",
                   tmp_path / "x.json", match="give a folder")
    ok(capsys, "prepare", work / "src", "--out", tmp_path / "no-test", "--workers", 1, "--test", 0)
    one_line_error(capsys, "evaluate", "--model", work / "model", "--data", tmp_path / "no-test",
                   match="the test split has no melodies in 4/4")


def test_bad_sampling_options_fail_before_anything_runs(work: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """--resample with the default sampler (DPM-Solver++, which cannot resample): one error line naming the way out,
    exit 2, and nothing else: no seed line, no output folder."""
    out = tmp_path / "out"
    code = main(["generate", "--model", str(work / "model"), "--bars", "4", "--resample", "2", "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == "" and not out.exists()
    assert captured.err.count("\n") == 1 and "choose sampler ddim" in captured.err, captured.err


def test_errors_are_one_line(work: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_midi(Melody.from_chunks([[40] + [0] * 31] * 4), tmp_path / "tune.mid")
    model, out = work / "model", tmp_path / "out"
    one_line_error(capsys, "generate", "--model", tmp_path / "nowhere", "--out", out,
                   match="not a melodiff model folder")
    one_line_error(capsys, "generate", "--model", work / "vae", "--out", out, match="not a melodiff model folder")
    one_line_error(capsys, "infill", tmp_path / "tune.mid", "--model", model, "--bars", "4-7", "--out", out,
                   match="do not fall on 2-bar chunks")
    one_line_error(capsys, "infill", tmp_path / "tune.mid", "--model", model, "--bars", "1-2,7-10", "--out", out,
                   match="outside the melody's 8 bars")
    one_line_error(capsys, "infill", tmp_path / "tune.mid", "--model", model, "--bars", "1-2", "--out", out,
                   "--sampler", "dpm-solver", "--resample", 2, match="not dpm-solver")
    one_line_error(capsys, "infill", tmp_path / "tune.mid", "--model", model, "--bars", "1-2", "--out", out,
                   "--resample", 11, match="resample must be in 1..10")
    one_line_error(capsys, "evaluate", "--model", model, "--data", work / "data", "--samplers", "dpm-solver:5",
                   "--resample", 2, "--out", out, match="not dpm-solver")
    one_line_error(capsys, "infill", tmp_path / "missing.mid", "--model", model, "--bars", "1-2",
                   "--out", out, match="no such file")
    one_line_error(capsys, "train-vae", "--data", work / "data", "--out", out, "--preset", "huge",
                   match="unknown VAE preset")
    one_line_error(capsys, "train-diffusion", "--latents", tmp_path / "none.npz", "--out", out, "--preset", "tiny",
                   match="no latent dataset")
    one_line_error(capsys, "train-diffusion", "--latents", work / "latents.npz", "--out", work / "vae",
                   "--preset", "tiny", match="expected 'diffusion'")
    one_line_error(capsys, "evaluate", "--model", model, "--data", work / "src", match="not a prepared dataset")
    code, err = run(capsys, "-q", "generate", "--model", model, "--bars", 2, "--out", tmp_path / "tune.mid" / "x")
    assert code == 1 and err.startswith("melodiff: error: ") and err.count("\n") == 1, err
    assert not out.exists()


@pytest.mark.parametrize("argv", [["generate", "--bars", "0"], ["generate", "-n", "-2"],
                                  ["generate", "--steps", "x"], ["continue", "tune.mid", "--bars", "0"],
                                  ["infill", "tune.mid", "--bars", "3-x"], ["infill", "tune.mid", "--bars", "4-3"],
                                  ["infill", "tune.mid", "--bars", "0-2"],
                                  ["evaluate", "--data", "d", "--samples", "0"], ["generate", "--sampler", "euler"],
                                  ["generate", "--temperature", "-1"],
                                  ["infill", "tune.mid", "--bars", "1-2", "--resample", "0"]])
def test_bad_arguments_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code, err = run(capsys, *argv)
    assert code == 2 and err.startswith("melodiff: error: argument ") and err.count("\n") == 1
    assert f"(see 'melodiff {argv[0]} --help')" in err and "Traceback" not in err
    assert len([line for line in err.splitlines() if "error:" in line]) == 1


def test_encode_with_the_encoder_mean(work: Path, tmp_path: Path) -> None:
    from melodiff.data.latents import LatentDataset

    for seed in (0, 1):
        ok(None, "encode", "--vae", work / "vae", "--data", work / "data", "--out", tmp_path / f"mean{seed}.npz",
           "--use-mean", "--seed", seed)
    means = [LatentDataset.load(tmp_path / f"mean{seed}.npz") for seed in (0, 1)]
    sampled = LatentDataset.load(work / "latents.npz")
    assert means[0].normalizer.use_mean and not sampled.normalizer.use_mean
    np.testing.assert_array_equal(means[0].x, means[1].x)  # no sampling: the seed does not matter
    assert means[0].x.shape == sampled.x.shape and not np.array_equal(means[0].x, sampled.x)


def test_train_vae_on_from_the_shipped_vae(work: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from melodiff.loading import read_config
    from melodiff.pipeline import DEFAULT_MODEL

    shipped = read_config(DEFAULT_MODEL / "vae", "vae")["step"]
    ok(None, "train-vae", "--data", work / "data", "--out", tmp_path / "vae", "--init", "default",
       "--steps", shipped + 1)
    assert read_config(tmp_path / "vae", "vae")["step"] == shipped + 1
    one_line_error(capsys, "train-vae", "--data", work / "data", "--out", tmp_path / "again", "--init", "default",
                   match="already at step")


def test_set_changes_a_preset_for_a_new_run(work: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from melodiff.loading import read_config

    vae = ("train-vae", "--data", work / "data", "--out", tmp_path / "vae", "--preset", "tiny")
    ok(None, *vae, "--steps", 2, "--set", "train.max_beta=0.05", "--set", "model.z_size=8")
    meta = read_config(tmp_path / "vae", "vae")
    assert meta["train"]["max_beta"] == 0.05 and meta["model"]["z_size"] == 8
    ok(None, *vae, "--steps", 3, "--set", "train.max_beta=0.05")  # the same command resumes
    one_line_error(capsys, *vae, "--steps", 4, "--set", "train.max_beta=0.1", match="a run keeps its settings")
    one_line_error(capsys, "train-vae", "--data", work / "data", "--out", tmp_path / "init", "--init", "default",
                   "--set", "model.z_size=8", match="unknown or fixed field")
    one_line_error(capsys, "train-diffusion", "--latents", work / "latents.npz", "--out", tmp_path / "diffusion",
                   "--preset", "tiny", "--set", "model.heads=3", match="divisible by heads")
    one_line_error(capsys, "train-mdn", "--latents", work / "latents.npz", "--out", tmp_path / "mdn",
                   "--preset", "tiny", "--set", "train.lr=-1", match="out of range")
    assert not (tmp_path / "diffusion").exists() and not (tmp_path / "mdn").exists()


def test_evaluate_vae(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["evaluate-vae", "--vae", str(work / "vae"), "--data", str(work / "data"), "--split", "test"]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert 0 <= scores["step_accuracy"] <= 1 and scores["chunks"] > 0 and scores["kl_nats"] >= 0
    prior = scores["prior_samples_vs_data"]
    for name in ("data", "prior"):
        assert set(prior[name]) == {"notes_per_bar", "pitch_range", "scale_consistency", "pitch_class_distance",
                                    "rest_fraction"}
    assert prior["data"]["pitch_class_distance"] == 0 and 0 <= prior["data"]["rest_fraction"] <= 1


def test_a_guided_model_takes_density_style_and_mode(work: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """train-guide + bundle --guide: the model then takes --density, --style and --key's mode (diffusion/guide.py);
    --guidance 0 is the unguided model's music, bit for bit."""
    guided = work / "guided"
    assert (guided / "guide" / "model.safetensors").is_file()
    assert json.loads((work / "guide" / "config.json").read_text())["step"] == 10
    pipeline = Pipeline.from_pretrained(guided)
    assert pipeline.controls == ("key", "range", "density", "style") and pipeline.styles
    style = pipeline.styles[0].split(":", 1)[-1]
    ok(capsys, "generate", "--model", guided, "--bars", 4, "-n", 2, "--seed", 3, "--density", 3, "--style", style,
       "--key", "Em", "--out", tmp_path / "g")
    assert len(list((tmp_path / "g").glob("*.mid"))) == 2
    for name, out in (("guided", tmp_path / "zero"), ("model", tmp_path / "plain")):
        guidance = ["--density", 3, "--guidance", 0] if name == "guided" else []
        ok(capsys, "generate", "--model", work / name, "--bars", 4, "--seed", 3, "--out", out, *guidance)
    assert (tmp_path / "zero" / "sample_000.mid").read_bytes() == (tmp_path / "plain" / "sample_000.mid").read_bytes()
    one_line_error(capsys, "generate", "--model", guided, "--style", "klingon", "--out", tmp_path / "x",
                   match=f"this model knows {style}")
    one_line_error(capsys, "generate", "--model", guided, "--density", 3, "--guidance", 25, "--out", tmp_path / "x",
                   match="guidance must be in 0..20")
    one_line_error(capsys, "generate", "--model", work / "model", "--density", 3, "--out", tmp_path / "x",
                   match="its controls: key, range")
    assert not (tmp_path / "x").exists()


def test_a_guide_must_fit_its_model(work: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    one_line_error(capsys, "train-guide", "--latents", work / "latents.npz", "--data", work / "data", "--diffusion",
                   work / "vae", "--out", tmp_path / "g", match="expected 'diffusion'")
    one_line_error(capsys, "bundle", "--vae", work / "vae", "--diffusion", work / "diffusion", "--guide",
                   work / "diffusion", "--out", tmp_path / "m", match="expected 'guide'")
