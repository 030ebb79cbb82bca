"""Checkpoints: one .safetensors file, the model's config as JSON in its metadata.

A checkpoint holds tensors (raw little-endian bytes) and a JSON header; loading it
never runs code, unlike `torch.load` of a pickle. The file layout is safetensors':

    [8 bytes: n, little-endian u64] [n bytes: JSON header] [tensor bytes]
    header = {"__metadata__": {key: str}, name: {"dtype", "shape", "data_offsets"}, ...}

grukit writes `"grukit.format": "1"`, `"grukit.sha256"` (a SHA-256 over every tensor's name,
dtype, shape and bytes, in name order: `tensors_sha256`), `"grukit.metadata_sha256"` (a SHA-256
over every other metadata key and value, the tensors' checksum included: `metadata_sha256`) and
every metadata value as a JSON string. Both are checked on every read, so a flipped bit or a
damaged copy, in the weights or in the config, is caught instead of loaded (a flipped bit in the
name of the metadata checksum's own key leaves it unchecked, with everything it covered intact).
Files without them (written by grukit before them) load without the check.

Two levels of API:

    save(model, path)          the model's state_dict, plus metadata
                                 "class"  registered name, e.g. "grukit.GRU"
                                 "config" dataclasses.asdict(model.config)
                                 "dtype"  e.g. "float32" (the model's floating dtype)
    load(path, *, device=None) -> model    the registered class rebuilt from its config
                                 (`cls(**config)`), cast to the saved dtype (each tensor to
                                 its own stored dtype where a model mixes them), weights loaded.

    save_state(path, tensors, metadata)    any {name: Tensor} and {key: JSON value}
    load_state(path) -> (tensors, metadata)   the same two dicts back (tensors on CPU)

Every write goes to a temporary file in the destination folder, is flushed to disk,
then renamed over `path` (os.replace), so a crash never leaves a half-written file.
Every read validates the header before safetensors sees it: the header length against
the file size, the JSON, each tensor's dtype, shape and byte range, and that the byte
ranges tile the data region exactly. A truncated, tampered or foreign file gives a
ValueError naming the path; a pickle or torch.save zip file is refused without being
unpickled (convert a torch.nn.GRU with grukit.interop.from_torch instead).

A class becomes loadable with the `register` decorator; its instances need a
`config` attribute: a frozen dataclass of JSON values whose fields are the
constructor's keyword arguments.

Example:
    >>> import dataclasses, os, tempfile, torch
    >>> from grukit import checkpoint
    >>> @dataclasses.dataclass(frozen=True)
    ... class AffineConfig:
    ...     size: int  # features in and out
    >>> @checkpoint.register
    ... class Affine(torch.nn.Linear):
    ...     def __init__(self, size):
    ...         super().__init__(size, size)
    ...         self.config = AffineConfig(size)
    >>> path = os.path.join(tempfile.mkdtemp(), "affine.safetensors")
    >>> model = Affine(3)
    >>> checkpoint.save(model, path)
    >>> twin = checkpoint.load(path)
    >>> torch.equal(twin.weight, model.weight)
    True
    >>> checkpoint.save_state(path, {"step": torch.tensor(7)}, {"epoch": 2})
    >>> tensors, metadata = checkpoint.load_state(path)
    >>> int(tensors["step"]), metadata["epoch"]
    (7, 2)
"""
from __future__ import annotations

import dataclasses
import hashlib
import importlib
import json
import logging
import math
import os
import re
import tempfile
import warnings
from pathlib import Path
from typing import Any, TypeVar

import torch

from grukit import _checks

log = logging.getLogger(__name__)

FORMAT_KEY = "grukit.format"  # metadata key that marks a grukit file
FORMAT_VERSION = "1"  # bump when the layout of metadata changes
CHECKSUM_KEY = "grukit.sha256"  # metadata key: `tensors_sha256` of the file's tensors, as a JSON string
METADATA_CHECKSUM_KEY = "grukit.metadata_sha256"  # metadata key: `metadata_sha256` of the other metadata
_RESERVED = (FORMAT_KEY, CHECKSUM_KEY, METADATA_CHECKSUM_KEY, "__metadata__")  # metadata keys the caller may not set
_MAX_HEADER = 100_000_000  # safetensors' own limit on the JSON header, in bytes

# safetensors dtype name -> torch dtype, for the dtypes safetensors reads back (it writes a few more,
# e.g. float8_e8m0fnu, that it cannot read); bytes per element are the torch dtype's itemsize
_DTYPES = {
    "BOOL": torch.bool, "U8": torch.uint8, "I8": torch.int8, "F8_E5M2": torch.float8_e5m2,
    "F8_E4M3": torch.float8_e4m3fn, "F8_E5M2FNUZ": torch.float8_e5m2fnuz, "F8_E4M3FNUZ": torch.float8_e4m3fnuz,
    "I16": torch.int16, "U16": torch.uint16, "F16": torch.float16, "BF16": torch.bfloat16,
    "I32": torch.int32, "U32": torch.uint32, "F32": torch.float32,
    "I64": torch.int64, "U64": torch.uint64, "F64": torch.float64, "C64": torch.complex64,
}
_ITEMSIZE = {name: dtype.itemsize for name, dtype in _DTYPES.items()}  # safetensors name -> bytes per element

_REGISTRY: dict[str, type] = {}  # registered name -> class

C = TypeVar("C", bound=type)


# ---------------------------------------------------------------- registry


def registered_name(cls: type) -> str:
    """The name a class is stored under: "grukit.GRU" for grukit's public classes,
    otherwise "module.QualName". A subclass does not inherit its parent's `checkpoint_name`."""
    name = cls.__dict__.get("checkpoint_name")  # the class's own, not a parent's
    return name if isinstance(name, str) else f"{cls.__module__}.{cls.__qualname__}"


def register(cls: C) -> C:
    """Class decorator: make `cls` loadable by `load` under `registered_name(cls)`.

    `load` first builds `cls(**config)` on the meta device to check the stored shapes, so the
    constructor must not read tensor values (.item(), NumPy conversions).

    A class may set `checkpoint_name = "grukit.GRU"` to choose a name that does not
    change when the class moves between modules.
    """
    if not isinstance(cls, type):
        raise TypeError(f"register: expected a class, got {type(cls).__name__}")
    name = registered_name(cls)
    old = _REGISTRY.get(name)
    if old is not None and old is not cls:
        held, new = f"{old.__module__}.{old.__qualname__}", f"{cls.__module__}.{cls.__qualname__}"
        if held != new:  # another class; the same one defined again (a reloaded module) replaces it
            raise ValueError(f"register: the checkpoint name {name!r} is taken by {held}; give {new} a "
                             f"checkpoint_name of its own")
        log.debug("checkpoint name %s re-registered (%r replaces %r)", name, cls, old)
    _REGISTRY[name] = cls
    return cls


_PUBLIC_NAME = re.compile(r"grukit(\.[A-Za-z][A-Za-z0-9_]*)+")  # a dotted name, no part starting with "_"


def _lookup(name: str, path: Path) -> type:
    """The class registered as `name`; imports grukit (and a public grukit module the name
    points into) first, never any other module."""
    if name not in _REGISTRY:
        for module in ("grukit.layer", "grukit.cell", "grukit.baselines"):  # register GRU, GRUCell, LSTM, RNN
            importlib.import_module(module)
    if name not in _REGISTRY and _PUBLIC_NAME.fullmatch(name):  # never __main__ or a private module
        module = name.rsplit(".", 1)[0]
        while module.startswith("grukit.") and name not in _REGISTRY:
            try:
                importlib.import_module(module)
                break
            except ImportError:
                module = module.rsplit(".", 1)[0]  # "grukit.tasks.forecast.Model" -> ...
    if name not in _REGISTRY:
        known = ", ".join(sorted(_REGISTRY)) or "none"
        raise ValueError(
            f"{path}: model class {name!r} is not registered with grukit.checkpoint.register "
            f"(import the module that defines it first); registered: {known}"
        )
    return _REGISTRY[name]


# ---------------------------------------------------------------- model level


def save(model: torch.nn.Module, path: str | os.PathLike) -> None:
    """Write `model` (a registered class with a `config` dataclass) to `path` atomically.

    Example: see the module docstring.
    """
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
    name = registered_name(type(model))
    if _REGISTRY.get(name) is not type(model):
        raise TypeError(
            f"model: class {name} is not registered; decorate it with "
            "@grukit.checkpoint.register so that load can rebuild it"
        )
    config = getattr(model, "config", None)
    if config is None or not dataclasses.is_dataclass(config) or isinstance(config, type):
        raise TypeError(f"model: expected a `config` dataclass instance on {name}, got {config!r}")
    config_dict = dataclasses.asdict(config)
    try:
        json.dumps(config_dict, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise TypeError(f"model.config: expected JSON values only, got {config_dict!r} ({err})") from None
    tensors = model.state_dict()
    built = _on_meta(type(model), config_dict).state_dict()  # what load will build from the config
    if set(tensors) != set(built):
        odd = sorted(set(tensors) ^ set(built))[0]
        raise TypeError(f"model: its state_dict {'holds' if odd in tensors else 'lacks'} {odd!r}, which "
                        f"{name} built from its config {'does not have' if odd in tensors else 'has'}, so load "
                        "could not rebuild it (a pruned or re-parametrised model? torch.nn.utils.prune.remove "
                        "or parametrize.remove_parametrizations first)")
    odd = sorted(key for key in tensors if tensors[key].shape != built[key].shape)
    if odd:
        raise TypeError(f"model: its {odd[0]!r} has shape {tuple(tensors[odd[0]].shape)}, but {name} built from "
                        f"its config has {tuple(built[odd[0]].shape)}, so load could not rebuild it (a layer "
                        "replaced after construction? build the model with the config that gives it)")
    metadata = {"class": name, "config": config_dict, "dtype": _model_dtype(model)}
    save_state(path, tensors, metadata)


def load(path: str | os.PathLike, *, device: str | torch.device | None = None) -> torch.nn.Module:
    """Rebuild the model saved at `path`: its class, config, dtype and weights, in eval mode (dropout off,
    ready for inference; call `.train()` to train it further).

    device: where the model goes (default CPU). Raises ValueError for a file that is
    not a grukit model checkpoint (a pickle, a truncated or tampered file, a config
    the class rejects, weights that do not fit the config).
    """
    path = Path(path)
    tensors, metadata = load_state(path)
    for key in ("class", "config", "dtype"):
        if key not in metadata:
            raise ValueError(f"{path}: not a grukit model checkpoint (metadata has no {key!r}; "
                             "was it written by save_state?)")
    name, config, dtype_name = metadata["class"], metadata["config"], metadata["dtype"]
    if not isinstance(name, str) or not isinstance(config, dict):
        raise ValueError(f"{path}: metadata 'class' must be a string and 'config' an object, "
                         f"got {name!r} and {config!r}")
    cls = _lookup(name, path)
    dtype = _dtype_from_name(dtype_name, path) if dtype_name is not None else None
    _check_fits(cls, name, config, tensors, path)
    model = cls(**config)
    if dtype is not None:
        model = model.to(dtype)
    _stored_dtypes(model, tensors)
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as err:
        raise ValueError(f"{path}: weights do not fit {name} with config {config!r}: {err}") from err
    if device is not None:
        model = model.to(_check_device(device))
    _runnable_backends(model, path)
    return model.eval()  # a fresh module is in training mode: its dropout would draw at every call


def _check_device(device: str | torch.device) -> torch.device:
    """`device` as a torch.device, or ValueError naming it when this torch cannot use it (moving a model to
    "cuda" without CUDA raised a bare AssertionError)."""
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"device: expected a torch device such as 'cpu' or 'cuda:0', got {device!r} ({err})") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device: expected a device this torch can use, got {str(device)!r} (CUDA is not available)")
    return device


def _runnable_backends(model: torch.nn.Module, path: Path) -> None:
    """Switch every grukit.GRU in `model` whose saved backend cannot run here (a "cpu" kernel where no C++
    compiler is, or on a GPU) to "auto": the backend is where the model ran, not part of what it is."""
    from grukit import kernels
    from grukit.layer import GRU

    for name, module in model.named_modules():
        if isinstance(module, GRU) and not kernels.runs_on(module.backend, module.weight_x_l0.device.type):
            log.warning("%s: %s was saved to run on backend %r, which cannot run here (device %s); it runs on "
                        "'auto' (%s)", path, name or "the GRU", module.backend, module.weight_x_l0.device.type,
                        kernels.get("auto", module.weight_x_l0.device).name)
            module.use_backend("auto")


def _stored_dtypes(model: torch.nn.Module, tensors: dict[str, torch.Tensor]) -> None:
    """Put each floating parameter and buffer of `model` in the dtype it was stored in: a model may mix
    dtypes (a bfloat16 GRU under a float32 head), which the one model dtype in the metadata does not say."""
    for key, value in [*model.named_parameters(), *model.named_buffers()]:
        stored = tensors.get(key)
        if stored is not None and value.is_floating_point() and stored.is_floating_point() \
                and stored.dtype != value.dtype:
            value.data = value.data.to(stored.dtype)


def _on_meta(cls: type, config: dict) -> torch.nn.Module:
    """cls(**config) built on the meta device: its tensors' names and shapes, nothing allocated. A probe:
    what the constructor warns of, it warned when the model was built (save) or warns once more (load)."""
    with torch.device("meta"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return cls(**config)


def _check_fits(cls: type, name: str, config: dict, tensors: dict[str, torch.Tensor], path: Path) -> None:
    """Raise ValueError unless `config` holds only settings of `cls`'s own config (an older file may
    lack newer ones, which take their defaults) and builds tensors of the stored shapes.

    The probe is built on the meta device: nothing is allocated before the sizes are known to be
    the file's (a tampered hidden_size of 10¹² fails here, not in the allocator). So a registered
    class must build on the meta device: its __init__ may not read tensor values (.item(), NumPy).
    """
    for key in ("num_layers", "members"):  # each layer or member holds a tensor: a bound before building
        count = config.get(key)
        if isinstance(count, int) and not isinstance(count, bool) and count > max(len(tensors), 1):
            raise ValueError(f"{path}: config {key}={count} cannot fit the {len(tensors)} tensors the file holds; "
                             "was the file edited?")
    try:
        probe = _on_meta(cls, config)
    except Exception as err:  # noqa: BLE001 - whatever the constructor raises, the config does not build it
        raise ValueError(f"{path}: config {config!r} does not build {name}: {err}") from None
    own = getattr(probe, "config", None)
    if not dataclasses.is_dataclass(own):
        raise ValueError(f"{path}: {name} keeps no config dataclass, so no file can hold one of its models")
    own = json.loads(json.dumps(dataclasses.asdict(own)))
    # every saved key must be one the class keeps, with the value it keeps (a key missing from an older
    # file takes its default; a key the class does not keep, such as "device", is refused)
    odd = sorted(key for key in config if key not in own or own[key] != config[key])
    if odd:
        raise ValueError(f"{path}: config {config!r} is not a {name} config: {odd[0]!r} "
                         f"{'is not one of its settings' if odd[0] not in own else 'does not keep its value'}; "
                         "was the file edited?")
    want = {key: tuple(t.shape) for key, t in probe.state_dict().items()}
    got = {key: tuple(t.shape) for key, t in tensors.items()}
    if want != got:
        key = sorted(set(want) ^ set(got)) or sorted(k for k in want if want[k] != got[k])
        raise ValueError(f"{path}: weights do not fit {name} with config {config!r}: first difference at "
                         f"{key[0]!r} (expected {want.get(key[0])}, stored {got.get(key[0])})")
    built = probe.state_dict()
    odd = sorted(key for key, t in tensors.items() if _kind(t.dtype) != _kind(built[key].dtype))
    if odd:  # load_state_dict would convert the values, e.g. integer bits into float weights
        raise ValueError(f"{path}: {odd[0]!r} is stored as {tensors[odd[0]].dtype}, but {name} keeps it as "
                         f"{_kind(built[odd[0]].dtype)} numbers; was the file edited?")


def _kind(dtype: torch.dtype) -> str:
    """"floating-point", "complex", "boolean" or "integer": which dtypes may stand for one another on loading."""
    if dtype.is_complex:
        return "complex"
    if dtype.is_floating_point:
        return "floating-point"
    return "boolean" if dtype == torch.bool else "integer"


def _model_dtype(model: torch.nn.Module) -> str | None:
    """Name of the dtype of the model's first floating tensor ("float32"), or None."""
    for tensor in list(model.parameters()) + list(model.buffers()):
        if tensor.is_floating_point():
            return str(tensor.dtype).removeprefix("torch.")
    return None


def _dtype_from_name(name: Any, path: Path) -> torch.dtype:
    dtype = getattr(torch, name, None) if isinstance(name, str) else None
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ValueError(f"{path}: metadata 'dtype' must name a torch floating dtype, got {name!r}")
    return dtype


# ---------------------------------------------------------------- tensor level


def save_state(path: str | os.PathLike, tensors: dict[str, torch.Tensor], metadata: dict[str, Any]) -> None:
    """Write `tensors` and `metadata` (JSON values) to one .safetensors file, atomically.

    Tensors are copied to CPU and made contiguous; tensors that share memory are
    stored as separate copies. Example: see the module docstring.
    """
    from safetensors.torch import save as st_save

    path = Path(path)
    if not isinstance(tensors, dict):
        raise TypeError(f"tensors: expected a dict of name -> torch.Tensor, got {type(tensors).__name__}")
    if not isinstance(metadata, dict):
        raise TypeError(f"metadata: expected a dict of str -> JSON value, got {type(metadata).__name__}")
    header: dict[str, str] = {FORMAT_KEY: FORMAT_VERSION}
    for key, value in metadata.items():
        if not isinstance(key, str) or key in _RESERVED:
            raise ValueError(f"metadata: keys must be strings other than {', '.join(map(repr, _RESERVED))}, "
                             f"got {key!r}")
        try:
            header[key] = json.dumps(value, allow_nan=False)
        except (TypeError, ValueError) as err:
            raise TypeError(f"metadata[{key!r}]: expected a JSON value, got {value!r} ({err})") from None
    plain: dict[str, torch.Tensor] = {}
    seen: set[int] = set()
    for name, tensor in tensors.items():
        if not isinstance(name, str) or name == "__metadata__":
            raise ValueError(f"tensors: names must be strings other than '__metadata__', got {name!r}")
        if not isinstance(tensor, torch.Tensor):
            raise TypeError(f"tensors[{name!r}]: expected a torch.Tensor, got {type(tensor).__name__}")
        if tensor.dtype not in _DTYPES.values():
            raise TypeError(f"tensors[{name!r}]: expected a dtype safetensors can read back, got {tensor.dtype}")
        t = tensor.detach().to("cpu").resolve_conj().resolve_neg().contiguous()  # values, not lazy flags
        ptr = t.untyped_storage().data_ptr()
        if ptr in seen or t.untyped_storage().nbytes() != t.numel() * t.element_size():
            t = t.clone()  # shares memory with another tensor, or is a view of a larger one
        if t.numel():
            seen.add(t.untyped_storage().data_ptr())
        plain[name] = t
    header[CHECKSUM_KEY] = json.dumps(tensors_sha256(plain))
    header[METADATA_CHECKSUM_KEY] = json.dumps(metadata_sha256(header))
    write_atomic(path, st_save(plain, metadata=header))


def load_state(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a file written by `save_state` (or `save`): `(tensors, metadata)`.

    Raises ValueError naming the path for anything that is not an intact grukit
    safetensors file; pickles are refused without being unpickled.
    """
    from safetensors.torch import load as st_load

    path = Path(path)
    if (why := _checks.not_a_file(path)) == "does not exist":
        raise FileNotFoundError(f"{path}: no such checkpoint file")
    if why:
        raise ValueError(f"{path}: expected a checkpoint file, got a path that {why}")
    data = path.read_bytes()
    header = _validate(data, path)
    raw_meta = header.get("__metadata__", {})
    if raw_meta.get(FORMAT_KEY) != FORMAT_VERSION:
        raise ValueError(
            f"{path}: a safetensors file but not a grukit checkpoint of format {FORMAT_VERSION} "
            f"(metadata {FORMAT_KEY!r} is {raw_meta.get(FORMAT_KEY)!r})"
        )
    meta_digest = raw_meta.get(METADATA_CHECKSUM_KEY)
    if meta_digest is not None and json.dumps(metadata_sha256(raw_meta)) != meta_digest:
        raise ValueError(f"{path}: its metadata (the model's class and config, or a state's settings) does not "
                         f"match the checksum written with it ({METADATA_CHECKSUM_KEY!r}): damaged on disk or in a "
                         "copy, or edited; use an intact copy of the file")
    metadata: dict[str, Any] = {}
    for key, text in raw_meta.items():
        if key in (FORMAT_KEY, METADATA_CHECKSUM_KEY):
            continue
        try:
            metadata[key] = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: metadata {key!r} is not valid JSON ({err}): {text[:80]!r}") from None
    try:
        tensors = st_load(data)
    except Exception as err:  # safetensors raises its own SafetensorError; the header was checked
        raise ValueError(f"{path}: safetensors could not read the file: {err}") from err
    digest = metadata.pop(CHECKSUM_KEY, None)
    if digest is not None and tensors_sha256(tensors) != digest:
        raise ValueError(f"{path}: its tensors do not match the checksum written with them (metadata "
                         f"{CHECKSUM_KEY!r}): damaged on disk or in a copy, or changed by a tool that kept grukit's "
                         "metadata; use an intact copy of the file")
    return tensors, metadata


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The metadata of a safetensors file, each value JSON-decoded, read from its header alone: no tensor is
    read and no checksum checked (`load_state` does both), for a quick look at a large file. ValueError for a
    file whose header is not one.

    Example:
        >>> import os, tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), "s.safetensors")
        >>> save_state(path, {"w": torch.zeros(2)}, {"epoch": 3})
        >>> read_metadata(path)["epoch"]
        3
    """
    with open(path, "rb") as f:
        head = f.read(8)
        n = int.from_bytes(head, "little") if len(head) == 8 else 0
        head += f.read(min(n, _MAX_HEADER + 1))  # the header, not the tensors after it
    raw = _header(head, Path(path)).get("__metadata__", {})
    try:
        return {key: json.loads(value) for key, value in raw.items()}
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: tampered safetensors header: a metadata value is not JSON ({err})") from None


def metadata_sha256(header: dict[str, str]) -> str:
    """Hex SHA-256 over a file's metadata as stored (key → JSON text), in key order, without its own key.

    Example:
        >>> metadata_sha256({"a": "1"}) == metadata_sha256({"a": "1", METADATA_CHECKSUM_KEY: '"x"'})
        True
        >>> metadata_sha256({"a": "1"}) == metadata_sha256({"a": "2"})
        False
    """
    items = sorted((key, value) for key, value in header.items() if key != METADATA_CHECKSUM_KEY)
    return hashlib.sha256(json.dumps(items, ensure_ascii=True).encode()).hexdigest()


def tensors_sha256(tensors: dict[str, torch.Tensor]) -> str:
    """Hex SHA-256 over each tensor's name, dtype, shape and bytes, in name order (however a file lays them out).

    Example:
        >>> tensors_sha256({"w": torch.zeros(2)}) == tensors_sha256({"w": torch.zeros(2, dtype=torch.float64)})
        False
    """
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().to("cpu").resolve_conj().resolve_neg().contiguous()
        h.update(json.dumps([name, str(t.dtype), list(t.shape)]).encode())
        if t.numel():
            h.update(memoryview(t.reshape(-1).view(torch.uint8).numpy()))  # (numel · itemsize,) the raw bytes
    return h.hexdigest()


# ---------------------------------------------------------------- file format


def _validate(data: bytes, path: Path) -> dict[str, Any]:
    """Check the safetensors layout of `data` and return the parsed header."""
    header = _header(data, path)
    n = int.from_bytes(data[:8], "little")
    size = len(data) - 8 - n
    spans = []
    for name, info in header.items():
        if name == "__metadata__":
            continue
        spans.append((*_check_entry(name, info, path), name))
    end = 0
    for begin, stop, name in sorted(spans):
        if begin != end:
            raise ValueError(f"{path}: tampered safetensors header: tensor {name!r} starts at byte "
                             f"{begin}, expected {end} (gap or overlap)")
        end = stop
    if end != size:
        raise ValueError(f"{path}: truncated or tampered: tensors cover {end} bytes, "
                         f"the data region has {size}")
    return header


def _header(data: bytes, path: Path) -> dict[str, Any]:
    """The JSON header of a safetensors file whose bytes begin `data` (the whole file, or its first 8 + n
    bytes), its metadata checked to map strings to strings; a pickle or zip is refused unread."""
    n = int.from_bytes(data[:8], "little") if len(data) >= 8 else -1
    zipped = data[:4] == b"PK\x03\x04"  # zip local file header: torch.save since torch 1.6
    pickled = data[:1] == b"\x80" and data[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05")  # PROTO 2..5
    if data[8:9] != b"{" and (zipped or pickled):  # a safetensors header is JSON: its byte 8 is "{"
        kind = "a zip archive (what torch.save writes)" if zipped else "a pickle"
        raise ValueError(
            f"{path}: {kind}, not a safetensors checkpoint; grukit never unpickles files "
            "(unpickling runs arbitrary code). To use torch weights, load the torch.nn.GRU "
            "yourself from a source you trust and convert it with grukit.interop.from_torch, "
            "then grukit.save the result."
        )
    if len(data) < 8:
        raise ValueError(f"{path}: not a safetensors file (only {len(data)} bytes; truncated?)")
    if n > _MAX_HEADER or 8 + n > len(data):
        raise ValueError(
            f"{path}: not a safetensors file or truncated: header length {n} does not fit "
            f"in the file's {len(data)} bytes"
        )
    try:
        header = json.loads(data[8 : 8 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: not a safetensors file or tampered: header is not JSON ({err})") from None
    if not isinstance(header, dict):
        raise ValueError(f"{path}: tampered safetensors header: expected a JSON object")
    meta = header.get("__metadata__", {})
    if not isinstance(meta, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items()):
        raise ValueError(f"{path}: tampered safetensors header: __metadata__ must map strings to strings")
    return header


def _check_entry(name: str, info: Any, path: Path) -> tuple[int, int]:
    """(begin, end) of one tensor entry, after checking dtype, shape and byte count."""
    ok = isinstance(info, dict) and set(info) == {"dtype", "shape", "data_offsets"}
    dtype, shape, offsets = (info.get("dtype"), info.get("shape"), info.get("data_offsets")) if ok else (None,) * 3
    ok = ok and dtype in _ITEMSIZE
    ok = ok and isinstance(shape, list) and all(type(d) is int and d >= 0 for d in shape)
    ok = ok and isinstance(offsets, list) and len(offsets) == 2 and all(type(o) is int for o in offsets)
    if not ok:
        raise ValueError(f"{path}: tampered safetensors header: bad entry for tensor {name!r}: {info!r}")
    begin, end = offsets
    if not 0 <= begin <= end or end - begin != math.prod(shape) * _ITEMSIZE[dtype]:
        raise ValueError(f"{path}: tampered safetensors header: tensor {name!r} of {dtype}{shape} "
                         f"cannot occupy bytes {begin}..{end}")
    return begin, end


def write_atomic(path: Path, data: bytes) -> None:
    """Write `data` to a temp file beside `path`, fsync it, then rename it to `path`.

    The file gets the mode an ordinary write would give it: that of the file it replaces, else
    0666 less the umask. A symlink at `path` is written through, to the file it points to.
    """
    path = path.resolve() if path.is_symlink() else path
    folder = path.parent
    if not folder.is_dir():
        raise FileNotFoundError(f"{path}: folder {folder} does not exist")
    if path.is_dir():  # os.replace would fail naming the temp file
        raise IsADirectoryError(21, "expected a file path, got a directory", str(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _mode_for(path))  # mkstemp makes it 0600; a checkpoint is an ordinary file
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    log.debug("wrote %s (%d bytes)", path, len(data))


def _mode_for(path: Path) -> int:
    """Permission bits for a new version of `path`: the old file's, else 0666 less the umask."""
    try:
        return path.stat().st_mode & 0o777
    except FileNotFoundError:
        return 0o666 & ~_umask()


def _umask() -> int:
    """The process's umask: read from /proc on Linux (no change to it); elsewhere set and restored
    at once, which another thread creating a file at that instant could observe."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    umask = os.umask(0)
    os.umask(umask)
    return umask
