"""grukit GRU → ONNX file → ONNX Runtime: same numbers as grukit; from_onnx reads the weights back bit for bit.

Tolerance 1e-5 in float32: ONNX Runtime computes the same function with the same
weights; only float rounding differs.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

onnx = pytest.importorskip(
    "onnx", reason="the optional 'interop' extra is deliberately not installed (pip install 'grukit[interop]')"
)
ort = pytest.importorskip(
    "onnxruntime", reason="the optional 'interop' extra is deliberately not installed (pip install 'grukit[interop]')"
)

from onnx import helper, numpy_helper  # noqa: E402

from grukit import GRU, GRUCell  # noqa: E402
from grukit.interop import from_onnx, to_onnx  # noqa: E402

ATOL = 1e-5
I, H = 4, 5


def _session(path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _feeds(model, batch_first, T, N, *, h0=False, lengths=None, dtype=torch.float32, seed=1):
    g = torch.Generator().manual_seed(seed)
    D = 2 if model.bidirectional else 1
    x = torch.randn(*((N, T, I) if batch_first else (T, N, I)), generator=g, dtype=dtype)
    feeds, kwargs = {"x": x.numpy()}, {}
    if h0:
        state = torch.randn(model.num_layers * D, N, H, generator=g, dtype=dtype)
        feeds["h0"], kwargs["h0"] = state.numpy(), state
    if lengths is not None:
        feeds["lengths"] = np.asarray(lengths, dtype=np.int64)
        kwargs["lengths"] = torch.tensor(lengths)
    return x, feeds, kwargs


def _random_biases(model):
    """torch-style init already gives random biases; make them clearly non-zero anyway."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.startswith("bias"):
                p.add_(0.3)
    return model


CASES = [  # (num_layers, bidirectional, batch_first, with_h0, lengths)
    (1, False, False, False, None),
    (1, True, True, True, None),
    (2, False, False, True, [6, 2, 4]),
    (2, True, False, False, [3, 6, 1]),
    (2, True, True, True, [5, 6, 2]),
]


@pytest.mark.parametrize("reset", ["before", "after"])
@pytest.mark.parametrize("L, bi, bf, with_h0, lengths", CASES)
def test_onnx_runtime_matches_grukit(tmp_path, reset, L, bi, bf, with_h0, lengths):
    torch.manual_seed(0)
    model = _random_biases(GRU(I, H, L, bidirectional=bi, batch_first=bf, reset=reset)).eval()
    path = tmp_path / "gru.onnx"
    to_onnx(model, path, with_h0=with_h0, with_lengths=lengths is not None)
    session = _session(path)
    for T, N in ((6, 3), (2, 3)) if lengths is None else ((6, 3),):  # dynamic T and N
        x, feeds, kwargs = _feeds(model, bf, T, N, h0=with_h0, lengths=lengths)
        y_ort, h_ort = session.run(["output", "h_n"], feeds)
        with torch.no_grad():
            y, h = model(x, **kwargs)
        assert y_ort.shape == tuple(y.shape) and h_ort.shape == tuple(h.shape)
        assert np.abs(y_ort - y.numpy()).max() <= ATOL
        assert np.abs(h_ort - h.numpy()).max() <= ATOL
        if lengths is not None:  # padded steps are zeros in both
            for n, length in enumerate(lengths):
                assert not np.any((y_ort[n, length:] if bf else y_ort[length:, n]))


@pytest.mark.parametrize("reset", ["before", "after"])
def test_graph_is_one_gru_node_per_layer(tmp_path, reset):
    model = GRU(I, H, 3, bidirectional=True, reset=reset)
    path = tmp_path / "gru.onnx"
    to_onnx(model, path, with_lengths=True, opset=14)
    graph = onnx.load(str(path)).graph
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    grus = [n for n in graph.node if n.op_type == "GRU"]
    assert len(grus) == 3
    assert {n.op_type for n in graph.node} <= {"GRU", "Transpose", "Reshape", "Concat", "Cast"}
    for node in grus:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        assert attrs["linear_before_reset"] == (1 if reset == "after" else 0)
        assert attrs["direction"] == b"bidirectional" and attrs["hidden_size"] == H
        assert node.input[4] == "sequence_lens"
    x_dims = [d.dim_param or d.dim_value for d in graph.input[0].type.tensor_type.shape.dim]
    assert x_dims == ["T", "N", I]


@pytest.mark.parametrize("reset", ["before", "after"])
@pytest.mark.parametrize("bias", [True, False])
def test_from_onnx_round_trip_is_bit_exact(tmp_path, reset, bias):
    torch.manual_seed(0)
    model = GRU(I, H, 2, bias=bias, bidirectional=True, batch_first=True, reset=reset)
    path = tmp_path / "gru.onnx"
    to_onnx(model, path)
    twin = from_onnx(path)
    assert twin.config == model.config
    params, twin_params = dict(model.named_parameters()), dict(twin.named_parameters())
    assert params.keys() == twin_params.keys()
    for name, value in params.items():
        assert torch.equal(twin_params[name], value), name
    assert from_onnx(_export(model, tmp_path, batch_first=False)).batch_first is False


def _export(model, tmp_path, **options):
    path = tmp_path / "other.onnx"
    to_onnx(model, path, **options)
    return path


@pytest.mark.parametrize("reset", ["before", "after"])
def test_float64_export_runs_in_onnx_reference_evaluator(tmp_path, reset):
    """ONNX Runtime's GRU kernel is float32-only ("does not support double yet"); onnx's own
    reference evaluator runs the float64 file, to float64 rounding."""
    from onnx.reference import ReferenceEvaluator

    torch.manual_seed(0)
    model = GRU(I, H, 2, bidirectional=True, reset=reset, dtype=torch.float64)
    path = _export(model, tmp_path, with_h0=True)
    x, feeds, kwargs = _feeds(model, False, 6, 2, h0=True, dtype=torch.float64)
    y_ref, h_ref = ReferenceEvaluator(str(path)).run(None, feeds)
    with torch.no_grad():
        y, h = model(x, **kwargs)
    assert np.abs(y_ref - y.numpy()).max() <= 1e-12
    assert np.abs(h_ref - h.numpy()).max() <= 1e-12
    assert from_onnx(path).weight_x_l0.dtype == torch.float64


def test_float16_export_keeps_its_weights_and_runs_in_onnx_reference_evaluator(tmp_path):
    """The module says float16 models export (found by a review: nothing tried one). The file holds the model's
    float16 weights bit for bit, and onnx's reference evaluator, computing in float16, agrees with the same
    weights run in float32 to float16 rounding."""
    from onnx.reference import ReferenceEvaluator

    torch.manual_seed(0)
    model = GRU(I, H, 2, bidirectional=True, dtype=torch.float16)
    path = _export(model, tmp_path, with_h0=True)
    back = from_onnx(path)
    assert all(p.dtype == torch.float16 for p in back.parameters())
    assert all(torch.equal(a, b) for a, b in zip(back.parameters(), model.parameters()))
    x, feeds, kwargs = _feeds(model, False, 6, 2, h0=True, dtype=torch.float16)
    y_ref, h_ref = ReferenceEvaluator(str(path)).run(None, feeds)
    assert y_ref.dtype == np.float16
    with torch.no_grad():
        y, h = model.float()(x.float(), kwargs["h0"].float())
    assert np.abs(y_ref.astype(np.float32) - y.numpy()).max() <= 1e-2
    assert np.abs(h_ref.astype(np.float32) - h.numpy()).max() <= 1e-2


def test_bad_arguments(tmp_path):
    with pytest.raises(TypeError, match="grukit.GRU"):
        to_onnx(GRUCell(I, H), tmp_path / "c.onnx")
    with pytest.raises(ValueError, match="opset"):
        to_onnx(GRU(I, H), tmp_path / "g.onnx", opset=7)
    with pytest.raises(ValueError, match="float16, float32 or float64"):
        to_onnx(GRU(I, H, dtype=torch.bfloat16), tmp_path / "g.onnx")
    assert not list(tmp_path.iterdir())
    for flag in ("with_h0", "with_lengths"):  # found by a review: "no" was read by its truth and added the input
        with pytest.raises(TypeError, match=f"{flag}: expected True or False, got 'no'"):
            to_onnx(GRU(I, H), tmp_path / "g.onnx", **{flag: "no"})
    assert not list(tmp_path.iterdir())
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x00 not an onnx model \xff" * 10)
    with pytest.raises(ValueError, match="not a valid ONNX model"):
        from_onnx(junk)
    with pytest.raises(FileNotFoundError, match="no such ONNX file"):
        from_onnx(tmp_path / "nope.onnx")
    with pytest.raises(ValueError, match="expected an ONNX file, got a path that is a folder"):
        from_onnx(tmp_path)


def _hand_made_gru(tmp_path, **attributes):
    """A one-node ONNX graph, as another exporter might write it."""
    W = numpy_helper.from_array(np.zeros((1, 3 * H, I), np.float32), "W")
    R = numpy_helper.from_array(np.zeros((1, 3 * H, H), np.float32), "R")
    node = helper.make_node("GRU", ["X", "W", "R"], ["Y", "Y_h"], hidden_size=H, **attributes)
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("X", onnx.TensorProto.FLOAT, ["T", "N", I])],
        [helper.make_tensor_value_info("Y_h", onnx.TensorProto.FLOAT, [1, "N", H])], initializer=[W, R])
    path = tmp_path / "hand.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def test_from_onnx_reads_a_hand_made_graph_and_refuses_what_it_cannot_represent(tmp_path):
    model = from_onnx(_hand_made_gru(tmp_path))
    assert (model.num_layers, model.bidirectional, model.reset, model.bias_x_l0) == (1, False, "before", None)
    with pytest.raises(ValueError, match="reverse-only"):
        from_onnx(_hand_made_gru(tmp_path, direction="reverse"))
    with pytest.raises(ValueError, match="activations"):
        from_onnx(_hand_made_gru(tmp_path, activations=["Sigmoid", "Relu"]))
    with pytest.raises(ValueError, match="clip"):
        from_onnx(_hand_made_gru(tmp_path, clip=5.0))


def _relu_after_the_last_gru(m):
    for node in m.graph.node:
        node.output[:] = ["pre" if o == "output" else o for o in node.output]
    m.graph.node.append(helper.make_node("Relu", ["pre"], ["output"]))


def _relu_on_h_n_alone(m):  # found by a review: no edit touched h_n alone, so a check of `output` alone passed
    for node in m.graph.node:
        node.output[:] = ["pre_h_n" if o == "h_n" else o for o in node.output]
    m.graph.node.append(helper.make_node("Relu", ["pre_h_n"], ["h_n"]))


def _output_scaled_by_one_thousandth_more(m):  # found by a review: every edit was large, so a loose check passed
    for node in m.graph.node:
        node.output[:] = ["pre" if o == "output" else o for o in node.output]
    m.graph.initializer.append(numpy_helper.from_array(np.array(1.001, np.float32), "scale"))
    m.graph.node.append(helper.make_node("Mul", ["pre", "scale"], ["output"]))


def _constant_initial_h(m):
    m.graph.initializer.append(numpy_helper.from_array(np.full((1, 2, 4), 3.0, np.float32), "h0_const"))
    gru = next(n for n in m.graph.node if n.op_type == "GRU")
    gru.input.extend([""] * (5 - len(gru.input)) + ["h0_const"])


def _directions_mixed_into_the_batch(m):
    for node in m.graph.node:
        if node.op_type == "Transpose" and list(node.attribute[0].ints) == [0, 2, 1, 3]:
            node.attribute[0].ints[:] = [0, 1, 2, 3]  # Y (T, D, N, H) reshaped straight to (T, N, D·H)


@pytest.mark.parametrize(("bidirectional", "edit"), [(False, _relu_after_the_last_gru), (False, _constant_initial_h),
                                                     (True, _directions_mixed_into_the_batch),
                                                     (True, _relu_on_h_n_alone),
                                                     (False, _output_scaled_by_one_thousandth_more)])
def test_from_onnx_refuses_a_graph_that_computes_something_else(tmp_path, bidirectional, edit):
    """Each edit passes the node-by-node checks; only running the graph shows the difference."""
    path = tmp_path / "gru.onnx"
    to_onnx(GRU(3, 4, 1 + bidirectional, bidirectional=bidirectional), path)
    from_onnx(path)  # unedited: accepted
    m = onnx.load(str(path))
    edit(m)
    onnx.save(m, str(path))
    with pytest.raises(ValueError, match="is not an output or state of the GRU it imports as"):
        from_onnx(path)


def test_from_onnx_checks_graphs_with_fixed_sizes_and_x_not_listed_first(tmp_path):
    path = tmp_path / "gru.onnx"
    ours = GRU(3, 4, 2, bidirectional=True)
    to_onnx(ours, path, with_h0=True)
    m = onnx.load(str(path))
    for value in list(m.graph.input) + list(m.graph.output):  # T = 5, N = 4 fixed, as an export without
        for dim in value.type.tensor_type.shape.dim:          # dynamic axes writes them
            if dim.dim_param:
                dim.dim_value = {"T": 5, "N": 4}[dim.dim_param]
    x, h0 = list(m.graph.input)
    del m.graph.input[:]
    m.graph.input.extend([h0, x])  # h0 listed before x
    onnx.save(m, str(path))
    assert torch.equal(from_onnx(path).weight_h_l1_reverse, ours.weight_h_l1_reverse)


def _graph_of(tmp_path, nodes, x_shape, initializer):
    """A graph reading X (x_shape) through `nodes` and returning Y_h (1, 2, H), saved; its path."""
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("X", onnx.TensorProto.FLOAT, x_shape)],
        [helper.make_tensor_value_info("Y_h", onnx.TensorProto.FLOAT, [1, 2, H])], initializer=initializer)
    path = tmp_path / "made.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def test_from_onnx_refuses_lengths_fixed_in_the_graph_and_a_transpose_it_cannot_hold(tmp_path):
    """Found by a review: a constant sequence_lens was dropped (onnx's reference evaluator ignores lengths, so
    the run check could not see it), and a Transpose without `perm` raised IndexError."""
    rng = np.random.default_rng(0)
    weights = [numpy_helper.from_array(rng.standard_normal((1, 3 * H, n)).astype(np.float32), name)
               for name, n in (("W", I), ("R", H))]
    lengths = numpy_helper.from_array(np.array([1, 1], np.int32), "lengths")
    path = _graph_of(tmp_path, [helper.make_node("GRU", ["X", "W", "R", "", "lengths"], ["Y", "Y_h"], hidden_size=H)],
                     ["T", 2, I], weights + [lengths])
    with pytest.raises(ValueError, match="expected sequence_lens to be a graph input .* got tensor 'lengths'"):
        from_onnx(path)
    path = _graph_of(tmp_path, [helper.make_node("Transpose", ["X"], ["X_t"]),  # no perm: (I, N, T) → (T, N, I)
                                helper.make_node("GRU", ["X_t", "W", "R"], ["Y", "Y_h"], hidden_size=H)],
                     [I, 2, "T"], weights)
    with pytest.raises(ValueError, match="check the import|not an output or state"):
        from_onnx(path)


@pytest.mark.parametrize("layer", [0, 1])
def test_from_onnx_refuses_lengths_on_some_layers_only(tmp_path, layer):
    """Found by a review: a graph whose lengths fed layer 0 alone was imported, and then differed from onnxruntime
    by 0.56 for lengths [5, 2] (grukit applies one lengths to every layer; the run check feeds lengths = T)."""
    path = tmp_path / "gru.onnx"
    to_onnx(GRU(3, 4, 2, bidirectional=True, reset="after"), path, with_lengths=True)
    from_onnx(path)  # unedited: accepted
    m = onnx.load(str(path))
    for node in m.graph.node:
        if node.op_type == "GRU" and node.name.endswith(f"_l{layer}"):
            del node.input[4:]  # this layer runs over all T steps
    onnx.save(m, str(path))
    say = ("none", "graph input 'lengths'") if layer == 0 else ("graph input 'lengths'", "none")
    with pytest.raises(ValueError, match=rf"GRU node 1 .*expected the sequence_lens of node 0 \({say[0]}\), since "
                                         rf"grukit applies one lengths to every layer, got {say[1]}"):
        from_onnx(path)


def test_from_onnx_runs_the_graph_from_a_nonzero_initial_state(tmp_path):
    """Found by a review: the run check fed h0 = 0 only, so a graph whose layers read each other's slice of
    h0 was accepted, and then differed from onnxruntime by 0.9 for the same h0."""
    path = tmp_path / "gru.onnx"
    to_onnx(GRU(3, 4, 2), path, with_h0=True)
    from_onnx(path)  # unedited: accepted
    m = onnx.load(str(path))
    swapped = {"h0_start_l0": 1, "h0_end_l0": 2, "h0_start_l1": 0, "h0_end_l1": 1}  # layer 0 reads h0[1] ...
    for init in m.graph.initializer:
        if init.name in swapped:
            init.CopyFrom(numpy_helper.from_array(np.array([swapped[init.name]], np.int64), init.name))
    onnx.save(m, str(path))
    with pytest.raises(ValueError, match="is not an output or state of the GRU it imports as"):
        from_onnx(path)



def test_only_a_batch_time_swap_makes_the_import_batch_first(tmp_path):
    """A Transpose before the first GRU that is not perm=[1, 0, 2] (here the identity) does not mark the graph
    batch-first: it imports as a time-major GRU with the same weights."""
    torch.manual_seed(0)
    ours = GRU(3, 4)
    path = tmp_path / "gru.onnx"
    to_onnx(ours, path, batch_first=False)
    m = onnx.load(str(path))
    gru = next(n for n in m.graph.node if n.op_type == "GRU")
    gru.input[0] = "x_same"
    m.graph.node.insert(0, helper.make_node("Transpose", ["x"], ["x_same"], perm=[0, 1, 2]))
    onnx.save(m, str(path))
    back = from_onnx(path)
    assert back.batch_first is False
    assert torch.equal(back.weight_x_l0, ours.weight_x_l0)


def test_layers_with_and_without_biases_are_refused_naming_the_settings(tmp_path):
    """A graph whose layer 1 has no B while layer 0 has one is a ValueError naming the mismatched settings."""
    path = tmp_path / "gru.onnx"
    to_onnx(GRU(3, 4, 2), path)
    m = onnx.load(str(path))
    second = [n for n in m.graph.node if n.op_type == "GRU"][1]
    del second.input[3:]  # drop B (and nothing after it: no lengths, no h0)
    onnx.save(m, str(path))
    with pytest.raises(ValueError, match="expected the settings of node 0"):
        from_onnx(path)


def test_a_batch_major_layout_attribute_is_refused(tmp_path):
    """layout=1 (batch-major GRU node) is refused by name, not imported as time-major."""
    I, H = 4, 5
    rng = np.random.default_rng(0)
    W = numpy_helper.from_array(rng.standard_normal((1, 3 * H, I)).astype(np.float32), "W")
    R = numpy_helper.from_array(rng.standard_normal((1, 3 * H, H)).astype(np.float32), "R")
    node = helper.make_node("GRU", ["X", "W", "R"], ["Y", "Y_h"], hidden_size=H, layout=1)
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("X", onnx.TensorProto.FLOAT, ["N", "T", I])],
        [helper.make_tensor_value_info("Y_h", onnx.TensorProto.FLOAT, ["N", 1, H])], initializer=[W, R])
    path = tmp_path / "layout.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    with pytest.raises(ValueError, match="expected layout=0"):
        from_onnx(path)
