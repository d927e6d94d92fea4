"""Minimal safetensors reader/writer on top of json + numpy.

The safetensors layout is:

  * 8 bytes: little-endian unsigned 64-bit header length ``N``.
  * ``N`` bytes: UTF-8 JSON header mapping each tensor name to
    ``{"dtype": str, "shape": [int, ...], "data_offsets": [begin, end]}``,
    plus an optional ``"__metadata__"`` entry mapping strings to strings.
  * The raw little-endian tensor data. ``data_offsets`` are byte offsets
    relative to the start of this data section.

Only the dtypes this project needs are supported. ``BF16`` tensors can be read
(they are widened to float32) but not written.
"""

import json
import struct

import numpy as np

# safetensors dtype tag -> little-endian numpy dtype.
_DTYPES = {
        "F64": np.dtype("<f8"),
        "F32": np.dtype("<f4"),
        "F16": np.dtype("<f2"),
        "I64": np.dtype("<i8"),
        "I32": np.dtype("<i4"),
        "I16": np.dtype("<i2"),
        "I8": np.dtype("i1"),
        "U64": np.dtype("<u8"),
        "U32": np.dtype("<u4"),
        "U16": np.dtype("<u2"),
        "U8": np.dtype("u1"),
        "BOOL": np.dtype("?"),
}

# numpy dtype (native byte order) -> safetensors dtype tag, for writing.
_TAGS = {v.newbyteorder("="): k for k, v in _DTYPES.items()}


def _tag_for(array):
    """Returns the safetensors dtype tag for a numpy array.

    Args:
        array: A numpy array.

    Returns:
        The dtype tag string, e.g. ``"F32"``.

    Raises:
        TypeError: If the dtype is not supported.
    """
    dt = array.dtype.newbyteorder("=")
    if dt not in _TAGS:
        raise TypeError(f"unsupported dtype for safetensors: {array.dtype}")
    return _TAGS[dt]


def save_file(tensors, path, metadata=None):
    """Writes a dict of numpy arrays to a safetensors file.

    Tensors are stored in sorted name order. The header is padded with spaces
    so the data section starts at an 8-byte aligned offset (as the reference
    implementation does).

    Args:
        tensors: Mapping of tensor name to numpy array (any supported dtype).
        path: Output file path.
        metadata: Optional mapping of str to str stored as ``__metadata__``.
    """
    header = {}
    blobs = []
    offset = 0
    for name in sorted(tensors):
        if name == "__metadata__":
            raise ValueError("'__metadata__' is reserved")
        arr = np.asarray(tensors[name])
        tag = _tag_for(arr)
        blob = np.ascontiguousarray(arr, dtype=_DTYPES[tag]).tobytes()
        header[name] = {
            "dtype": tag,
            "shape": [int(d) for d in arr.shape],
            "data_offsets": [offset, offset + len(blob)],
        }
        blobs.append(blob)
        offset += len(blob)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    raw = json.dumps(header, separators=(",", ":")).encode("utf-8")
    raw += b" " * ((-len(raw)) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)))
        f.write(raw)
        for blob in blobs:
            f.write(blob)


def load_file_with_metadata(path):
    """Reads a safetensors file.

    Args:
        path: Input file path.

    Returns:
        A tuple ``(tensors, metadata)``: a dict of name -> numpy array (native
        byte order, writable copies; BF16 is widened to float32) and the
        ``__metadata__`` dict (empty if absent).

    Raises:
        ValueError: If the file is malformed.
        TypeError: If a tensor has an unsupported dtype.
    """
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        raise ValueError(f"{path}: too short for a safetensors file")
    (n,) = struct.unpack("<Q", data[:8])
    if 8 + n > len(data):
        raise ValueError(f"{path}: header length {n} exceeds file size")
    header = json.loads(data[8:8 + n].decode("utf-8"))
    body = memoryview(data)[8 + n:]
    metadata = header.pop("__metadata__", None) or {}
    tensors = {}
    for name, info in header.items():
        tag = info["dtype"]
        shape = tuple(int(d) for d in info["shape"])
        begin, end = (int(o) for o in info["data_offsets"])
        if not 0 <= begin <= end <= len(body):
            raise ValueError(f"{path}: bad data_offsets for {name}")
        count = int(np.prod(shape, dtype=np.int64))
        if tag == "BF16":
            if end - begin != 2 * count:
                raise ValueError(f"{path}: size mismatch for {name}")
            bits = np.frombuffer(body[begin:end], dtype="<u2").astype(np.uint32)
            arr = (bits << 16).view(np.float32).reshape(shape)
        elif tag in _DTYPES:
            dt = _DTYPES[tag]
            if end - begin != dt.itemsize * count:
                raise ValueError(f"{path}: size mismatch for {name}")
            arr = np.frombuffer(body[begin:end], dtype=dt).reshape(shape)
            arr = arr.astype(dt.newbyteorder("="), copy=True)
        else:
            raise TypeError(f"{path}: unsupported dtype {tag} for {name}")
        tensors[name] = arr
    return tensors, metadata


def load_file(path):
    """Reads a safetensors file and returns a dict of name -> numpy array."""
    return load_file_with_metadata(path)[0]
