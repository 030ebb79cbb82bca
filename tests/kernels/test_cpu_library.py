"""The `cpu` kernel as custom ops (`grukit.kernels.cpu._library`): torch's own op checks, torch.export of
grukit.GRU (dynamic shapes, lengths, gradients through the exported program), a fake-tensor trace of a whole
training step, and the eager path left as it was."""
import itertools
import re

import pytest
import torch
from torch.export import Dim
from torch.fx.experimental.proxy_tensor import make_fx

import grukit
from grukit.kernels import cpu
from grukit.kernels.cpu import _library

pytestmark = pytest.mark.skipif(not cpu.available(), reason="grukit cpu kernel could not be built (see its warning)")


def _sequence_args(T, N, I, H, *, bias, masked, training, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)

    def leaf(*shape):
        return (torch.randn(*shape, generator=g, dtype=dtype) / H**0.5).requires_grad_(training)

    mask = None
    if masked:
        lengths = torch.randint(1, T + 1, (N,), generator=g)  # (N,)
        mask = (torch.arange(T)[:, None] < lengths[None, :]).to(dtype)  # (T, N)
    biases = (leaf(3 * H), leaf(3 * H)) if bias else (None, None)
    return leaf(T, N, I), leaf(N, H), leaf(3 * H, I), leaf(3 * H, H), *biases, mask  # x, h0, W_x, W_h, b_x, b_h, mask


@pytest.mark.parametrize("after,reverse,bias,masked", list(itertools.product((False, True), repeat=4)))
def test_opcheck_passes_for_the_forward_op(after, reverse, bias, masked):
    """torch.library.opcheck: schema, fake (shapes) against the real op, autograd registration, AOT dispatch."""
    args = _sequence_args(4, 3, 2, 5, bias=bias, masked=masked, training=True)
    torch.library.opcheck(_library.sequence_op, (*args, after, reverse, True))
    with torch.no_grad():
        torch.library.opcheck(_library.sequence_op, (*args, after, reverse, False))


@pytest.mark.parametrize("after,has_bias,need_dx", list(itertools.product((False, True), repeat=3)))
def test_opcheck_passes_for_the_backward_op(after, has_bias, need_dx):
    x, h0, W_x, W_h, b_x, b_h, mask = _sequence_args(4, 3, 2, 5, bias=has_bias, masked=True, training=True)
    with torch.no_grad():
        _, _, states, cache = _library.sequence_op(x, h0, W_x, W_h, b_x, b_h, mask, after, False, True)
    d_output, d_h_n = torch.randn_like(states), torch.randn_like(h0)  # (T, N, H), (N, H)
    args = (d_output, d_h_n, x.detach(), h0.detach(), W_x.detach(), W_h.detach(), mask, states, cache, after, False,
            has_bias, need_dx)
    torch.library.opcheck(_library.backward_op, args, test_utils=("test_schema", "test_faketensor"))
    dx, dh0, dW_x, dW_h, db_x, db_h = _library.backward_op(*args)
    assert dx.shape == ((4, 3, 2) if need_dx else (0,)) and db_x.shape == db_h.shape == ((15,) if has_bias else (0,))


@pytest.mark.parametrize("after,reverse,bias,masked", list(itertools.product((False, True), repeat=4)))
def test_the_forward_op_and_its_gradients_are_the_eager_kernels(after, reverse, bias, masked):
    """The op path and the autograd.Function path run the same C++: the same bits, forward and backward."""
    args = _sequence_args(5, 4, 3, 6, bias=bias, masked=masked, training=True)
    leaves = [a for a in args[:6] if a is not None]
    d_output, d_h_n = torch.randn(5, 4, 6, dtype=torch.float64), torch.randn(4, 6, dtype=torch.float64)
    results = []
    for run in (lambda: _library.sequence_op(*args, after, reverse, True)[:2],
                lambda: cpu.sequence(*args[:6], reset="after" if after else "before", mask=args[6], reverse=reverse)):
        output, h_n = run()  # (T, N, H), (N, H)
        grads = torch.autograd.grad((output * d_output).sum() + (h_n * d_h_n).sum(), leaves)
        results.append((output, h_n, *grads))
    for got, want in zip(*results):
        assert torch.equal(got, want)


def test_a_gradient_of_a_gradient_through_the_op_is_refused_as_on_the_eager_path():
    x, h0, W_x, W_h, b_x, b_h, mask = _sequence_args(3, 2, 2, 3, bias=True, masked=False, training=True)
    output, _ = _library.sequence_op(x, h0, W_x, W_h, b_x, b_h, mask, True, False, True)[:2]  # (T, N, H)
    with pytest.raises(RuntimeError, match=r"^backend 'cpu': its backward is first order only"):
        torch.autograd.grad(output.sum(), W_h, create_graph=True)


@pytest.mark.parametrize("reset", ["before", "after"])
def test_torch_export_records_one_node_per_layer_and_direction_and_runs_at_other_shapes(reset):
    torch.manual_seed(0)
    gru = grukit.GRU(3, 4, num_layers=2, bidirectional=True, reset=reset)
    T, N = Dim("T", min=2, max=1000), Dim("N", min=2, max=512)
    with torch.no_grad():
        program = torch.export.export(gru, (torch.randn(5, 2, 3),), dynamic_shapes=({0: T, 1: N},))
    nodes = [n for n in program.graph.nodes if n.target is torch.ops.grukit.cpu_sequence.default]
    assert len(nodes) == 4 and {n.args[7] for n in nodes} == {reset == "after"}  # after: bool
    assert {n.args[9] for n in nodes} == {False}  # training: no cache kept in an inference graph
    for shape in [(5, 2, 3), (17, 9, 3), (2, 300, 3)]:
        x = torch.randn(*shape)  # (T, N, I)
        for got, want in zip(program.module()(x), gru(x)):
            torch.testing.assert_close(got, want, rtol=0, atol=0)


@pytest.mark.parametrize("batch_first", [False, True])
def test_a_program_with_a_dynamic_T_refuses_an_empty_sequence_as_the_layer_does(batch_first):
    """torch.export records T >= 1 as a range but its program does not enforce it: grukit::checked_steps refuses
    T = 0 with the layer's message, where the program gave an empty output and h_n = h0."""
    torch.manual_seed(0)
    gru = grukit.GRU(3, 4, batch_first=batch_first)
    x = torch.randn(2, 5, 3) if batch_first else torch.randn(5, 2, 3)  # (N, T, I) or (T, N, I)
    h0 = torch.randn(1, 2, 4, requires_grad=True)  # (L·D, N, H)
    program = torch.export.export(gru, (x, h0), dynamic_shapes=({int(batch_first): Dim("T", min=1, max=100)}, None))
    empty = x.narrow(int(batch_first), 0, 0)  # T = 0
    message = f"^x: expected at least one time step, got shape {re.escape(str(tuple(empty.shape)))}$"
    for run in (gru, program.module()):
        with pytest.raises(ValueError, match=message):
            run(empty, h0)
    one_step = x.narrow(int(batch_first), 0, 1)  # T = 1, the least the program takes
    (got_h0,) = torch.autograd.grad(program.module()(one_step, h0)[1].sum(), h0)
    (want_h0,) = torch.autograd.grad(gru(one_step, h0)[1].sum(), h0)
    torch.testing.assert_close(got_h0, want_h0, rtol=0, atol=0)  # the check passes h0's gradient through
    torch.testing.assert_close(program.module()(one_step, h0)[0], gru(one_step, h0)[0], rtol=0, atol=0)


def test_torch_export_takes_lengths_and_the_program_checks_them_as_it_runs():
    """The check of `lengths` is an op of the program (grukit::checked_lengths), so a bad one gets grukit's
    message, with the T of the call; torch._check's assertions said "u1 <= 6" (a review)."""
    torch.manual_seed(0)
    gru = grukit.GRU(3, 4, batch_first=True)
    x, lengths = torch.randn(3, 6, 3), torch.tensor([6, 2, 4])  # (N, T, I), (N,)
    program = torch.export.export(gru, (x,), {"lengths": lengths},
                                  dynamic_shapes={"x": {1: Dim("T", min=2, max=100)}, "lengths": None})
    longer = torch.randn(3, 9, 3)  # (N, T, I)
    for inputs, other in ((x, [1, 6, 3]), (x, [2, 2, 2]), (longer, [9, 1, 5])):
        got, want = program.module()(inputs, lengths=torch.tensor(other)), gru(inputs, lengths=torch.tensor(other))
        for a, b in zip(got, want, strict=True):
            torch.testing.assert_close(a, b, rtol=0, atol=0)
    for inputs, bad, message in ((x, [7, 2, 4], "1..6 (T), got values from 2 to 7"),
                                 (x, [0, 2, 4], "1..6 (T), got values from 0 to 4"),
                                 (longer, [10, 1, 5], "1..9 (T), got values from 1 to 10")):
        with pytest.raises(ValueError, match=f"^lengths: expected every value in {re.escape(message)}$"):
            program.module()(inputs, lengths=torch.tensor(bad))


def test_gradients_through_an_exported_program_are_the_layers():
    torch.manual_seed(0)
    gru = grukit.GRU(3, 4, num_layers=2, dtype=torch.float64)
    x = torch.randn(5, 2, 3, dtype=torch.float64)  # (T, N, I)
    program = torch.export.export(gru, (x,))
    exported = program.module()
    assert {n.args[9] for n in program.graph.nodes if n.target is torch.ops.grukit.cpu_sequence.default} == {True}

    def gradients(module):
        output, h_n = module(x)  # (T, N, H), (L, N, H)
        return torch.autograd.grad(output.square().sum() + h_n.sum(), list(module.parameters()))

    for got, want in zip(gradients(exported), gradients(gru), strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=1e-12)


def test_a_fake_tensor_trace_of_a_training_step_holds_both_ops_and_replays_the_eager_gradients():
    """make_fx in fake mode runs no kernel: forward and backward are shapes only, the two ops' fake functions."""
    args = _sequence_args(5, 3, 2, 4, bias=True, masked=True, training=False)

    def grads(x, h0, W_x, W_h, b_x, b_h, mask):
        leaves = [t.detach().requires_grad_() for t in (x, h0, W_x, W_h, b_x, b_h)]
        output, h_n = cpu.sequence(*leaves, reset="after", mask=mask)  # (T, N, H), (N, H)
        return torch.autograd.grad(output.square().sum() + h_n.sum(), leaves)

    graph = make_fx(grads, tracing_mode="fake")(*args)
    targets = {n.target for n in graph.graph.nodes}
    assert {torch.ops.grukit.cpu_sequence.default, torch.ops.grukit.cpu_sequence_backward.default} <= targets
    for got, want in zip(graph(*args), grads(*args), strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=1e-12)


def test_eager_calls_take_the_autograd_function_not_the_op():
    """The dispatcher costs more than a short sequence: outside capture the layer keeps its eager path."""
    x, h0, W_x, W_h, b_x, b_h, mask = _sequence_args(3, 2, 2, 3, bias=True, masked=False, training=True)
    assert not _library.capturing(x)
    output, _ = cpu.sequence(x, h0, W_x, W_h, b_x, b_h, reset="after")  # (T, N, H)
    assert type(output.grad_fn).__name__ == "_SequenceBackward"


def test_an_exported_program_saves_and_loads_and_gives_the_same_outputs(tmp_path):
    torch.manual_seed(0)
    gru = grukit.GRU(3, 4, bidirectional=True, reset="after")
    x = torch.randn(6, 2, 3)  # (T, N, I)
    with torch.no_grad():
        torch.export.save(torch.export.export(gru, (x,)), tmp_path / "gru.pt2")
        loaded = torch.export.load(tmp_path / "gru.pt2").module()
        for got, want in zip(loaded(x), gru(x), strict=True):
            torch.testing.assert_close(got, want, rtol=0, atol=0)


def test_a_gradient_through_a_program_captured_without_gradients_is_refused_not_a_crash():
    """A review: a program exported under no_grad keeps no states (training=False); run with gradients on, its
    backward read the empty buffers out of bounds and killed the process (a segmentation fault)."""
    torch.manual_seed(0)
    gru = grukit.GRU(5, 6)
    x = torch.randn(7, 3, 5)  # (T, N, I)
    with torch.no_grad():
        program = torch.export.export(gru, (x,))
    output, _ = program.module()(x)  # (T, N, H): the parameters require grad, so output does too
    with pytest.raises(RuntimeError, match=r"^grukit::cpu_sequence: a gradient was asked of a call made with "
                                           r"training=False, which keeps no states for backward"):
        output.sum().backward()


def test_the_kernels_backward_refuses_buffers_of_other_sizes():
    """The C++ backward reads states (T, N, H) and cache (T, N, 4H) as raw memory: any other size is refused."""
    x, h0, W_x, W_h, _, _, _ = _sequence_args(4, 3, 2, 5, bias=False, masked=False, training=False)
    _, _, states, cache = _library.sequence_op(x, h0, W_x, W_h, None, None, None, True, False, True)
    d_output, d_h_n = torch.ones_like(states), torch.ones_like(h0)  # (T, N, H), (N, H)
    for wrong in ({"states": states[:, :2]}, {"cache": cache[:, :, :15]}, {"cache": x.new_empty(0)},
                  {"d_output": d_output[:3]}, {"d_h_n": d_h_n[:2]}):
        given = {"states": states, "cache": cache, "d_output": d_output, "d_h_n": d_h_n, **wrong}
        expected = ("expected states and d_output (4, 3, 5), cache (4, 3, 20) (a forward with training=true) "
                    "and d_h_n (3, 5)")
        with pytest.raises(RuntimeError, match="grukit cpu kernel backward: " + re.escape(expected)):
            cpu._ops().backward(given["d_output"], given["d_h_n"], x, h0, W_x, W_h, None, given["states"],
                                given["cache"], True, False, False, True)


@pytest.mark.parametrize("num_layers", [1, 2])
def test_torch_export_of_streaming_steps_runs_the_kernel_as_an_op(num_layers):
    """GRU.step's C++ step reads raw memory too: while a graph is captured it runs as a one-step sequence op.
    Its arithmetic is the sequence kernel's, so float32 agrees with the eager step to rounding, not to the bit."""
    torch.manual_seed(0)

    class Stream(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.gru = grukit.GRU(3, 4, num_layers=num_layers)

        def forward(self, x_t, h):
            return self.gru.step(x_t, h)  # (L, N, H)

    stream = Stream()
    h = torch.zeros(num_layers, 2, 4)  # (L, N, H)
    program = torch.export.export(stream, (torch.randn(2, 3), h))
    graphs = [m.graph for m in program.graph_module.modules() if isinstance(m, torch.fx.GraphModule)]
    ops = [n for g in graphs for n in g.nodes if n.target is torch.ops.grukit.cpu_sequence.default]
    assert len(ops) == num_layers
    h_program, h_eager = h, h
    for x_t in torch.randn(6, 2, 3):  # (N, I) each
        h_program, h_eager = program.module()(x_t, h_program), stream(x_t, h_eager)  # (L, N, H) each
        torch.testing.assert_close(h_program, h_eager, rtol=0, atol=1e-6)
