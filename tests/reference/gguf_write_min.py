"""Tiny GGUF v3 writer used only to test gguf_reader.py on types stories260K does not contain
(F16, BF16, Q8_0) and on every metadata value type. Encodes straight from the GGUF spec."""

import struct

import numpy as np

_TYPE_OF = {  # python/numpy scalar kind -> GGUF metadata value type
    "u8": 0, "i8": 1, "u16": 2, "i16": 3, "u32": 4, "i32": 5, "f32": 6, "bool": 7, "str": 8,
    "u64": 10, "i64": 11, "f64": 12,
}
_FMT = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q",
        12: "<d"}


def _str(s):
    b = s.encode("utf-8")
    return struct.pack("<Q", len(b)) + b


def _value(kind, v):
    t = _TYPE_OF[kind]
    if t == 8:
        return _str(v)
    return struct.pack(_FMT[t], v)


def encode_tensor(values, ggml_type):
    """values: float array of shape (..., row). Returns the raw bytes for ggml_type."""
    flat = np.asarray(values, dtype=np.float64).reshape(-1)
    if ggml_type == 0:
        return flat.astype("<f4").tobytes()
    if ggml_type == 1:
        return flat.astype("<f2").tobytes()
    if ggml_type == 30:  # bf16: truncate (values used in tests are exact in bf16)
        return (flat.astype("<f4").view("<u4") >> 16).astype("<u2").tobytes()
    if ggml_type == 8:   # Q8_0: per 32 values, f16 d = amax/127, q = round(x/d)
        out = bytearray()
        for blk in flat.reshape(-1, 32):
            amax = np.abs(blk).max()
            d = np.float16(amax / 127.0)
            q = np.zeros(32, np.int8) if d == 0 else np.clip(np.round(blk / float(d)), -127, 127).astype(np.int8)
            out += np.array([d], "<f2").tobytes() + q.tobytes()
        return bytes(out)
    raise ValueError(ggml_type)


def write_gguf(path, metadata, tensors, alignment=32):
    """metadata: list of (key, kind, value) with kind in _TYPE_OF or ("arr", kind, list).
    tensors: list of (name, dims (GGUF order), ggml_type, raw bytes)."""
    head = bytearray(b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(metadata)))
    for key, kind, v in metadata:
        head += _str(key)
        if isinstance(kind, tuple):  # ("arr", element kind)
            ek = kind[1]
            head += struct.pack("<IIQ", 9, _TYPE_OF[ek], len(v))
            for e in v:
                head += _value(ek, e)
        else:
            head += struct.pack("<I", _TYPE_OF[kind]) + _value(kind, v)
    offsets, off = [], 0
    for _, _, _, raw in tensors:
        offsets.append(off)
        off += (len(raw) + alignment - 1) // alignment * alignment
    for (name, dims, gt, _), o in zip(tensors, offsets):
        head += _str(name) + struct.pack("<I", len(dims))
        head += b"".join(struct.pack("<Q", d) for d in dims)
        head += struct.pack("<IQ", gt, o)
    head += b"\0" * ((-len(head)) % alignment)
    body = bytearray()
    for (_, _, _, raw), o in zip(tensors, offsets):
        body += b"\0" * (o - len(body)) + raw
    with open(path, "wb") as f:
        f.write(bytes(head) + bytes(body))
