"""Minimal GGUF v3 reader (pure Python + numpy), written from the GGUF specification.

Independent of the C++ engine on purpose: it is the loader of the reference forward pass that the
engine's logits are checked against.

Layout (all little-endian):
  magic "GGUF", u32 version, u64 tensor_count, u64 kv_count,
  kv_count x (string key, u32 value_type, value),
  tensor_count x (string name, u32 n_dims, u64 dims[n_dims], u32 ggml_type, u64 offset),
  padding to general.alignment (default 32), then the tensor data; each tensor's offset is relative
  to the start of the data section.
A string is a u64 byte length followed by UTF-8 bytes; an array is u32 element type, u64 count,
then the elements.

dims[0] is the fastest-varying (row) dimension, so a tensor with dims {in, out} is returned as a
numpy array of shape (out, in).
"""

import struct

import numpy as np

GGUF_MAGIC = b"GGUF"

# Metadata value types.
_UINT8, _INT8, _UINT16, _INT16, _UINT32, _INT32, _FLOAT32, _BOOL, _STRING, _ARRAY, _UINT64, _INT64, \
    _FLOAT64 = range(13)
_SCALAR_FORMATS = {
    _UINT8: "<B", _INT8: "<b", _UINT16: "<H", _INT16: "<h", _UINT32: "<I", _INT32: "<i",
    _FLOAT32: "<f", _BOOL: "<?", _UINT64: "<Q", _INT64: "<q", _FLOAT64: "<d",
}
_SCALAR_NUMPY = {
    _UINT8: "<u1", _INT8: "<i1", _UINT16: "<u2", _INT16: "<i2", _UINT32: "<u4", _INT32: "<i4",
    _FLOAT32: "<f4", _BOOL: "?", _UINT64: "<u8", _INT64: "<i8", _FLOAT64: "<f8",
}

# ggml tensor types this reader can dequantize.
GGML_TYPE_F32 = 0
GGML_TYPE_F16 = 1
GGML_TYPE_Q8_0 = 8
GGML_TYPE_BF16 = 30
GGML_TYPE_NAMES = {GGML_TYPE_F32: "F32", GGML_TYPE_F16: "F16", GGML_TYPE_Q8_0: "Q8_0",
                   GGML_TYPE_BF16: "BF16"}
Q8_0_BLOCK = 32  # values per block: one f16 scale d followed by 32 int8 quants; value = d * q
Q8_0_BLOCK_BYTES = 2 + Q8_0_BLOCK


class GGUFError(Exception):
    pass


class TensorInfo:
    def __init__(self, name, dims, ggml_type, offset):
        self.name = name
        self.dims = dims          # GGUF order: dims[0] is the row length
        self.ggml_type = ggml_type
        self.offset = offset      # relative to the data section

    @property
    def n_elements(self):
        n = 1
        for d in self.dims:
            n *= d
        return n

    def n_bytes(self):
        n = self.n_elements
        if self.ggml_type == GGML_TYPE_F32:
            return 4 * n
        if self.ggml_type in (GGML_TYPE_F16, GGML_TYPE_BF16):
            return 2 * n
        if self.ggml_type == GGML_TYPE_Q8_0:
            if self.dims[0] % Q8_0_BLOCK:
                raise GGUFError(f"{self.name}: Q8_0 row length {self.dims[0]} not a multiple of 32")
            return n // Q8_0_BLOCK * Q8_0_BLOCK_BYTES
        raise GGUFError(f"{self.name}: unsupported ggml type {self.ggml_type}")


class _Cursor:
    def __init__(self, buf):
        self.buf = buf
        self.pos = 0

    def take(self, n):
        if self.pos + n > len(self.buf):
            raise GGUFError(f"truncated file: need {n} bytes at offset {self.pos}")
        out = self.buf[self.pos:self.pos + n]
        self.pos += n
        return out

    def scalar(self, fmt):
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]

    def string(self):
        n = self.scalar("<Q")
        return bytes(self.take(n)).decode("utf-8", errors="surrogateescape")

    def value(self, vtype):
        if vtype in _SCALAR_FORMATS:
            return self.scalar(_SCALAR_FORMATS[vtype])
        if vtype == _STRING:
            return self.string()
        if vtype == _ARRAY:
            etype = self.scalar("<I")
            count = self.scalar("<Q")
            if etype in _SCALAR_NUMPY:
                dt = np.dtype(_SCALAR_NUMPY[etype])
                return np.frombuffer(self.take(count * dt.itemsize), dtype=dt).copy()
            return [self.value(etype) for _ in range(count)]
        raise GGUFError(f"unknown metadata value type {vtype} at offset {self.pos}")


class GGUFFile:
    """A parsed GGUF file: .version, .metadata (dict), .tensors (dict name -> TensorInfo)."""

    def __init__(self, path):
        with open(path, "rb") as f:
            self._buf = memoryview(f.read())
        cur = _Cursor(self._buf)
        if bytes(cur.take(4)) != GGUF_MAGIC:
            raise GGUFError(f"{path}: not a GGUF file")
        self.version = cur.scalar("<I")
        if self.version not in (2, 3):
            raise GGUFError(f"{path}: unsupported GGUF version {self.version}")
        n_tensors = cur.scalar("<Q")
        n_kv = cur.scalar("<Q")
        self.metadata = {}
        for _ in range(n_kv):
            key = cur.string()
            vtype = cur.scalar("<I")
            self.metadata[key] = cur.value(vtype)
        self.tensors = {}
        for _ in range(n_tensors):
            name = cur.string()
            n_dims = cur.scalar("<I")
            dims = [cur.scalar("<Q") for _ in range(n_dims)]
            ggml_type = cur.scalar("<I")
            offset = cur.scalar("<Q")
            self.tensors[name] = TensorInfo(name, dims, ggml_type, offset)
        alignment = int(self.metadata.get("general.alignment", 32))
        self.data_start = (cur.pos + alignment - 1) // alignment * alignment
        for t in self.tensors.values():
            if t.offset % alignment:
                raise GGUFError(f"{t.name}: offset {t.offset} not aligned to {alignment}")
            if self.data_start + t.offset + t.n_bytes() > len(self._buf):
                raise GGUFError(f"{t.name}: data runs past the end of the file")

    def get(self, key, default=None):
        return self.metadata.get(key, default)

    def has_tensor(self, name):
        return name in self.tensors

    def tensor(self, name, dtype=np.float64):
        """Dequantized tensor as numpy array of shape reversed(dims) (so (out, in) for a matrix)."""
        t = self.tensors[name]
        start = self.data_start + t.offset
        raw = self._buf[start:start + t.n_bytes()]
        n = t.n_elements
        if t.ggml_type == GGML_TYPE_F32:
            flat = np.frombuffer(raw, dtype="<f4", count=n)
        elif t.ggml_type == GGML_TYPE_F16:
            flat = np.frombuffer(raw, dtype="<f2", count=n)
        elif t.ggml_type == GGML_TYPE_BF16:
            # bf16 is the top half of an IEEE float32.
            bits = np.frombuffer(raw, dtype="<u2", count=n).astype(np.uint32) << 16
            flat = bits.view(np.float32)
        elif t.ggml_type == GGML_TYPE_Q8_0:
            blocks = np.frombuffer(raw, dtype=np.uint8).reshape(-1, Q8_0_BLOCK_BYTES)
            d = blocks[:, :2].copy().view("<f2").astype(np.float64)       # (n_blocks, 1)
            q = blocks[:, 2:].copy().view(np.int8).astype(np.float64)     # (n_blocks, 32)
            flat = (d * q).reshape(-1)
        else:
            raise GGUFError(f"{name}: unsupported ggml type {t.ggml_type}")
        return flat.astype(dtype).reshape(tuple(reversed(t.dims)))


def _main():
    import sys
    g = GGUFFile(sys.argv[1])
    print(f"GGUF v{g.version}, {len(g.tensors)} tensors, data at {g.data_start}")
    for k, v in g.metadata.items():
        if isinstance(v, (list, np.ndarray)) and len(v) > 8:
            v = f"[{len(v)} items]"
        print(f"  {k} = {v}")
    for t in g.tensors.values():
        print(f"  {t.name:32s} {GGML_TYPE_NAMES.get(t.ggml_type, t.ggml_type):5s} dims={t.dims}")


if __name__ == "__main__":
    _main()
