"""grukit.GRU: torch.nn.GRU agreement, lengths, packing, dropout, step, gates, bad input."""
import subprocess
import sys
import warnings

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import grukit
from grukit import kernels

BACKENDS = [name for name in ("eager", "fused", "cpu") if kernels.available(name)]


TORCH_NAMES = {"weight_x": "weight_ih", "weight_h": "weight_hh", "bias_x": "bias_ih", "bias_h": "bias_hh"}


def _copy_from_torch(gru, module):
    """Copy torch.nn.GRU weights into a reset="after" grukit.GRU, negating the z rows (z_ours = 1 − z_torch)."""
    H = module.hidden_size
    with torch.no_grad():
        for name, p in gru.named_parameters():
            kind, rest = name.rsplit("_l", 1)
            value = getattr(module, f"{TORCH_NAMES[kind]}_l{rest}").clone()
            value[H : 2 * H] *= -1
            p.copy_(value)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("lengths", (None, [7, 3, 1, 5]))
@pytest.mark.parametrize("bidirectional", (False, True))
def test_matches_torch_gru(backend, lengths, bidirectional):
    torch.manual_seed(0)
    module = torch.nn.GRU(3, 6, 2, bidirectional=bidirectional, dtype=torch.float64)
    gru = grukit.GRU(3, 6, 2, bidirectional=bidirectional, reset="after", backend=backend, dtype=torch.float64)
    _copy_from_torch(gru, module)
    x = torch.randn(7, 4, 3, dtype=torch.float64)  # (T, N, I)
    h0 = torch.randn(2 * (1 + bidirectional), 4, 6, dtype=torch.float64)  # (L·D, N, H)
    if lengths is None:
        want, want_hn = module(x, h0)
    else:
        packed = pack_padded_sequence(x, torch.tensor(lengths), enforce_sorted=False)
        want, want_hn = module(packed, h0)
        want, _ = pad_packed_sequence(want, total_length=7)  # (T, N, D·H)
    got, got_hn = gru(x, h0, lengths=lengths)
    assert (got - want).abs().max() <= 1e-10  # float64: the same function, only rounding differs
    assert (got_hn - want_hn).abs().max() <= 1e-10
    d_out, d_hn = torch.randn_like(got), torch.randn_like(got_hn)  # and the same gradients, by torch's own autograd
    want_grads = torch.autograd.grad((want * d_out).sum() + (want_hn * d_hn).sum(), list(module.parameters()))
    got_grads = torch.autograd.grad((got * d_out).sum() + (got_hn * d_hn).sum(), list(gru.parameters()))
    theirs = dict(zip((name for name, _ in module.named_parameters()), want_grads))
    H = module.hidden_size
    for (name, _), grad in zip(gru.named_parameters(), got_grads):
        kind, rest = name.rsplit("_l", 1)
        want_grad = theirs[f"{TORCH_NAMES[kind]}_l{rest}"].clone()
        want_grad[H : 2 * H] *= -1  # the z rows were negated (_copy_from_torch), so are their gradients
        assert (grad - want_grad).abs().max() <= 1e-10, name


def test_packed_sequence_round_trip():
    torch.manual_seed(0)
    gru = grukit.GRU(3, 4, bidirectional=True, dtype=torch.float64)
    x = torch.randn(6, 3, 3, dtype=torch.float64)
    lengths = torch.tensor([2, 6, 4])
    want, want_hn = gru(x, lengths=lengths)
    got_packed, got_hn = gru(pack_padded_sequence(x, lengths, enforce_sorted=False))
    got, got_lengths = pad_packed_sequence(got_packed, total_length=6)
    assert torch.equal(got_lengths, lengths)
    assert (got - want).abs().max() == 0 and (got_hn - want_hn).abs().max() == 0


@pytest.mark.parametrize("cls", (grukit.GRU, grukit.LSTM))
def test_a_packed_output_keeps_the_inputs_order(cls):
    """Found by a review: the output was packed anew, so where the input's order broke ties in lengths another
    way (a CUDA sort is not stable), output.data paired rows with other sequences than targets.data did."""
    from torch.nn.utils.rnn import PackedSequence

    torch.manual_seed(0)
    model = cls(3, 4, dtype=torch.float64)
    x, lengths = torch.randn(5, 5, 3, dtype=torch.float64), torch.tensor([3, 5, 3, 5, 2])  # (T, N, I)
    order = torch.tensor([3, 1, 2, 0, 4])  # by decreasing length, ties the other way round than a stable sort
    by_order = pack_padded_sequence(x[:, order], lengths[order], enforce_sorted=True)
    packed = PackedSequence(by_order.data, by_order.batch_sizes, order, torch.argsort(order))
    got, _ = model(packed)
    assert torch.equal(got.sorted_indices, order) and torch.equal(got.unsorted_indices, torch.argsort(order))
    want, _ = model(x, lengths=lengths)  # (T, N, H)
    torch.testing.assert_close(got.data, pack_padded_sequence(want[:, order], lengths[order]).data)


def test_lengths_semantics():
    torch.manual_seed(0)
    gru = grukit.GRU(2, 3, bidirectional=True, dtype=torch.float64)
    x = torch.randn(5, 2, 2, dtype=torch.float64)
    out, h_n = gru(x, lengths=[5, 3])
    assert out[3:, 1].abs().max() == 0  # padded steps give zeros
    alone, alone_hn = gru(x[:3, 1:2])  # the short sequence on its own
    assert (out[:3, 1:2] - alone).abs().max() <= 1e-12
    assert (h_n[:, 1:2] - alone_hn).abs().max() <= 1e-12  # both directions, each from its own last step


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("junk", (float("nan"), float("inf")))
def test_padding_never_leaks_even_nan_or_inf(backend, junk):
    torch.manual_seed(0)
    gru = grukit.GRU(2, 3, 2, bidirectional=True, backend=backend, dtype=torch.float64)
    x = torch.randn(5, 2, 2, dtype=torch.float64)  # (T, N, I)
    clean = x.clone()
    clean[3:, 1] = 0.0
    dirty = x.clone()
    dirty[3:, 1] = junk  # the short sequence's padding
    want, want_hn = gru(clean, lengths=[5, 3])
    want_grad = torch.autograd.grad(want.sum() + want_hn.sum(), list(gru.parameters()))
    dirty.requires_grad_(True)
    got, got_hn = gru(dirty, lengths=[5, 3])
    got_grad = torch.autograd.grad(got.sum() + got_hn.sum(), [dirty, *gru.parameters()])
    assert torch.equal(got, want) and torch.equal(got_hn, want_hn)
    assert all(torch.equal(g, w) for g, w in zip(got_grad[1:], want_grad))
    assert got_grad[0][3:, 1].abs().max() == 0 and got_grad[0].isfinite().all()


def test_a_sorted_packed_input_gives_a_sorted_packed_output():
    gru = grukit.GRU(2, 3, dtype=torch.float64)
    x = torch.randn(4, 3, 2, dtype=torch.float64)
    for enforce_sorted in (True, False):
        packed = pack_padded_sequence(x, torch.tensor([4, 3, 1]), enforce_sorted=enforce_sorted)
        want, _ = torch.nn.GRU(2, 3, dtype=torch.float64)(packed)
        got, _ = gru(packed)
        assert (got.sorted_indices is None) == (want.sorted_indices is None) == enforce_sorted
        assert torch.equal(got.batch_sizes, want.batch_sizes)


def test_batch_first_and_unbatched():
    torch.manual_seed(0)
    gru = grukit.GRU(3, 4, 2, batch_first=True)
    x = torch.randn(2, 5, 3)  # (N, T, I)
    out, h_n = gru(x)
    assert out.shape == (2, 5, 4) and h_n.shape == (2, 2, 4)
    single, single_hn = gru(x[0])  # (T, I)
    assert single.shape == (5, 4) and single_hn.shape == (2, 4)
    assert (single - out[0]).abs().max() <= 1e-6


def test_dropout_with_one_layer_warns_as_torch_does():
    with pytest.warns(UserWarning, match=r"dropout=0.3 acts between stacked layers only.*num_layers=1"):
        grukit.GRU(3, 8, 1, dropout=0.3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        grukit.GRU(3, 8, 2, dropout=0.3), grukit.GRU(3, 8, 1)


def test_dropout_only_in_training():
    torch.manual_seed(0)
    gru = grukit.GRU(3, 8, 3, dropout=0.5)
    x = torch.randn(6, 2, 3)
    gru.eval()
    assert torch.equal(gru(x)[0], gru(x)[0])
    gru.train()
    torch.manual_seed(1)
    a = gru(x)[0]
    torch.manual_seed(2)
    b = gru(x)[0]
    assert not torch.equal(a, b)


@pytest.mark.parametrize("reset", ("before", "after"))
def test_step_matches_forward(reset):
    torch.manual_seed(0)
    gru = grukit.GRU(3, 5, 2, reset=reset, dtype=torch.float64)
    x = torch.randn(6, 2, 3, dtype=torch.float64)
    out, h_n = gru(x)
    h = None
    for t in range(6):
        h = gru.step(x[t], h)
        assert (h[-1] - out[t]).abs().max() <= 1e-12
    assert (h - h_n).abs().max() <= 1e-12
    assert gru.step(x[0, 0]).shape == (2, 5)  # unbatched


@pytest.mark.parametrize("reset", ("before", "after"))
@pytest.mark.parametrize("dtype", (torch.float32, torch.float64))
@pytest.mark.parametrize("bias", (True, False))
def test_step_of_the_common_stream_call_runs_the_plain_kernel_step(monkeypatch, reset, dtype, bias):
    """The common streaming call (one layer, x_t (N, I), h (1, N, H), no hooks) goes straight to the backend's
    plain_step, whose Python cost per step was larger than the step itself (the bench's stream row). It must give
    the checked step's state bit for bit, and every other call must still take the checked way."""
    if kernels.plain_step("auto") is None:
        pytest.skip("no backend with a plain_step here (the cpu kernel did not build)")
    taken = []  # the backend names of the plain steps run
    real = kernels.plain_step
    monkeypatch.setattr(kernels, "plain_step", lambda name: lambda *args: taken.append(name) or real(name)(*args))
    torch.manual_seed(0)
    gru = grukit.GRU(5, 7, reset=reset, bias=bias, dtype=dtype)
    x, h = torch.randn(3, 5, dtype=dtype), torch.randn(1, 3, 7, dtype=dtype)  # (N, I), (1, N, H)
    h_new = gru.step(x, h)  # (1, N, H)
    assert taken == ["auto"] and h_new.shape == (1, 3, 7) and not h_new.requires_grad
    with torch.no_grad():
        want = gru.kernel().step(x, h[0], *gru.parameters_of(0), reset=reset)  # (N, H)
    assert torch.equal(h_new[0], want)
    taken.clear()
    for call in (lambda: gru.step(x), lambda: gru.step(x[0], h[:, 0]),  # no state yet; unbatched
                 lambda: gru.step(x, h.float() if dtype == torch.float64 else h.double())):  # another dtype
        try:
            call()
        except TypeError as err:
            assert str(err).startswith("h: expected dtype")  # the checked way's error, naming the argument
    assert taken == []
    with pytest.raises(ValueError, match=r"^x_t: expected last dimension \(input_size\) 5, got 4"):
        gru.step(x[:, :4], h)  # the kernel refuses the sizes; the checked way names the argument
    with pytest.raises(ValueError, match=r"^h: expected shape \(1, 3, 7\), got \(1, 2, 7\)"):
        gru.step(x, h[:, :2])


def test_step_takes_the_checked_way_wherever_the_plain_one_would_differ():
    """Found by a review of the plain step: bfloat16 streams failed ("expected float32 or float64"); parametrized
    biases were dropped or refused; a tangent on a weight was lost; a 2-layer or bidirectional GRU whose second
    layer or reverse weights were parametrized ran as one layer; a subclass's own parameters_of was bypassed."""
    import torch.autograd.forward_ad as forward_ad
    from torch.nn.utils import parametrize

    class Double(torch.nn.Module):
        def forward(self, w):
            return 2 * w

    torch.manual_seed(0)
    x, h = torch.randn(2, 3), torch.randn(1, 2, 4)  # (N, I), (1, N, H)
    half, xb, hb = grukit.GRU(3, 4).to(torch.bfloat16), x.bfloat16(), h.bfloat16()
    with torch.no_grad():
        want = half.kernel().step(xb, hb[0], *half.parameters_of(0), reset=half.reset)  # (N, H)
    assert torch.equal(half.step(xb, hb), want[None])
    for names in (("bias_x_l0", "bias_h_l0"), ("bias_h_l0",)):
        gru = grukit.GRU(3, 4)
        for name in names:
            parametrize.register_parametrization(gru, name, Double())
        torch.testing.assert_close(gru.step(x, h), gru(x[None], h)[1])
    gru = grukit.GRU(3, 4, dtype=torch.float64)
    xd, hd, tangent = x.double(), h.double(), torch.randn(12, 4, dtype=torch.float64)
    weights = dict(gru.named_parameters())
    with forward_ad.dual_level():
        dual = {**weights, "weight_h_l0": forward_ad.make_dual(weights["weight_h_l0"], tangent)}
        got = forward_ad.unpack_dual(_step_with(gru, dual, xd, hd)).tangent  # (1, N, H)
    assert got is not None
    eps = 1e-6
    moved = [{**weights, "weight_h_l0": weights["weight_h_l0"] + sign * eps * tangent} for sign in (1, -1)]
    numeric = (_step_with(gru, moved[0], xd, hd) - _step_with(gru, moved[1], xd, hd)) / (2 * eps)  # (1, N, H)
    torch.testing.assert_close(got, numeric, atol=1e-8, rtol=1e-6)
    deep = grukit.GRU(3, 4, num_layers=2)
    parametrize.register_parametrization(deep, "weight_x_l1", Double())
    with pytest.raises(ValueError, match=r"^h: expected shape \(2, 2, 4\), got \(1, 2, 4\)"):
        deep.step(x, h)
    both = grukit.GRU(3, 4, bidirectional=True)
    parametrize.register_parametrization(both, "weight_x_l0_reverse", Double())
    with pytest.raises(ValueError, match="step: expected a unidirectional"):
        both.step(x, h)

    class DropConnect(grukit.GRU):  # its own weights in forward and step alike
        def parameters_of(self, k, reverse=False):
            weight_x, weight_h, bias_x, bias_h = super().parameters_of(k, reverse)
            return weight_x, weight_h * 0.5, bias_x, bias_h

    masked = DropConnect(3, 4)
    torch.testing.assert_close(masked.step(x, h), masked(x[None], h)[1])


def _step_with(gru, weights, x, h):
    """gru.step(x, h) with `weights` in place of its parameters (torch.func.functional_call, on step)."""
    from torch.func import functional_call

    class Stepper(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.gru = gru

        def forward(self, x, h):
            return self.gru.step(x, h)

    return functional_call(Stepper(), {f"gru.{k}": v for k, v in weights.items()}, (x, h))


def test_step_rejects_bidirectional():
    with pytest.raises(ValueError, match="step: expected a unidirectional"):
        grukit.GRU(2, 3, bidirectional=True).step(torch.randn(1, 2))


@pytest.mark.parametrize("reset", ("before", "after"))
def test_gates_explain_the_output(reset):
    """Every gate of every (layer, direction, step, sequence) is the NumPy oracle's, and padded steps hold zeros.
    Found by a review: r was only checked to lie in [0, 1] and one slice of z, n against the update, so gates
    with r replaced by 1 − r passed."""
    import numpy as np

    from grukit import reference

    torch.manual_seed(0)
    gru = grukit.GRU(2, 4, 2, bidirectional=True, reset=reset, dtype=torch.float64)
    x = torch.randn(5, 3, 2, dtype=torch.float64)  # (T, N, I)
    lengths = [5, 2, 4]
    out, h_n, gates = gru(x, lengths=lengths, return_gates=True)
    want, want_hn = gru(x, lengths=lengths)
    assert (out - want).abs().max() <= 1e-12 and (h_n - want_hn).abs().max() <= 1e-12
    assert gates.r.shape == gates.z.shape == gates.n.shape == (2, 2, 5, 3, 4)  # (L, D, T, N, H)
    params = {name: p.detach().numpy() for name, p in gru.named_parameters()}
    _, _, cache = reference.gru_stack_forward(x.numpy(), None, params, reset=reset, lengths=np.asarray(lengths),
                                              bidirectional=True)
    real = torch.arange(5)[:, None] < torch.tensor(lengths)[None, :]  # (T, N) steps inside each sequence
    for k, layer in enumerate(cache.layers):
        for d, oracle in enumerate(layer):
            for name in ("r", "z", "n"):
                got = getattr(gates, name)[k, d]  # (T, N, H)
                expected = torch.from_numpy(getattr(oracle, name))  # (T, N, H)
                assert (got - expected)[real].abs().max() <= 1e-12, (name, k, d)
                assert got[~real].abs().max() == 0, (name, k, d)  # padded steps of the short sequences


def test_orthogonal_init():
    gru = grukit.GRU(3, 4)
    gru.reset_parameters(weight_h="orthogonal")
    for U in gru.weight_h_l0.detach().split(4):
        assert torch.allclose(U @ U.T, torch.eye(4), atol=1e-5)
    with pytest.raises(ValueError, match="weight_h: expected"):
        gru.reset_parameters(weight_h="xavier")


def test_bias_false_creates_no_bias():
    gru = grukit.GRU(3, 4, 2, bias=False, bidirectional=True)
    assert sorted(n for n, _ in gru.named_parameters()) == sorted(
        f"{k}_l{layer}{s}" for k in ("weight_x", "weight_h") for layer in (0, 1) for s in ("", "_reverse"))


def test_auto_backend_is_fastest_available():
    expected = "cpu" if kernels.available("cpu") else "fused"
    assert grukit.GRU(2, 3).kernel().name == expected


BAD = [
    ("x rank", lambda g: g(torch.randn(2, 3, 4, 5)), ValueError, "x: expected a tensor of rank 2 or 3"),
    ("feature size", lambda g: g(torch.randn(4, 2, 5)), ValueError,
     r"x: expected last dimension \(input_size\) 3, got 5"),
    ("h0 shape", lambda g: g(torch.randn(4, 2, 3), torch.zeros(1, 2, 4)), ValueError,
     r"h0: expected shape \(2, 2, 4\)"),
    ("dtype", lambda g: g(torch.randn(4, 2, 3, dtype=torch.float64)), TypeError, "x: expected dtype torch.float32"),
    ("integer x", lambda g: g(torch.ones(4, 2, 3, dtype=torch.int64)), TypeError, "x: expected a floating-point"),
    ("not a tensor", lambda g: g([[1.0, 2.0, 3.0]]), TypeError, "x: expected a torch.Tensor, got list"),
    ("lengths count", lambda g: g(torch.randn(4, 2, 3), lengths=[4]), ValueError, "lengths: expected 2 values"),
    ("lengths zero", lambda g: g(torch.randn(4, 2, 3), lengths=[0, 4]), ValueError,
     r"lengths: expected every value in 1\.\.4"),
    ("lengths too long", lambda g: g(torch.randn(4, 2, 3), lengths=[5, 4]), ValueError,
     r"in 1\.\.4 \(T\), got values from 4 to 5"),
    ("float lengths", lambda g: g(torch.randn(4, 2, 3), lengths=torch.tensor([1.0, 2.0])), TypeError,
     "lengths: expected integers"),
    ("empty T", lambda g: g(torch.randn(0, 2, 3)), ValueError, "x: expected at least one time step"),
    ("empty T, batch first", lambda g: grukit.GRU(3, 4, batch_first=True)(torch.randn(2, 0, 3)), ValueError,
     r"x: expected at least one time step, got shape \(2, 0, 3\)$"),  # the shape as given, not (0, 2, 3)
    ("empty T, unbatched", lambda g: g(torch.randn(0, 3)), ValueError, r"got shape \(0, 3\)$"),
    ("h0, unbatched", lambda g: g(torch.randn(6, 3), torch.randn(1, 4)), ValueError,  # the layout x implies
     r"^h0: expected shape \(2, 4\) \(num_layers\*num_directions, hidden_size\) for unbatched x, got \(1, 4\)$"),
    ("step h, unbatched", lambda g: grukit.GRU(3, 4, 2).step(torch.randn(3), torch.randn(1, 4)), ValueError,
     r"^h: expected shape \(2, 4\), got \(1, 4\)$"),
]


@pytest.mark.parametrize("case", BAD, ids=[b[0] for b in BAD])
def test_bad_input_names_the_argument(case):
    _, call, error, message = case
    with pytest.raises(error, match=message):
        call(grukit.GRU(3, 4, 1, bidirectional=True))


@pytest.mark.parametrize("dtype", [torch.uint8, torch.uint16, torch.uint32, torch.uint64, torch.int32])
def test_lengths_of_every_integer_dtype(dtype):
    """Found by a review: uint16/32/64 lengths raised torch's "min_all not implemented", naming no argument."""
    torch.manual_seed(0)
    gru = grukit.GRU(2, 3)
    x = torch.randn(5, 2, 2)
    assert torch.equal(gru(x, lengths=torch.tensor([5, 3]).to(dtype))[1], gru(x, lengths=[5, 3])[1])
    with pytest.raises(ValueError, match="lengths: expected every value in 1..5"):
        gru(x, lengths=torch.tensor([6, 3]).to(dtype))


def test_device_mismatch():
    gru = grukit.GRU(3, 4, device="meta")  # a second device that every machine has
    with pytest.raises(ValueError, match="x: expected a tensor on meta"):
        gru(torch.randn(4, 2, 3))


@pytest.mark.parametrize("kwargs,message", [
    (dict(reset="middle"), "reset: expected one of"),
    (dict(backend="gpu"), "backend: expected one of"),
    (dict(hidden_size=0), "hidden_size: expected a positive integer"),
    (dict(num_layers=1.5), "num_layers: expected a positive integer"),
    (dict(dropout=1.0), r"dropout: expected a number in \[0, 1\)"),
    (dict(dtype=torch.int64), "dtype: expected a floating-point torch dtype"),  # found by a review: torch's
    (dict(dtype=torch.complex64), "dtype: expected a floating-point torch dtype"),  # error named no argument
])
def test_bad_constructor_arguments(kwargs, message):
    args = dict(input_size=3, hidden_size=4) | kwargs
    with pytest.raises(ValueError, match=message):
        grukit.GRU(**args)


def test_sizes_of_any_integral_type_are_taken_as_ints():
    """Before, GRU(np.int64(3), 4) said 'expected a positive integer, got np.int64(3)'."""
    import numpy as np

    for make in (grukit.GRU, grukit.GRUCell, grukit.baselines.LSTM):
        m = make(np.int64(3), torch.tensor(4))
        assert (m.config.input_size, m.config.hidden_size) == (3, 4)
        assert type(m.config.input_size) is int and type(m.config.hidden_size) is int
    assert grukit.GRU(3, 4, np.int32(2)).config.num_layers == 2
    assert grukit.GRUCell(3, 4, bias=False).bias is False  # like torch.nn.GRUCell.bias
    with pytest.raises(ValueError, match=r"^num_layers: expected a positive integer, got True$"):
        grukit.GRU(3, 4, True)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    T=st.integers(0, 5), N=st.integers(0, 4), I=st.integers(1, 4), H=st.integers(1, 5),
    given_I=st.integers(1, 4), num_layers=st.integers(1, 2), bidirectional=st.booleans(),
    reset=st.sampled_from(["before", "after"]), batch_first=st.booleans(), bias=st.booleans(),
    lengths=st.one_of(st.none(), st.lists(st.integers(-1, 6), min_size=0, max_size=5)),
    h0_layers=st.one_of(st.none(), st.integers(0, 4)), backend=st.sampled_from(BACKENDS),
    coherent=st.booleans(), data=st.data(),
)
def test_random_calls_give_a_result_or_a_clear_error(T, N, I, H, given_I, num_layers, bidirectional, reset,
                                                     batch_first, bias, lengths, h0_layers, backend, coherent, data):
    """Any call gives a result or an error naming its argument; half the calls (`coherent`) are valid ones,
    which must give a result with zeros on padded steps (found by a review: almost every drawn `lengths` was
    invalid, so the padding check never ran)."""
    gru = grukit.GRU(I, H, num_layers, bias=bias, batch_first=batch_first, bidirectional=bidirectional,
                     reset=reset, backend=backend)
    D = 2 if bidirectional else 1
    if coherent:
        T, given_I = max(T, 1), I
        h0_layers = data.draw(st.sampled_from([None, num_layers * D]))
        lengths = data.draw(st.one_of(st.none(), st.lists(st.integers(1, T), min_size=N, max_size=N)))
    x = torch.randn((N, T, given_I) if batch_first else (T, N, given_I))
    h0 = None if h0_layers is None else torch.randn(h0_layers, N, H)
    try:
        out, h_n = gru(x, h0, lengths=lengths)
    except (ValueError, TypeError) as err:
        message = str(err)
        assert not coherent, message
        assert message.split(":")[0] in {"x", "h0", "lengths"}, message
        assert "expected" in message and "got" in message
        return
    assert given_I == I and T >= 1 and (h0_layers is None or h0_layers == num_layers * D)
    assert out.shape == ((N, T, D * H) if batch_first else (T, N, D * H))
    assert h_n.shape == (num_layers * D, N, H)
    assert torch.isfinite(out).all() and torch.isfinite(h_n).all()
    if lengths is not None:
        steps = torch.arange(T).unsqueeze(1) >= torch.tensor(lengths, dtype=torch.int64).unsqueeze(0)  # (T, N)
        time_major = out.transpose(0, 1) if batch_first else out
        assert time_major[steps].abs().sum() == 0  # every padded step is zero (an empty selection sums to 0)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("batch_first", (False, True))
def test_an_empty_batch_gives_empty_results_like_torch(backend, batch_first):
    """N = 0 sequences (the last shard of a split, a filter that kept nothing): torch.nn.GRU's shapes, a backward."""
    gru = grukit.GRU(3, 4, 2, bidirectional=True, batch_first=batch_first, backend=backend)
    theirs = torch.nn.GRU(3, 4, 2, bidirectional=True, batch_first=batch_first)
    x = torch.randn((0, 5, 3) if batch_first else (5, 0, 3), requires_grad=True)  # N = 0
    for kwargs in ({}, {"lengths": torch.zeros(0, dtype=torch.int64)}, {"lengths": []},
                   {"lengths": torch.tensor([])}, {"h0": torch.zeros(4, 0, 4)}):
        out, h_n = gru(x, **kwargs)
        out_t, h_n_t = theirs(x, kwargs.get("h0"))
        assert out.shape == out_t.shape and h_n.shape == h_n_t.shape
    (out.sum() + h_n.sum()).backward()
    assert x.grad.shape == x.shape
    assert all(p.grad is not None and p.grad.abs().sum() == 0 for p in gru.parameters())


@pytest.mark.parametrize("backend", [b for b in ("eager", "fused", "cpu") if kernels.available(b)])
def test_parametrized_and_pruned_weights_are_used(backend):
    """torch.nn.utils.parametrize / weight_norm / prune move a parameter out of _parameters: the GRU still
    reads it (before, biases were silently dropped and weights raised KeyError)."""
    from torch.nn.utils import parametrize, prune
    from torch.nn.utils.parametrizations import weight_norm

    class Double(torch.nn.Module):
        def forward(self, w):
            return 2 * w

    torch.manual_seed(0)
    x = torch.randn(5, 2, 3)  # (T, N, I)
    gru = grukit.GRU(3, 4, backend=backend)
    doubled = grukit.GRU(3, 4, backend=backend)
    doubled.load_state_dict(gru.state_dict())
    with torch.no_grad():
        for name in ("bias_x_l0", "weight_h_l0"):
            getattr(doubled, name).mul_(2)
    for name in ("bias_x_l0", "weight_h_l0"):
        parametrize.register_parametrization(gru, name, Double())
    torch.testing.assert_close(gru(x)[0], doubled(x)[0])
    torch.testing.assert_close(gru.step(x[0]), doubled.step(x[0]))
    plain = grukit.GRU(3, 4, backend=backend)
    expected = plain(x)[0]
    weight_norm(plain, "weight_h_l0")
    prune.identity(plain, "bias_h_l0")
    output, _ = plain(x)
    torch.testing.assert_close(output, expected)
    output.sum().backward()
    assert plain.parametrizations.weight_h_l0.original0.grad is not None and plain.bias_h_l0_orig.grad is not None


@pytest.mark.parametrize("backend", BACKENDS)
def test_step_runs_the_forward_pre_hooks_so_pruned_weights_are_current(backend):
    """prune recomputes weight = weight_orig · mask in a forward pre-hook: step() must see a change to
    weight_orig made after the last forward() (before, it read the stale weight)."""
    from torch.nn.utils import prune

    torch.manual_seed(0)
    gru = grukit.GRU(3, 4, backend=backend)
    prune.random_unstructured(gru, "weight_h_l0", amount=0.5)
    x = torch.randn(1, 2, 3)  # (T = 1, N, I)
    gru(x)  # the hook has run once
    with torch.no_grad():
        gru.weight_h_l0_orig.mul_(3)  # changes what the hook will compute
    h0 = torch.randn(1, 2, 4)  # (L, N, H)
    torch.testing.assert_close(gru.step(x[0], h0), gru(x, h0)[1])
    seen = []
    gru.register_forward_pre_hook(lambda module, args: (2 * args[0], args[1]))
    gru.register_forward_pre_hook(lambda module, args, kwargs: seen.append(len(args)), with_kwargs=True)
    torch.testing.assert_close(gru.step(x[0], h0), gru(x, h0)[1])  # both read 2·x
    assert seen == [2, 2]


def test_settings_assigned_after_construction_are_saved_and_shown(tmp_path):
    gru = grukit.GRU(3, 4, num_layers=2)
    gru.batch_first, gru.reset, gru.dropout = True, "after", 0.3
    assert (gru.config.batch_first, gru.config.reset, gru.config.dropout) == (True, "after", 0.3)
    assert "batch_first=True" in repr(gru) and "dropout=0.3" in repr(gru)
    grukit.save(gru, tmp_path / "g.safetensors")
    back = grukit.load(tmp_path / "g.safetensors")
    assert back.config == gru.config
    x = torch.randn(2, 7, 3)  # (N, T, I)
    torch.testing.assert_close(back.eval()(x)[0], gru.eval()(x)[0])
    with pytest.raises(AttributeError, match="hidden_size: fixed when the module is built"):
        gru.hidden_size = 8
    with pytest.raises(ValueError, match=r"reset: expected one of \('before', 'after'\), got 'middle'"):
        gru.reset = "middle"
    cell = grukit.GRUCell(3, 4)
    cell.reset = "after"
    assert cell.config.reset == "after"


def test_flatten_parameters_is_there_for_torch_code_and_changes_nothing():
    gru = grukit.GRU(3, 4)
    before = {k: v.clone() for k, v in gru.state_dict().items()}
    gru.flatten_parameters()
    assert all(torch.equal(before[k], v) for k, v in gru.state_dict().items())


def test_dropout_takes_any_real_number_as_torch_does():
    """Found by a review: np.float32(0.2) was refused."""
    import numpy as np

    assert grukit.GRU(2, 3, num_layers=2, dropout=np.float32(0.25)).dropout == 0.25
    with pytest.raises(ValueError, match="dropout: expected a number in"):
        grukit.GRU(2, 3, num_layers=2, dropout=True)


def test_the_package_names_load_on_first_use():
    """grukit's top-level names come from their modules when first used (`import grukit.cli` needs no torch)."""
    import grukit.layer

    assert grukit.GRU is grukit.layer.GRU and "GRU" in dir(grukit) and set(grukit.__all__) <= set(dir(grukit))
    from grukit import LSTM, GRUCell, load, save  # noqa: F401 - each resolves
    with pytest.raises(AttributeError, match="module 'grukit' has no attribute 'Gru'"):
        grukit.Gru  # noqa: B018


@pytest.mark.parametrize("cls", [grukit.GRU, grukit.GRUCell, grukit.LSTM, grukit.RNN])
def test_on_off_settings_refuse_strings_that_bool_would_read_as_on(cls):
    import numpy as np

    names = ["bias"] if cls is grukit.GRUCell else ["bias", "batch_first", "bidirectional"]
    for name in names:
        with pytest.raises(TypeError, match=f"{name}: expected True or False, got 'no'"):
            cls(3, 4, **{name: "no"})
        with pytest.raises(TypeError, match=f"{name}: expected True or False, got 2"):
            cls(3, 4, **{name: 2})
        assert getattr(cls(3, 4, **{name: 1}), name) is True  # torch.nn.GRU's 0/1 and NumPy bools still do
        assert getattr(cls(3, 4, **{name: np.False_}), name) is False
    if cls is not grukit.GRUCell:
        model = cls(3, 4)
        with pytest.raises(TypeError, match="batch_first: expected True or False, got 'False'"):
            model.batch_first = "False"
        assert model.batch_first is False and model.config.batch_first is False


def test_dropout_acts_between_layers_never_on_the_input():
    """Layer 0 reads x itself in training too: its gates equal eval mode's (a mutation audit: dropout on layer 0's
    input passed every test)."""
    torch.manual_seed(0)
    gru = grukit.GRU(3, 4, 2, dropout=0.5).train()
    x = torch.randn(5, 2, 3)  # (T, N, I)
    _, _, trained = gru(x, return_gates=True)
    _, _, evaluated = gru.eval()(x, return_gates=True)
    assert torch.equal(trained.z[0], evaluated.z[0]) and not torch.equal(trained.z[1], evaluated.z[1])


def test_step_of_a_stack_records_no_graph():
    """step() is for inference: the general path (two layers) returns a state outside autograd too."""
    h = grukit.GRU(3, 4, 2).step(torch.randn(2, 3))  # (L, N, H)
    assert h.grad_fn is None and not h.requires_grad



@pytest.mark.parametrize("lengths,error,message", [
    (torch.tensor([True, True]), TypeError, "lengths: expected integers, got dtype torch.bool"),
    (torch.tensor([[4], [2]]), ValueError, r"lengths: expected 2 values .*got shape \(2, 1\)"),
    ([[4], [2, 3]], TypeError, "lengths: expected a sequence of integers"),  # ragged: torch raises ValueError
])
def test_lengths_of_the_wrong_kind_are_refused_by_name(lengths, error, message):
    """Guards _lengths' checks: bool lengths (which would read as 1s), a (N, 1) column (right count, wrong rank)
    and a ragged list each raise naming `lengths` instead of running or failing inside torch."""
    with pytest.raises(error, match=message):
        grukit.GRU(3, 4)(torch.randn(4, 2, 3), lengths=lengths)


def test_lengths_with_a_packed_sequence_are_refused():
    """Guards prepare: a PackedSequence carries its lengths, so passing lengths too is an error, never silently
    ignored."""
    packed = pack_padded_sequence(torch.randn(4, 2, 3), [4, 2])
    with pytest.raises(ValueError, match="lengths: expected None with a PackedSequence"):
        grukit.GRU(3, 4)(packed, lengths=[4, 4])


def test_unbatched_h0_of_a_stack_is_read_per_layer():
    """Guards the unbatched h0 (L·D, H) -> (L·D, 1, H) reshaping for L·D > 1: the result equals the batched call
    (only the L·D = 1 case, where either unsqueeze works, and a wrong shape were tested)."""
    torch.manual_seed(0)
    gru = grukit.GRU(3, 4, 2, bidirectional=True)
    x, h0 = torch.randn(5, 3), torch.randn(4, 4)
    out, h_n = gru(x, h0)
    out_b, h_n_b = gru(x.unsqueeze(1), h0.unsqueeze(1))
    assert torch.equal(out, out_b.squeeze(1)) and torch.equal(h_n, h_n_b.squeeze(1))


def test_the_plain_step_runs_no_checked_step_after_it(monkeypatch):
    """A mutation audit: step() could run the plain kernel step and then the checked way as well (its result
    thrown away), doubling the per-step cost the plain way exists to cut, and every test still passed: the
    common call must not reach the checked way's argument checks or its backend look-up."""
    if kernels.plain_step("auto") is None:
        pytest.skip("no backend with a plain_step here (the cpu kernel did not build)")
    torch.manual_seed(0)
    gru = grukit.GRU(3, 4)
    x, h = torch.randn(2, 3), torch.randn(1, 2, 4)  # (N, I), (1, N, H)
    want = gru.step(x, h)  # (1, N, H)

    def checked(*args):
        raise AssertionError("the checked way ran")

    monkeypatch.setattr(gru, "_step_inputs", checked)
    monkeypatch.setattr(kernels, "get", checked)
    assert torch.equal(gru.step(x, h), want)


@pytest.mark.parametrize("where", ["module", "global"])
def test_a_forward_pre_hook_keeps_the_common_step_off_the_plain_way(where):
    """A mutation audit: the plain step (one float32 layer, x_t (N, I), h (1, N, H)) could skip a module's or a
    global forward pre-hook without a failing test: the hook tests prune the weight, which takes it out of
    _parameters and so off the plain way anyway. A hook that doubles x_t must act on every call."""
    torch.manual_seed(0)
    gru = grukit.GRU(3, 4)
    x, h = torch.randn(2, 3), torch.randn(1, 2, 4)  # (N, I), (1, N, H)
    want = gru.step(2 * x, h)  # (1, N, H)

    def double(module, args):
        return (2 * args[0], *args[1:])

    if where == "module":
        handle = gru.register_forward_pre_hook(double)
    else:
        from torch.nn.modules.module import register_module_forward_pre_hook

        handle = register_module_forward_pre_hook(double)
    try:
        got = gru.step(x, h)
    finally:
        handle.remove()
    assert torch.equal(got, want)
    assert torch.equal(gru.step(x, h), gru(x[None], h)[1])  # and gone with the hook


def test_pre_hooks_that_return_one_value_or_new_kwargs_arguments_are_followed():
    """A mutation audit of _run_pre_hooks: a hook that returns x_t alone (Module.__call__ wraps it in a tuple),
    a with_kwargs hook that returns new (args, kwargs), and the order (global hooks first, then the module's, as
    Module.__call__ runs them) were in no test: each could be dropped or turned around without a failure."""
    from torch.nn.modules.module import register_module_forward_pre_hook

    torch.manual_seed(0)
    gru = grukit.GRU(3, 4, num_layers=2)
    x, h = torch.randn(2, 3), torch.randn(2, 2, 4)  # (N, I), (L, N, H)
    wants = [gru.step(x + 1.0, h), gru.step(x, 0.5 * h), gru.step((x + 1.0) * 3.0, h)]  # (L, N, H) each, no hooks
    handle = gru.register_forward_pre_hook(lambda module, args: args[0] + 1.0)  # x_t alone: h stays as given
    assert torch.equal(gru.step(x, h), wants[0])
    handle.remove()
    handle = gru.register_forward_pre_hook(lambda module, args, kwargs: ((args[0], 0.5 * args[1]), kwargs),
                                           with_kwargs=True)
    assert torch.equal(gru.step(x, h), wants[1])
    handle.remove()
    gru.register_forward_pre_hook(lambda module, args: (args[0] * 3.0, args[1]))  # runs second
    handle = register_module_forward_pre_hook(lambda module, args: (args[0] + 1.0, args[1]))  # runs first
    try:
        got = gru.step(x, h)
    finally:
        handle.remove()
    assert torch.equal(got, wants[2])


def test_a_subclass_s_own_kernel_is_used_by_step():
    """A mutation audit: the plain step's test that the class keeps GRU.kernel could go, so that a subclass's
    kernel() (its own step) was bypassed for the common streaming call, and no test noticed."""
    from grukit.kernels import fused

    calls = []

    class Counted(grukit.GRU):
        def kernel(self):
            def step(*args, **kwargs):
                calls.append(1)
                return fused.step(*args, **kwargs)

            return kernels.Backend("counted", fused.sequence, step)

    torch.manual_seed(0)
    gru = Counted(3, 4)
    x, h = torch.randn(2, 3), torch.randn(1, 2, 4)  # (N, I), (1, N, H)
    got = gru.step(x, h)  # (1, N, H)
    assert calls == [1]
    torch.testing.assert_close(got, gru(x[None], h)[1])


@pytest.mark.parametrize("num_layers", [1, 2])
def test_step_gives_back_the_grad_mode_it_found(num_layers):
    """A mutation audit: step() turns grad mode off for its products; without the `finally` that turns it back
    on, every later forward() in the process recorded no graph, and no test looked at the mode after a step."""
    gru = grukit.GRU(3, 4, num_layers=num_layers, dtype=torch.float64)  # float64 + h None: the checked way
    for mode in (True, False):
        with torch.set_grad_enabled(mode):
            gru.step(torch.randn(2, 3, dtype=torch.float64))
            assert torch.is_grad_enabled() is mode
    output, _ = gru(torch.randn(1, 2, 3, dtype=torch.float64))
    assert output.requires_grad


def test_step_of_one_layer_refuses_a_state_without_its_layer_dimension():
    """A mutation audit: the plain step's rank test of h could go, and the C++ step, which also takes an (N, H)
    state, then answered a batched x_t and an (N, H) h with an (N, H) state, where step() refuses h without the
    layer dimension (L, N, H) on every other path."""
    gru = grukit.GRU(3, 4)
    x, h = torch.randn(2, 3), torch.randn(2, 4)  # (N, I), (N, H)
    with pytest.raises(ValueError, match=r"^h: expected a tensor of rank 3, got rank 2 \(shape \(2, 4\)\)"):
        gru.step(x, h)


def test_running_the_layer_does_not_import_dynamo():
    """A review: `@torch.compiler.disable` on forward imported torch._dynamo with grukit, 1.5 s more to start
    every command (`grukit --help` 3.7 -> 5.4 s); the disabled forward is now made at the first compile."""
    code = ("import sys, torch, grukit; grukit.GRU(3, 4, 2, bidirectional=True)(torch.randn(5, 2, 3)); "
            "print('torch._dynamo' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


@pytest.mark.parametrize("backend", BACKENDS)
def test_torch_compile_leaves_the_layer_to_its_kernels_and_compiles_the_rest(backend):
    """A model holding a grukit.GRU compiles and gives the eager outputs and gradients. Dynamo traced into the
    layer before, breaking the graph 9-10 times per call (8-24 s to compile, 51 s with the eager backend); now the
    layer is one graph break (torch.compiler.disable) and makes no graph of its own."""
    torch._dynamo.reset()
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), grukit.GRU(4, 6, 2, bidirectional=True, backend=backend))
    x, lengths = torch.randn(5, 3, 3), torch.tensor([5, 2, 4])  # (T, N, I)

    def loss(m):
        output, h_n = m[1](torch.tanh(m[0](x)), lengths=lengths)  # (T, N, 12), (4, N, 6)
        return output.square().sum() + h_n.sum()

    eager = loss(model)
    eager_grads = torch.autograd.grad(eager, list(model.parameters()))
    compiled = torch.compile(loss, backend="aot_eager")(model)
    compiled_grads = torch.autograd.grad(compiled, list(model.parameters()))
    torch.testing.assert_close(compiled, eager, rtol=0, atol=1e-5)
    for got, want in zip(compiled_grads, eager_grads):
        torch.testing.assert_close(got, want, rtol=0, atol=1e-5)
    assert torch._dynamo.explain(model[1])(torch.randn(5, 3, 4), lengths=lengths).graph_count == 0
    torch._dynamo.reset()
