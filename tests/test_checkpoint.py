"""grukit.checkpoint: round trips for every model class, and refusal of bad files."""
from __future__ import annotations

import dataclasses
import json
import os
import pickle
import re
import struct
import warnings
from pathlib import Path

import pytest
import torch

import grukit
from grukit import checkpoint


def _models():
    """(id, factory) for every registered model class and its main options."""
    from grukit.baselines import LSTM, RNN
    from grukit.cell import GRUCell
    from grukit.layer import GRU

    return [
        ("GRU", lambda: GRU(3, 4)),
        ("GRU-after-2x-bi-bf", lambda: GRU(3, 5, 2, reset="after", bidirectional=True, batch_first=True)),
        ("GRU-nobias-f64", lambda: GRU(2, 3, bias=False, dtype=torch.float64)),
        ("GRUCell", lambda: GRUCell(3, 4)),
        ("GRUCell-after-nobias", lambda: GRUCell(3, 4, bias=False, reset="after")),
        ("LSTM", lambda: LSTM(3, 4, 2, bidirectional=True)),
        ("RNN", lambda: RNN(3, 4, batch_first=True)),
    ]


def _run(model, x):
    out = model(x)
    return out[0] if isinstance(out, tuple) else out


@pytest.mark.parametrize("make", [m for _, m in _models()], ids=[i for i, _ in _models()])
def test_save_load_round_trip_is_exact(tmp_path, make):
    torch.manual_seed(0)
    model = make()
    path = tmp_path / "model.safetensors"
    grukit.checkpoint.save(model, path)
    twin = checkpoint.load(path)
    assert type(twin) is type(model)
    assert twin.config == model.config
    state, twin_state = model.state_dict(), twin.state_dict()
    assert state.keys() == twin_state.keys()
    for name, value in state.items():
        assert twin_state[name].dtype == value.dtype, name
        assert torch.equal(twin_state[name], value), name
    dtype = next(model.parameters()).dtype
    x = torch.randn(2, 3, model.config.input_size, dtype=dtype)
    if type(model).__name__ == "GRUCell":
        x = x[0]
    assert torch.equal(_run(twin, x), _run(model, x))
    assert [p.name for p in tmp_path.iterdir()] == ["model.safetensors"]  # no temp file left


def test_config_is_readable_json_in_metadata(tmp_path):
    from grukit.layer import GRU

    path = tmp_path / "m.safetensors"
    checkpoint.save(GRU(3, 4, reset="after"), path)
    meta = _header(path)["__metadata__"]
    assert json.loads(meta["config"])["reset"] == "after"
    assert json.loads(meta["dtype"]) == "float32"
    assert meta["grukit.format"] == "1"


def test_save_state_load_state_round_trip(tmp_path):
    base = torch.arange(12.0).reshape(3, 4)
    tensors = {
        "a": base,
        "a_again": base,  # shares memory with "a"
        "column": base[:, 1],  # a non-contiguous view
        "step": torch.tensor(7, dtype=torch.int64),
        "mask": torch.tensor([True, False]),
        "half": torch.ones(2, dtype=torch.bfloat16),
        "empty": torch.zeros(0, 3),
        "complex": torch.tensor([1 + 2j, -3j], dtype=torch.complex64),
        **{str(d).removeprefix("torch."): torch.tensor([0.5, 2.0]).to(d)  # every float8 safetensors stores
           for d in (torch.float8_e4m3fn, torch.float8_e5m2, torch.float8_e4m3fnuz, torch.float8_e5m2fnuz)},
    }
    metadata = {"epoch": 3, "lr": 1e-3, "names": ["x", "y"], "nested": {"ok": True}, "none": None}
    path = tmp_path / "state.safetensors"
    checkpoint.save_state(path, tensors, metadata)
    back, meta = checkpoint.load_state(path)
    assert meta == metadata
    assert back.keys() == tensors.keys()
    for name, value in tensors.items():
        bits = (lambda t: t.view(torch.uint8)) if value.element_size() == 1 and value.is_floating_point() else (
            lambda t: t)
        assert back[name].dtype == value.dtype and torch.equal(bits(back[name]), bits(value)), name


def test_save_state_rejects_bad_arguments(tmp_path):
    path = tmp_path / "s.safetensors"
    with pytest.raises(TypeError, match="tensors"):
        checkpoint.save_state(path, [torch.zeros(1)], {})
    with pytest.raises(TypeError, match=r"tensors\['a'\]"):
        checkpoint.save_state(path, {"a": [1.0]}, {})
    with pytest.raises(TypeError, match=r"tensors\['e'\]: expected a dtype safetensors can read back"):
        checkpoint.save_state(path, {"e": torch.ones(2).to(torch.float8_e8m0fnu)}, {})  # it writes, cannot read
    with pytest.raises(TypeError, match=r"metadata\['f'\]"):
        checkpoint.save_state(path, {}, {"f": float("nan")})
    with pytest.raises(ValueError, match="grukit.format"):
        checkpoint.save_state(path, {}, {"grukit.format": 2})
    with pytest.raises(ValueError, match="grukit.sha256"):
        checkpoint.save_state(path, {}, {"grukit.sha256": "0" * 64})
    with pytest.raises(ValueError, match="grukit.metadata_sha256"):
        checkpoint.save_state(path, {}, {"grukit.metadata_sha256": "0" * 64})
    with pytest.raises(FileNotFoundError, match="does not exist"):
        checkpoint.save_state(tmp_path / "missing" / "s.safetensors", {}, {})
    assert not path.exists()


def test_failed_write_keeps_old_file_and_leaves_no_temp(tmp_path, monkeypatch):
    path = tmp_path / "s.safetensors"
    checkpoint.save_state(path, {"v": torch.ones(2)}, {"version": 1})
    before = path.read_bytes()

    def fail(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint.os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        checkpoint.save_state(path, {"v": torch.zeros(2)}, {"version": 2})
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["s.safetensors"]


def test_the_new_file_is_written_and_synced_beside_the_old_then_renamed_over_it(tmp_path, monkeypatch):
    """A rename is atomic only within one file system, and only a synced file survives a crash after it. Found by a
    review: a temp file in the system's temp folder, or one never fsynced, passed every test."""
    path = tmp_path / "s.safetensors"
    events = []
    real_fsync, real_replace = checkpoint.os.fsync, checkpoint.os.replace

    def fsync(fd):
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}") if os.path.isdir("/proc/self/fd") else None))
        real_fsync(fd)

    def replace(src, dst):
        events.append(("replace", str(src), str(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(checkpoint.os, "fsync", fsync)
    monkeypatch.setattr(checkpoint.os, "replace", replace)
    checkpoint.save_state(path, {"v": torch.ones(2)}, {"version": 1})
    (kind, synced), (what, src, dst) = events
    assert kind == "fsync" and what == "replace" and dst == str(path)
    assert Path(src).parent == tmp_path and synced in (None, src)  # the synced file is the one renamed


def _saved_gru(tmp_path: Path) -> Path:
    from grukit.layer import GRU

    path = tmp_path / "gru.safetensors"
    checkpoint.save(GRU(3, 4, 2), path)
    return path


def test_truncated_file_raises_value_error_naming_path(tmp_path):
    data = _saved_gru(tmp_path).read_bytes()
    n = struct.unpack("<Q", data[:8])[0]
    bad = tmp_path / "cut.safetensors"
    for cut in (0, 4, 8, 8 + n // 2, 8 + n, len(data) - 1):
        bad.write_bytes(data[:cut])
        with pytest.raises(ValueError, match="cut.safetensors"):
            checkpoint.load(bad)


def test_a_flipped_bit_in_the_tensors_is_caught(tmp_path):
    """Found by a review: safetensors has no checksum, so a bit flipped on disk loaded as other weights."""
    path = _saved_gru(tmp_path)
    digest = json.loads(_header(path)["__metadata__"]["grukit.sha256"])  # a JSON string, as every metadata value
    assert digest == checkpoint.tensors_sha256(checkpoint.load(path).state_dict()) and len(digest) == 64
    data = bytearray(path.read_bytes())
    data[-3] ^= 0x10  # one bit of the last tensor's bytes
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"gru.safetensors: its tensors do not match the checksum written with them"):
        checkpoint.load(path)


def test_the_checksum_is_of_the_tensors_not_of_their_layout(tmp_path):
    """The same tensors written in another order by another safetensors writer, with grukit's metadata, load
    (found by a review: a checksum of the raw data region refused them as damaged)."""
    path = _saved_gru(tmp_path)
    data = path.read_bytes()
    n = struct.unpack("<Q", data[:8])[0]
    header, body = json.loads(data[8 : 8 + n]), data[8 + n :]
    names = sorted((k for k in header if k != "__metadata__"), key=lambda k: header[k]["data_offsets"], reverse=True)
    chunks, offset = [], 0
    for name in names:  # the same tensors, laid out last first
        begin, end = header[name]["data_offsets"]
        chunks.append(body[begin:end])
        header[name]["data_offsets"] = [offset, offset + end - begin]
        offset += end - begin
    text = json.dumps(header).encode()
    reordered = tmp_path / "reordered.safetensors"
    reordered.write_bytes(struct.pack("<Q", len(text)) + text + b"".join(chunks))
    tensors, _ = checkpoint.load_state(path)
    twin = checkpoint.load(reordered)
    assert all(torch.equal(twin.state_dict()[k], v) for k, v in tensors.items())
    assert checkpoint.tensors_sha256({"a": torch.ones(2)}) != checkpoint.tensors_sha256({"b": torch.ones(2)})
    assert checkpoint.tensors_sha256({"a": torch.ones(2)}) != checkpoint.tensors_sha256({"a": torch.ones(1, 2)})


def test_lazy_negative_and_conjugate_views_are_saved_as_their_values(tmp_path):
    """Found by a review: a tensor behind torch's lazy negation or conjugation flag failed inside the checksum
    (and before it, was saved without the flag, as other numbers)."""
    path = tmp_path / "s.safetensors"
    z = torch.tensor([1 + 2j, -3j], dtype=torch.complex64)
    checkpoint.save_state(path, {"neg": torch.arange(3.0)._neg_view(), "conj": z.conj()}, {})
    back, _ = checkpoint.load_state(path)
    assert torch.equal(back["neg"], -torch.arange(3.0)) and torch.equal(back["conj"], z.conj().resolve_conj())


def _header(path: Path) -> dict:
    data = path.read_bytes()
    return json.loads(data[8 : 8 + struct.unpack("<Q", data[:8])[0]])


def _without(*keys):
    """A header edit that drops these metadata keys, as files written before them lack them."""
    return lambda h: {**h, "__metadata__": {k: v for k, v in h["__metadata__"].items() if k not in keys}}


@pytest.mark.parametrize("keys", [("grukit.metadata_sha256",), ("grukit.metadata_sha256", "grukit.sha256")],
                         ids=["tensor-checksum-only", "no-checksum"])
def test_a_file_without_the_checksums_still_loads(tmp_path, keys):
    """Files written before the checksums existed (or by other tools with the format key) load unchecked."""
    path = _saved_gru(tmp_path)
    model = checkpoint.load(path)
    _rewrite_header(path, _without(*keys))
    twin = checkpoint.load(path)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), twin.state_dict().values()))


def test_every_flipped_bit_in_the_metadata_is_caught(tmp_path):
    """Found by a review: the checksum covered the tensors only, so one bit flipped in the header turned dropout
    0.0 into 0.4, and one in the checksum's key name switched the check off. Each byte of the metadata here
    gets one flipped bit (bit i mod 8 of byte i): the file is refused, or loads as the model saved. The one place
    where a flip leaves the file loadable is the metadata checksum's own key name, which turns it into a caller's
    key: the metadata checksum is then missing, and everything it covered is intact."""
    from grukit.layer import GRU

    path = tmp_path / "gru.safetensors"
    model = GRU(2, 3, dropout=0.0, bidirectional=True)
    checkpoint.save(model, path)
    data = path.read_bytes()
    n = struct.unpack("<Q", data[:8])[0]
    start = data.index(b'"__metadata__"', 8, 8 + n)
    end = data.index(b"}", data.index(b'"grukit.metadata_sha256"', start)) + 1
    flipped = tmp_path / "flipped.safetensors"
    own_key = data.index(b'"grukit.metadata_sha256"', start) + 1
    loaded = []
    for i in range(start, end):
        damaged = bytearray(data)
        damaged[i] ^= 1 << (i % 8)
        flipped.write_bytes(bytes(damaged))
        try:
            twin = checkpoint.load(flipped)
        except ValueError as err:
            assert "flipped.safetensors" in str(err)
            continue
        loaded.append(i)
        assert twin.config == model.config
        assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), twin.state_dict().values()))
    assert end - start > 300 and set(loaded) <= set(range(own_key, own_key + len("grukit.metadata_sha256")))


def test_a_stored_integer_tensor_is_not_loaded_into_float_weights(tmp_path):
    """Found by a review: a dtype relabelled I32 in a file without checksums was converted into weights near 1e9."""
    path = _saved_gru(tmp_path)
    edit = _without("grukit.metadata_sha256", "grukit.sha256")
    _rewrite_header(path, lambda h: {**edit(h), "weight_h_l0": {**h["weight_h_l0"], "dtype": "I32"}})
    with pytest.raises(ValueError, match=r"'weight_h_l0' is stored as torch.int32, but grukit.GRU keeps it as "
                                         r"floating-point numbers"):
        checkpoint.load(path)


def _rewrite_header(path: Path, edit) -> None:
    """Replace the JSON header of a safetensors file by edit(header), keeping the data."""
    data = path.read_bytes()
    n = struct.unpack("<Q", data[:8])[0]
    text = json.dumps(edit(_header(path))).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + data[8 + n :])


def _first_tensor(header: dict) -> str:
    return sorted(k for k in header if k != "__metadata__")[0]


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda h: {**h, _first_tensor(h): {**h[_first_tensor(h)], "dtype": "F64"}}, "cannot occupy|gap or overlap"),
        (lambda h: {**h, _first_tensor(h): {**h[_first_tensor(h)], "dtype": "X99"}}, "bad entry"),
        (lambda h: {**h, _first_tensor(h): {**h[_first_tensor(h)], "shape": [1]}}, "cannot occupy"),
        (lambda h: {**h, _first_tensor(h): {**h[_first_tensor(h)], "data_offsets": [0, 4]}}, "cannot occupy"),
        (lambda h: {**h, "__metadata__": {**h["__metadata__"], "config": "{not json"}}, "not valid JSON"),
        (lambda h: {**h, "__metadata__": {**h["__metadata__"], "config": '{"input_size": 3}'}}, "does not build"),
        (lambda h: {**h, "__metadata__": {**h["__metadata__"], "config": json.dumps(
            {**json.loads(h["__metadata__"]["config"]), "hidden_size": 5})}}, "do not fit"),
        (lambda h: {**h, "__metadata__": {**h["__metadata__"], "config": json.dumps(
            {**json.loads(h["__metadata__"]["config"]), "hidden_size": 10**12})}}, "does not build|do not fit"),
        (lambda h: {**h, "__metadata__": {**h["__metadata__"], "config": json.dumps(
            {**json.loads(h["__metadata__"]["config"]), "num_layers": 10**5})}}, "num_layers=100000 cannot fit"),
        (lambda h: {**h, "__metadata__": {**h["__metadata__"], "config": json.dumps(
            {**json.loads(h["__metadata__"]["config"]), "device": "meta"})}}, "not a grukit.GRU config"),
        (lambda h: {**h, "__metadata__": {**h["__metadata__"], "config": json.dumps(
            {**json.loads(h["__metadata__"]["config"]), "device": "cuda:7"})}}, "does not build|not a grukit.GRU"),
        (lambda h: {**h, "__metadata__": {**h["__metadata__"], "class": '"os.system"'}}, "not registered"),
        (lambda h: {**h, "__metadata__": {**h["__metadata__"], "class": '"grukit.__main__.GRU"'}}, "not registered"),
        (lambda h: {**h, "__metadata__": {**h["__metadata__"], "class": '"grukit._checks.GRU"'}}, "not registered"),
        (lambda h: {**h, "__metadata__": {**h["__metadata__"], "dtype": '"int64"'}}, "dtype"),
        (lambda h: {**h, "__metadata__": {**h["__metadata__"], "grukit.format": "99"}}, "not a grukit checkpoint"),
        (lambda h: {k: v for k, v in h.items() if k != "__metadata__"}, "not a grukit checkpoint"),
        (lambda h: [h], "JSON object"),
    ],
    ids=["dtype-size", "dtype-unknown", "shape", "offsets", "config-json", "config-missing-field",
         "config-wrong-size", "config-huge-size", "config-huge-layers", "config-device-meta", "config-device-cuda",
         "class", "class-main-module", "class-private-module",
         "dtype-meta", "format-version", "no-metadata", "not-object"],
)
def test_tampered_header_or_config_raises_value_error(tmp_path, edit, message):
    """Each edit in a file without the metadata checksum (one from before it), so the check that names what is
    wrong is reached; with the checksum, every metadata edit is refused by it first."""
    path = _saved_gru(tmp_path)
    _rewrite_header(path, lambda h: edit(_without("grukit.metadata_sha256")(h)))
    with pytest.raises(ValueError, match=message) as info:
        checkpoint.load(path)
    assert str(path) in str(info.value)
    if "__metadata__" in str(edit(_header(_saved_gru(tmp_path)))):
        path = _saved_gru(tmp_path)
        _rewrite_header(path, edit)
        with pytest.raises(ValueError, match=message + "|does not match the checksum"):
            checkpoint.load(path)


def test_header_length_beyond_file_and_garbage(tmp_path):
    path = _saved_gru(tmp_path)
    data = bytearray(path.read_bytes())
    data[:8] = struct.pack("<Q", len(data))
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="header length"):
        checkpoint.load(path)
    path.write_bytes(b"hello, this is a text file and not a checkpoint at all")
    with pytest.raises(ValueError, match="not a safetensors file"):
        checkpoint.load(path)


def test_plain_safetensors_and_state_files_are_not_models(tmp_path):
    from safetensors.torch import save_file

    plain = tmp_path / "plain.safetensors"
    save_file({"w": torch.ones(2)}, str(plain))
    with pytest.raises(ValueError, match="not a grukit checkpoint"):
        checkpoint.load_state(plain)
    state = tmp_path / "state.safetensors"
    checkpoint.save_state(state, {"w": torch.ones(2)}, {"epoch": 1})
    with pytest.raises(ValueError, match="not a grukit model checkpoint"):
        checkpoint.load(state)


class _CreatesFile:
    """Unpickling this object opens (creates) a file: stands in for any code a pickle may run."""

    def __init__(self, target: str):
        self.target = target

    def __reduce__(self):
        return (open, (self.target, "w"))


@pytest.mark.parametrize("writer", ["pickle", "pickle-protocol-2", "torch.save"])
def test_pickle_is_refused_without_unpickling(tmp_path, writer):
    target = tmp_path / "created_by_unpickling"
    path = tmp_path / "model.pt"
    if writer.startswith("pickle"):
        protocol = 2 if writer.endswith("2") else pickle.HIGHEST_PROTOCOL
        path.write_bytes(pickle.dumps({"weight": _CreatesFile(str(target))}, protocol=protocol))
    else:
        torch.save({"weight": _CreatesFile(str(target))}, path)
    assert not target.exists()
    for reader in (checkpoint.load, checkpoint.load_state):
        with pytest.raises(ValueError, match="from_torch") as info:
            reader(path)
        assert str(path) in str(info.value)
    assert not target.exists()
    # control: the payload is real, so the assertion above could have failed
    if writer.startswith("pickle"):
        pickle.loads(path.read_bytes())["weight"].close()
    else:
        torch.load(path, weights_only=False)["weight"].close()
    assert target.exists()


def test_safetensors_whose_length_bytes_look_like_a_pickle_still_loads(tmp_path):
    """A header length of 0x280 + 256·k starts the file with b"\\x80\\x02", a pickle's first bytes."""
    path = tmp_path / "s.safetensors"
    checkpoint.save_state(path, {"w": torch.ones(2)}, {"pad": ""})
    start = 0x280 - struct.unpack("<Q", path.read_bytes()[:8])[0] - 8  # header grows 1 byte per pad char
    for pad in range(start, start + 16):
        checkpoint.save_state(path, {"w": torch.ones(2)}, {"pad": "x" * pad})
        if path.read_bytes()[:2] == b"\x80\x02":
            break
    assert path.read_bytes()[:2] == b"\x80\x02"
    tensors, metadata = checkpoint.load_state(path)
    assert torch.equal(tensors["w"], torch.ones(2)) and metadata["pad"] == "x" * pad


def test_unregistered_class_cannot_be_saved(tmp_path):
    @dataclasses.dataclass(frozen=True)
    class Config:
        size: int  # features

    class Plain(torch.nn.Linear):
        def __init__(self, size):
            super().__init__(size, size)
            self.config = Config(size)

    with pytest.raises(TypeError, match="not registered"):
        checkpoint.save(Plain(2), tmp_path / "p.safetensors")
    with pytest.raises(TypeError, match="torch.nn.Module"):
        checkpoint.save({"w": torch.ones(1)}, tmp_path / "p.safetensors")


def test_registered_class_without_json_config_is_refused(tmp_path):
    @dataclasses.dataclass(frozen=True)
    class Config:
        dtype: object  # not a JSON value

    @checkpoint.register
    class Odd(torch.nn.Module):
        def __init__(self, dtype=None):
            super().__init__()
            self.config = Config(dtype)

    with pytest.raises(TypeError, match="JSON"):
        checkpoint.save(Odd(torch.float32), tmp_path / "o.safetensors")
    assert not os.listdir(tmp_path)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope"):
        checkpoint.load(tmp_path / "nope.safetensors")
    os.mkfifo(tmp_path / "pipe")  # a folder or a pipe exists: it was called "no such checkpoint file" too
    for path, kind in ((tmp_path, "is a folder"), (tmp_path / "pipe", "is a device, pipe or socket")):
        said = f"^{re.escape(str(path))}: expected a checkpoint file, got a path that {kind}$"
        with pytest.raises(ValueError, match=said):
            checkpoint.load(path)


def test_atomic_write_keeps_the_mode_a_plain_write_would_give_and_follows_symlinks(tmp_path):
    old = os.umask(0o077)
    try:
        checkpoint.save_state(tmp_path / "private.safetensors", {"v": torch.ones(1)}, {})
    finally:
        os.umask(old)
    assert (tmp_path / "private.safetensors").stat().st_mode & 0o777 == 0o600  # the umask, not a fixed 0644
    shared = tmp_path / "shared.safetensors"
    checkpoint.save_state(shared, {"v": torch.ones(1)}, {})
    shared.chmod(0o640)
    link = tmp_path / "link.safetensors"
    link.symlink_to(shared)
    checkpoint.save_state(link, {"v": torch.zeros(1)}, {})
    assert link.is_symlink() and shared.stat().st_mode & 0o777 == 0o640  # written through, mode kept
    assert torch.equal(checkpoint.load_state(shared)[0]["v"], torch.zeros(1))


def test_a_file_from_before_a_setting_existed_loads_with_its_default(tmp_path):
    path = _saved_gru(tmp_path)
    old = _without("grukit.metadata_sha256")  # written before the metadata checksum, as before the setting
    _rewrite_header(path, lambda h: {**old(h), "__metadata__": {**old(h)["__metadata__"], "config": json.dumps(
        {k: v for k, v in json.loads(h["__metadata__"]["config"]).items() if k != "backend"})}})
    assert checkpoint.load(path).config.backend == "auto"


def test_a_model_mixing_dtypes_comes_back_with_each_tensors_own_dtype(tmp_path):
    """Before, load cast the whole model to the dtype of its first floating tensor: a float64 GRU under a
    float32 embedding came back float32 (and a bfloat16 one could no longer read bfloat16 inputs)."""
    from grukit.tasks.classify_model import SentenceClassifier

    torch.manual_seed(0)
    model = SentenceClassifier(vocabulary="bad\ngood", classes=2, embedding=4, hidden_size=3)
    model.gru.double()
    model.head.bfloat16()
    grukit.save(model, tmp_path / "m.safetensors")
    twin = grukit.load(tmp_path / "m.safetensors")
    state, twin_state = model.state_dict(), twin.state_dict()
    assert {k: v.dtype for k, v in twin_state.items()} == {k: v.dtype for k, v in state.items()}
    assert twin.gru.weight_x_l0.dtype == torch.float64 and twin.embed.weight.dtype == torch.float32
    assert all(torch.equal(twin_state[k], v) for k, v in state.items())


def test_a_pruned_model_is_refused_at_save_not_at_load(tmp_path):
    """Before, save wrote weight_h_l0_orig and weight_h_l0_mask, and load then refused the file."""
    from torch.nn.utils import prune

    gru = grukit.GRU(3, 4)
    prune.l1_unstructured(gru, "weight_h_l0", 0.5)
    with pytest.raises(TypeError, match=r"^model: its state_dict lacks 'weight_h_l0', which grukit.GRU built "
                                        r"from its config has, so load could not rebuild it \(a pruned"):
        grukit.save(gru, tmp_path / "p.safetensors")
    assert not (tmp_path / "p.safetensors").exists()
    prune.remove(gru, "weight_h_l0")
    grukit.save(gru, tmp_path / "p.safetensors")
    assert torch.equal(grukit.load(tmp_path / "p.safetensors").weight_h_l0, gru.weight_h_l0)


def test_a_replaced_layer_of_another_shape_is_refused_at_save_not_at_load(tmp_path):
    """Found by a review: save compared the tensors' names only, and load then refused the file."""
    from grukit.tasks.speech import SpeechClassifier

    model = SpeechClassifier(hidden_size=8)
    model.head = torch.nn.Linear(8, 5)  # 5 classes, where the config builds 10
    with pytest.raises(TypeError, match=r"^model: its 'head.bias' has shape \(5,\), but .*SpeechClassifier "
                                        r"built from its config has \(10,\), so load could not rebuild it"):
        grukit.save(model, tmp_path / "s.safetensors")
    assert not (tmp_path / "s.safetensors").exists()


def test_a_saved_backend_that_cannot_run_here_falls_back_to_auto(tmp_path, monkeypatch, caplog):
    """Found by a review: `grukit forecast --backend cpu` wrote a checkpoint that failed to run where no C++
    compiler is (and on a GPU): the backend is where the model ran, not part of the model."""
    from grukit import kernels

    torch.manual_seed(0)
    gru = grukit.GRU(2, 3, backend="eager")
    grukit.save(gru, tmp_path / "g.safetensors")
    assert grukit.load(tmp_path / "g.safetensors").backend == "eager"  # runs here: kept
    x = torch.randn(4, 3, 2)
    monkeypatch.setattr(kernels, "available", lambda name: name != "eager")  # as if eager could not run here
    with caplog.at_level("WARNING", logger="grukit.checkpoint"):
        back = grukit.load(tmp_path / "g.safetensors")
    assert back.backend == "auto" and "saved to run on backend 'eager', which cannot run here" in caplog.text
    torch.testing.assert_close(back(x)[0], gru(x)[0])
    assert kernels.runs_on("fused", "cuda") and not kernels.runs_on("cpu", "cuda") and kernels.runs_on("auto", "xpu")


def test_saving_onto_a_folder_and_loading_onto_a_missing_device_name_the_argument(tmp_path):
    """Found by a review: save onto a folder named the temp file, and load(device="cuda") without CUDA raised a
    bare AssertionError."""
    (tmp_path / "d").mkdir()
    with pytest.raises(IsADirectoryError, match="expected a file path, got a directory") as info:
        grukit.save(grukit.GRU(2, 3), tmp_path / "d")
    assert info.value.filename == str(tmp_path / "d") and list((tmp_path / "d").iterdir()) == []
    grukit.save(grukit.GRU(2, 3), tmp_path / "g.safetensors")
    with pytest.raises(ValueError, match="device: expected a torch device"):
        grukit.load(tmp_path / "g.safetensors", device="gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match=r"device: .* got 'cuda' \(CUDA is not available\)"):
            grukit.load(tmp_path / "g.safetensors", device="cuda")


def test_a_subclass_is_stored_under_its_own_name_and_cannot_take_another_class_name(tmp_path):
    class Unregistered(grukit.GRU):
        pass

    with pytest.raises(TypeError, match=r"class \S*test_checkpoint\.\S*<locals>\.Unregistered is not registered"):
        checkpoint.save(Unregistered(3, 4), tmp_path / "u.safetensors")

    @checkpoint.register
    class Mine(grukit.GRU):
        pass

    assert checkpoint.registered_name(Mine).endswith("<locals>.Mine")
    checkpoint.save(Mine(3, 4), tmp_path / "mine.safetensors")
    checkpoint.save(grukit.GRU(3, 4), tmp_path / "gru.safetensors")  # grukit.GRU keeps its name
    assert type(checkpoint.load(tmp_path / "mine.safetensors")) is Mine
    assert type(checkpoint.load(tmp_path / "gru.safetensors")) is grukit.GRU

    class Impostor(grukit.GRU):
        checkpoint_name = "grukit.GRU"

    with pytest.raises(ValueError, match=r"'grukit.GRU' is taken by grukit.layer.GRU; give .*Impostor"):
        checkpoint.register(Impostor)
    assert type(checkpoint.load(tmp_path / "gru.safetensors")) is grukit.GRU


def test_save_and_load_repeat_no_constructor_warning_of_their_probes(tmp_path):
    with pytest.warns(UserWarning, match="dropout"):
        model = grukit.GRU(3, 4, dropout=0.5)  # one layer: the dropout has nothing to act between
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        checkpoint.save(model, tmp_path / "m.safetensors")
    assert [str(w.message) for w in caught] == []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        checkpoint.load(tmp_path / "m.safetensors")
    assert len(caught) == 1 and "dropout" in str(caught[0].message)  # the loaded model's own, once


def test_a_class_defined_again_takes_its_name_back():
    """A module reloaded defines its classes anew: the new class replaces the old under the same name (the check
    that refuses another class's name must not refuse this)."""

    def define():
        class Twin(torch.nn.Module):
            pass

        Twin.__qualname__, Twin.__module__ = "Twin", "reloaded_module"
        return Twin

    first, again = define(), define()
    checkpoint.register(first)
    checkpoint.register(again)
    assert checkpoint._REGISTRY["reloaded_module.Twin"] is again


def test_a_fresh_process_loads_a_task_model_whose_module_it_has_not_imported(tmp_path):
    """A coverage check: every test loads in a process that had already imported the model's module, so the
    import by the stored class name ("grukit.tasks.forecast_model.ForecastEnsemble") ran in no test. A user's
    `grukit.load(path)` in a new Python session takes that path; so does `grukit sample`."""
    import subprocess
    import sys

    from grukit.tasks.forecast_model import ForecastEnsemble
    from grukit.tasks.textgen_model import CharLM

    torch.manual_seed(0)
    models = {"forecast": ForecastEnsemble(n_features=5, horizon=3, members=2, hidden_size=4, lookback=8),
              "textgen": CharLM("abc ", embedding=3, hidden_size=4)}
    for name, model in models.items():
        grukit.save(model.eval(), tmp_path / f"{name}.safetensors")
    probe = (
        "import sys, torch, grukit\n"
        "assert not any(m.startswith('grukit.tasks') for m in sys.modules), sorted(sys.modules)\n"
        "f = grukit.load(sys.argv[1]); t = grukit.load(sys.argv[2])\n"
        "torch.save({'forecast': f(torch.linspace(-1, 1, 80).reshape(2, 8, 5)),\n"
        "            'textgen': t(torch.tensor([[0, 1, 2, 3]]))[0],\n"
        "            'names': [type(m).__module__ + '.' + type(m).__name__ for m in (f, t)]},\n"
        "           sys.argv[3])\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run([sys.executable, "-c", probe, str(tmp_path / "forecast.safetensors"),
                           str(tmp_path / "textgen.safetensors"), str(tmp_path / "out.pt")],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    got = torch.load(tmp_path / "out.pt", weights_only=True)
    assert got["names"] == ["grukit.tasks.forecast_model.ForecastEnsemble", "grukit.tasks.textgen_model.CharLM"]
    with torch.no_grad():
        assert torch.equal(got["forecast"], models["forecast"](torch.linspace(-1, 1, 80).reshape(2, 8, 5)))
        assert torch.equal(got["textgen"], models["textgen"](torch.tensor([[0, 1, 2, 3]]))[0])


def test_load_returns_the_model_in_eval_mode(tmp_path):
    """A fresh module is in training mode, and `load` returned it so: calling a loaded CharLM twice on the same
    input gave two answers (its dropout drew each time). Found when a fresh process's forecasts of a saved
    model differed from the saving process's."""
    from grukit.tasks.textgen_model import CharLM

    model = CharLM("abc ", embedding=3, hidden_size=4, dropout=0.5).eval()
    grukit.save(model, tmp_path / "lm.safetensors")
    twin = grukit.load(tmp_path / "lm.safetensors")
    assert not any(m.training for m in twin.modules())
    ids = torch.tensor([[0, 1, 2, 3, 2, 1]])
    with torch.no_grad():
        assert torch.equal(twin(ids)[0], model(ids)[0]) and torch.equal(twin(ids)[0], twin(ids)[0])
