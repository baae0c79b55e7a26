"""A minimal GGUF metadata reader: the key/value header of a model file, nothing else.

The ``gguf`` package parses every tensor description and memory-maps the whole file
(15 s for a 250 MB model on a busy 2-core box); the tokenizer needs only the header, which
this reads sequentially in well under a second. Format: ``GGUF`` magic, version, tensor
count, key/value count, then typed key/value pairs (little-endian), as specified in
ggml's ``docs/gguf.md``.
"""

from __future__ import annotations

import struct
from array import array
from pathlib import Path
from typing import Any, BinaryIO

_SCALARS: dict[int, tuple[str, int]] = {
    0: ("<B", 1),
    1: ("<b", 1),
    2: ("<H", 2),
    3: ("<h", 2),
    4: ("<I", 4),
    5: ("<i", 4),
    6: ("<f", 4),
    7: ("<?", 1),
    10: ("<Q", 8),
    11: ("<q", 8),
    12: ("<d", 8),
}
# array typecodes for numeric arrays read in one go (machine order must be little-endian).
_ARRAY_CODES = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 10: "Q", 11: "q", 12: "d"}
_STRING, _ARRAY = 8, 9


class GGUFError(ValueError):
    """The file is not a GGUF model this reader understands."""


def _read(f: BinaryIO, n: int) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise GGUFError("truncated GGUF header")
    return data


def _u64(f: BinaryIO) -> int:
    return int(struct.unpack("<Q", _read(f, 8))[0])


def _string(f: BinaryIO) -> str:
    return _read(f, _u64(f)).decode("utf-8", errors="replace")


def _value(f: BinaryIO, kind: int) -> Any:
    if kind == _STRING:
        return _string(f)
    if kind == _ARRAY:
        item_kind = int(struct.unpack("<I", _read(f, 4))[0])
        count = _u64(f)
        if item_kind == _STRING:
            return [_string(f) for _ in range(count)]
        if item_kind == 7:
            return [b != 0 for b in _read(f, count)]
        code = _ARRAY_CODES.get(item_kind)
        if code is None:  # nested arrays: not used by tokenizers; read item by item
            return [_value(f, item_kind) for _ in range(count)]
        values = array(code)
        values.frombytes(_read(f, count * values.itemsize))
        return values.tolist()
    scalar = _SCALARS.get(kind)
    if scalar is None:
        raise GGUFError(f"unknown GGUF value type {kind}")
    fmt, size = scalar
    return struct.unpack(fmt, _read(f, size))[0]


def read_metadata(path: str | Path, prefixes: tuple[str, ...] = ()) -> dict[str, Any]:
    """The key/value metadata of a GGUF file (only keys starting with ``prefixes``, if given).

    Raises:
        GGUFError: not a GGUF file, an unsupported version, or a truncated header.
        OSError: the file cannot be read.
    """
    import sys

    if sys.byteorder != "little":  # pragma: no cover - every supported platform is LE
        raise GGUFError("reading GGUF needs a little-endian machine")
    out: dict[str, Any] = {}
    with open(path, "rb", buffering=1 << 20) as f:
        if _read(f, 4) != b"GGUF":
            raise GGUFError(f"{path}: not a GGUF file")
        version = int(struct.unpack("<I", _read(f, 4))[0])
        if version < 2:
            raise GGUFError(f"{path}: GGUF version {version} is not supported (need 2 or 3)")
        _u64(f)  # tensor count
        for _ in range(_u64(f)):
            key = _string(f)
            kind = int(struct.unpack("<I", _read(f, 4))[0])
            value = _value(f, kind)
            if not prefixes or key.startswith(prefixes):
                out[key] = value
    return out
