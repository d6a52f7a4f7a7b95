"""Write the Magenta MusicVAE fixtures of tests/vae/test_magenta.py with real TensorFlow and tensorflowjs.

A one-off script, not run in CI (melodiff never needs TensorFlow). It builds MusicVAE's "mel_2bar" graph at tiny sizes
(z 8, encoder 16 per direction, decoder 2 x 16, 90 classes, 32 steps) with Magenta's variable names, cells and maths:

- the cell is Magenta's ``tf.contrib.rnn.LSTMBlockCell`` rebuilt on the same fused kernel (``tf.raw_ops.LSTMBlockCell``,
  forget_bias 1.0, no peepholes, no clipping; variables ``kernel`` [input + units, 4 units] and ``bias`` [4 units]);
- encoder: ``stack_bidirectional_dynamic_rnn`` for one layer, i.e. scope ``encoder/cell_0`` +
  ``bidirectional_dynamic_rnn`` over ``MultiRNNCell([cell])``; output concat(h_fw, h_bw) of the final states;
  mu = Dense, sigma = softplus(Dense) (``encoder/mu``, ``encoder/sigma``);
- decoder: initial state tanh(Dense(z)) (``decoder/z_to_initial_state``) split as [c0, h0, c1, h1]; input
  [previous one-hot (zeros at t = 0), z]; ``decoder/output_projection`` on the top layer's h.

One Adam step (stand-in gradients) is taken so the checkpoint holds Adam slots, beta powers and global_step like a
real training checkpoint; it is saved by ``tf.compat.v1.train.Saver(sharded=True)`` over two devices (three data
shards: one per device and one for global_step). Then
magenta.js checkpoints are written with tensorflowjs's ``write_weights`` (as magenta-js's checkpoint_converter.py does)
in float32 and quantised to uint8, uint16 and float16, and the TF checkpoint's index is re-written with
snappy-compressed blocks (cramjam's snappy) to exercise that reader path. For fixed inputs, TF computes mu, sigma,
teacher-forced logits and greedy decodes -- with the float32 weights and again with each quantised set as
tensorflowjs's own reader dequantises it.

Usage (Python 3.11, a separate venv; tensorflowjs pins tensorflow 2.19 and needs ydf 0.11 for protobuf 5):
    python3.11 -m venv /tmp/tfvenv && /tmp/tfvenv/bin/pip install tensorflowjs "ydf==0.11.0" cramjam crc32c
    TF_USE_LEGACY_KERAS=1 /tmp/tfvenv/bin/python tools/make_magenta_fixtures.py [tests/vae/fixtures/magenta]
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import sys
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # tf.compat.v1.nn.rnn_cell needs tf_keras under Keras 3
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import cramjam
import crc32c
import numpy as np
import tensorflow as tf
from tensorflowjs.read_weights import read_weights
from tensorflowjs.write_weights import write_weights
from tf_keras.src.layers.rnn.legacy_cells import LayerRNNCell, LSTMStateTuple

Z, ENC, DEC, LAYERS, CLASSES, STEPS, BATCH = 8, 16, 16, 2, 90, 32, 4
SPEC = {"type": "MusicVAE", "dataConverter": {"type": "MelodyConverter",
                                                "args": {"numSteps": 32, "minPitch": 21, "maxPitch": 108}}}
v1 = tf.compat.v1


class LSTMBlockCell(LayerRNNCell):
    """tf.contrib.rnn.LSTMBlockCell (TF 1.x, what Magenta's lstm_utils.rnn_cell builds) on the same fused op."""

    def __init__(self, num_units: int, forget_bias: float = 1.0, name: str = "lstm_cell") -> None:
        super().__init__(name=name)
        self._num_units, self._forget_bias = num_units, forget_bias

    @property
    def state_size(self):
        return LSTMStateTuple(self._num_units, self._num_units)

    @property
    def output_size(self):
        return self._num_units

    def build(self, inputs_shape):
        n = self._num_units
        self._kernel = self.add_weight("kernel", [int(inputs_shape[-1]) + n, 4 * n])
        self._bias = self.add_weight("bias", [4 * n], initializer=v1.zeros_initializer())
        self.built = True

    def call(self, inputs, state):
        cs_prev, h_prev = state
        zeros = tf.zeros([self._num_units])
        _, cs, _, _, _, _, h = tf.raw_ops.LSTMBlockCell(
            x=inputs, cs_prev=cs_prev, h_prev=h_prev, w=self._kernel, wci=zeros, wcf=zeros, wco=zeros, b=self._bias,
            forget_bias=self._forget_bias, cell_clip=-1.0, use_peephole=False)  # contrib: cell_clip None -> -1
        return h, LSTMStateTuple(cs, h)


def layer_step(cell: LSTMBlockCell, x, state) -> LSTMStateTuple:
    """One step of a built cell, outside the Keras call machinery (which dynamic_rnn's while loop has captured)."""
    zeros = tf.zeros([cell._num_units])
    _, cs, _, _, _, _, h = tf.raw_ops.LSTMBlockCell(
        x=x, cs_prev=state.c, h_prev=state.h, w=cell._kernel, wci=zeros, wcf=zeros, wco=zeros, b=cell._bias,
        forget_bias=cell._forget_bias, cell_clip=-1.0, use_peephole=False)
    return LSTMStateTuple(cs, h)


def multi_cell(units: list[int]):
    return v1.nn.rnn_cell.MultiRNNCell([LSTMBlockCell(u) for u in units])


def dense(x, units: int, name: str, activation=None):
    """tf.layers.dense's variables (``name/kernel`` [in, out], ``name/bias``) and maths."""
    with v1.variable_scope(name):
        kernel = v1.get_variable("kernel", [int(x.shape[-1]), units])
        bias = v1.get_variable("bias", [units], initializer=v1.zeros_initializer())
    y = tf.matmul(x, kernel) + bias
    return activation(y) if activation else y


def build_graph():
    tokens = v1.placeholder(tf.int32, [None, STEPS], name="tokens")
    z_in = v1.placeholder(tf.float32, [None, Z], name="z")
    x = tf.one_hot(tokens, CLASSES)
    batch = tf.shape(tokens)[0]
    with tf.device("/cpu:0"):
        with v1.variable_scope("encoder"), v1.variable_scope("cell_0"):  # stack_bidirectional_dynamic_rnn, layer 0
            _, (state_fw, state_bw) = v1.nn.bidirectional_dynamic_rnn(multi_cell([ENC]), multi_cell([ENC]), x,
                                                                      dtype=tf.float32)
        enc_out = tf.concat([state_fw[-1].h, state_bw[-1].h], 1)
        mu = dense(enc_out, Z, "encoder/mu")
        sigma = dense(enc_out, Z, "encoder/sigma", tf.nn.softplus)
    with tf.device("/cpu:1"):
        cell = multi_cell([DEC] * LAYERS)
        init = tf.tanh(dense(z_in, 2 * LAYERS * DEC, "decoder/z_to_initial_state"))
        flat = tf.split(init, [DEC] * (2 * LAYERS), axis=1)  # nest.flatten(MultiRNNCell.state_size) = c0, h0, c1, h1
        state0 = tuple(LSTMStateTuple(flat[2 * i], flat[2 * i + 1]) for i in range(LAYERS))
        prev = tf.pad(x[:, :-1], [(0, 0), (1, 0), (0, 0)])
        dec_in = tf.concat([prev, tf.tile(z_in[:, None], [1, STEPS, 1])], 2)
        with v1.variable_scope("decoder") as scope:
            outputs, _ = v1.nn.dynamic_rnn(cell, dec_in, initial_state=state0, scope=scope)
            with v1.variable_scope("output_projection"):
                w_out = v1.get_variable("kernel", [DEC, CLASSES])
                b_out = v1.get_variable("bias", [CLASSES], initializer=v1.zeros_initializer())
        logits = tf.einsum("btu,uc->btc", outputs, w_out) + b_out
        # greedy decoding, step by step with the same cell (magenta.js's BaseDecoder.decode without temperature)
        state, step_in, greedy = list(state0), tf.zeros([batch, CLASSES]), []
        for _ in range(STEPS):
            h = tf.concat([step_in, z_in], 1)
            for i, layer in enumerate(cell._cells):
                state[i] = layer_step(layer, h, state[i])
                h = state[i].h
            label = tf.argmax(tf.matmul(h, w_out) + b_out, 1, output_type=tf.int32)
            greedy.append(label)
            step_in = tf.one_hot(label, CLASSES)
        greedy = tf.stack(greedy, 1)
    return {"tokens": tokens, "z": z_in, "mu": mu, "sigma": sigma, "logits": logits, "greedy": greedy}


def fixed_inputs(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    tokens = rng.integers(0, CLASSES, (BATCH, STEPS)).astype(np.int32)
    tokens[0] = [2 + 40 if t % 4 == 0 else 0 for t in range(STEPS)]  # a plain melody line
    tokens[1, 16:] = 1  # half rest
    return tokens, rng.normal(0.0, 1.5, (BATCH, Z)).astype(np.float32)


def outputs(sess, g, tokens, z) -> dict[str, np.ndarray]:
    mu, sigma, logits, greedy = sess.run([g["mu"], g["sigma"], g["logits"], g["greedy"]],
                                         {g["tokens"]: tokens, g["z"]: z})
    return {"mu": mu, "sigma": sigma, "logits": logits, "greedy": greedy.astype(np.int64)}


def save_npy(folder: Path, arrays: dict[str, np.ndarray]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, value in arrays.items():
        np.save(folder / f"{name}.npy", value)


# ---- the same index with snappy-compressed blocks (an independent little LevelDB table reader/writer) ---------------
def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        b = buf[pos]
        result |= (b & 0x7F) << shift
        pos, shift = pos + 1, shift + 7
        if b < 0x80:
            return result, pos


def _put_varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _entries(block: bytes) -> list[tuple[bytes, bytes]]:
    restarts = struct.unpack_from("<I", block, len(block) - 4)[0]
    end, pos, key, out = len(block) - 4 - 4 * restarts, 0, b"", []
    while pos < end:
        shared, pos = _varint(block, pos)
        unshared, pos = _varint(block, pos)
        size, pos = _varint(block, pos)
        key = key[:shared] + block[pos:pos + unshared]
        pos += unshared
        out.append((key, block[pos:pos + size]))
        pos += size
    return out


def _block(entries: list[tuple[bytes, bytes]]) -> bytes:  # restart interval 1: every key written in full
    body, restarts = bytearray(), []
    for key, value in entries:
        restarts.append(len(body))
        body += _put_varint(0) + _put_varint(len(key)) + _put_varint(len(value)) + key + value
    return bytes(body) + b"".join(struct.pack("<I", r) for r in restarts) + struct.pack("<I", len(restarts))


def _masked_crc(data: bytes) -> int:
    crc = crc32c.crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def snappy_index(index: bytes) -> bytes:
    def read(handle: bytes) -> bytes:
        offset, pos = _varint(handle, 0)
        size, _ = _varint(handle, pos)
        assert index[offset + size] == 0, "expected an uncompressed table from TensorFlow"
        return index[offset:offset + size]

    out = bytearray()

    def write(contents: bytes) -> bytes:
        packed = bytes(cramjam.snappy.compress_raw(contents))
        offset = len(out)
        out.extend(packed + b"\x01" + struct.pack("<I", _masked_crc(packed + b"\x01")))
        return _put_varint(offset) + _put_varint(len(packed))

    footer = index[-48:]
    meta_handle_end = _varint(footer, _varint(footer, 0)[1])[1]
    meta_block, index_block = read(footer[:meta_handle_end]), read(footer[meta_handle_end:])
    new_index = [(key, write(read(handle))) for key, handle in _entries(index_block)]
    meta = write(meta_block)
    handles = meta + write(_block(new_index))
    return bytes(out) + handles.ljust(40, b"\0") + footer[-8:]


README = """Written by tools/make_magenta_fixtures.py with TensorFlow {version} and tensorflowjs (see there); do not
edit by hand.

- `tf/`: TF tensor bundle (sharded Saver over two devices: 3 data shards; Adam slots, global_step)
- `tf_snappy/`: the same index with snappy-compressed blocks (use it with tf/'s data files)
- `tfjs_<dtype>/`: magenta.js checkpoints (float32, or quantised to uint8, uint16, float16)
- `inputs/`: tokens (B, 32), z (B, 8)
- `expected/<weights>/`: TF's mu, sigma, teacher-forced logits, greedy tokens, computed with those weights
"""


def check_snappy_index(out: Path) -> None:
    """TensorFlow itself must read the snappy index (with tf/'s data files) to the same tensors."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        for f in (out / "tf").glob("model.ckpt.data-*"):
            shutil.copy(f, tmp)
        shutil.copy(out / "tf_snappy" / "model.ckpt.index", tmp)
        plain, snappy = (tf.train.load_checkpoint(f"{d}/model.ckpt") for d in (out / "tf", tmp))
        names = plain.get_variable_to_shape_map()
        assert names == snappy.get_variable_to_shape_map()
        assert all(np.array_equal(plain.get_tensor(n), snappy.get_tensor(n)) for n in names)


def main(out: Path) -> None:
    rng = np.random.default_rng(2021)
    tf.random.set_seed(0)
    v1.disable_eager_execution()
    g = build_graph()
    variables = v1.trainable_variables()
    global_step = v1.train.get_or_create_global_step()
    # one Adam step with stand-in gradients (TF 2 registers no gradient for the LSTMBlockCell op; only the optimiser's
    # variables in the checkpoint matter here)
    fake_grads = [tf.constant(rng.normal(0.0, 1.0, v.shape.as_list()).astype(np.float32)) for v in variables]
    train = v1.train.AdamOptimizer(1e-3).apply_gradients(zip(fake_grads, variables), global_step=global_step)
    tokens, z = fixed_inputs(rng)
    shutil.rmtree(out, ignore_errors=True)
    config = v1.ConfigProto(device_count={"CPU": 2})
    with v1.Session(config=config) as sess:
        sess.run(v1.global_variables_initializer())
        for v in variables:  # non-zero biases everywhere (tests the gate order and the forget bias)
            sess.run(v.assign(rng.normal(0.0, 0.4, v.shape.as_list()).astype(np.float32)))
        sess.run(train, {g["tokens"]: tokens, g["z"]: z})
        print("variables:", *sorted(v.name for v in v1.global_variables()), sep="\n  ")
        tf_dir = out / "tf"
        tf_dir.mkdir(parents=True)
        v1.train.Saver(sharded=True).save(sess, str(tf_dir / "model.ckpt"), write_meta_graph=False)
        save_npy(out / "inputs", {"tokens": tokens.astype(np.int64), "z": z})
        save_npy(out / "expected" / "float32", outputs(sess, g, tokens, z))

        # magenta.js: as magenta-js/scripts/checkpoint_converter.py (all but global_step and the Adam variables)
        reader = tf.train.load_checkpoint(str(tf_dir / "model.ckpt"))
        names = sorted(n for n in reader.get_variable_to_shape_map()
                       if n != "global_step" and "Adam" not in n and "power" not in n)
        entries = [{"name": n, "data": reader.get_tensor(n)} for n in names]
        groups = [[e for e in entries if e["name"].startswith("encoder/")],
                  [e for e in entries if not e["name"].startswith("encoder/")]]
        by_name = {v.op.name: v for v in variables}
        for quant in ("float32", "uint8", "uint16", "float16"):
            folder = out / f"tfjs_{quant}"
            folder.mkdir(parents=True)
            write_weights(groups, str(folder), shard_size_bytes=16 * 1024,
                          quantization_dtype_map=None if quant == "float32" else {quant: True})
            (folder / "config.json").write_text(json.dumps(SPEC))
            if quant == "float32":
                continue
            manifest = json.loads((folder / "weights_manifest.json").read_text())
            loaded = {e["name"]: e["data"] for grp in read_weights(manifest, str(folder)) for e in grp}
            for name, value in loaded.items():
                sess.run(by_name[name].assign(value.astype(np.float32)))
            save_npy(out / "expected" / quant, outputs(sess, g, tokens, z))

    (out / "tf_snappy").mkdir()
    (out / "tf_snappy" / "model.ckpt.index").write_bytes(snappy_index((tf_dir / "model.ckpt.index").read_bytes()))
    check_snappy_index(out)
    (out / "README.md").write_text(README.format(version=tf.__version__))
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    print(f"fixtures in {out}: {size / 1024:.0f} KiB")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "tests/vae/fixtures/magenta"))
