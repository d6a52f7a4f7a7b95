"""TensorFlow checkpoints (tensor bundle, "V2") read with numpy alone: ``PREFIX.index`` + ``PREFIX.data-*-of-*``.

The format (TensorFlow's tensor_bundle and its LevelDB-derived table code, docs/PAPER.md §8):
- ``.index`` is a sorted table. It ends with a 48-byte footer: two block handles (metaindex, index; each a pair of
  varints offset and size, padded to 40 bytes) and the magic number 0xdb4775248b80fb57 (fixed64, little-endian).
  A block is followed by a 5-byte trailer: compression type (0 none, 1 snappy) and the masked CRC32C of the block and
  its type byte. A block holds entries (varints shared, unshared, value size; the key's unshared suffix; the value),
  keys prefix-compressed against the previous key, then restart offsets (uint32 each) and their count (uint32).
  The index block maps the last key of each data block to that data block's handle.
- Each data-block entry maps a tensor name to a serialised ``BundleEntryProto`` {dtype 1, shape 2, shard_id 3,
  offset 4, size 5, crc32c 6 (fixed32, masked), slices 7}; the key "" holds the ``BundleHeaderProto``
  {num_shards 1, endianness 2, version 3}.
- ``.data-SSSSS-of-NNNNN`` shards hold the raw little-endian tensor bytes at (offset, size).

Every size, handle and checksum is checked: a truncated or corrupt checkpoint raises MelodiffError. Snappy blocks are
decompressed in pure Python (TensorFlow writes its bundles uncompressed; only the small index could ever be
compressed), and CRC32C runs vectorised in numpy, so there is no dependency beyond numpy.
"""

from __future__ import annotations

import re
import struct
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import BinaryIO

import numpy as np

from melodiff.errors import MelodiffError

MAGIC = 0xDB4775248B80FB57
FOOTER_SIZE = 48
# tensorflow/core/framework/types.proto DataType -> numpy (little-endian); strings and resources are not tensors we read
DTYPES = {1: "<f4", 2: "<f8", 3: "<i4", 4: "u1", 5: "<i2", 6: "i1", 9: "<i8", 10: "?", 17: "<u2", 19: "<f2",
          22: "<u4", 23: "<u8"}
DATA_SUFFIX = re.compile(r"\.data-\d{5}-of-\d{5}$")


class CorruptCheckpoint(Exception):
    """A structural problem in checkpoint bytes (turned into MelodiffError with the file name)."""


# ---- primitives: varints, protobuf fields, CRC32C, snappy -----------------------------------------------------------
def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    """(value, next position) of the varint at ``pos``."""
    result = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise CorruptCheckpoint("truncated varint")
        byte = buf[pos]
        result |= (byte & 0x7F) << shift
        pos, shift = pos + 1, shift + 7
        if byte < 0x80:
            return result, pos


def _proto_fields(buf: bytes) -> list[tuple[int, int | bytes]]:
    """A protobuf message as [(field number, value)]: ints for varint/fixed fields, bytes for length-delimited."""
    fields, pos = [], 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1 or wire == 5:
            width = 8 if wire == 1 else 4
            if pos + width > len(buf):
                raise CorruptCheckpoint("truncated protobuf field")
            value, pos = int.from_bytes(buf[pos:pos + width], "little"), pos + width
        elif wire == 2:
            size, pos = _varint(buf, pos)
            if pos + size > len(buf):
                raise CorruptCheckpoint("truncated protobuf field")
            value, pos = buf[pos:pos + size], pos + size
        else:
            raise CorruptCheckpoint(f"unsupported protobuf wire type {wire}")
        fields.append((number, value))
    return fields


def _int64(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


@cache
def _crc_table() -> np.ndarray:
    table = np.zeros(256, np.uint32)
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table[i] = c
    return table


def _crc_bytes(state: int, data: bytes | np.ndarray) -> int:
    table = _crc_table()
    for byte in bytes(data):
        state = int(table[(state ^ byte) & 0xFF]) ^ (state >> 8)
    return state


def _zero_bytes_operator(n: int) -> np.ndarray:
    """The CRC state's change over ``n`` zero bytes (a linear map over GF(2)) as the images of the 32 unit vectors."""
    table = _crc_table()

    def compose(a: np.ndarray, b: np.ndarray) -> np.ndarray:  # a after b
        return _apply(a, b)

    one = np.array([int(table[(1 << i) & 0xFF]) ^ ((1 << i) >> 8) for i in range(32)], np.uint32)
    result = np.array([1 << i for i in range(32)], np.uint32)
    while n:
        if n & 1:
            result = compose(one, result)
        one, n = compose(one, one), n >> 1
    return result


def _apply(images: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The linear map given by ``images`` applied to every uint32 of ``x``."""
    out = np.zeros_like(x)
    for i in range(32):
        out ^= np.where((x >> np.uint32(i)) & np.uint32(1), images[i], np.uint32(0))
    return out


def crc32c(data: bytes | memoryview) -> int:
    """CRC-32C (Castagnoli) of ``data``. Long inputs run as up to 65536 interleaved lanes in numpy, then the lanes'
    states are merged pairwise (state after a + b = zeros(len b)(state after a) ^ state of b from 0)."""
    n = len(data)
    lanes = 1 << min(16, max(0, (n // 512).bit_length() - 1))
    if lanes < 64:
        return _crc_bytes(0xFFFFFFFF, data) ^ 0xFFFFFFFF
    width = n // lanes
    table = _crc_table()
    columns = np.frombuffer(data, np.uint8, lanes * width).reshape(lanes, width).T.copy()
    state = np.zeros(lanes, np.uint32)
    state[0] = 0xFFFFFFFF
    for column in columns:
        state = table[(state ^ column) & 0xFF] ^ (state >> np.uint32(8))
    while len(state) > 1:
        state = _apply(_zero_bytes_operator(width), state[0::2]) ^ state[1::2]
        width *= 2
    return _crc_bytes(int(state[0]), memoryview(data)[lanes * (n // lanes):]) ^ 0xFFFFFFFF


def unmask_crc(masked: int) -> int:
    """LevelDB/TensorFlow store CRCs masked: ((crc >> 15) | (crc << 17)) + 0xa282ead8."""
    rot = (masked - 0xA282EAD8) & 0xFFFFFFFF
    return ((rot >> 17) | (rot << 15)) & 0xFFFFFFFF


def snappy_decompress(buf: bytes) -> bytes:
    """Raw snappy (no framing): varint uncompressed length, then literal and copy elements."""
    size, pos = _varint(buf, 0)
    out = bytearray()
    try:
        while pos < len(buf):
            tag = buf[pos]
            pos += 1
            kind = tag & 3
            if kind == 0:  # literal; lengths >= 61 stored in the next 1..4 bytes
                length = tag >> 2
                if length >= 60:
                    extra = length - 59
                    if pos + extra > len(buf):
                        raise CorruptCheckpoint("truncated snappy literal")
                    length, pos = int.from_bytes(buf[pos:pos + extra], "little"), pos + extra
                length += 1
                if pos + length > len(buf):
                    raise CorruptCheckpoint("truncated snappy literal")
                out += buf[pos:pos + length]
                pos += length
                continue
            if kind == 1:
                length, offset, pos = ((tag >> 2) & 7) + 4, (tag >> 5) << 8 | buf[pos], pos + 1
            else:
                width = 2 if kind == 2 else 4
                if pos + width > len(buf):
                    raise CorruptCheckpoint("truncated snappy copy")
                length, offset, pos = (tag >> 2) + 1, int.from_bytes(buf[pos:pos + width], "little"), pos + width
            if not 0 < offset <= len(out):
                raise CorruptCheckpoint("bad snappy copy offset")
            start = len(out) - offset
            for i in range(length):  # the source may overlap what is being written
                out.append(out[start + i])
    except IndexError:
        raise CorruptCheckpoint("truncated snappy block") from None
    if len(out) != size:
        raise CorruptCheckpoint(f"snappy block decodes to {len(out)} bytes, expected {size}")
    return bytes(out)


# ---- the table ------------------------------------------------------------------------------------------------------
def _handle(buf: bytes, pos: int = 0) -> tuple[tuple[int, int], int]:
    offset, pos = _varint(buf, pos)
    size, pos = _varint(buf, pos)
    return (offset, size), pos


def _read_block(table: bytes, handle: tuple[int, int]) -> bytes:
    offset, size = handle
    if offset + size + 5 > len(table) - FOOTER_SIZE:
        raise CorruptCheckpoint("a block lies past the end of the index (truncated file?)")
    contents = table[offset:offset + size]
    kind = table[offset + size]
    stored = struct.unpack_from("<I", table, offset + size + 1)[0]
    if unmask_crc(stored) != crc32c(contents + bytes([kind])):
        raise CorruptCheckpoint("index block checksum mismatch")
    if kind == 0:
        return contents
    if kind == 1:
        return snappy_decompress(contents)
    raise CorruptCheckpoint(f"unknown block compression type {kind}")


def _block_entries(block: bytes) -> list[tuple[bytes, bytes]]:
    if len(block) < 4:
        raise CorruptCheckpoint("block too short")
    restarts = struct.unpack_from("<I", block, len(block) - 4)[0]
    end = len(block) - 4 - 4 * restarts
    if end < 0:
        raise CorruptCheckpoint("bad restart count")
    entries, key, pos = [], b"", 0
    while pos < end:
        shared, pos = _varint(block, pos)
        unshared, pos = _varint(block, pos)
        size, pos = _varint(block, pos)
        if shared > len(key) or pos + unshared + size > end:
            raise CorruptCheckpoint("bad block entry")
        key = key[:shared] + block[pos:pos + unshared]
        pos += unshared
        entries.append((key, block[pos:pos + size]))
        pos += size
    return entries


def read_table(table: bytes) -> list[tuple[bytes, bytes]]:
    """All (key, value) pairs of a LevelDB-style table, in key order."""
    if len(table) < FOOTER_SIZE:
        raise CorruptCheckpoint("index file too short")
    footer = table[-FOOTER_SIZE:]
    if int.from_bytes(footer[-8:], "little") != MAGIC:
        raise CorruptCheckpoint("not a TensorFlow checkpoint index (bad magic number; truncated file?)")
    _, pos = _handle(footer)  # the metaindex block (filters) is not needed
    index_handle, _ = _handle(footer, pos)
    entries = []
    for _, value in _block_entries(_read_block(table, index_handle)):
        entries += _block_entries(_read_block(table, _handle(value)[0]))
    return entries


# ---- the bundle -----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BundleEntry:
    dtype: int  # TensorFlow DataType enum
    shape: tuple[int, ...]
    shard_id: int
    offset: int
    size: int
    crc32c: int | None  # unmasked
    sliced: bool  # a partitioned variable (its data lives in slice entries), not read here

    @classmethod
    def parse(cls, buf: bytes) -> BundleEntry:
        fields = dict(dtype=0, shape=(), shard_id=0, offset=0, size=0, crc32c=None, sliced=False)
        for number, value in _proto_fields(buf):
            if number == 1:
                fields["dtype"] = value
            elif number == 2:
                fields["shape"] = _parse_shape(value)
            elif number in (3, 4, 5):
                fields[{3: "shard_id", 4: "offset", 5: "size"}[number]] = _int64(value)
            elif number == 6:
                fields["crc32c"] = unmask_crc(value)
            elif number == 7:
                fields["sliced"] = True
        return cls(**fields)


def _parse_shape(buf: bytes) -> tuple[int, ...]:
    dims = []
    for number, value in _proto_fields(buf):
        if number == 2:  # TensorShapeProto.dim
            dims.append(next((_int64(v) for n, v in _proto_fields(value) if n == 1), 0))
        elif number == 3 and value:
            raise CorruptCheckpoint("tensor of unknown rank")
    return tuple(dims)


def read_bundle(path: str | Path, want: Callable[[str], bool] = lambda name: True) -> dict[str, np.ndarray]:
    """The tensors (name -> array) of a TensorFlow checkpoint whose names pass ``want``.

    ``path``: the prefix (``model.ckpt-3326``), its ``.index`` or a ``.data-*`` file, a folder holding one checkpoint
    (or a ``checkpoint`` state file naming it), or a ``.tar`` (optionally compressed) holding one."""
    path = Path(path)
    if path.is_file() and tarfile.is_tarfile(path):
        with tarfile.open(path, "r:*") as tar:
            names = [m.name for m in tar.getmembers() if m.isfile()]
            prefix = _choose_prefix(names, f"{path} (tar)")

            def open_tar(name: str) -> BinaryIO | None:
                try:
                    return tar.extractfile(name)
                except KeyError:
                    return None

            return _read(open_tar, prefix, want, str(path))
    prefix = _resolve_prefix(path)

    def open_file(name: str) -> BinaryIO | None:
        return open(name, "rb") if Path(name).is_file() else None

    return _read(open_file, prefix, want, prefix)


def _choose_prefix(names: list[str], where: str) -> str:
    prefixes = sorted(n[: -len(".index")] for n in names if n.endswith(".index"))
    if not prefixes:
        raise MelodiffError(f"{where}: no TensorFlow checkpoint (no *.index file)")
    if len(prefixes) > 1:
        raise MelodiffError(f"{where}: several checkpoints ({', '.join(prefixes)}): name one")
    return prefixes[0]


def _resolve_prefix(path: Path) -> str:
    if path.is_dir():
        state = path / "checkpoint"  # tf.train's state file: model_checkpoint_path: "model.ckpt-123"
        if state.is_file():
            match = re.search(r'^model_checkpoint_path:\s*"(.*)"', state.read_text(errors="replace"), re.M)
            if match:  # relative, or absolute on the machine that trained: look beside the state file as well
                for candidate in (path / match.group(1), path / Path(match.group(1)).name):
                    if Path(f"{candidate}.index").is_file():
                        return str(candidate)
        return _choose_prefix([str(p) for p in path.iterdir()], str(path))
    text = str(path)
    if text.endswith(".index"):
        text = text[: -len(".index")]
    text = DATA_SUFFIX.sub("", text)
    if not Path(text + ".index").is_file():
        raise MelodiffError(f"{path}: no TensorFlow checkpoint there ({text}.index not found)")
    return text


def _read(open_file: Callable[[str], BinaryIO | None], prefix: str, want: Callable[[str], bool],
          origin: str) -> dict[str, np.ndarray]:
    index_file = open_file(prefix + ".index")
    if index_file is None:
        raise MelodiffError(f"{origin}: {prefix}.index not found")
    with index_file:
        index = index_file.read()
    try:
        table = read_table(index)
        header = dict(_proto_fields(table[0][1])) if table and table[0][0] == b"" else None
        if header is None:
            raise CorruptCheckpoint("no bundle header")
        if header.get(2, 0) != 0:
            raise MelodiffError(f"{origin}: a big-endian checkpoint; only little-endian ones are supported")
        num_shards = header.get(1, 1)
        entries = {key.decode("utf-8"): BundleEntry.parse(value) for key, value in table[1:]}
    except (CorruptCheckpoint, UnicodeDecodeError, struct.error) as exc:
        raise MelodiffError(f"{origin}.index: corrupt checkpoint index ({exc})") from None
    wanted = sorted((e.shard_id, e.offset, name) for name, e in entries.items() if want(name))
    tensors: dict[str, np.ndarray] = {}
    for shard in sorted({shard for shard, _, _ in wanted}):
        data_name = f"{prefix}.data-{shard:05d}-of-{num_shards:05d}"
        handle = open_file(data_name) if 0 <= shard < num_shards else None
        if handle is None:
            raise MelodiffError(f"{origin}: data file {Path(data_name).name} missing")
        with handle:
            for _, _, name in (w for w in wanted if w[0] == shard):
                tensors[name] = _read_tensor(handle, name, entries[name], data_name)
    return tensors


def _read_tensor(handle: BinaryIO, name: str, entry: BundleEntry, data_name: str) -> np.ndarray:
    if entry.sliced:
        raise MelodiffError(f"{data_name}: {name} is a partitioned variable, which is not supported")
    if entry.dtype not in DTYPES:
        raise MelodiffError(f"{data_name}: {name} has TensorFlow dtype {entry.dtype}, which is not supported")
    dtype = np.dtype(DTYPES[entry.dtype])
    count = int(np.prod(entry.shape, dtype=np.int64))
    if min(entry.shape, default=0) < 0 or count * dtype.itemsize != entry.size:
        raise MelodiffError(f"{data_name}: {name}: shape {list(entry.shape)} does not match its {entry.size} bytes")
    handle.seek(entry.offset)
    data = handle.read(entry.size)
    if len(data) != entry.size:
        raise MelodiffError(f"{data_name}: truncated ({name} needs bytes {entry.offset}..{entry.offset + entry.size})")
    if entry.crc32c is not None and crc32c(data) != entry.crc32c:
        raise MelodiffError(f"{data_name}: checksum mismatch in {name} (corrupt file)")
    return np.frombuffer(data, dtype).reshape(entry.shape).astype(dtype.newbyteorder("="))
