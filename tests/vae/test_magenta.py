"""Magenta checkpoints into MelodyVAE, checked against TensorFlow itself.

The fixtures (tests/vae/fixtures/magenta, see its README) were written by tools/make_magenta_fixtures.py with real
TensorFlow 2.19 (Magenta's graph at tiny sizes, LSTMBlockCell op, tf.train.Saver) and tensorflowjs's writer (float32,
uint8, uint16, float16), with TF's mu, sigma, teacher-forced logits and greedy decodes for fixed inputs."""

from __future__ import annotations

import json
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from melodiff.cli import main
from melodiff.errors import MelodiffError
from melodiff.loading import load_vae, read_config
from melodiff.vae import magenta
from melodiff.vae.magenta import PAPER_DIMS, load_magenta, read_magenta
from melodiff.vae.tf_bundle import _crc_bytes, crc32c, read_bundle, snappy_decompress

FIXTURES = Path(__file__).parent / "fixtures" / "magenta"
TOL = 1e-5


def expected(weights: str) -> dict[str, np.ndarray]:
    return {k: np.load(FIXTURES / "expected" / weights / f"{k}.npy") for k in ("mu", "sigma", "logits", "greedy")}


@torch.no_grad()
def outputs(model: torch.nn.Module) -> dict[str, np.ndarray]:
    tokens = torch.from_numpy(np.load(FIXTURES / "inputs" / "tokens.npy"))
    z = torch.from_numpy(np.load(FIXTURES / "inputs" / "z.npy"))
    _, mu, sigma = model.encode(tokens)
    return {"mu": mu.numpy(), "sigma": sigma.numpy(), "logits": model.decoder_logits(z, tokens).numpy(),
            "greedy": model.decode(z).numpy()}


def assert_matches(got: dict[str, np.ndarray], want: dict[str, np.ndarray]) -> None:
    for key in ("mu", "sigma", "logits"):
        np.testing.assert_allclose(got[key], want[key], rtol=0, atol=TOL, err_msg=key)
    np.testing.assert_array_equal(got["greedy"], want["greedy"])


def tf_copy(tmp_path: Path, index: Path = FIXTURES / "tf" / "model.ckpt.index") -> Path:
    """The TF fixture (data shards) copied to ``tmp_path/ckpt`` with ``index`` as its index; returns the folder."""
    folder = tmp_path / "ckpt"
    folder.mkdir()
    for f in (FIXTURES / "tf").glob("model.ckpt.data-*"):
        shutil.copy(f, folder)
    shutil.copy(index, folder / "model.ckpt.index")
    return folder


def make_tar(tmp_path: Path, mode: str) -> Path:
    path = tmp_path / ("ckpt.tar" if mode == "w" else "ckpt.tar.gz")
    with tarfile.open(path, mode) as tar:  # as published: the files inside a folder
        for f in sorted((FIXTURES / "tf").glob("model.ckpt.*")):
            tar.add(f, arcname=f"cat-mel_2bar_big/{f.name}")
    return path


# ---- against TensorFlow ---------------------------------------------------------------------------------------------
SOURCES = {
    "tf-folder": lambda tmp: FIXTURES / "tf",
    "tf-index": lambda tmp: FIXTURES / "tf" / "model.ckpt.index",
    "tf-prefix": lambda tmp: FIXTURES / "tf" / "model.ckpt",
    "tf-data-file": lambda tmp: FIXTURES / "tf" / "model.ckpt.data-00001-of-00003",
    "tf-tar": lambda tmp: make_tar(tmp, "w"),
    "tf-tar-gz": lambda tmp: make_tar(tmp, "w:gz"),
    "tf-snappy-index": lambda tmp: tf_copy(tmp, FIXTURES / "tf_snappy" / "model.ckpt.index"),
    "tfjs-float32": lambda tmp: FIXTURES / "tfjs_float32",
    "tfjs-manifest-file": lambda tmp: FIXTURES / "tfjs_float32" / "weights_manifest.json",
}


@pytest.mark.parametrize("source", SOURCES)
def test_float32_checkpoints_match_tensorflow(source: str, tmp_path: Path) -> None:
    model, info = load_magenta(SOURCES[source](tmp_path))
    assert info["format"] == ("magenta.js" if source.startswith("tfjs") else "tensorflow")
    assert info["notes"] == []
    assert model.config.z_size == 8 and model.config.encoder_units == 16
    assert (model.config.decoder_layers, model.config.decoder_units) == (2, 16)
    assert_matches(outputs(model), expected("float32"))


@pytest.mark.parametrize("quant", ["uint8", "uint16", "float16"])
def test_quantised_magenta_js_matches_tensorflow(quant: str) -> None:
    """TF ran with the weights as tensorflowjs's own reader dequantises them."""
    model, _ = load_magenta(FIXTURES / f"tfjs_{quant}")
    assert_matches(outputs(model), expected(quant))


def test_dequantised_weights_are_near_the_originals() -> None:
    original, _ = read_magenta(FIXTURES / "tf")
    for quant, step in (("float16", 1e-3), ("uint16", 1e-4), ("uint8", 2e-2)):
        weights, _ = read_magenta(FIXTURES / f"tfjs_{quant}")
        assert set(weights) == set(original)
        for name, value in weights.items():
            assert value.dtype == np.float32
            np.testing.assert_allclose(value, original[name], atol=step, err_msg=f"{quant} {name}")


def test_tensor_bundle_reads_every_variable() -> None:
    tensors = read_bundle(FIXTURES / "tf")
    assert len(tensors) == 51  # 16 weights + 32 Adam slots + 2 beta powers + global_step
    assert tensors["global_step"].dtype == np.int64 and tensors["global_step"] == 1
    kernel = tensors["decoder/multi_rnn_cell/cell_0/lstm_cell/kernel"]
    assert kernel.shape == (90 + 8 + 16, 64) and kernel.dtype == np.float32
    assert len(read_bundle(FIXTURES / "tf", want=lambda n: "Adam" not in n)) == 19


@pytest.mark.parametrize("mistake", ["no forget bias", "tf gate order", "h/c swapped"])
def test_fixtures_catch_mapping_mistakes(mistake: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The fixtures are sensitive to each detail of the mapping (so the passing tests above mean something)."""
    if mistake == "no forget bias":
        monkeypatch.setattr(magenta, "FORGET_BIAS", {"lstm_cell": 0.0})
        model, _ = load_magenta(FIXTURES / "tf")
    elif mistake == "tf gate order":
        real = magenta.lstm_to_torch

        def unordered(kernel, bias, forget_bias):
            units = bias.shape[0] // 4
            w_ih, w_hh, b_ih, b_hh = real(kernel, bias, forget_bias)
            back = [0, 2, 1, 3]
            return (w_ih.reshape(4, units, -1)[back].reshape(w_ih.shape), w_hh.reshape(4, units, -1)[back].reshape(
                w_hh.shape), b_ih.reshape(4, units)[back].reshape(-1), b_hh)

        monkeypatch.setattr(magenta, "lstm_to_torch", unordered)
        model, _ = load_magenta(FIXTURES / "tf")
    else:
        model, _ = load_magenta(FIXTURES / "tf")
        layers, units = model.config.decoder_layers, model.config.decoder_units

        def swapped(z):  # [h0, c0, ...] instead of Magenta's [c0, h0, ...]
            s = torch.tanh(model.z_to_initial_state(z)).view(-1, layers, 2, units)
            return s[:, :, 0].transpose(0, 1).contiguous(), s[:, :, 1].transpose(0, 1).contiguous()

        model.initial_state = swapped
    got, want = outputs(model), expected("float32")
    assert max(np.abs(got[k] - want[k]).max() for k in ("mu", "logits")) > 1e-2


# ---- the command and the checkpoint it writes -----------------------------------------------------------------------
def run(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str]:
    try:
        code = main(["-q", *map(str, argv)])
    except SystemExit as exc:
        code = exc.code
    return code, capsys.readouterr().err


def test_import_command_writes_a_vae_checkpoint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = run(capsys, "import-magenta", FIXTURES / "tfjs_uint8", "--out", tmp_path / "vae")
    assert code == 0, err
    meta = read_config(tmp_path / "vae", "vae")
    assert meta["model"]["z_size"] == 8 and meta["magenta"]["format"] == "magenta.js"
    assert meta["magenta"]["spec"]["dataConverter"]["type"] == "MelodyConverter"
    assert "trim_dims" not in meta
    assert_matches(outputs(load_vae(tmp_path / "vae")), expected("uint8"))


def test_paper_dims_need_the_paper_checkpoint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = run(capsys, "import-magenta", FIXTURES / "tf", "--out", tmp_path / "vae", "--paper-dims")
    assert code == 2 and err.count("\n") == 1 and "z 512" in err, err


def write_tfjs(folder: Path, weights: dict[str, np.ndarray], spec: dict | None = None, shard: int = 5000) -> None:
    """A magenta.js checkpoint written by this test (float32, one group, shards of ``shard`` bytes)."""
    folder.mkdir(parents=True)
    data = b"".join(np.ascontiguousarray(v, "<f4").tobytes() for v in weights.values())
    paths = [f"group1-shard{i + 1}" for i in range(-(-len(data) // shard))]
    for i, name in enumerate(paths):
        (folder / name).write_bytes(data[i * shard:(i + 1) * shard])
    entries = [{"name": k, "shape": list(v.shape), "dtype": "float32"} for k, v in weights.items()]
    (folder / "weights_manifest.json").write_text(json.dumps([{"paths": paths, "weights": entries}]))
    if spec is not None:
        (folder / "config.json").write_text(json.dumps(spec))


def paper_shaped(rng: np.random.Generator, enc: int = 4, dec: int = 4) -> dict[str, np.ndarray]:
    """Random weights with Magenta's names: z 512 (the paper's), tiny LSTMs."""
    cell = "multi_rnn_cell/cell_0/lstm_cell"
    shapes = {f"encoder/cell_0/bidirectional_rnn/{d}/{cell}/{v}": s for d in ("fw", "bw")
              for v, s in (("kernel", (90 + enc, 4 * enc)), ("bias", (4 * enc,)))}
    shapes |= {"encoder/mu/kernel": (2 * enc, 512), "encoder/mu/bias": (512,), "encoder/sigma/kernel": (2 * enc, 512),
               "encoder/sigma/bias": (512,), "decoder/z_to_initial_state/kernel": (512, 2 * dec),
               "decoder/z_to_initial_state/bias": (2 * dec,), f"decoder/{cell}/kernel": (90 + 512 + dec, 4 * dec),
               f"decoder/{cell}/bias": (4 * dec,), "decoder/output_projection/kernel": (dec, 90),
               "decoder/output_projection/bias": (90,)}
    return {k: rng.normal(0, 0.3, s).astype(np.float32) for k, s in shapes.items()}


def write_dataset(folder: Path, melodies: int = 3) -> None:
    """A prepared dataset (events.npy + melodies.json) of plain 4-bar melodies, all in the train split."""
    folder.mkdir()
    ids = np.array([(2 + 40 + i % 7) if i % 4 == 0 else 0 for i in range(64)], np.int8)
    np.save(folder / "events.npy", np.tile(ids, melodies))
    records = [{"id": f"m{i}", "split": "train", "start": 64 * i, "length": 64} for i in range(melodies)]
    (folder / "melodies.json").write_text(json.dumps(records))


def test_paper_dims_reach_encode(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_tfjs(tmp_path / "js", paper_shaped(np.random.default_rng(0)))
    code, err = run(capsys, "import-magenta", tmp_path / "js", "--out", tmp_path / "vae", "--paper-dims")
    assert code == 0, err
    assert read_config(tmp_path / "vae")["trim_dims"] == list(PAPER_DIMS)
    write_dataset(tmp_path / "data")
    code, err = run(capsys, "encode", "--vae", tmp_path / "vae", "--data", tmp_path / "data", "--out",
                    tmp_path / "latents.npz")
    assert code == 0, err
    with np.load(tmp_path / "latents.npz") as f:
        assert json.loads(str(f["normalizer"]))["dims"] == list(PAPER_DIMS)
        assert f["x"].shape == (6, 42) and np.isfinite(f["x"]).all()


def test_missing_sigma_gives_z_equal_mu(tmp_path: Path) -> None:
    weights = paper_shaped(np.random.default_rng(1))
    del weights["encoder/sigma/kernel"], weights["encoder/sigma/bias"]
    write_tfjs(tmp_path / "js", weights)
    model, info = load_magenta(tmp_path / "js")
    assert any("sigma" in note for note in info["notes"])
    z, mu, sigma = model.encode(torch.zeros(2, 32, dtype=torch.long))
    assert sigma.max() < 1e-6 and torch.allclose(z, mu)


# ---- bad input: one clear error -------------------------------------------------------------------------------------
def damaged_tf(tmp_path: Path, damage: str) -> Path:
    folder = tf_copy(tmp_path)
    index, data = folder / "model.ckpt.index", folder / "model.ckpt.data-00001-of-00003"
    if damage == "truncated index":
        index.write_bytes(index.read_bytes()[:-30])
    elif damage == "index cut in the middle":
        index.write_bytes(index.read_bytes()[:700])
    elif damage == "index byte flipped":
        raw = bytearray(index.read_bytes())
        raw[40] ^= 0x10
        index.write_bytes(bytes(raw))
    elif damage == "truncated data":
        data.write_bytes(data.read_bytes()[:5000])
    elif damage == "data byte flipped":
        raw = bytearray(data.read_bytes())
        raw[1234] ^= 0x01
        data.write_bytes(bytes(raw))
    elif damage == "missing data shard":
        data.unlink()
    elif damage == "empty index":
        index.write_bytes(b"")
    return folder


TF_DAMAGE = {"truncated index": "index", "index cut in the middle": "index", "index byte flipped": "checksum",
             "truncated data": "truncated", "data byte flipped": "checksum", "missing data shard": "missing",
             "empty index": "too short"}


@pytest.mark.parametrize("damage", TF_DAMAGE)
def test_damaged_tf_checkpoint_is_a_one_line_error(damage: str, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    folder = damaged_tf(tmp_path, damage)
    with pytest.raises(MelodiffError, match=TF_DAMAGE[damage]):
        load_magenta(folder)
    code, err = run(capsys, "import-magenta", folder, "--out", tmp_path / "vae")
    assert code == 2 and err.count("\n") == 1 and err.startswith("melodiff: error: "), err
    assert not (tmp_path / "vae").exists()


def damaged_tfjs(tmp_path: Path, damage: str) -> Path:
    folder = tmp_path / "js"
    shutil.copytree(FIXTURES / "tfjs_uint16", folder)
    shard = sorted(folder.glob("group2-*"))[-1]
    manifest = folder / "weights_manifest.json"
    if damage == "truncated shard":
        shard.write_bytes(shard.read_bytes()[:-10])
    elif damage == "missing shard":
        shard.unlink()
    elif damage == "bad manifest":
        manifest.write_text(manifest.read_text()[:-20])
    elif damage == "manifest not a list":
        manifest.write_text("{}")
    elif damage == "4-bar model":
        (folder / "config.json").write_text(json.dumps({"type": "MusicVAE", "dataConverter": {
            "type": "MelodyConverter", "args": {"numSteps": 64, "minPitch": 21, "maxPitch": 108}}}))
    elif damage == "drum model":
        (folder / "config.json").write_text(json.dumps({"type": "MusicVAE", "dataConverter": {
            "type": "DrumsConverter", "args": {"numSteps": 32}}}))
    elif damage == "hierarchical":
        data = json.loads(manifest.read_text())
        data[0]["weights"][0]["name"] = "encoder/hierarchical_level_0/" + data[0]["weights"][0]["name"]
        manifest.write_text(json.dumps(data))
    return folder


TFJS_DAMAGE = {"truncated shard": "truncated", "missing shard": "missing", "bad manifest": "JSON",
               "manifest not a list": "list", "4-bar model": "2-bar", "drum model": "melody models",
               "hierarchical": "hierarchical"}


@pytest.mark.parametrize("damage", TFJS_DAMAGE)
def test_damaged_magenta_js_checkpoint_is_a_one_line_error(damage: str, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    folder = damaged_tfjs(tmp_path, damage)
    with pytest.raises(MelodiffError, match=TFJS_DAMAGE[damage]):
        load_magenta(folder)
    code, err = run(capsys, "import-magenta", folder, "--out", tmp_path / "vae")
    assert code == 2 and err.count("\n") == 1, err


@pytest.mark.parametrize("what", ["nothing there", "not a checkpoint", "folder without one"])
def test_not_a_checkpoint(what: str, tmp_path: Path) -> None:
    path = tmp_path / "x"
    if what == "not a checkpoint":
        path.write_bytes(b"hello" * 100)
    elif what == "folder without one":
        path.mkdir()
        (path / "notes.txt").write_text("hi")
    with pytest.raises(MelodiffError):
        load_magenta(path)


def test_shapes_that_disagree_are_an_error(tmp_path: Path) -> None:
    weights = paper_shaped(np.random.default_rng(2))
    weights["decoder/multi_rnn_cell/cell_0/lstm_cell/kernel"] = np.zeros((90 + 256 + 4, 16), np.float32)
    write_tfjs(tmp_path / "js", weights)
    with pytest.raises(MelodiffError, match="decoder cell_0"):
        load_magenta(tmp_path / "js")


# ---- primitives -----------------------------------------------------------------------------------------------------
def test_crc32c() -> None:
    assert crc32c(b"123456789") == 0xE3069283  # the standard check value
    assert crc32c(b"") == 0
    rng = np.random.default_rng(0)
    for n in (1, 100, 40_000, 123_457, 1 << 20):  # the numpy lanes path against the byte-wise definition
        data = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
        assert crc32c(data) == _crc_bytes(0xFFFFFFFF, data) ^ 0xFFFFFFFF


def test_snappy() -> None:
    # varint length 20; literal "abcd"; copy-1 (length 8, offset 4); copy-2 (length 8, offset 2): overlapping copies
    stream = bytes([20, 3 << 2]) + b"abcd" + bytes([(8 - 4) << 2 | 1, 4]) + bytes([(8 - 1) << 2 | 2, 2, 0])
    assert snappy_decompress(stream) == b"abcd" + b"abcdabcd" + b"cdcdcdcd"
    with pytest.raises(Exception, match="snappy"):
        snappy_decompress(stream[:-1])
