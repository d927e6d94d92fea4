#!/usr/bin/env python3
"""Independent safetensors reader for the dyt-export test (json + numpy only).

Usage: read_safetensors.py MODEL.safetensors OUT.json

Parses the file from the byte layout alone (it shares no code with dyt), checking the rules
the reference implementation (Hugging Face safetensors, Metadata::validate) enforces:
  * 8-byte little-endian header length N, then N bytes of UTF-8 JSON (an object);
  * every tensor has a known dtype, a shape of non-negative ints, and data_offsets [b, e]
    with e - b == prod(shape) * itemsize;
  * sorted by offset, tensors are contiguous from 0 and end exactly at the end of the file
    (no gaps, no overlap, no trailing bytes).
Writes OUT.json: {"header_len", "metadata", "tensors": [{"name", "dtype", "shape", "checksum",
"values"}]} with values widened to float64 (exact for F32 and BF16). Exits 1 on any violation.
"""

import json
import struct
import sys

import numpy as np

ITEMSIZE = {"F32": 4, "BF16": 2, "F16": 2, "F64": 8, "I32": 4, "I64": 8, "U8": 1}


def fail(msg):
    print(f"read_safetensors.py: {msg}", file=sys.stderr)
    sys.exit(1)


def decode(dtype, raw, shape):
    if dtype == "F32":
        return np.frombuffer(raw, dtype="<f4").astype(np.float64).reshape(shape)
    if dtype == "BF16":
        # bfloat16 is the high half of a float32.
        bits = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
        return bits.view(np.float32).astype(np.float64).reshape(shape)
    fail(f"unexpected dtype {dtype} in an export")
    return None


def main():
    if len(sys.argv) != 3:
        fail("usage: read_safetensors.py MODEL.safetensors OUT.json")
    with open(sys.argv[1], "rb") as f:
        data = f.read()
    if len(data) < 8:
        fail("file shorter than 8 bytes")
    (n,) = struct.unpack("<Q", data[:8])
    if n > 100_000_000 or 8 + n > len(data):
        fail(f"header length {n} out of range")
    try:
        header = json.loads(data[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        fail(f"header is not UTF-8 JSON: {e}")
    if not isinstance(header, dict):
        fail("header is not a JSON object")
    metadata = header.pop("__metadata__", {})
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
        fail("__metadata__ must map strings to strings")
    body = data[8 + n:]

    entries = []
    for name, info in header.items():
        dtype, shape, offs = info.get("dtype"), info.get("shape"), info.get("data_offsets")
        if dtype not in ITEMSIZE:
            fail(f"{name}: unknown dtype {dtype}")
        if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
            fail(f"{name}: bad shape {shape}")
        if not isinstance(offs, list) or len(offs) != 2:
            fail(f"{name}: bad data_offsets {offs}")
        b, e = offs
        if e - b != int(np.prod(shape, dtype=np.int64)) * ITEMSIZE[dtype]:
            fail(f"{name}: data_offsets {offs} do not match shape {shape} and dtype {dtype}")
        entries.append((b, e, name, dtype, shape))
    entries.sort()
    pos = 0
    for b, e, name, _, _ in entries:
        if b != pos:
            fail(f"{name}: data starts at {b}, previous tensor ended at {pos} (gap or overlap)")
        pos = e
    if pos != len(body):
        fail(f"tensors cover {pos} bytes of a {len(body)}-byte data section")

    out = {"header_len": n, "metadata": metadata, "tensors": []}
    for b, e, name, dtype, shape in entries:
        values = decode(dtype, body[b:e], shape)
        out["tensors"].append({
            "name": name,
            "dtype": dtype,
            "shape": shape,
            "checksum": float(values.sum()),
            "values": values.reshape(-1).tolist(),
        })
    with open(sys.argv[2], "w") as f:
        json.dump(out, f, allow_nan=False)


if __name__ == "__main__":
    main()
