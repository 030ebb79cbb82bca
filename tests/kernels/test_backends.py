"""Every backend against the NumPy float64 reference: outputs, h_n and all gradients ≤ 1e-10."""
import itertools

import numpy as np
import pytest
import torch

import grukit
from grukit import kernels, reference

BACKENDS = [name for name in ("eager", "fused", "cpu") if kernels.available(name)]
TOL = 1e-10


def test_the_cpu_kernel_builds_wherever_a_compiler_is():
    """Found by a review: with a C++ kernel that no longer compiled, every cpu test skipped (BACKENDS drops it,
    tests/kernels/test_cpu.py skips as a whole) and the suite passed, while `auto` picks cpu on every CPU.
    Where there is no compiler the backend is optional, and its absence is a warning, not a failure."""
    from grukit.kernels.cpu import _build

    if _build._compiler() is None:  # ninja is a dependency; a compiler is the one thing a machine may lack
        pytest.skip("no C++ compiler here: the cpu backend is optional")
    assert kernels.available("cpu"), "the cpu kernel did not build (its warning above says why)"
    assert "cpu" in BACKENDS and grukit.GRU(2, 3).kernel().name == "cpu"


def _run_both(backend, *, T=5, N=3, I=4, H=3, num_layers=1, bidirectional=False, reset="before", bias=True,
              lengths=None, batch_first=False, with_h0=True, seed=0):
    """Run grukit.GRU(backend) and reference.gru_stack_* on the same weights; return the max abs differences."""
    torch.manual_seed(seed)
    gru = grukit.GRU(I, H, num_layers, bias=bias, batch_first=batch_first, bidirectional=bidirectional,
                     reset=reset, backend=backend, dtype=torch.float64)
    D = 2 if bidirectional else 1
    x = torch.randn(T, N, I, dtype=torch.float64)  # (T, N, I)
    h0 = torch.randn(num_layers * D, N, H, dtype=torch.float64) if with_h0 else None  # (L·D, N, H)
    d_out = torch.randn(T, N, D * H, dtype=torch.float64)  # (T, N, D·H)
    d_hn = torch.randn(num_layers * D, N, H, dtype=torch.float64)  # (L·D, N, H)

    x_in = (x.transpose(0, 1) if batch_first else x).clone().requires_grad_()
    h0_in = h0.clone().requires_grad_() if with_h0 else None
    out, h_n = gru(x_in, h0_in, lengths=lengths)
    out_tm = out.transpose(0, 1) if batch_first else out  # (T, N, D·H)
    ((out_tm * d_out).sum() + (h_n * d_hn).sum()).backward()

    params = {name: p.detach().numpy() for name, p in gru.named_parameters()}
    ref_out, ref_hn, cache = reference.gru_stack_forward(
        x.numpy(), None if h0 is None else h0.numpy(), params, reset=reset,
        lengths=None if lengths is None else np.asarray(lengths), bidirectional=bidirectional)
    grads = reference.gru_stack_backward(d_out.numpy(), d_hn.numpy(), cache)

    x_grad = x_in.grad.transpose(0, 1) if batch_first else x_in.grad
    diffs = {"output": np.abs(out_tm.detach().numpy() - ref_out).max(),
             "h_n": np.abs(h_n.detach().numpy() - ref_hn).max(),
             "x.grad": np.abs(x_grad.numpy() - grads["x"]).max()}
    if with_h0:
        diffs["h0.grad"] = np.abs(h0_in.grad.numpy() - grads["h0"]).max()
    for name, p in gru.named_parameters():
        diffs[f"{name}.grad"] = np.abs(p.grad.numpy() - grads[name]).max()
    return diffs


GRID = list(itertools.product(
    ("before", "after"), (1, 2), (False, True), (None, [5, 2, 4]), (False, True), (True, False)
))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("reset,num_layers,bidirectional,lengths,batch_first,bias", GRID)
def test_backend_matches_reference(backend, reset, num_layers, bidirectional, lengths, batch_first, bias):
    diffs = _run_both(backend, reset=reset, num_layers=num_layers, bidirectional=bidirectional,
                      lengths=lengths, batch_first=batch_first, bias=bias)
    worst = max(diffs, key=diffs.get)
    assert diffs[worst] <= TOL, f"{worst} differs by {diffs[worst]:.3e}"


EDGES = {
    "T=1": dict(T=1, lengths=None),
    "N=1": dict(N=1),
    "H=1": dict(H=1),
    "H=33": dict(H=33, T=4),
    "no h0": dict(with_h0=False),
    "unsorted lengths, T=1 rows": dict(T=6, N=4, lengths=[1, 6, 3, 1]),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("reset", ("before", "after"))
@pytest.mark.parametrize("edge", EDGES)
def test_backend_edges_match_reference(backend, reset, edge):
    diffs = _run_both(backend, reset=reset, num_layers=2, bidirectional=True, **EDGES[edge])
    worst = max(diffs, key=diffs.get)
    assert diffs[worst] <= TOL, f"{worst} differs by {diffs[worst]:.3e}"


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("reset", ("before", "after"))
def test_backend_passes_gradcheck_through_the_layer(backend, reset):
    """torch.autograd.gradcheck of output and h_n against x, h0 and every weight: 2 layers, both
    directions, unequal lengths, float64."""
    torch.manual_seed(0)
    gru = grukit.GRU(2, 3, num_layers=2, bidirectional=True, reset=reset, backend=backend, dtype=torch.float64)
    names = [name for name, _ in gru.named_parameters()]
    x = torch.randn(4, 3, 2, dtype=torch.float64, requires_grad=True)  # (T, N, I)
    h0 = torch.randn(4, 3, 3, dtype=torch.float64, requires_grad=True)  # (L·D, N, H)
    lengths = torch.tensor([4, 1, 3])

    def run(x, h0, *weights):
        return torch.func.functional_call(gru, dict(zip(names, weights)), (x, h0), {"lengths": lengths})

    assert torch.autograd.gradcheck(run, (x, h0, *gru.parameters()))


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_kernel_and_the_functional_cell_refuse_an_unknown_reset(backend):
    """Found by a review: eager, fused and grukit.functional read any string but "after" as "before"."""
    from grukit import functional

    H, I = 4, 3
    x, h, W_x, W_h = torch.randn(5, 2, I), torch.randn(2, H), torch.randn(3 * H, I), torch.randn(3 * H, H)
    kernel = kernels.get(backend, torch.device("cpu"))
    with pytest.raises(ValueError, match=r"^reset: expected one of \('before', 'after'\), got 'After'"):
        kernel.sequence(x, h, W_x, W_h, None, None, reset="After")
    with pytest.raises(ValueError, match="^reset: expected"):
        functional.cell(x[0], h, W_x, W_h, None, None, reset="after ")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("reset", ("before", "after"))
@pytest.mark.parametrize("mask", (False, True))
def test_every_kernel_runs_no_time_steps_alike(backend, reset, mask):
    """Found by a mutation audit: with T = 0, cpu returned a copy of h0, fused h0 itself (an edit of h_n in place
    changed the caller's h0), and eager raised torch's "stack expects a non-empty TensorList". Now every kernel
    gives an empty output, h_n equal to h0 but its own tensor, the gradient of h_n straight back to h0, and no
    weight gradient but zero. grukit.GRU refuses T = 0 itself; this is the kernel contract below it."""
    N, I, H = 2, 3, 4
    x = torch.randn(0, N, I, dtype=torch.float64, requires_grad=True)  # (0, N, I)
    h0 = torch.randn(N, H, dtype=torch.float64, requires_grad=True)  # (N, H)
    params = [torch.randn(*shape, dtype=torch.float64, requires_grad=True) for shape in ((3 * H, I), (3 * H, H),
                                                                                       (3 * H,), (3 * H,))]
    kernel = kernels.get(backend, torch.device("cpu"))
    steps = torch.ones(0, N, dtype=torch.float64) if mask else None  # (0, N)
    output, h_n = kernel.sequence(x, h0, *params, reset=reset, mask=steps, reverse=False)
    assert output.shape == (0, N, H) and torch.equal(h_n, h0)
    assert h_n.data_ptr() != h0.data_ptr()
    (3 * h_n).sum().backward()
    assert torch.equal(h0.grad, torch.full_like(h0, 3.0))
    for p in params:
        assert p.grad is None or torch.equal(p.grad, torch.zeros_like(p))
    output, h_n = kernel.sequence(x, h0, *params, reset=reset, mask=steps, reverse=True)
    h_n.sum().backward()  # only h_n is used: the backward gets no gradient for the output
    assert torch.equal(h0.grad, torch.full_like(h0, 4.0))
    output, h_n = kernel.sequence(x, h0, *params, reset=reset, mask=steps, reverse=False)
    (output.sum() + h_n.sum()).backward()  # found by a review: eager's empty output was outside the graph
    assert torch.equal(h0.grad, torch.full_like(h0, 5.0)) and torch.equal(x.grad, torch.zeros_like(x))
    with pytest.raises(ValueError, match="^reset: expected"):  # found by a review: eager took any reset at T = 0
        kernel.sequence(x, h0, *params, reset="sideways", mask=steps, reverse=False)


def test_the_functional_sequence_returns_empty_gates_for_no_time_steps():
    """What eager's T = 0 runs through, with the gates that GRU(return_gates=True) reads: three (0, N, H)."""
    from grukit import functional

    x, h0 = torch.randn(0, 2, 3), torch.randn(2, 4)  # (0, N, I), (N, H)
    output, h_n, g = functional.sequence(x, h0, torch.randn(12, 3), torch.randn(12, 4), None, None, reset="after",
                                         return_gates=True)
    assert output.shape == g.r.shape == g.z.shape == g.n.shape == (0, 2, 4) and torch.equal(h_n, h0)


def test_fused_runs_on_a_device_type_that_auto_has_no_list_for():
    """A mutation audit: in runs_on, the default list for a device type `auto` has no entry for (xpu, mps) could
    become empty, so that fused (and checkpoints saved with it) could not run there, and no test noticed."""
    assert kernels.runs_on("eager", "cuda") and kernels.runs_on("eager", "xpu") and kernels.runs_on("eager", "cpu")
    assert kernels.runs_on("fused", "xpu") and kernels.runs_on("fused", "cpu")
    assert not kernels.runs_on("cpu", "xpu")


def test_auto_on_a_device_type_without_a_list_picks_fused():
    """A mutation audit: the default candidates of `auto` for a device type it has no list for (xpu, mps, meta)
    could change from ("fused",) to anything without a failing test."""
    assert kernels.get("auto", torch.device("meta")).name == "fused"


def test_plain_step_refuses_an_unknown_backend_name():
    """A mutation audit: plain_step without its check_name gave a KeyError from deep inside the registry."""
    with pytest.raises(ValueError, match=r"^backend: expected one of"):
        kernels.plain_step("gpu")


def test_auto_falls_back_to_eager_when_no_listed_backend_is_available(monkeypatch):
    """A mutation audit: the last resort of `auto` (eager, when none of its list can run) ran in no test; it
    could load any other backend."""
    real = kernels._load
    monkeypatch.setattr(kernels, "_load", lambda name: real(name) if name == "eager" else None)
    kernels._get.cache_clear()
    try:
        backend = kernels.get("auto", torch.device("cpu"))
        assert backend.name == "eager" and backend.plain_step is None
        assert backend.sequence.__module__ == "grukit.kernels.eager"
        with pytest.raises(ValueError, match=r"^backend: 'fused' is not available in this process"):
            kernels.get("fused", torch.device("cpu"))
    finally:
        kernels._get.cache_clear()


def test_auto_is_always_available():
    """A mutation audit: available("auto") could say False (auto always runs: eager is its last resort)."""
    assert kernels.available("auto") is True
    assert kernels.runs_on("auto", "cpu")


def test_the_cpu_backend_hands_out_its_plain_step():
    """A mutation audit: the registry dropped every backend's plain_step_op (GRU.step then always took its checked
    way, slower), and the one test of the plain way skipped ("no backend with a plain_step here") instead of
    failing."""
    from grukit.kernels import cpu

    if not cpu.available():
        pytest.skip("the cpu kernel did not build here: no backend has a plain_step")
    assert kernels.get("cpu", torch.device("cpu")).plain_step is cpu._ops().step
    assert kernels.plain_step("auto") is cpu._ops().step
    assert kernels.get("fused", torch.device("cpu")).plain_step is None


def test_auto_on_cuda_picks_fused():
    """A mutation audit: the `auto` list for CUDA could name another backend (eager, 10× slower there) without a
    failing test, since the suite runs without a GPU; a torch.device("cuda") is made without one."""
    backend = kernels.get("auto", torch.device("cuda"))
    assert backend.name == "fused" and backend.sequence.__module__ == "grukit.kernels.fused"
    assert kernels.runs_on("fused", "cuda") and not kernels.runs_on("cpu", "cuda")


def test_a_backend_module_that_fails_to_import_or_lacks_available_is_unavailable(monkeypatch, tmp_path):
    """A mutation audit: _load's handling of a module that raises ImportError (a missing dependency: not only
    ModuleNotFoundError) and of a package without `available` (a backend still without its module) could go
    without a failing test; each must read as "not available", never raise."""
    (tmp_path / "grukit_test_broken_backend.py").write_text('raise ImportError("cannot import name \'x\' from y")\n')
    (tmp_path / "grukit_test_bare_backend.py").write_text("name = 'bare'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(kernels._MODULES, "broken", "grukit_test_broken_backend")
    monkeypatch.setitem(kernels._MODULES, "bare", "grukit_test_bare_backend")
    kernels._load.cache_clear()
    kernels._get.cache_clear()
    try:
        assert kernels.available("broken") is False and kernels.available("bare") is False
        with pytest.raises(ValueError, match=r"^backend: 'bare' is not available in this process"):
            kernels.get("bare", torch.device("cpu"))
    finally:
        kernels._load.cache_clear()
        kernels._get.cache_clear()


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_kernel_s_sequence_defaults_to_no_mask_and_forward_time(backend):
    """A mutation audit: the defaults mask=None, reverse=False of a kernel's sequence (the documented call, as in
    the docstrings' examples) could change, e.g. eager's to reverse=True, without a failing test: grukit.GRU always
    passes both."""
    torch.manual_seed(0)
    T, N, I, H = 4, 2, 3, 5
    args = (torch.randn(T, N, I, dtype=torch.float64), torch.randn(N, H, dtype=torch.float64),
            torch.randn(3 * H, I, dtype=torch.float64), torch.randn(3 * H, H, dtype=torch.float64),
            torch.randn(3 * H, dtype=torch.float64), torch.randn(3 * H, dtype=torch.float64))
    kernel = kernels.get(backend, torch.device("cpu"))
    for reset in ("before", "after"):
        implicit = kernel.sequence(*args, reset=reset)
        explicit = kernel.sequence(*args, reset=reset, mask=None, reverse=False)
        reversed_ = kernel.sequence(*args, reset=reset, mask=None, reverse=True)
        assert all(torch.equal(a, b) for a, b in zip(implicit, explicit))
        assert not torch.equal(implicit[1], reversed_[1])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("reset", ("before", "after"))
def test_every_kernel_s_step_is_one_step_of_its_sequence(backend, reset):
    """A mutation audit: eager's step could ignore `reset` (always "before" or "after") without a failing test;
    GRU.step runs it only for backend='eager', with the default reset. A step is the sequence's single step."""
    torch.manual_seed(0)
    N, I, H = 3, 4, 5
    x, h = torch.randn(1, N, I, dtype=torch.float64), torch.randn(N, H, dtype=torch.float64)
    params = [torch.randn(*shape, dtype=torch.float64) for shape in ((3 * H, I), (3 * H, H), (3 * H,), (3 * H,))]
    kernel = kernels.get(backend, torch.device("cpu"))
    got = kernel.step(x[0], h, *params, reset=reset)  # (N, H)
    torch.testing.assert_close(got, kernel.sequence(x, h, *params, reset=reset)[1], rtol=1e-12, atol=1e-12)
    other = "after" if reset == "before" else "before"
    assert not torch.allclose(got, kernel.step(x[0], h, *params, reset=other))


def test_a_backend_that_is_not_available_runs_nowhere(monkeypatch):
    """A mutation audit: runs_on could answer from the `auto` lists alone (cpu on CPU tensors) for a backend that
    cannot run in this process, so that a checkpoint saved with backend='cpu' kept it on a machine where its
    kernel did not build; no test made a backend unavailable there."""
    real = kernels._load
    monkeypatch.setattr(kernels, "_load", lambda name: None if name == "cpu" else real(name))
    assert not kernels.runs_on("cpu", "cpu") and not kernels.available("cpu")
    assert kernels.runs_on("fused", "cpu") and kernels.runs_on("eager", "cpu") and kernels.runs_on("auto", "cpu")


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_backend_names_an_x_or_h0_of_the_wrong_rank(backend):
    """Found by a mutation audit's side notes: a 0-dim h0 gave "IndexError: tuple index out of range" in all three
    backends' sequence, naming nothing. Each now names the argument and the shape it expects."""
    sequence = kernels.get(backend, torch.device("cpu")).sequence
    x, W_x, W_h = torch.randn(3, 2, 4), torch.randn(15, 4), torch.randn(15, 5)  # (T, N, I), (3H, I), (3H, H)
    with pytest.raises(ValueError, match=r"^h0: expected an \(N, H\) tensor, got shape \(\)"):
        sequence(x, torch.tensor(0.5), W_x, W_h, None, None, reset="after")
    with pytest.raises(ValueError, match=r"^x: expected a \(T, N, I\) tensor, got shape \(2, 4\)"):
        sequence(x[0], torch.zeros(2, 5), W_x, W_h, None, None, reset="after")
