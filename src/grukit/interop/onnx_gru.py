"""grukit GRU ↔ ONNX: one ONNX `GRU` operator per layer, not a traced loop of small ops.

The ONNX GRU operator computes, with the flipped update gate z' = 1 − z and row
blocks (z', r, h):

    z' = σ(X W_z^T + H R_z^T + Wb_z + Rb_z)        r = σ(X W_r^T + H R_r^T + Wb_r + Rb_r)
    n  = tanh(X W_h^T + (r ⊙ H) R_h^T + Rb_h + Wb_h)        linear_before_reset=0 (grukit reset="before")
    n  = tanh(X W_h^T + r ⊙ (H R_h^T + Rb_h) + Wb_h)        linear_before_reset=1 (grukit reset="after")
    H' = (1 − z') ⊙ n + z' ⊙ H

    W [D, 3H, I] = to_zrn(weight_x)   R [D, 3H, H] = to_zrn(weight_h)
    B [D, 6H]    = [to_zrn(bias_x), to_zrn(bias_h)]       (directions: forward, reverse)

The exported graph (dynamic T and N; names of inputs and outputs in quotes):

    "x" (T, N, I) [Transpose if batch_first: (N, T, I)]
      → GRU_0 → Y (T, D, N, H) → Transpose → (T, N, D, H) → Reshape → (T, N, D·H)
      → GRU_1 → ...                                         → "output" (T, N, D·H)
    h_n of each layer (D, N, H) → Concat → "h_n" (L·D, N, H)
    optional "h0" (L·D, N, H): sliced per layer into initial_h
    optional "lengths" (N,) int64: cast to int32, every layer's sequence_lens

With lengths, ONNX Runtime gives zeros on padded steps and each sequence's own last
state in h_n, and the reverse direction starts at each sequence's last real step:
grukit's `lengths` semantics (tested). Weights are copied bit for bit. float16, float32
and float64 models export; ONNX Runtime's CPU GRU kernel runs float32 only (1.31: "does
not support double yet"), onnx.reference.ReferenceEvaluator runs all three.

Example:
    >>> import os, tempfile, numpy as np, onnxruntime, torch
    >>> from grukit import GRU
    >>> from grukit.interop import from_onnx, to_onnx
    >>> ours = GRU(3, 4, num_layers=2, bidirectional=True, reset="before")
    >>> path = os.path.join(tempfile.mkdtemp(), "gru.onnx")
    >>> to_onnx(ours, path)
    >>> session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    >>> x = torch.randn(5, 2, 3)
    >>> output, h_n = session.run(None, {"x": x.numpy()})
    >>> np.allclose(output, ours(x)[0].detach().numpy(), atol=1e-5)
    True
    >>> torch.equal(from_onnx(path).weight_x_l1_reverse, ours.weight_x_l1_reverse)
    True
"""
from __future__ import annotations

import copy
import dataclasses
import json
import logging
import os
from pathlib import Path

import numpy as np
import torch

from grukit import _checks
from grukit.interop.gates import from_zrn, to_zrn

log = logging.getLogger(__name__)

DEFAULT_OPSET = 17  # supported by every ONNX Runtime since 1.13
MIN_OPSET = 13  # Slice, Squeeze and Reshape as used here
_SHAPE_OPS = ("Transpose", "Reshape", "Squeeze", "Unsqueeze", "Identity", "Flatten")  # between layers


def _import_onnx():
    try:
        import onnx
        from onnx import helper, numpy_helper
    except ImportError as err:
        raise ImportError("grukit.interop ONNX converters need onnx: pip install 'grukit[interop]'") from err
    return onnx, helper, numpy_helper


# ---------------------------------------------------------------- grukit -> ONNX


def _weights(model, k: int, dtype) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """W (D, 3H, I), R (D, 3H, H), B (D, 6H) or None of layer k, in ONNX's (z', r, h) order."""
    W, R, B = [], [], []
    for d in range(2 if model.bidirectional else 1):
        w_x, w_h, b_x, b_h = model.parameters_of(k, d == 1)
        W.append(to_zrn(w_x))  # (3H, I)
        R.append(to_zrn(w_h))  # (3H, H)
        if b_x is not None:
            B.append(torch.cat([to_zrn(b_x), to_zrn(b_h)]))  # (6H,)
    as_np = lambda ts: torch.stack(ts).detach().cpu().numpy().astype(dtype, copy=False)  # noqa: E731
    return as_np(W), as_np(R), (as_np(B) if B else None)


def to_onnx(model, path: str | os.PathLike, *, batch_first: bool | None = None, opset: int | None = None,
            with_h0: bool = False, with_lengths: bool = False) -> None:
    """Write a grukit GRU to `path` as an ONNX model of GRU operators (see the module docstring).

    batch_first: layout of "x" and "output"; None takes the model's.
    opset: ONNX opset version (default 17, at least 13).
    with_h0: add the graph input "h0" (L·D, N, H); without it the initial state is 0.
    with_lengths: add the graph input "lengths" (N,) int64, each in 1..T.
    The file is checked with onnx.checker and written atomically.
    """
    from grukit.checkpoint import write_atomic
    from grukit.layer import GRU

    onnx, helper, numpy_helper = _import_onnx()
    if not isinstance(model, GRU):
        raise TypeError(f"model: expected a grukit.GRU, got {type(model).__name__} "
                        "(export a GRUCell as a one-layer GRU over T=1)")
    batch_first = model.batch_first if batch_first is None else batch_first
    if not isinstance(batch_first, bool):
        raise TypeError(f"batch_first: expected True, False or None, got {batch_first!r}")
    with_h0, with_lengths = _checks.flag("with_h0", with_h0), _checks.flag("with_lengths", with_lengths)
    opset = DEFAULT_OPSET if opset is None else opset
    newest = onnx.defs.onnx_opset_version()
    if isinstance(opset, bool) or not isinstance(opset, int) or not MIN_OPSET <= opset <= newest:
        raise ValueError(f"opset: expected an integer in {MIN_OPSET}..{newest}, got {opset!r}")
    dtypes = {torch.float16: np.float16, torch.float32: np.float32, torch.float64: np.float64}
    torch_dtype = model.weight_x_l0.dtype
    if torch_dtype not in dtypes:
        raise ValueError(f"model: expected float16, float32 or float64 weights for ONNX, got {torch_dtype}")
    elem = helper.np_dtype_to_tensor_dtype(np.dtype(dtypes[torch_dtype]))
    L, D, H, I = model.num_layers, 2 if model.bidirectional else 1, model.hidden_size, model.input_size

    nodes, inits = [], []

    def const(name: str, array: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(array, name))
        return name

    x_shape = ["N", "T", I] if batch_first else ["T", "N", I]
    inputs = [helper.make_tensor_value_info("x", elem, x_shape)]
    layer_input = "x"
    if batch_first:
        nodes.append(helper.make_node("Transpose", ["x"], ["x_time_major"], perm=[1, 0, 2]))  # (T, N, I)
        layer_input = "x_time_major"
    seq_lens = ""
    if with_lengths:
        inputs.append(helper.make_tensor_value_info("lengths", onnx.TensorProto.INT64, ["N"]))
        nodes.append(helper.make_node("Cast", ["lengths"], ["sequence_lens"], to=onnx.TensorProto.INT32))
        seq_lens = "sequence_lens"
    if with_h0:
        inputs.append(helper.make_tensor_value_info("h0", elem, [L * D, "N", H]))
        const("axis_0", np.array([0], dtype=np.int64))
    const("shape_T_N_DH", np.array([0, 0, D * H], dtype=np.int64))
    h_n_parts = []
    for k in range(L):
        W, R, B = _weights(model, k, dtypes[torch_dtype])
        h0_k = ""
        if with_h0:
            starts = const(f"h0_start_l{k}", np.array([k * D], np.int64))
            ends = const(f"h0_end_l{k}", np.array([(k + 1) * D], np.int64))
            nodes.append(helper.make_node("Slice", ["h0", starts, ends, "axis_0"], [f"h0_l{k}"]))  # (D, N, H)
            h0_k = f"h0_l{k}"
        gru_inputs = [layer_input, const(f"W_l{k}", W), const(f"R_l{k}", R),
                      const(f"B_l{k}", B) if B is not None else "", seq_lens, h0_k]
        while gru_inputs[-1] == "":
            gru_inputs.pop()
        nodes.append(helper.make_node(
            "GRU", gru_inputs, [f"Y_l{k}", f"Y_h_l{k}"], name=f"gru_l{k}", hidden_size=H,
            direction="bidirectional" if D == 2 else "forward",
            linear_before_reset=1 if model.reset == "after" else 0,
        ))  # Y (T, D, N, H), Y_h (D, N, H)
        nodes.append(helper.make_node("Transpose", [f"Y_l{k}"], [f"Y_tndh_l{k}"], perm=[0, 2, 1, 3]))  # (T, N, D, H)
        layer_input = f"out_l{k}" if k < L - 1 or batch_first else "output"
        nodes.append(helper.make_node("Reshape", [f"Y_tndh_l{k}", "shape_T_N_DH"], [layer_input]))  # (T, N, D·H)
        h_n_parts.append(f"Y_h_l{k}")
    if batch_first:
        nodes.append(helper.make_node("Transpose", [layer_input], ["output"], perm=[1, 0, 2]))  # (N, T, D·H)
    nodes.append(helper.make_node("Concat", h_n_parts, ["h_n"], axis=0))  # (L·D, N, H)
    out_shape = ["N", "T", D * H] if batch_first else ["T", "N", D * H]
    outputs = [helper.make_tensor_value_info("output", elem, out_shape),
               helper.make_tensor_value_info("h_n", elem, [L * D, "N", H])]
    graph = helper.make_graph(nodes, "grukit_gru", inputs, outputs, initializer=inits)
    opsets = [helper.make_opsetid("", opset)]
    onnx_model = helper.make_model(graph, opset_imports=opsets, producer_name="grukit",
                                   ir_version=helper.find_min_ir_version_for(opsets))
    config = {**dataclasses.asdict(model.config), "batch_first": batch_first}
    helper.set_model_props(onnx_model, {"grukit.config": json.dumps(config)})  # for people reading the file
    onnx.checker.check_model(onnx_model, full_check=True)
    write_atomic(Path(path), onnx_model.SerializeToString())


# ---------------------------------------------------------------- ONNX -> grukit


def from_onnx(path: str | os.PathLike):
    """A grukit GRU holding the weights of an ONNX model made of stacked GRU nodes.

    Reads the GRU nodes in graph order as layers 0..L−1; the ops between them must be
    layout changes only (Transpose, Reshape, ...), as `to_onnx` writes. batch_first is
    True when the graph input reaches the first GRU through Transpose(perm=[1, 0, 2]).
    Raises ValueError for a graph grukit cannot represent (other activations, clip,
    direction="reverse", mixed settings across layers, weights that are not constants), and
    for one whose outputs, run by onnx's reference evaluator on a seeded input, are not what
    the imported GRU computes (`_verify`).
    Example: see the module docstring.
    """
    from grukit.layer import GRU

    onnx, helper, numpy_helper = _import_onnx()
    path = Path(path)
    if (why := _checks.not_a_file(path)) == "does not exist":
        raise FileNotFoundError(f"{path}: no such ONNX file")
    if why:
        raise ValueError(f"{path}: expected an ONNX file, got a path that {why}")
    try:
        model = onnx.load(str(path))
        onnx.checker.check_model(model)
    except Exception as err:  # protobuf DecodeError, onnx ValidationError
        raise ValueError(f"{path}: not a valid ONNX model: {err}") from err
    graph = model.graph
    consts = {t.name: numpy_helper.to_array(t).copy() for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            consts[node.output[0]] = numpy_helper.to_array(node.attribute[0].t).copy()
    producer = {out: node for node in graph.node for out in node.output}
    grus = [node for node in graph.node if node.op_type == "GRU"]
    if not grus:
        raise ValueError(f"{path}: expected an ONNX model with GRU nodes, found none")
    graph_inputs = {i.name for i in graph.input} - set(consts)

    layers, transposed = [], False
    for k, node in enumerate(grus):
        source, through = _trace(node.input[0], producer)
        expected = graph_inputs if k == 0 else {grus[k - 1].output[0]}
        if source not in expected:
            raise ValueError(f"{path}: GRU node {k} ({node.name!r}) is not fed by "
                             f"{'a graph input' if k == 0 else 'the previous GRU'} through layout ops only")
        if k == 0:
            perms = [_perm(n, helper) for n in through if n.op_type == "Transpose"]
            transposed, x_name = perms == [[1, 0, 2]], source
        layers.append(_read_node(node, consts, path, k, helper))
        lengths = _lengths_input(node, producer, graph_inputs, path, k)  # "" for none
        if k == 0:
            first_lengths = lengths
        elif lengths != first_lengths:  # grukit.GRU applies one lengths to every layer
            say = lambda name: f"graph input {name!r}" if name else "none"  # noqa: E731
            raise ValueError(f"{path}: GRU node {k} ({node.name!r}): expected the sequence_lens of node 0 "
                             f"({say(first_lengths)}), since grukit applies one lengths to every layer, got "
                             f"{say(lengths)}")

    first = layers[0]
    settings = lambda layer: (layer["direction"], layer["lbr"], layer["H"], layer["B"] is not None)  # noqa: E731
    for k, layer in enumerate(layers):
        if settings(layer) != settings(first):
            raise ValueError(f"{path}: GRU node {k}: expected the settings of node 0 (direction, linear_before_reset, "
                             f"hidden_size, has B) = {settings(first)}, got {settings(layer)}")
    D, H = layers[0]["W"].shape[0], layers[0]["H"]
    for k, layer in enumerate(layers[1:], 1):
        if layer["W"].shape[2] != D * H:
            raise ValueError(f"{path}: GRU node {k}: expected input size {D * H} (D·H of node {k - 1}), "
                             f"got {layer['W'].shape[2]}")
    dtype = torch.from_numpy(first["W"]).dtype
    ours = GRU(first["W"].shape[2], H, len(layers), bias=first["B"] is not None, batch_first=transposed,
               bidirectional=D == 2, reset="after" if first["lbr"] else "before", dtype=dtype)
    with torch.no_grad():
        for k, layer in enumerate(layers):
            for d in range(D):
                w_x, w_h, b_x, b_h = ours.parameters_of(k, d == 1)
                w_x.copy_(from_zrn(torch.from_numpy(layer["W"][d])))  # (3H, I)
                w_h.copy_(from_zrn(torch.from_numpy(layer["R"][d])))  # (3H, H)
                if b_x is not None:
                    b = torch.from_numpy(layer["B"][d])  # (6H,)
                    b_x.copy_(from_zrn(b[: 3 * H]))
                    b_h.copy_(from_zrn(b[3 * H :]))
    _verify(model, ours, x_name, path)
    return ours


def _verify(model, ours, x_name: str, path: Path) -> None:
    """Raise ValueError unless the graph, run by onnx's reference evaluator, computes what `ours` does.

    The structure checks above cannot see everything a graph may add around its GRU nodes (an op
    after the last one, a constant initial_h, a Reshape that mixes directions and batch), so the
    imported GRU is compared with the graph itself on a seeded input x (T = 3, N = 2 unless the
    graph fixes them). A float graph input of h0's shape (L·D, N, H), if there is exactly one, is
    fed a seeded random state, and the GRU starts from the same; other graph inputs are fed zeros
    or, when integer, T (lengths). The tolerance is 10 times the GRU's own rounding error in its dtype
    (its distance from the same GRU in float64), at least 1e-9.
    """
    from onnx import helper
    from onnx.reference import ReferenceEvaluator

    inputs = {i.name: i for i in model.graph.input if i.name not in {t.name for t in model.graph.initializer}}
    fixed = [d.dim_value if d.HasField("dim_value") else 0 for d in inputs[x_name].type.tensor_type.shape.dim]
    n_at, t_at = (0, 1) if ours.batch_first else (1, 0)
    T, N = (fixed[t_at] or 3, fixed[n_at] or 2) if len(fixed) == 3 else (3, 2)
    g = torch.Generator().manual_seed(0)
    x64 = torch.randn(T, N, ours.input_size, generator=g, dtype=torch.float64)  # (T, N, I)
    x64 = x64.transpose(0, 1) if ours.batch_first else x64  # (N, T, I) or (T, N, I): the graph's layout
    x_in = x64.to(ours.weight_x_l0.dtype)
    feeds = {x_name: x_in.numpy()}
    D = 2 if ours.bidirectional else 1
    state_shape = [ours.num_layers * D, N, ours.hidden_size]  # (L·D, N, H), grukit's h0
    states = []  # float inputs of h0's shape
    for name, extra in inputs.items():
        if name != x_name:  # an initial state or lengths (fed T)
            kind = extra.type.tensor_type
            shape = [d.dim_value if d.HasField("dim_value") else N for d in kind.shape.dim]  # a free dim: the batch
            np_dtype = helper.tensor_dtype_to_np_dtype(kind.elem_type)
            feeds[name] = np.full(shape, T if np.issubdtype(np_dtype, np.integer) else 0, dtype=np_dtype)
            if shape == state_shape and not np.issubdtype(np_dtype, np.integer):
                states.append(name)
    h0_64 = None
    if len(states) == 1:  # the graph's initial state: fed a random one, so a graph that routes it otherwise fails
        h0_64 = torch.randn(state_shape, generator=g, dtype=torch.float64)  # (L·D, N, H)
        feeds[states[0]] = h0_64.numpy().astype(feeds[states[0]].dtype)
    try:
        got = ReferenceEvaluator(model).run(None, feeds)
    except Exception as err:  # noqa: BLE001 - a graph the reference evaluator cannot run is not verified
        raise ValueError(f"{path}: could not run the graph to check the import: {err}") from err
    with torch.no_grad():
        h0 = None if h0_64 is None else h0_64.to(x_in.dtype)  # (L·D, N, H)
        ours_out = [t.double() for t in ours(x_in, h0)]  # output (N, T, D·H) or (T, N, D·H), h_n (L·D, N, H)
        exact = [t for t in copy.deepcopy(ours).double()(x64, h0_64)]  # the same in float64
    tol = max(1e-9, 10 * max(float((a - b).abs().max()) for a, b in zip(ours_out, exact)))
    output, h_n = ours_out
    output = output.transpose(0, 1) if ours.batch_first else output  # (T, N, D·H)
    per_direction = output.reshape(T, N, D, -1)  # (T, N, D, H)
    allowed = [output, output.transpose(0, 1), h_n, h_n[-D:],  # what a graph may expose, in its layouts:
               per_direction, per_direction.permute(0, 2, 1, 3)]  # ... also ONNX's own Y (T, D, N, H)
    for k, value in enumerate(got):
        if not any(tuple(value.shape) == tuple(t.shape) and np.allclose(value, t.numpy(), rtol=0, atol=tol)
                   for t in allowed):
            raise ValueError(f"{path}: graph output {k} ({model.graph.output[k].name!r}, shape {value.shape}) is "
                             f"not an output or state of the GRU it imports as (tolerance {tol:.2g}): the graph "
                             f"does more than grukit can hold (an op after the last GRU, a constant initial "
                             f"state, or a layout that mixes directions)")


def _perm(node, helper) -> list[int]:
    """A Transpose node's `perm`; without one, ONNX reverses the axes (of the rank-3 tensors read here)."""
    perm = [list(helper.get_attribute_value(a)) for a in node.attribute if a.name == "perm"]
    return perm[0] if perm else [2, 1, 0]


def _lengths_input(node, producer: dict, graph_inputs: set, path: Path, k: int) -> str:
    """The graph input that the node's sequence_lens (input 4) is, possibly through a Cast, or "" when it has
    none. ValueError for any other tensor: lengths are what the caller gives grukit.GRU at run time, never
    part of the model."""
    name = node.input[4] if len(node.input) > 4 else ""
    if name and name in producer and producer[name].op_type == "Cast":
        name = producer[name].input[0]
    if name and name not in graph_inputs:
        raise ValueError(f"{path}: GRU node {k} ({node.name!r}): expected sequence_lens to be a graph input "
                         f"(grukit takes lengths when it is called), got tensor {name!r} computed in the graph "
                         f"or fixed in it")
    return name


def _trace(name: str, producer: dict) -> tuple[str, list]:
    """Walk back from tensor `name` through layout-only ops; (where it starts, the ops passed)."""
    through = []
    while name in producer and producer[name].op_type in _SHAPE_OPS:
        through.append(producer[name])
        name = producer[name].input[0]
    return name, through


def _read_node(node, consts: dict, path: Path, k: int, helper) -> dict:
    """Attributes and weights of one GRU node, checked against what grukit computes."""
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    where = f"{path}: GRU node {k} ({node.name!r})"
    direction = attrs.get("direction", b"forward")
    direction = direction.decode() if isinstance(direction, bytes) else direction
    if direction not in ("forward", "bidirectional"):
        raise ValueError(f"{where}: expected direction 'forward' or 'bidirectional', got {direction!r} "
                         "(grukit has no reverse-only layer)")
    D = 2 if direction == "bidirectional" else 1
    acts = [a.decode() if isinstance(a, bytes) else a for a in attrs.get("activations", [])]
    if acts and [a.lower() for a in acts] != ["sigmoid", "tanh"] * D:
        raise ValueError(f"{where}: expected activations {['Sigmoid', 'Tanh'] * D}, got {acts}")
    for name in ("clip", "activation_alpha", "activation_beta"):
        if name in attrs:
            raise ValueError(
                f"{where}: expected no {name!r} attribute (grukit computes the plain GRU), got {attrs[name]}"
            )
    if attrs.get("layout", 0) != 0:
        raise ValueError(f"{where}: expected layout=0 (time-major), got layout={attrs['layout']}")
    weights = {}
    for i, name in enumerate(("W", "R", "B")):
        source = node.input[i + 1] if i + 1 < len(node.input) else ""  # input 0 is X
        if source == "":
            weights[name] = None
        elif source not in consts:
            raise ValueError(f"{where}: expected input {name} to be an initializer or Constant, got tensor {source!r}")
        else:
            weights[name] = consts[source]
    W, R, B = weights["W"], weights["R"], weights["B"]
    H = attrs.get("hidden_size", R.shape[-1])
    if (W.ndim != 3 or W.shape[:2] != (D, 3 * H) or R.shape != (D, 3 * H, H)
            or (B is not None and B.shape != (D, 6 * H))):
        raise ValueError(f"{where}: expected W (D, 3H, I), R (D, 3H, H), B (D, 6H) with D={D}, H={H}, got "
                         f"{W.shape}, {R.shape}, {None if B is None else B.shape}")
    if W.dtype not in (np.float16, np.float32, np.float64):
        raise ValueError(f"{where}: expected float16/32/64 weights, got {W.dtype}")
    return {"direction": direction, "lbr": bool(attrs.get("linear_before_reset", 0)), "H": H, "W": W, "R": R, "B": B}
