"""The safetensors format, read and written by hand (no `safetensors` package needed).

Format (huggingface/safetensors, README.md "Format", and the reference parser
safetensors/src/tensor.rs: `read_metadata`, `Metadata::validate`, `prepare`):

    8 bytes   N, an unsigned 64-bit little-endian integer: the size of the header
    N bytes   a UTF-8 JSON object: {"NAME": {"dtype": "F16", "shape": [1, 16, 256],
              "data_offsets": [BEGIN, END]}, ..., "__metadata__": {"str": "str"}}
              (the writer pads it with spaces to a multiple of 8 bytes)
    the rest  the byte buffer: each tensor's elements, C order, little-endian, at
              [BEGIN, END) relative to the start of the buffer

The reference parser rejects a header over 100,000,000 bytes, a header that runs past the
file, offsets that are not contiguous (sorted by BEGIN, the first at 0, each BEGIN at the
previous END: no gap, no overlap), an END − BEGIN other than the shape's element count ×
the dtype's size, and a buffer that the tensors do not cover exactly. So does this module,
and its errors name the file and the tensor. Duplicate names are rejected too (the README:
"Duplicate keys are disallowed"). `__metadata__` must map strings to strings; transformers
refuses a checkpoint whose metadata lacks {"format": "pt"} (or tf/flax/mlx), so the writer
puts it there by default.

Sharded checkpoints (transformers' `save_pretrained`): `model-00001-of-00003.safetensors`, …
and `model.safetensors.index.json` = {"metadata": {"total_size": <bytes>}, "weight_map":
{"<tensor name>": "<shard file name>"}}.

Reading is memory-conscious: each tensor is read on its own, either straight from the file
into its tensor (one copy, `readinto`) or from a copy-on-write memory map (`mmap=True`:
pages are read when touched). Runs on PyTorch 1.13 and 2.x.
"""
import json
import math
import mmap as _mmap
import os
import struct
import sys

import torch

MAX_HEADER_SIZE = 100_000_000
METADATA_KEY = "__metadata__"
INDEX_NAME = "model.safetensors.index.json"
SINGLE_NAME = "model.safetensors"

# dtype name -> (bits per element, torch dtype name). The names and sizes are those of the
# reference `Dtype` enum; a dtype this PyTorch lacks (uint16/32/64 before 2.3, float8 before
# 2.1, the 4- and 6-bit formats) can be parsed and validated but not turned into a tensor.
_DTYPE_SPECS = {
    "BOOL": (8, "bool"),
    "U8": (8, "uint8"),
    "I8": (8, "int8"),
    "F8_E5M2": (8, "float8_e5m2"),
    "F8_E4M3": (8, "float8_e4m3fn"),
    "F8_E8M0": (8, "float8_e8m0fnu"),
    "F8_E4M3FNUZ": (8, "float8_e4m3fnuz"),
    "F8_E5M2FNUZ": (8, "float8_e5m2fnuz"),
    "I16": (16, "int16"),
    "U16": (16, "uint16"),
    "F16": (16, "float16"),
    "BF16": (16, "bfloat16"),
    "I32": (32, "int32"),
    "U32": (32, "uint32"),
    "F32": (32, "float32"),
    "C64": (64, "complex64"),
    "F64": (64, "float64"),
    "I64": (64, "int64"),
    "U64": (64, "uint64"),
    "F4": (4, None),
    "F6_E2M3": (6, None),
    "F6_E3M2": (6, None),
}

TORCH_DTYPES = {}  # safetensors name -> torch.dtype (those this PyTorch has)
for _name, (_bits, _torch_name) in _DTYPE_SPECS.items():
    _dtype = getattr(torch, _torch_name, None) if _torch_name else None
    if isinstance(_dtype, torch.dtype):
        TORCH_DTYPES[_name] = _dtype
DTYPE_NAMES = {dtype: name for name, dtype in TORCH_DTYPES.items()}  # torch.dtype -> name


class SafetensorsError(ValueError):
    """A malformed or unsupported safetensors file (the message names the file and tensor)."""


class TensorInfo:
    __slots__ = ("name", "dtype", "shape", "begin", "end")

    def __init__(self, name, dtype, shape, begin, end):
        self.name = name
        self.dtype = dtype  # the safetensors name, e.g. "BF16"
        self.shape = shape  # list of ints
        self.begin = begin  # byte offsets in the data buffer
        self.end = end

    @property
    def nbytes(self):
        return self.end - self.begin

    def __repr__(self):
        return f"TensorInfo({self.name!r}, {self.dtype}, {self.shape}, [{self.begin}, {self.end}))"


def _no_duplicates(pairs):
    out = {}
    for key, value in pairs:
        if key in out:
            raise _Duplicate(key)
        out[key] = value
    return out


class _Duplicate(Exception):
    pass


def parse_header(raw, file_size, path="<buffer>"):
    """Validates a header (the N bytes after the length) of a file of `file_size` bytes.
    Returns ({name: TensorInfo}, metadata dict or None, data start offset in the file)."""
    where = f"safetensors file {path}"
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise SafetensorsError(f"{where}: the header is not UTF-8 ({error})") from None
    try:
        header = json.loads(text, object_pairs_hook=_no_duplicates)
    except _Duplicate as dup:
        raise SafetensorsError(f"{where}: tensor {dup.args[0]!r} appears twice in the header") from None
    except ValueError as error:
        raise SafetensorsError(f"{where}: the header is not valid JSON ({error})") from None
    if not isinstance(header, dict):
        raise SafetensorsError(f"{where}: the header is not a JSON object")
    metadata = header.pop(METADATA_KEY, None)
    if metadata is not None:
        if not isinstance(metadata, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()
        ):
            raise SafetensorsError(f"{where}: __metadata__ must map strings to strings")
    infos = []
    for name, entry in header.items():
        what = f"{where}, tensor {name!r}"
        if not isinstance(entry, dict):
            raise SafetensorsError(f"{what}: the entry is not an object")
        extra = set(entry) - {"dtype", "shape", "data_offsets"}
        if extra:
            raise SafetensorsError(f"{what}: unknown fields {sorted(extra)}")
        dtype = entry.get("dtype")
        if dtype not in _DTYPE_SPECS:
            raise SafetensorsError(f"{what}: unknown dtype {dtype!r}")
        shape = entry.get("shape")
        if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
            raise SafetensorsError(f"{what}: the shape {shape!r} is not a list of non-negative integers")
        offsets = entry.get("data_offsets")
        if (
            not isinstance(offsets, list)
            or len(offsets) != 2
            or not all(type(o) is int and o >= 0 for o in offsets)
        ):
            raise SafetensorsError(f"{what}: data_offsets {offsets!r} is not [begin, end]")
        begin, end = offsets
        if end < begin:
            raise SafetensorsError(f"{what}: data_offsets [{begin}, {end}] end before they begin")
        bits = _DTYPE_SPECS[dtype][0] * math.prod(shape)
        if bits % 8:
            raise SafetensorsError(f"{what}: {math.prod(shape)} elements of {dtype} are not a whole number of bytes")
        if end - begin != bits // 8:
            raise SafetensorsError(
                f"{what}: data_offsets [{begin}, {end}] hold {end - begin} bytes, but shape {shape} of {dtype} "
                f"needs {bits // 8}"
            )
        infos.append(TensorInfo(name, dtype, shape, begin, end))
    data_start = 8 + len(raw)
    buffer_size = file_size - data_start
    # Contiguous and non-overlapping, in offset order (as Metadata::validate checks).
    position = 0
    for info in sorted(infos, key=lambda i: (i.begin, i.end)):
        if info.begin != position:
            kind = "overlaps the previous tensor" if info.begin < position else f"leaves a gap after byte {position}"
            raise SafetensorsError(
                f"{where}, tensor {info.name!r}: data_offsets [{info.begin}, {info.end}] {kind} "
                "(tensors must be contiguous)"
            )
        if info.end > buffer_size:
            raise SafetensorsError(
                f"{where}, tensor {info.name!r}: data_offsets [{info.begin}, {info.end}] run past the end of the "
                f"data ({buffer_size} bytes; the file is truncated?)"
            )
        position = info.end
    if position != buffer_size:
        raise SafetensorsError(
            f"{where}: the tensors cover {position} bytes of a {buffer_size}-byte data buffer "
            "(trailing bytes, or a truncated file)"
        )
    return {info.name: info for info in infos}, metadata, data_start


def read_header(path):
    """({name: TensorInfo}, metadata or None, data start) of a safetensors file, validated."""
    file_size = os.path.getsize(path)
    with open(path, "rb") as handle:
        head = handle.read(8)
        if len(head) < 8:
            raise SafetensorsError(f"safetensors file {path}: {file_size} bytes, shorter than the 8-byte header length")
        (n,) = struct.unpack("<Q", head)
        if n > MAX_HEADER_SIZE:
            raise SafetensorsError(
                f"safetensors file {path}: header length {n} is over the {MAX_HEADER_SIZE}-byte limit"
            )
        if 8 + n > file_size:
            raise SafetensorsError(
                f"safetensors file {path}: header length {n} runs past the end of the {file_size}-byte file"
            )
        raw = handle.read(n)
    return parse_header(raw, file_size, path)


def _to_tensor(raw_u8, info, path):
    """A uint8 tensor of the raw bytes -> the typed tensor of `info` (little-endian)."""
    dtype = TORCH_DTYPES.get(info.dtype)
    if dtype is None:
        raise SafetensorsError(
            f"safetensors file {path}, tensor {info.name!r}: dtype {info.dtype} is not supported by PyTorch "
            f"{torch.__version__}"
        )
    if raw_u8.numel() == 0:
        return torch.empty(info.shape, dtype=dtype)
    size = torch.empty((), dtype=dtype).element_size()
    if sys.byteorder == "big" and size > 1:  # the file is little-endian
        raw_u8 = raw_u8.view(-1, size).flip(1).reshape(-1).contiguous()
    return raw_u8.view(dtype).reshape(info.shape)


class SafeFile:
    """An open safetensors file: `keys()`, `info(name)`, `metadata`, `get(name)`.

    `mmap=False` (default) reads each tensor with one `readinto` into its own memory;
    `mmap=True` maps the file copy-on-write and `get(name, copy=False)` returns a tensor
    that views the map (pages are read when touched; the map stays alive while any such
    tensor does)."""

    def __init__(self, path, mmap=False):
        self.path = str(path)
        self.tensors, self.metadata, self.data_start = read_header(self.path)
        self._handle = open(self.path, "rb")
        self._map = None
        if mmap and os.path.getsize(self.path) > 0:
            self._map = _mmap.mmap(self._handle.fileno(), 0, access=_mmap.ACCESS_COPY)

    def keys(self):
        """Tensor names in file order."""
        return [i.name for i in sorted(self.tensors.values(), key=lambda i: i.begin)]

    def info(self, name):
        try:
            return self.tensors[name]
        except KeyError:
            raise KeyError(f"safetensors file {self.path} has no tensor {name!r}") from None

    def get(self, name, dtype=None, device=None, copy=True):
        """The tensor `name` (optionally converted to `dtype` and moved to `device`)."""
        info = self.info(name)
        start = self.data_start + info.begin
        if self._map is not None:
            if info.nbytes:
                raw = torch.frombuffer(self._map, dtype=torch.uint8, count=info.nbytes, offset=start)
            else:
                raw = torch.empty(0, dtype=torch.uint8)
            tensor = _to_tensor(raw, info, self.path)
            if copy and dtype is None and device is None:
                tensor = tensor.clone()
        else:
            raw = torch.empty(info.nbytes, dtype=torch.uint8)
            if info.nbytes:
                self._handle.seek(start)
                got = self._handle.readinto(memoryview(raw.numpy()))
                if got != info.nbytes:
                    raise SafetensorsError(
                        f"safetensors file {self.path}, tensor {name!r}: short read ({got} of {info.nbytes} bytes)"
                    )
            tensor = _to_tensor(raw, info, self.path)
        if dtype is not None or device is not None:
            tensor = tensor.to(device=device or tensor.device, dtype=dtype or tensor.dtype)
        return tensor

    def close(self):
        if self._map is not None:
            try:
                self._map.close()
            except BufferError:  # tensors still view it: the garbage collector closes it later
                pass
            self._map = None
        self._handle.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def load_file(path, dtype=None, device=None, mmap=False):
    """{name: tensor} of one safetensors file."""
    with SafeFile(path, mmap=mmap) as f:
        return {name: f.get(name, dtype=dtype, device=device) for name in f.keys()}


def _tensor_bytes(tensor):
    """A contiguous CPU uint8 view of the tensor's little-endian bytes (numpy-writable)."""
    t = tensor.detach()
    if t.device.type != "cpu":
        t = t.cpu()
    t = t.contiguous()
    if t.dtype == torch.bool:
        t = t.to(torch.uint8)
    u8 = t.reshape(-1).view(torch.uint8) if t.numel() else torch.empty(0, dtype=torch.uint8)
    if sys.byteorder == "big" and t.element_size() > 1 and t.numel():
        u8 = u8.view(-1, t.element_size()).flip(1).reshape(-1).contiguous()
    return u8


def save_file(tensors, path, metadata=None):
    """Writes {name: tensor} to `path` as safetensors, atomically (temporary file, fsync,
    rename). `metadata` (str -> str) defaults to {"format": "pt"}, which transformers needs.
    Tensors are laid out as the reference writer does: by descending element size, then
    name. Returns the number of bytes written."""
    if metadata is None:
        metadata = {"format": "pt"}
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
        raise SafetensorsError(f"safetensors file {path}: metadata must map strings to strings")
    items = []
    for name, tensor in tensors.items():
        if not isinstance(name, str) or name == METADATA_KEY:
            raise SafetensorsError(f"safetensors file {path}: invalid tensor name {name!r}")
        if not isinstance(tensor, torch.Tensor):
            raise SafetensorsError(f"safetensors file {path}, tensor {name!r}: not a torch.Tensor")
        if tensor.dtype not in DTYPE_NAMES:
            raise SafetensorsError(f"safetensors file {path}, tensor {name!r}: dtype {tensor.dtype} cannot be stored")
        items.append((name, tensor))
    items.sort(key=lambda item: (-item[1].element_size(), item[0]))
    header = {}
    if metadata:
        header[METADATA_KEY] = dict(metadata)
    offset = 0
    for name, tensor in items:
        nbytes = tensor.numel() * tensor.element_size()
        header[name] = {
            "dtype": DTYPE_NAMES[tensor.dtype],
            "shape": list(tensor.shape),
            "data_offsets": [offset, offset + nbytes],
        }
        offset += nbytes
    raw = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    raw += b" " * (-len(raw) % 8)  # the reference writer aligns the data to 8 bytes
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, "wb") as handle:
            handle.write(struct.pack("<Q", len(raw)))
            handle.write(raw)
            for _, tensor in items:
                data = _tensor_bytes(tensor)
                if data.numel():
                    handle.write(memoryview(data.numpy()))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return 8 + len(raw) + offset


# -- folders (single file or shards + index) -----------------------------------------------


def folder_weight_map(folder):
    """{tensor name: file path} of a checkpoint folder: `model.safetensors.index.json`
    (its weight_map) when present, else `model.safetensors`."""
    folder = str(folder)
    index_path = os.path.join(folder, INDEX_NAME)
    if os.path.exists(index_path):
        with open(index_path, encoding="utf-8") as handle:
            try:
                index = json.load(handle)
            except ValueError as error:
                raise SafetensorsError(f"{index_path}: not valid JSON ({error})") from None
        weight_map = index.get("weight_map") if isinstance(index, dict) else None
        if not isinstance(weight_map, dict) or not weight_map:
            raise SafetensorsError(f"{index_path}: no weight_map")
        out = {}
        for name, file_name in weight_map.items():
            if not isinstance(file_name, str) or os.path.basename(file_name) != file_name:
                raise SafetensorsError(f"{index_path}: tensor {name!r} maps to {file_name!r}, not a file of the folder")
            path = os.path.join(folder, file_name)
            if not os.path.exists(path):
                raise SafetensorsError(f"{index_path}: tensor {name!r} is in {file_name}, which does not exist")
            out[name] = path
        return out
    single = os.path.join(folder, SINGLE_NAME)
    if os.path.exists(single):
        return {name: single for name in read_header(single)[0]}
    raise SafetensorsError(f"{folder} has neither {SINGLE_NAME} nor {INDEX_NAME}")


def iter_folder(folder, dtype=None, device=None, mmap=False):
    """Yields (name, tensor) of every tensor of a checkpoint folder, one shard open at a
    time, one tensor in memory at a time (besides what the caller keeps). Checks that each
    shard holds what the index says it does."""
    weight_map = folder_weight_map(folder)
    by_file = {}
    for name, path in weight_map.items():
        by_file.setdefault(path, []).append(name)
    for path in sorted(by_file):
        with SafeFile(path, mmap=mmap) as f:
            missing = [n for n in by_file[path] if n not in f.tensors]
            if missing:
                raise SafetensorsError(
                    f"safetensors file {path}: the index maps {missing[:3]} here, but the file does not hold them"
                )
            for name in by_file[path]:
                yield name, f.get(name, dtype=dtype, device=device)


def load_folder(folder, dtype=None, device=None, mmap=False):
    return dict(iter_folder(folder, dtype=dtype, device=device, mmap=mmap))


def parse_size(size):
    """5000000000, "5GB", "500MB", "2GiB" -> bytes."""
    if isinstance(size, (int, float)):
        return int(size)
    text = str(size).strip().upper()
    units = {"KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40,
             "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12, "B": 1}
    for unit, factor in units.items():
        if text.endswith(unit):
            return int(float(text[: -len(unit)]) * factor)
    return int(text)


def save_folder(tensors, folder, max_shard_size="5GB", metadata=None):
    """Writes {name: tensor} into `folder` as `model.safetensors`, or, past `max_shard_size`,
    as `model-0000i-of-0000n.safetensors` shards plus `model.safetensors.index.json` (the
    layout transformers writes and reads). Each file is written atomically; an earlier
    save's other weight files are removed once the new ones are in place. Returns the list
    of files written."""
    folder = str(folder)
    os.makedirs(folder, exist_ok=True)
    limit = parse_size(max_shard_size)
    shards, current, size = [], {}, 0
    for name, tensor in tensors.items():
        nbytes = tensor.numel() * tensor.element_size()
        if current and size + nbytes > limit:
            shards.append(current)
            current, size = {}, 0
        current[name] = tensor
        size += nbytes
    shards.append(current)
    written = []
    if len(shards) == 1:
        save_file(shards[0], os.path.join(folder, SINGLE_NAME), metadata)
        written.append(SINGLE_NAME)
    else:
        weight_map = {}
        total = 0
        for i, shard in enumerate(shards):
            file_name = f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors"
            save_file(shard, os.path.join(folder, file_name), metadata)
            written.append(file_name)
            for name, tensor in shard.items():
                weight_map[name] = file_name
                total += tensor.numel() * tensor.element_size()
        index = {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}
        tmp = os.path.join(folder, f"{INDEX_NAME}.tmp-{os.getpid()}")
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(index, handle, indent=2)
            handle.write("\n")
        os.replace(tmp, os.path.join(folder, INDEX_NAME))
        written.append(INDEX_NAME)
    for entry in os.listdir(folder):  # an earlier save's shards or index, once the new files are in place
        stale = entry == INDEX_NAME or (entry.startswith("model") and entry.endswith(".safetensors"))
        if stale and entry not in written:
            os.remove(os.path.join(folder, entry))
    return written
