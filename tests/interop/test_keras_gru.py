"""grukit ↔ Keras 3 GRU (torch backend): same numbers as Keras's own layers, exact round trips.

Tolerance 1e-5 in float32: same function, same weights; only float rounding differs.
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

# The torch backend, whatever the caller's environment says: before keras is first imported (Keras 3 reads it
# once). Found by a review: with KERAS_BACKEND=jax set outside, keras failed to import and the file skipped as if
# the interop extra were missing.
os.environ["KERAS_BACKEND"] = "torch"

import importlib.util  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

if importlib.util.find_spec("keras") is None:  # only a missing package skips; a keras that fails to import fails
    pytest.skip("the optional 'interop' extra is deliberately not installed (pip install 'grukit[interop]')",
                allow_module_level=True)
import keras  # noqa: E402

from grukit import GRU  # noqa: E402
from grukit.interop import from_keras, to_keras  # noqa: E402

ATOL = 1e-5
I, H, N, T = 4, 5, 3, 6


def _randomize(layer, seed: int = 0) -> None:
    """Random values in every weight (Keras initialises biases to zero, which would hide bias bugs)."""
    g = torch.Generator().manual_seed(seed)
    for variable in layer.weights:
        variable.assign(torch.rand(tuple(variable.shape), generator=g) - 0.5)


def _keras_gru(reset_after: bool, use_bias: bool, bidirectional: bool = False, **options):
    gru = keras.layers.GRU(H, reset_after=reset_after, use_bias=use_bias, return_sequences=True,
                           return_state=True, **options)
    layer = keras.layers.Bidirectional(gru) if bidirectional else gru
    layer.build((None, None, I))
    _randomize(layer)
    return layer


def _x(seed: int = 1, dtype=torch.float32):
    return torch.randn(N, T, I, generator=torch.Generator().manual_seed(seed), dtype=dtype)  # (N, T, I)


def _max_err(a, b) -> float:
    return float((torch.as_tensor(a).detach().cpu() - torch.as_tensor(b).detach().cpu()).abs().max())


def _assert_same_params(a, b) -> None:
    pa, pb = dict(a.named_parameters()), dict(b.named_parameters())
    assert pa.keys() == pb.keys()
    for name in pa:
        assert torch.equal(pa[name], pb[name]), name


@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize("use_bias", [True, False])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_from_keras_matches_keras(reset_after, use_bias, bidirectional):
    layer = _keras_gru(reset_after, use_bias, bidirectional)
    ours = from_keras(layer)
    assert ours.reset == ("after" if reset_after else "before") and ours.batch_first
    assert (ours.bias_x_l0 is not None) == use_bias and ours.bidirectional == bidirectional
    x = _x()
    y_ref, *h_ref = layer(x)
    with torch.no_grad():
        y, h = ours(x)
    assert _max_err(y, y_ref) <= ATOL
    assert _max_err(h, torch.stack([torch.as_tensor(s) for s in h_ref])) <= ATOL


@pytest.mark.parametrize("reset", ["after", "before"])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_to_keras_matches_grukit(reset, bias, bidirectional):
    torch.manual_seed(0)
    ours = GRU(I, H, bias=bias, bidirectional=bidirectional, reset=reset, batch_first=True)
    layer = to_keras(ours, return_state=True)
    inner = layer.forward_layer if bidirectional else layer
    assert inner.cell.reset_after == (reset == "after") and inner.cell.use_bias == bias
    x = _x()
    y_ref, *h_ref = layer(x)
    with torch.no_grad():
        y, h = ours(x)
    assert _max_err(y_ref, y) <= ATOL
    assert _max_err(torch.stack([torch.as_tensor(s) for s in h_ref]), h) <= ATOL


@pytest.mark.parametrize("layers", [1, 2])
def test_return_sequences_false_gives_the_last_state(layers):
    """to_keras(return_sequences=False): the last layer returns its final state, grukit's h_n[-1] (found by a
    review: no test asked for it, so a to_keras that kept returning every step passed)."""
    torch.manual_seed(0)
    ours = GRU(I, H, layers, batch_first=True)
    keras_model = to_keras(ours, return_sequences=False)
    x = _x()
    y = keras_model(x)
    with torch.no_grad():
        _, h_n = ours(x)
    assert tuple(y.shape) == (N, H) and _max_err(y, h_n[-1]) <= ATOL


@pytest.mark.parametrize("reset", ["after", "before"])
def test_stacks_go_through_sequential(reset):
    torch.manual_seed(0)
    ours = GRU(I, H, 3, bidirectional=True, reset=reset, batch_first=True)
    stack = to_keras(ours)
    assert isinstance(stack, keras.Sequential) and len(stack.layers) == 3
    x = _x()
    with torch.no_grad():
        assert _max_err(stack(x), ours(x)[0]) <= ATOL
    twin = from_keras(stack)
    assert twin.num_layers == 3 and twin.bidirectional
    with torch.no_grad():
        assert _max_err(twin(x)[0], ours(x)[0]) <= ATOL


def test_round_trips_are_bit_exact():
    for reset_after in (True, False):
        for bidirectional in (False, True):
            layer = _keras_gru(reset_after, True, bidirectional)
            back = to_keras(from_keras(layer), return_state=True)
            assert [w.path.rsplit("/", 1)[1] for w in back.weights] == [w.path.rsplit("/", 1)[1] for w in layer.weights]
            for a, b in zip(back.weights, layer.weights):
                assert torch.equal(torch.as_tensor(a.value), torch.as_tensor(b.value)), (reset_after, a.path)
    torch.manual_seed(0)
    ours = GRU(I, H, 2, bidirectional=True, reset="after", batch_first=True)
    _assert_same_params(from_keras(to_keras(ours)), ours)


def test_reset_before_folds_hidden_bias_into_input_bias():
    """Keras reset_after=False has one bias: b_h moves into b_x (one float addition) and comes back as 0."""
    torch.manual_seed(0)
    ours = GRU(I, H, reset="before", batch_first=True)
    twin = from_keras(to_keras(ours))
    assert torch.equal(twin.weight_x_l0, ours.weight_x_l0) and torch.equal(twin.weight_h_l0, ours.weight_h_l0)
    assert torch.equal(twin.bias_x_l0, ours.bias_x_l0 + ours.bias_h_l0)
    assert torch.equal(twin.bias_h_l0, torch.zeros(3 * H))
    x = _x()
    with torch.no_grad():
        assert _max_err(twin(x)[0], ours(x)[0]) <= ATOL


def test_float64():
    layer = _keras_gru(True, True, dtype="float64")
    ours = from_keras(layer)
    assert ours.weight_x_l0.dtype == torch.float64
    x = _x(dtype=torch.float64)
    with torch.no_grad():
        assert _max_err(ours(x)[0], layer(x)[0]) <= 1e-12
    assert to_keras(ours).cell.kernel.dtype == "float64"


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_goes_to_keras(dtype):
    """Found by a review: Keras's orthogonal initialiser, run before the weights are copied, has no float16."""
    torch.manual_seed(0)
    ours = GRU(I, H, batch_first=True, reset="after").to(getattr(torch, dtype))
    layer = to_keras(ours)
    assert layer.cell.kernel.dtype == dtype
    x = _x().to(getattr(torch, dtype))
    with torch.no_grad():
        assert _max_err(layer(x), ours(x)[0]) <= 2e-2  # both in half precision


def test_layers_grukit_cannot_represent_are_refused():
    with pytest.raises(ValueError, match="no weights yet"):
        from_keras(keras.layers.GRU(H))
    with pytest.raises(ValueError, match="activation='tanh'"):
        from_keras(_keras_gru(True, True, activation="relu"))
    with pytest.raises(ValueError, match="go_backwards=False"):
        from_keras(_keras_gru(True, True, go_backwards=True))
    summed = keras.layers.Bidirectional(keras.layers.GRU(H), merge_mode="sum")
    summed.build((None, None, I))
    with pytest.raises(ValueError, match="merge_mode='concat'"):
        from_keras(summed)
    lstm = keras.layers.LSTM(H)
    lstm.build((None, None, I))
    with pytest.raises(TypeError, match="keras.layers.GRU"):
        from_keras(lstm)
    with pytest.raises(TypeError, match="grukit.GRU"):
        to_keras(torch.nn.GRU(I, H))
    with pytest.raises(ValueError, match="return_state"):
        to_keras(GRU(I, H, 2), return_state=True)
    with pytest.raises(TypeError, match="return_sequences: expected True or False, got 'no'"):
        to_keras(GRU(I, H), return_sequences="no")  # found by a review: read by its truth, so as True
    stack = keras.Sequential([keras.layers.Masking(), keras.layers.GRU(H)])  # found by a review: said
    stack.build((None, None, I))  # "expected return_sequences=True … got False on 'masking'"
    with pytest.raises(TypeError, match=r"GRU or Bidirectional\(GRU\) layers only, got Masking in 'masking"):
        from_keras(stack)


def test_other_keras_backend_gives_a_clear_error():
    """In a fresh process where keras reports another backend, the converters refuse.

    Every keras backend but torch needs its own framework installed (even "numpy"
    imports jax), so the child imports keras on torch and then makes it report
    "numpy": the check under test reads keras.backend.backend() at call time.
    """
    code = textwrap.dedent("""
        import os
        os.environ["KERAS_BACKEND"] = "torch"
        import keras
        keras.backend.backend = lambda: "numpy"
        from grukit import GRU
        from grukit.interop import to_keras
        try:
            to_keras(GRU(2, 3))
        except RuntimeError as err:
            print("ERROR:", err)
    """)
    import grukit

    src = os.path.dirname(os.path.dirname(grukit.__file__))  # grukit importable in the child, installed or not
    path = os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "PYTHONPATH": path}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert "ERROR:" in result.stdout, result.stderr[-2000:]
    assert "'numpy' backend" in result.stdout and "KERAS_BACKEND=torch" in result.stdout


def test_unset_keras_backend_becomes_torch():
    """With KERAS_BACKEND unset, the converters import keras on its torch backend (not TensorFlow)."""
    import grukit

    code = textwrap.dedent("""
        import os
        from grukit import GRU
        from grukit.interop import to_keras
        to_keras(GRU(2, 3))
        import keras
        print("BACKEND:", keras.backend.backend(), os.environ["KERAS_BACKEND"])
    """)
    src = os.path.dirname(os.path.dirname(grukit.__file__))
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH")) if p)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert "BACKEND: torch torch" in result.stdout, result.stderr[-2000:]






def _built(layer, input_size):
    layer.build((None, None, input_size))
    return layer


def test_a_stack_whose_inner_layer_returns_only_its_last_step_is_refused():
    """In a Sequential, every layer but the last must return sequences; one that does not is a ValueError."""
    first = _built(keras.layers.GRU(H, return_sequences=False, name="g0"), I)
    second = _built(keras.layers.GRU(H, name="g1"), H)
    with pytest.raises(ValueError, match="return_sequences=True on every layer but the last, got False on 'g0'"):
        from_keras(keras.Sequential([first, second]))


def test_a_stack_of_unlike_layers_is_refused():
    """Layers that differ in reset_after (or units, use_bias, directions) cannot be one grukit GRU."""
    first = _built(keras.layers.GRU(H, return_sequences=True, reset_after=True), I)
    second = _built(keras.layers.GRU(H, reset_after=False), H)
    with pytest.raises(ValueError, match="expected every layer alike"):
        from_keras(keras.Sequential([first, second]))
    third = _built(keras.layers.GRU(H, use_bias=False), H)
    with pytest.raises(ValueError, match="expected every layer alike"):
        from_keras(keras.Sequential([first, third]))
