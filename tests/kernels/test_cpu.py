"""The `cpu` backend (C++ kernel) against `fused`: outputs, h_n and every gradient.

float32 within 1e-5 (absolute and relative), float64 within 1e-10; both resets, masks,
reverse, with and without biases, T=1, N=1, H=1, H=33; then through grukit.GRU
(layers, bidirectional, lengths) and GRU.step. Skipped as a whole when the extension
cannot be built here (no compiler/ninja), with the reason.
"""
import itertools
import logging
import os
import shutil
import subprocess
import sys
import textwrap
import time

import pytest
import torch

import grukit
from grukit import kernels
from grukit.kernels import cpu, fused

pytestmark = pytest.mark.skipif(not cpu.available(), reason="grukit cpu kernel could not be built (see its warning)")

TOL = {torch.float32: 1e-5, torch.float64: 1e-10}
SHAPES = [(6, 3, 5, 4), (1, 2, 3, 5), (5, 1, 3, 4), (4, 3, 2, 1), (5, 6, 4, 33), (4, 9, 3, 6)]
# (T, N, I, H): T=1, N=1, H=1, H=33; N=9 splits the time loop over threads by rows (5 + 4)


def _inputs(T, N, I, H, dtype, *, bias, masked, seed=0, scale=1.0):
    """Leaf tensors for one sequence call, weights U(−1/√H, 1/√H)·scale·2 (a little beyond init)."""
    g = torch.Generator().manual_seed(seed)
    k = 2 * scale / H**0.5

    def uniform(*shape):
        return ((torch.rand(*shape, generator=g, dtype=dtype) * 2 - 1) * k).requires_grad_()

    x = (torch.randn(T, N, I, generator=g, dtype=dtype) * scale).requires_grad_()  # (T, N, I)
    h0 = torch.randn(N, H, generator=g, dtype=dtype).requires_grad_()  # (N, H)
    params = [uniform(3 * H, I), uniform(3 * H, H)] + ([uniform(3 * H), uniform(3 * H)] if bias else [None, None])
    mask = None
    if masked:
        lengths = torch.randint(1, T + 1, (N,), generator=g)  # (N,)
        mask = (torch.arange(T)[:, None] < lengths[None, :]).to(dtype)  # (T, N)
    d_out = torch.randn(T, N, H, generator=g, dtype=dtype)  # (T, N, H)
    d_hn = torch.randn(N, H, generator=g, dtype=dtype)  # (N, H)
    return x, h0, params, mask, d_out, d_hn


def _run(backend, inputs, reset, reverse):
    """Forward + backward of Σ d_out·output + Σ d_hn·h_n; returns output, h_n and the gradients."""
    x, h0, params, mask, d_out, d_hn = inputs
    leaves = [x, h0] + [p for p in params if p is not None]
    for leaf in leaves:
        leaf.grad = None
    output, h_n = backend.sequence(x, h0, *params, reset=reset, mask=mask, reverse=reverse)
    ((output * d_out).sum() + (h_n * d_hn).sum()).backward()
    return [output.detach(), h_n.detach()] + [leaf.grad.clone() for leaf in leaves]


def _assert_all_close(got, want, tol):
    names = ["output", "h_n", "x.grad", "h0.grad", "weight_x.grad", "weight_h.grad", "bias_x.grad", "bias_h.grad"]
    assert len(got) == len(want)
    for name, a, b in zip(names, got, want):
        torch.testing.assert_close(a, b, rtol=tol, atol=tol, msg=lambda m, name=name: f"{name}: {m}")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("T,N,I,H", SHAPES)
@pytest.mark.parametrize("reset,masked,reverse,bias", list(itertools.product(("before", "after"), (False, True),
                                                                               (False, True), (True, False))))
def test_sequence_matches_fused(dtype, T, N, I, H, reset, masked, reverse, bias):
    inputs = _inputs(T, N, I, H, dtype, bias=bias, masked=masked)
    _assert_all_close(_run(cpu, inputs, reset, reverse), _run(fused, inputs, reset, reverse), TOL[dtype])


@pytest.fixture
def threads(request):
    """torch's intra-op thread count set to request.param for the test, restored after it."""
    before = torch.get_num_threads()
    torch.set_num_threads(request.param)
    yield request.param
    torch.set_num_threads(before)


# (T, N, I, H) that reach each threaded path of the kernel (gru.h, backward.cpp), whatever threads the machine has:
THREADED = [(4, 9, 3, 6),  # for_row_blocks: 2 threads give rows 0..4 and 5..8 each their own time loop
            (2, 4, 4, 1024),  # for_rows: N·H ≥ 4096 (kParallelElems), N < 8, so the rows of one step are split
            (256, 64, 2, 64)]  # backward: T·N·H ≥ 2²⁰ (the reset-after r products, column sums of 3H columns)


@pytest.mark.parametrize("threads", [1, 2], indirect=True)
@pytest.mark.parametrize("T,N,I,H", THREADED)
@pytest.mark.parametrize("reset", ["before", "after"])
def test_threaded_paths_match_fused(threads, T, N, I, H, reset):
    """Found by a review: the thread split by rows ran only where torch had 2+ threads (not on a 1-core CI
    runner), and no shape reached the threaded element-wise step or the backward's large-size paths, so a
    kernel that dropped the last row there passed every test."""
    inputs = _inputs(T, N, I, H, torch.float64, bias=True, masked=True)
    _assert_all_close(_run(cpu, inputs, reset, False), _run(fused, inputs, reset, False), TOL[torch.float64])


@pytest.fixture
def without_blas():
    """The kernel's products through at::mm for the test (as on a torch that exports no sgemm_/dgemm_)."""
    before = cpu._ops().allow_blas(False)
    yield
    cpu._ops().allow_blas(before)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("T,N,I,H", [(6, 3, 5, 4), (5, 6, 4, 33), (3, 9, 3, 6)])
@pytest.mark.parametrize("reset", ["before", "after"])
def test_the_path_without_blas_symbols_matches_fused(without_blas, dtype, T, N, I, H, reset):
    """Found by a review: the at::mm fallback of gemm (a torch build without the Fortran symbols, or sizes past
    32 bits) ran in no test. N > gemv_max_rows sends the recurrent products through gemm too; the backward's
    accumulating products (beta = 1) are in the weight gradients."""
    assert N > cpu._ops().gemv_max_rows or N == 3
    inputs = _inputs(T, N, I, H, dtype, bias=True, masked=True)
    got = _run(cpu, inputs, reset, False)
    _assert_all_close(got, _run(fused, inputs, reset, False), TOL[dtype])
    x, h0, params, *_ = inputs
    h = cpu.step(x[0], h0, *params, reset=reset)  # (N, H) a step's products, through at::mm too
    want = fused.step(x[0], h0, *params, reset=reset)  # (N, H)
    torch.testing.assert_close(h, want, rtol=TOL[dtype], atol=TOL[dtype])


@pytest.fixture
def packing_switch():
    """allow_packing, restored to its setting after the test."""
    ops = cpu._ops()
    before = ops.allow_packing(True)
    yield ops.allow_packing
    ops.allow_packing(before)


@pytest.mark.parametrize("threads", [1, 2], indirect=True)
@pytest.mark.parametrize("T,N,I,H", [(17, 20, 7, 130), (16, 17, 4, 33), (18, 37, 3, 64)])
@pytest.mark.parametrize("reset,masked,reverse", [("after", False, False), ("before", True, True),
                                                  ("after", True, True), ("before", False, False)])
def test_the_packed_recurrent_weight_matches_the_plain_products_and_fused(packing_switch, threads, T, N, I, H, reset,
                                                                          masked, reverse):
    """A float32 forward of 16+ steps packs U once (MKL's cblas_sgemm_pack) and every step's product of a block of
    8+ rows reads it; with packing off every step calls sgemm_. Both agree with fused and with each other within
    float32's tolerance. (N = 17 on 2 threads: blocks of 9 and 8 rows, both packed.)"""
    ops = cpu._ops()
    if not ops.pack_symbols():
        pytest.skip("this torch's BLAS has no cblas_sgemm_pack: every product runs unpacked")
    inputs = _inputs(T, N, I, H, torch.float32, bias=True, masked=masked)
    packs, products = ops.pack_count(), ops.packed_product_count()
    packed = _run(cpu, inputs, reset, reverse)
    blocks = 2 if threads == 2 else 1
    assert ops.pack_count() - packs == (1 if reset == "after" else 2)  # U, or U_rz and U_n
    assert ops.packed_product_count() - products == T * blocks * (1 if reset == "after" else 2)
    packing_switch(False)
    packs, products = ops.pack_count(), ops.packed_product_count()
    plain = _run(cpu, inputs, reset, reverse)
    assert (ops.pack_count(), ops.packed_product_count()) == (packs, products)
    _assert_all_close(packed, plain, TOL[torch.float32])
    _assert_all_close(packed, _run(fused, inputs, reset, reverse), TOL[torch.float32])


@pytest.mark.parametrize("threads", [1, 2], indirect=True)
def test_packing_is_left_out_where_it_cannot_pay(threads):
    """Found by a review: packing cost more than it saved for blocks of 5-7 rows (MKL packs those 5× slower), for
    a few steps (at H = 2048, N = 6, T = 2: 97 ms against 9), and U was packed for blocks of 4 rows, which never
    read it (gemv). Now: 16+ steps and a block of 8+ rows; a smaller block of the same call runs plain. One step
    (GRU.step) and float64 (torch 2.13's MKL exports no cblas_dgemm_pack) run unpacked too."""
    ops = cpu._ops()
    if not ops.pack_symbols():
        pytest.skip("this torch's BLAS has no cblas_sgemm_pack")

    def counts(T, N, dtype=torch.float32, step=False):
        x, h0, params, *_ = _inputs(T, N, 3, 16, dtype, bias=True, masked=False)
        packs, products = ops.pack_count(), ops.packed_product_count()
        with torch.no_grad():
            cpu.step(x[0], h0, *params, reset="after") if step else cpu.sequence(x, h0, *params, reset="after")
        return ops.pack_count() - packs, ops.packed_product_count() - products

    per_thread = 8 * threads  # the rows that give each thread's block 8
    assert counts(16, per_thread) == (1, 16 * threads)
    assert counts(15, per_thread) == (0, 0)  # too few steps
    assert counts(16, per_thread - 1) == ((1, 16) if threads == 2 else (0, 0))  # 2 threads: blocks of 8 and 7
    assert counts(16, 4 * threads) == (0, 0)  # blocks of 4: gemv
    assert counts(16, per_thread, step=True) == (0, 0)
    assert counts(16, per_thread, torch.float64) == ((1, 16 * threads) if ops.pack_symbols_float64() else (0, 0))


@pytest.fixture
def fresh_pool():
    """The kernel's pool of big buffers empty and on for the test; emptied and restored after it."""
    ops = cpu._ops()
    before = ops.allow_workspace(True)
    cpu.empty_cache()
    yield ops
    cpu.empty_cache()
    ops.allow_workspace(before)


BIG = (64, 64, 3, 512)  # (T, N, I, H): a training cache (T, N, 4H) of 32 MiB and da (T, N, 3H) of 24 MiB


@pytest.mark.parametrize("reset,reverse", [("after", False), ("before", True)])
def test_big_buffers_are_kept_for_the_next_call_which_overwrites_them(fresh_pool, reset, reverse):
    """The forward's cache and the backward's da of 16 MiB or more go to a pool when freed, and the next
    call of the size takes them: its results are those of fresh memory, to the last bit, with a mask (padded
    steps) and after a call on other inputs has left its values there. empty_cache returns the memory."""
    ops = fresh_pool
    T, N, I, H = BIG
    cache_bytes, da_bytes = T * N * 4 * H * 4, T * N * 3 * H * 4
    other = _inputs(T, N, I, H, torch.float32, bias=True, masked=True, seed=1, scale=3.0)
    _run(cpu, other, reset, reverse)  # fills the pool with another run's values
    assert cpu.cached_bytes() == cache_bytes + da_bytes
    inputs = _inputs(T, N, I, H, torch.float32, bias=True, masked=True)
    pooled = _run(cpu, inputs, reset, reverse)
    assert cpu.cached_bytes() == cache_bytes + da_bytes  # taken and given back, not allocated anew
    with torch.no_grad():  # an inference forward's (T, N, 3H) cache takes the da-sized block
        cpu.sequence(*inputs[:2], *inputs[2], reset=reset, reverse=reverse)
    assert cpu.cached_bytes() == cache_bytes + da_bytes
    cpu.empty_cache()
    assert cpu.cached_bytes() == 0
    ops.allow_workspace(False)
    fresh = _run(cpu, inputs, reset, reverse)
    assert cpu.cached_bytes() == 0
    for a, b in zip(pooled, fresh):
        assert torch.equal(a, b)


def test_the_pool_never_holds_idle_blocks_while_fresh_memory_is_allocated(fresh_pool):
    """Found by a review: the pool kept the four largest blocks freed so far, even where no request could use
    them, so that rising lengths (a sorted data set) held four idle blocks beside each new one (peak 566 MiB
    against 191 without the pool), and one long batch pinned its blocks for every short one after it. Now a
    request that no block fits returns the pool to the system first; a block serves requests of half its size
    up; past four blocks the oldest goes."""
    ops = fresh_pool
    T, N, I, H = BIG
    MiB = 2**20

    def inference(t):  # a no_grad forward: its (t, N, 3H) cache, 24 MiB per T steps, goes to the pool after
        x, h0, params, *_ = _inputs(t, N, I, H, torch.float32, bias=False, masked=False)
        with torch.no_grad():
            cpu.sequence(x, h0, *params, reset="after")

    for t in (T, 2 * T, 3 * T, T // 4, 5 * T):  # rising sizes (and one of 6 MiB, never pooled)
        inference(t)
    assert ops.workspace_blocks() == [120 * MiB]  # each miss returned the blocks before it
    inference(T)  # a long batch's block, then a short one: the short one's own
    assert ops.workspace_blocks() == [24 * MiB]

    def training_cache(t):  # (t, N, 4H): 32 MiB per T steps, alive while the caller holds it
        x, h0, params, *_ = _inputs(t, N, I, H, torch.float32, bias=False, masked=False)
        return ops.forward(x, h0, *params, None, True, False, True)[3]

    inference(2 * T)  # a 48 MiB block
    training_cache(46)  # 23 MiB: under half of 48, so the 48 MiB block goes and 23 MiB is allocated
    assert ops.workspace_blocks() == [23 * MiB]
    inference(2 * T)
    training_cache(48)  # 24 MiB: the 48 MiB block serves it and comes back
    assert ops.workspace_blocks() == [48 * MiB]
    cpu.empty_cache()
    caches = [training_cache(T) for _ in range(5)]  # five blocks at once, returned oldest first
    pointers = [c.data_ptr() for c in caches]
    del caches
    assert ops.workspace_blocks() == [32 * MiB] * 4
    assert training_cache(T).data_ptr() in pointers[1:]  # the first one returned went back to the system


def test_out_of_memory_in_the_pool_names_the_size_as_torch_does(tmp_path):
    """Found by a review: a failed allocation of a pooled buffer raised a bare MemoryError (std::bad_alloc), so
    the CLI could not say how much one tensor asked for. Run in a child under an address-space limit."""
    resource = pytest.importorskip("resource")
    if not hasattr(resource, "RLIMIT_AS"):
        pytest.skip("no RLIMIT_AS here")
    script = tmp_path / "oom.py"
    script.write_text(textwrap.dedent("""
        import resource, torch
        from grukit.kernels import cpu
        assert cpu.available()
        with open("/proc/self/status") as status:
            size = next(int(line.split()[1]) for line in status if line.startswith("VmSize:")) * 1024
        resource.setrlimit(resource.RLIMIT_AS, (size + 512 * 2**20, resource.RLIM_INFINITY))
        T, N, H = 4000, 64, 512  # a no_grad cache (T, N, 3H) of 1,572,864,000 bytes
        x, h0 = torch.zeros(T, N, 3), torch.zeros(N, H)
        try:
            with torch.no_grad():
                cpu.sequence(x, h0, torch.zeros(3 * H, 3), torch.zeros(3 * H, H), None, None, reset="after")
        except RuntimeError as err:
            print(str(err).splitlines()[0])
    """))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "can't allocate memory: you tried to allocate 1572864000 bytes" in done.stdout


def _mm_calls(inputs) -> int:
    """How many aten::mm one forward + backward of the cpu kernel dispatches."""
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        _run(cpu, inputs, "after", False)
    return sum(event.count for event in prof.key_averages() if event.key == "aten::mm")


def test_allow_blas_switches_the_products_to_at_mm_and_back():
    """The test above checks what it means to: off, the products are dispatched to at::mm (none with BLAS)."""
    ops = cpu._ops()
    if not ops.blas_symbols():
        pytest.skip("this torch exports no sgemm_/dgemm_: every product takes at::mm already")
    inputs = _inputs(5, 6, 4, 33, torch.float64, bias=True, masked=False)
    assert _mm_calls(inputs) == 0
    assert ops.allow_blas(False) is True
    try:
        assert _mm_calls(inputs) > 0
    finally:
        assert ops.allow_blas(True) is False
    assert ops.allow_blas(True) is True and _mm_calls(inputs) == 0


def test_negative_views_are_read_as_their_values():
    """A tensor may carry a lazy negation (torch._neg_view) that `contiguous` keeps as a flag beside the data; the
    C++ code read the data un-negated (found by a review: the output differed from fused by 1.8)."""
    x, h0, params, _, _, _ = _inputs(3, 2, 4, 5, torch.float64, bias=True, masked=False)
    x, h0, params = x.detach(), h0.detach(), [p.detach() for p in params]
    views = [torch._neg_view(-t) for t in (x, h0, *params)]  # the same values, behind the flag
    assert all(v.is_neg() for v in views)
    for got, want in zip(cpu.sequence(*views, reset="after"), fused.sequence(x, h0, *params, reset="after")):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    with torch.no_grad():
        got = cpu.step(views[0][0], *views[1:], reset="before")  # (N, H)
    torch.testing.assert_close(got, fused.step(x[0], h0, *params, reset="before"), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("reset", ["before", "after"])
def test_saturated_gates_match_fused(reset):
    """Pre-activations far into σ/tanh saturation (|a| up to ~100) exercise the clamped exp."""
    inputs = _inputs(7, 4, 6, 8, torch.float32, bias=True, masked=False, scale=30.0)
    _assert_all_close(_run(cpu, inputs, reset, False), _run(fused, inputs, reset, False), TOL[torch.float32])


def _one_unit(reset, backend):
    """A GRU with I = H = 1 whose update gate is shut, z = σ(100) = 1 in float32, and n = tanh(x)."""
    model = grukit.GRU(1, 1, reset=reset, backend=backend)
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        model.weight_x_l0[2, 0] = 1.0  # a_n = x
        model.bias_x_l0[1] = 100.0  # a_z = 100
    return model


@pytest.mark.parametrize("reset", ["before", "after"])
def test_a_shut_update_gate_gives_n_whatever_the_size_of_h_prev(reset):
    """Found by a review: h_prev + z·(n − h_prev) cancels at z = 1 when |h_prev| ≫ |n|, so h0 = 1e8 gave h = 0
    instead of n = tanh(0.5) on every cpu path (output, h_n with lengths through the mask, step)."""
    x, n = torch.full((1, 1, 1), 0.5), torch.tanh(torch.tensor(0.5))
    for h0 in (1e2, 1e4, 1e8):
        model, state = _one_unit(reset, "cpu"), torch.full((1, 1, 1), h0)  # (L, N, H)
        with torch.no_grad():
            output, _ = model(x, state)
            _, h_n = model(x, state, lengths=torch.tensor([1]))
            stepped = model.step(x[0], state)
        assert output.item() == h_n.item() == stepped.item() == n.item(), h0


def test_a_gate_past_the_range_of_exp_is_zero_as_in_fused():
    """Found by a review: the float32 exp stopped at 2.4e38 instead of inf, so σ(a) never fell below 4.2e-39: with
    h0 = 1e30 and z = σ(−h0), dh_n/dU_z was −4.2e21 instead of 0, and r = σ(−inf) times inf gave 1.0, not NaN."""
    model = grukit.GRU(1, 1, reset="after", backend="cpu")
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        model.weight_h_l0[1, 0] = -1.0  # a_z = −h_prev
    _, h_n = model(torch.zeros(1, 1, 1), torch.full((1, 1, 1), 1e30))
    h_n.sum().backward()
    assert h_n.item() == torch.tensor(1e30).item() and model.weight_h_l0.grad[1, 0].item() == 0.0
    model = grukit.GRU(1, 2, reset="after", backend="cpu")
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        model.weight_h_l0[:, 0] = 1.0  # every gate reads +h_prev[0] …
        model.weight_h_l0[1, 0] = -1.0  # … but unit 1's r reads −h_prev[0] = −inf
        output, _ = model(torch.zeros(1, 1, 1), torch.tensor([[[float("inf"), 0.5]]]))
        reference, _ = model.use_backend("fused")(torch.zeros(1, 1, 1), torch.tensor([[[float("inf"), 0.5]]]))
    assert output[0, 0, 1].isnan() and torch.equal(output.isnan(), reference.isnan())


def test_nan_input_propagates_like_fused():
    x, h0, params, _, _, _ = _inputs(3, 2, 3, 4, torch.float32, bias=True, masked=False)
    x = x.detach().clone()
    x[1, 0, 0] = float("nan")
    out_cpu, _ = cpu.sequence(x, h0.detach(), *[p.detach() for p in params], reset="after")
    out_fused, _ = fused.sequence(x, h0.detach(), *[p.detach() for p in params], reset="after")
    assert torch.equal(out_cpu.isnan(), out_fused.isnan())
    assert out_cpu[1:, 0].isnan().all() and not out_cpu[:, 1].isnan().any()


@pytest.mark.parametrize("reset", ["before", "after"])
def test_backward_twice_with_retain_graph(reset):
    """The saved cache is read, never overwritten: a second backward gives the same gradients."""
    x, h0, params, _, d_out, d_hn = _inputs(5, 3, 4, 6, torch.float64, bias=True, masked=True)
    output, h_n = cpu.sequence(x, h0, *params, reset=reset)
    loss = (output * d_out).sum() + (h_n * d_hn).sum()
    first = torch.autograd.grad(loss, [x, h0, *params], retain_graph=True)
    second = torch.autograd.grad(loss, [x, h0, *params])
    for a, b in zip(first, second):
        assert torch.equal(a, b)


def test_no_grad_forward_matches_training_forward():
    x, h0, params, mask, _, _ = _inputs(6, 3, 4, 5, torch.float64, bias=True, masked=True)
    output, h_n = cpu.sequence(x, h0, *params, reset="before", mask=mask)
    with torch.no_grad():
        output_ng, h_n_ng = cpu.sequence(x, h0, *params, reset="before", mask=mask)
    assert output_ng.grad_fn is None
    assert torch.equal(output.detach(), output_ng) and torch.equal(h_n.detach(), h_n_ng)


def test_only_a_forward_that_records_a_graph_builds_the_backward_cache(monkeypatch):
    x, h0, params, _, _, _ = _inputs(4, 2, 3, 5, torch.float64, bias=True, masked=False)
    ops, asked = cpu._ops(), []

    class Spy:
        def forward(self, *args):
            asked.append(args[-1])  # the training flag
            return ops.forward(*args)

    monkeypatch.setattr(cpu, "_ops", lambda: Spy())
    cpu.sequence(x, h0, *params, reset="after")
    with torch.no_grad():
        cpu.sequence(x, h0, *params, reset="after")
    with torch.inference_mode():
        cpu.sequence(x, h0, *params, reset="after")
    cpu.sequence(*(t.detach() for t in (x, h0, *params)), reset="after")
    assert asked == [True, False, False, False]


def test_the_output_may_be_edited_in_place_before_backward():
    x, h0, params, _, d_out, _ = _inputs(5, 3, 4, 6, torch.float64, bias=True, masked=False)
    want = torch.autograd.grad(((fused.sequence(x, h0, *params, reset="after")[0] + 1.0) * d_out).sum(), params)
    output, _ = cpu.sequence(x, h0, *params, reset="after")
    output += 1.0  # as a residual connection might
    got = torch.autograd.grad((output * d_out).sum(), params)
    assert all((a - b).abs().max() <= 1e-10 for a, b in zip(got, want))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("reset,bidirectional,lengths", [("before", True, [5, 2, 4]), ("after", True, None),
                                                         ("after", False, [1, 5, 3]), ("before", False, None)])
def test_layer_cpu_matches_fused(dtype, reset, bidirectional, lengths):
    """grukit.GRU(backend="cpu") against backend="fused": two layers, batch_first, all parameters."""
    torch.manual_seed(0)
    models = {}
    for backend in ("cpu", "fused"):
        torch.manual_seed(0)
        models[backend] = grukit.GRU(4, 7, num_layers=2, batch_first=True, bidirectional=bidirectional,
                                     reset=reset, backend=backend, dtype=dtype)
    assert models["cpu"].kernel().name == "cpu"
    x = torch.randn(3, 5, 4, dtype=dtype)  # (N, T, I)
    results = {}
    for backend, model in models.items():
        x_in = x.clone().requires_grad_()
        output, h_n = model(x_in, lengths=lengths)
        (output.square().sum() + h_n.sum()).backward()
        results[backend] = [output.detach(), h_n.detach(), x_in.grad] + [p.grad for p in model.parameters()]
    for a, b in zip(results["cpu"], results["fused"]):
        torch.testing.assert_close(a, b, rtol=TOL[dtype], atol=TOL[dtype])


@pytest.mark.parametrize("reset", ["before", "after"])
@pytest.mark.parametrize("N", [1, 3, 9])
def test_step_matches_fused(reset, N):
    """GRU.step (streaming) through the C++ kernel: N=1 (hand-written GEMV) and N>4 (BLAS)."""
    torch.manual_seed(1)
    model = grukit.GRU(5, 6, num_layers=2, reset=reset, backend="cpu")
    reference = grukit.GRU(5, 6, num_layers=2, reset=reset, backend="fused")
    reference.load_state_dict(model.state_dict())
    xs = torch.randn(4, N, 5)  # (T, N, I)
    h = h_ref = None
    for x_t in xs:
        h, h_ref = model.step(x_t, h), reference.step(x_t, h_ref)  # (L, N, H)
        torch.testing.assert_close(h, h_ref, rtol=1e-5, atol=1e-5)
    with torch.no_grad():
        output, h_n = reference(xs)  # the whole sequence at once ends in the same state
    torch.testing.assert_close(h, h_n, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(h[-1], output[-1], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("I,H", [(5, 6), (13, 33), (64, 128), (17, 3)])
@pytest.mark.parametrize("reset", ["before", "after"])
def test_the_steps_own_products_match_fused(dtype, I, H, reset):
    """The step's eight-row products (gemv_nt_wide): blocks of 8 rows of W and the rows after them, the vector
    loop along k (I, H ≥ 8 floats or 4 doubles) and its tail, for N = 1 … 4 (the rows the GEMV serves)."""
    for N in range(1, 5):
        x, h0, params, _, _, _ = _inputs(1, N, I, H, dtype, bias=True, masked=False, seed=N)
        x_t, h0, params = x[0].detach(), h0.detach(), [p.detach() for p in params]
        torch.testing.assert_close(cpu.step(x_t, h0, *params, reset=reset), fused.step(x_t, h0, *params, reset=reset),
                                   rtol=TOL[dtype], atol=TOL[dtype])


def test_step_with_gradients_is_differentiable():
    x, h0, params, _, _, _ = _inputs(1, 2, 3, 4, torch.float64, bias=True, masked=False)
    h = cpu.step(x[0], h0, *params, reset="after")
    h.sum().backward()
    h_ref = fused.step(x[0].detach(), h0.detach(), *[p.detach() for p in params], reset="after")
    torch.testing.assert_close(h.detach(), h_ref, rtol=1e-10, atol=1e-10)
    assert params[1].grad is not None and params[1].grad.abs().sum() > 0


def test_auto_picks_cpu_on_cpu():
    assert kernels.get("auto", torch.device("cpu")).name == "cpu"


def test_other_dtypes_go_to_fused():
    x, h0, params, _, _, _ = _inputs(4, 2, 3, 5, torch.bfloat16, bias=True, masked=False)
    args = (x.detach(), h0.detach(), *[p.detach() for p in params])
    for a, b in zip(cpu.sequence(*args, reset="after"), fused.sequence(*args, reset="after")):
        assert a.dtype == torch.bfloat16 and torch.equal(a, b)


def test_bad_inputs_name_the_argument():
    x, h0, params, _, _, _ = _inputs(4, 2, 3, 5, torch.float32, bias=True, masked=False)
    with pytest.raises(ValueError, match="weight_h"):
        cpu.sequence(x, h0, params[0], params[1][:, :4], *params[2:], reset="after")
    with pytest.raises(ValueError, match="h0"):
        cpu.sequence(x, h0[:1], *params, reset="after")
    with pytest.raises(TypeError, match="h0"):
        cpu.sequence(x, h0.double(), *params, reset="after")
    with pytest.raises(ValueError, match="reset"):
        cpu.sequence(x, h0, *params, reset="sideways")
    with pytest.raises(ValueError, match="bias_x, bias_h"):
        cpu.sequence(x, h0, *params[:3], None, reset="after")
    with pytest.raises(ValueError, match="mask"):
        cpu.sequence(x, h0, *params, reset="after", mask=torch.ones(3, 2))


def test_available_is_cached_and_a_failed_build_warns(monkeypatch, caplog):
    assert cpu._state["tried"] and cpu.available()
    monkeypatch.setattr(cpu, "_state", {"tried": False, "module": None})
    monkeypatch.setattr(cpu._build, "_compiler", lambda: None)
    with caplog.at_level(logging.WARNING, logger="grukit.kernels.cpu"):
        assert not cpu.available()
        assert not cpu.available()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "backend 'cpu' is not available here; backend 'auto' uses 'fused'" in \
        warnings[0].getMessage()

    caches = (kernels._load, kernels._get)  # availability is cached for the process
    for cache in caches:  # found by a review: the warning said "using 'fused'" even for backend='cpu'
        cache.cache_clear()
    try:
        with pytest.raises(ValueError, match=r"^backend: 'cpu' is not available in this process .* "
                                             r"backend='auto' picks one that is$"):
            grukit.GRU(3, 4, backend="cpu")(torch.randn(2, 1, 3))
        assert grukit.GRU(3, 4)(torch.randn(2, 1, 3))[0].shape == (2, 1, 4)  # auto: fused
    finally:
        for cache in caches:
            cache.cache_clear()


def test_ninja_of_a_virtual_environment_that_is_not_activated_is_found(tmp_path, monkeypatch):
    ninja = pytest.importorskip("ninja")
    from torch.utils import cpp_extension

    monkeypatch.setenv("PATH", str(tmp_path))  # no ninja here (and no system one)
    assert not cpp_extension.is_ninja_available()
    cpu._build._put_ninja_on_path()
    assert os.environ["PATH"].split(os.pathsep)[0] == ninja.BIN_DIR and cpp_extension.is_ninja_available()


def test_each_source_folder_builds_its_own_extension_and_a_newer_source_is_not_cached(tmp_path, monkeypatch):
    name = cpu._build.extension_name()
    assert name.isidentifier() and name.startswith("grukit_cpu_")
    assert cpu._build._cached(name)  # loaded above, from sources no newer than the .so
    for file in cpu._build.SOURCES + cpu._build.HEADERS:  # the same sources in another checkout, edited now
        shutil.copy(cpu._build._HERE / file, tmp_path / file)
        os.utime(tmp_path / file, (time.time() + 60, time.time() + 60))
    monkeypatch.setattr(cpu._build, "_HERE", tmp_path)
    assert cpu._build.extension_name() != name  # its own build folder: checkouts never rebuild each other
    assert not cpu._build._cached(name)  # a source newer than the .so: "compiling" is logged


def test_plain_step_takes_and_gives_a_one_layer_state():
    """The C++ step takes h_prev (N, H) or (1, N, H), a one-layer GRU's state, and gives h of the same shape."""
    x, h0, params, _, _, _ = _inputs(1, 3, 4, 5, torch.float32, bias=True, masked=False)
    x_t, h0, params = x[0].detach(), h0.detach(), [p.detach() for p in params]
    op = cpu.plain_step_op()
    flat, layered = op(x_t, h0, *params, True), op(x_t, h0[None], *params, True)  # (N, H), (1, N, H)
    assert flat.shape == (3, 5) and layered.shape == (1, 3, 5) and torch.equal(layered[0], flat)
    with pytest.raises(ValueError, match=r"h_prev: expected shape \(3, 5\) or \(1, 3, 5\), got \[2, 3, 5\]"):
        op(x_t, torch.stack([h0, h0]), *params, True)
    # the backend's step keeps its (N, H) contract, with or without a gradient (found by a review)
    for grad in (False, True):
        with torch.set_grad_enabled(grad), pytest.raises(ValueError, match=r"^h_?(prev|0): expected shape \(3, 5\)"):
            cpu.step(x_t, h0[None], params[0].requires_grad_(grad), *params[1:], reset="after")


def test_step_bad_inputs_name_the_argument():
    x, h0, params, _, _, _ = _inputs(1, 2, 3, 5, torch.float32, bias=True, masked=False)
    x_t, h0, params = x[0].detach(), h0.detach(), [p.detach() for p in params]
    with pytest.raises(ValueError, match="h_prev"):
        cpu.step(x_t, h0[:, :4], *params, reset="after")
    with pytest.raises(ValueError, match="weight_x"):
        cpu.step(x_t, h0, params[0][:, :2], *params[1:], reset="after")
    with pytest.raises(TypeError, match="weight_h"):
        cpu.step(x_t, h0, params[0], params[1].double(), *params[2:], reset="after")
    with pytest.raises(ValueError, match="reset"):
        cpu.step(x_t, h0, *params, reset="sideways")


def test_the_cpp_step_checks_each_bias_as_a_vector_of_3h():
    """The C++ step itself (`plain_step_op`, which GRU.step calls with no checks in Python) names a bias of the
    wrong shape, dtype or device; a (1, 3H) bias, which it read through a view before, is refused too."""
    x, h0, params, _, _, _ = _inputs(1, 2, 3, 5, torch.float32, bias=True, masked=False)
    x_t, h0, (w_x, w_h, b_x, b_h) = x[0].detach(), h0.detach(), [p.detach() for p in params]
    step = cpu.plain_step_op()
    torch.testing.assert_close(step(x_t, h0, w_x, w_h, b_x, b_h, True), cpu.step(x_t, h0, *params, reset="after"))
    with pytest.raises(ValueError, match=r"^bias: expected shape \(15,\), got \[14\]"):
        step(x_t, h0, w_x, w_h, b_x[:14], b_h, True)
    with pytest.raises(ValueError, match=r"^bias: expected shape \(15,\), got \[1, 15\]"):
        step(x_t, h0, w_x, w_h, b_x, b_h[None], True)
    with pytest.raises(TypeError, match=r"^bias: expected dtype Float \(that of x_t\), got Double"):
        step(x_t, h0, w_x, w_h, b_x, b_h.double(), True)
    with pytest.raises(ValueError, match=r"^bias: the 'cpu' backend expects CPU tensors, got meta"):
        step(x_t, h0, w_x, w_h, b_x.to("meta"), b_h, True)


def test_the_cpp_step_names_a_misshapen_weight_h_and_a_sparse_tensor():
    """Found by a review: a weight_h that is not (3H, H) was reported as h_prev's shape (weight_h gives H), and
    a sparse or mkldnn tensor escaped as a RuntimeError ("Cannot access data pointer")."""
    x, h0, params, _, _, _ = _inputs(1, 2, 3, 5, torch.float32, bias=True, masked=False)
    x_t, h0, (w_x, w_h, b_x, b_h) = x[0].detach(), h0.detach(), [p.detach() for p in params]
    step = cpu.plain_step_op()
    with pytest.raises(ValueError, match=r"^weight_h: expected a \(3H, H\) matrix, got shape \[1, 15, 5\]"):
        step(x_t, h0, w_x, w_h[None], b_x, b_h, True)
    with pytest.raises(ValueError, match=r"^weight_h: expected shape \(12, 4\), got \[15, 4\]"):  # H = 4 from it
        step(x_t, h0, w_x, w_h[:, :4], b_x, b_h, True)
    for args, name in (((x_t.to_sparse(), h0, w_x, w_h, b_x, b_h), "x_t"), ((x_t, h0, w_x, w_h.to_sparse(), b_x, b_h),
                       "weight_h"), ((x_t, h0, w_x, w_h, b_x, b_h.to_sparse()), "bias"),
                       ((x_t, h0.to_mkldnn(), w_x, w_h, b_x, b_h), "h_prev")):
        with pytest.raises(ValueError, match=rf"^{name}: expected a dense \(strided\) tensor, got layout"):
            step(*args, True)


def _args(T=3, N=2, I=4, H=5, dtype=torch.float32, seed=0):
    """x (T, N, I), h0 (N, H) and weight_x, weight_h, bias_x, bias_h of `_inputs`, no gradients."""
    x, h0, params, *_ = _inputs(T, N, I, H, dtype, bias=True, masked=False, seed=seed)
    return [t.detach() for t in (x, h0, *params)]


def test_every_argument_s_device_and_shape_is_checked_before_the_cpp_code_reads_it():
    """A mutation audit: the checks of _check that the C++ code relies on (it reads raw pointers) could go
    without a failing test: a tensor on another device, an x that is not 3-D, a bias_h of the wrong shape."""
    x, h0, w_x, w_h, b_x, b_h = _args()
    with pytest.raises(ValueError, match=r"^h0: the 'cpu' backend expects CPU tensors, got device meta"):
        cpu.sequence(x, h0.to("meta"), w_x, w_h, b_x, b_h, reset="after")
    with pytest.raises(ValueError, match=r"^x: the 'cpu' backend expects a CPU tensor, got device meta"):
        cpu.sequence(x.to("meta"), h0, w_x, w_h, b_x, b_h, reset="after")
    with pytest.raises(ValueError, match=r"^x: expected a \(T, N, I\) tensor, got shape \(2, 4\)"):
        cpu.sequence(x[0], h0, w_x, w_h, b_x, b_h, reset="after")
    with pytest.raises(ValueError, match=r"^bias_h: expected shape \(15,\), got \(14,\)"):
        cpu.sequence(x, h0, w_x, w_h, b_x, b_h[:14], reset="after")


def test_sequence_and_empty_cache_where_the_kernel_was_not_built(monkeypatch):
    """A mutation audit: sequence without the `_ops() is None` check failed with an AttributeError on None
    instead of naming the build, and empty_cache without its None check raised where nothing was ever built."""
    monkeypatch.setattr(cpu, "_state", {"tried": True, "module": None})
    cpu.empty_cache()  # nothing held, nothing to do
    assert cpu.cached_bytes() == 0
    with pytest.raises(RuntimeError, match=r"^the grukit cpu kernel could not be built"):
        cpu.sequence(*_args(), reset="after")


def test_no_time_steps_give_zero_weight_gradients():
    """A mutation audit of the C++ kernel: with T = 0 the backward returned dW_x uninitialised (its zero_() gone),
    and no test ran a sequence of no steps through the kernel."""
    H, I = 16, 64
    x, h0, w_x, w_h, b_x, b_h = (t.requires_grad_() for t in _args(T=0, N=2, I=I, H=H))
    garbage = torch.full((3 * H, I), 7.0)  # freed just before: malloc hands its memory to the next of its size
    del garbage
    output, h_n = cpu.sequence(x, h0, w_x, w_h, b_x, b_h, reset="after")
    assert output.shape == (0, 2, H) and torch.equal(h_n, h0)
    (h_n * 2).sum().backward()
    assert torch.equal(h0.grad, torch.full_like(h0, 2.0))
    for p in (w_x, w_h, b_x, b_h):
        assert torch.equal(p.grad, torch.zeros_like(p))


def test_no_time_steps_give_an_h_n_of_its_own():
    """A mutation audit of the C++ kernel: with T = 0 the forward returned h0 itself as h_n (its clone() gone), so
    an edit of h_n in place changed the caller's h0."""
    x, h0, *params = _args(T=0)
    with torch.no_grad():
        _, h_n = cpu.sequence(x, h0, *params, reset="before")
        h_n += 1.0
    assert torch.equal(h_n, h0 + 1.0)


def test_the_cpp_step_refuses_one_bias_without_the_other():
    """A mutation audit of the C++ kernel: the step's "both biases or neither" check could go, and the step then
    ran as if there were no bias at all; cpu.step without gradients relies on it (GRU.step's plain way too)."""
    x, h0, w_x, w_h, b_x, b_h = _args()
    with pytest.raises(ValueError, match=r"^bias_x, bias_h: expected both tensors or both None"):
        cpu.plain_step_op()(x[0], h0, w_x, w_h, b_x, None, True)
    with torch.no_grad(), pytest.raises(ValueError, match=r"^bias_x, bias_h: expected both"):
        cpu.step(x[0], h0, w_x, w_h, None, b_h, reset="before")


@pytest.mark.parametrize("after", [True, False])
def test_the_cpp_step_reads_strided_views_as_their_values(after):
    """A mutation audit of the C++ kernel: the step made only negative views contiguous, so a transposed weight
    or a column of a batch-first x was read as raw memory, and no test passed the step a strided tensor."""
    x, h0, w_x, w_h, b_x, b_h = _args(N=3, dtype=torch.float64)
    x_t = x.transpose(0, 1).contiguous()[:, 0]  # (N, I), a strided view of a batch-first x
    views = (x_t, h0.t().contiguous().t(), w_x.t().contiguous().t(), w_h.t().contiguous().t(), b_x, b_h[::1])
    assert not any(v.is_contiguous() for v in views[:4])
    got = cpu.plain_step_op()(*views, after)
    want = fused.step(x[0], h0, w_x, w_h, b_x, b_h, reset="after" if after else "before")
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


def test_the_pool_hands_out_the_smallest_block_that_fits():
    """A mutation audit of the C++ kernel's pool (workspace.h): a request that two pooled blocks fit took the
    larger one, holding the bigger block while the smaller sat idle, and no test had two blocks that fit."""
    ops = cpu._ops()
    before = ops.allow_workspace(True)
    cpu.empty_cache()
    try:
        N, H, MiB = 64, 512, 2**20

        def training_cache(t):  # (t, N, 4H) float32: 0.5 MiB per step, alive while held
            x, h0, w_x, w_h, *_ = _args(T=t, N=N, I=3, H=H)
            return ops.forward(x, h0, w_x, w_h, None, None, None, True, False, True)[3]

        small, large = training_cache(48), training_cache(80)  # 24 and 40 MiB
        del small, large
        assert ops.workspace_blocks() == [24 * MiB, 40 * MiB]
        held = training_cache(48)  # fits either (40 / 2 ≤ 24): it takes the 24 MiB block
        assert ops.workspace_blocks() == [40 * MiB]
        del held
    finally:
        cpu.empty_cache()
        ops.allow_workspace(before)


def test_a_misshapen_bias_x_is_named_before_the_cpp_code_reads_past_it():
    """A mutation audit: _check's shape test of bias_x could go without a failing test (only bias_h's was tried),
    and the C++ forward, which takes its sizes from the weights, then read 3H values from a shorter bias."""
    x, h0, w_x, w_h, b_x, b_h = _args()
    with pytest.raises(ValueError, match=r"^bias_x: expected shape \(15,\), got \(14,\)"):
        cpu.sequence(x, h0, w_x, w_h, b_x[:14], b_h, reset="after")
    with pytest.raises(ValueError, match=r"^bias_x: expected shape \(15,\), got \(1, 15\)"):
        cpu.sequence(x, h0, w_x, w_h, b_x[None], b_h, reset="before")


@pytest.mark.parametrize("reset", ["before", "after"])
def test_sequence_reads_every_strided_argument_as_its_values(reset):
    """A mutation audit: the C++ forward reads raw memory, so sequence makes each tensor contiguous first; that
    could be dropped for the weights, the biases, h0 or the mask without a failing test (only x, through
    batch_first, ever came strided). Each argument is passed as a non-contiguous view here, gradients too."""
    T, N, I, H = 4, 3, 4, 5
    x, h0, w_x, w_h, b_x, b_h = _args(T=T, N=N, I=I, H=H, dtype=torch.float64)
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 0.0, 1.0], [1.0, 0.0, 1.0], [1.0, 0.0, 0.0]], dtype=torch.float64)
    plain = [t.clone().requires_grad_() for t in (x, h0, w_x, w_h, b_x, b_h)]
    strided = [t.clone().requires_grad_() for t in (x, h0, w_x, w_h, b_x, b_h)]
    views = [strided[0].transpose(0, 1).contiguous().transpose(0, 1)]  # (T, N, I) batch-first memory
    views += [t.t().contiguous().t() for t in strided[1:4]]  # (N, H), (3H, I), (3H, H) column-major
    views += [torch.stack((t, -t), dim=1)[:, 0] for t in strided[4:]]  # (3H,) every other value
    mask_view = torch.stack((mask, 1 - mask), dim=-1)[..., 0]  # (T, N) every other value
    assert not any(v.is_contiguous() for v in (*views, mask_view))
    d_out, d_hn = torch.randn(T, N, H, dtype=torch.float64), torch.randn(N, H, dtype=torch.float64)
    results = []
    for args, steps in ((views, mask_view), (plain, mask)):
        output, h_n = cpu.sequence(*args, reset=reset, mask=steps)
        ((output * d_out).sum() + (h_n * d_hn).sum()).backward()
        results.append([output.detach(), h_n.detach()])
    want = fused.sequence(*plain[:2], *(t.detach() for t in plain[2:]), reset=reset, mask=mask)
    for got in results:
        for a, b in zip(got, want):
            torch.testing.assert_close(a, b.detach(), rtol=1e-12, atol=1e-12)
    for a, b in zip(strided, plain):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("reset", ["before", "after"])
def test_other_dtypes_go_to_fused_with_their_mask_and_direction(reset):
    """A mutation audit: the hand-over of bfloat16/float16 to fused could drop `mask` or `reverse` (a bf16
    bidirectional GRU with lengths then ran every reverse pass forward, over padding) without a failing test:
    the one test of it passed neither."""
    x, h0, params, mask, _, _ = _inputs(5, 3, 3, 4, torch.float64, bias=True, masked=True, seed=2)
    args = [t.detach().to(torch.bfloat16) for t in (x, h0, *params)]
    mask = mask.to(torch.bfloat16)
    assert not mask.all()
    for reverse in (False, True):
        got = cpu.sequence(*args, reset=reset, mask=mask, reverse=reverse)
        want = fused.sequence(*args, reset=reset, mask=mask, reverse=reverse)
        assert all(a.dtype == torch.bfloat16 and torch.equal(a, b) for a, b in zip(got, want))
    assert not torch.equal(cpu.sequence(*args, reset=reset, mask=mask, reverse=True)[1],
                           cpu.sequence(*args, reset=reset, mask=mask)[1])
    assert not torch.equal(cpu.sequence(*args, reset=reset, mask=mask)[1], cpu.sequence(*args, reset=reset)[1])


def test_plain_step_op_is_none_where_the_kernel_was_not_built(monkeypatch):
    """A mutation audit: plain_step_op gave `None.step` (an AttributeError) instead of None where the extension
    could not be built, which the registry reads as "no plain step"."""
    monkeypatch.setattr(cpu, "_state", {"tried": True, "module": None})
    assert cpu.plain_step_op() is None and not cpu.available()


@pytest.mark.parametrize("reset", ["before", "after"])
def test_strided_incoming_gradients_are_read_as_their_values(reset):
    """A mutation audit: backward makes the gradient of h_n contiguous before the C++ code reads it as raw
    memory, and that could go without a failing test: every test's h_n gradient came contiguous. Here it comes
    transposed (h_n.t() in the loss) and broadcast (h_n.sum(): stride 0), and so does the output's."""
    T, N, I, H = 4, 3, 2, 5
    x, h0, *params = _args(T=T, N=N, I=I, H=H, dtype=torch.float64)
    D_out, D_hn = torch.randn(H, N, T, dtype=torch.float64), torch.randn(H, N, dtype=torch.float64)
    losses = (lambda output, h_n: (output.permute(2, 1, 0) * D_out).sum() + (h_n.t() * D_hn).sum(),
              lambda output, h_n: output.sum() + h_n.sum())
    for loss in losses:
        grads = []
        for kernel in (cpu, fused):
            leaves = [t.clone().requires_grad_() for t in (x, h0, *params)]
            loss(*kernel.sequence(*leaves, reset=reset)).backward()
            grads.append([leaf.grad for leaf in leaves])
        for a, b in zip(*grads):
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("reset", ["before", "after"])
def test_an_inference_forward_with_a_mask_matches_fused(reset):
    """A mutation audit of the C++ kernel: a forward without a graph but with a mask ran its rows as in training
    (writing the cache's fourth block, which an inference cache of 3H columns does not have, over the next row's
    input projection), and no test compared such a forward with another backend."""
    x, h0, params, mask, _, _ = _inputs(5, 3, 4, 6, torch.float64, bias=True, masked=True)
    x, h0, params = x.detach(), h0.detach(), [p.detach() for p in params]
    for reverse in (True, False):
        got = cpu.sequence(x, h0, *params, reset=reset, mask=mask, reverse=reverse)
        want = fused.sequence(x, h0, *params, reset=reset, mask=mask, reverse=reverse)
        for a, b in zip(got, want):
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("reset", ["before", "after"])
def test_strided_and_expanded_output_gradients_match_fused(reset):
    """A mutation audit of the C++ kernel: the backward copies a non-contiguous d_output itself (contiguous_small),
    and no test gave it one whose last dimension is not unit-stride: output.sum() (an expanded scalar, strides 0)
    or a loss read through a transposed view, so reading it as if the stride were 1 went unseen."""
    T, N, I, H = 4, 3, 2, 5
    for loss in (lambda out: out.sum(), lambda out: (out.transpose(0, 2) * torch.linspace(-1, 1, T)).sum()):
        inputs = _inputs(T, N, I, H, torch.float64, bias=True, masked=False)
        x, h0, params, *_ = inputs
        leaves = [x, h0, *params]
        grads = {}
        for backend in (cpu, fused):
            output, _ = backend.sequence(x, h0, *params, reset=reset)
            grads[backend.name] = torch.autograd.grad(loss(output), leaves)
        for a, b in zip(grads["cpu"], grads["fused"]):
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("reset", ["before", "after"])
def test_a_padded_step_keeps_the_state_to_the_last_bit(reset):
    """A mutation audit of the C++ kernel: lerp's two forms (a + w·(b − a) below w = ½, b − (b − a)·(1 − w) from
    it) make the masked update exact at m = 0; with the second form alone a padded step moved the state by an ulp,
    which every test's tolerance hid. h_n is the output of each sequence's last real step, exactly."""
    T, N, I, H = 6, 4, 3, 33
    x, h0, params, _, _, _ = _inputs(T, N, I, H, torch.float32, bias=True, masked=False, seed=3)
    x, h0, params = x.detach(), h0.detach(), [p.detach() for p in params]
    lengths = torch.tensor([1, 3, 2, 6])
    mask = (torch.arange(T)[:, None] < lengths[None, :]).float()  # (T, N)
    output, h_n = cpu.sequence(x, h0, *params, reset=reset, mask=mask)
    last = output[lengths - 1, torch.arange(N)]  # (N, H)
    assert torch.equal(h_n, last)


def _training_cache(ops, t, N=64, H=512):
    """A training forward's cache (t, N, 4H) in float32, 0.5 MiB per step at N = 64, H = 512, alive while held."""
    x, h0, w_x, w_h, *_ = _args(T=t, N=N, I=3, H=H)
    return ops.forward(x, h0, w_x, w_h, None, None, None, True, False, True)[3]


def test_turning_the_pool_off_returns_its_blocks_and_those_freed_later():
    """A mutation audit of the C++ kernel's pool: allow_workspace(False) could keep the pooled blocks, and a block
    in use when the pool was turned off could join the pool when freed, holding memory that no call takes while
    the pool is off; no test turned it off with blocks in it or in use. Also what the switch, release_workspace and
    workspace_blocks (smallest first, whatever the order of freeing) return, which no test checked."""
    ops = cpu._ops()
    before = ops.allow_workspace(True)
    cpu.empty_cache()
    MiB = 2**20
    try:
        held, larger, smaller = _training_cache(ops, 48), _training_cache(ops, 40), _training_cache(ops, 36)
        del larger, smaller  # 20 MiB, then 18 MiB
        assert ops.workspace_blocks() == [18 * MiB, 20 * MiB]
        assert ops.release_workspace() == 38 * MiB and ops.workspace_blocks() == []
        _training_cache(ops, 40)  # freed at once: to the pool again
        assert ops.workspace_blocks() == [20 * MiB]
        assert ops.allow_workspace(False) is True
        assert ops.workspace_blocks() == []  # returned to the system at once
        del held
        assert ops.workspace_blocks() == []  # freed while off: to the system
        assert ops.allow_workspace(False) is False
    finally:
        ops.allow_workspace(before)
        cpu.empty_cache()


def test_a_buffer_of_exactly_16_mib_is_pooled():
    """A mutation audit of the C++ kernel's pool: buffers "of 16 MiB or more" are pooled, and a threshold moved by
    one (more than 16 MiB) failed no test; a (32, 64, 2048) float32 cache is 16 MiB exactly."""
    ops = cpu._ops()
    before = ops.allow_workspace(True)
    cpu.empty_cache()
    try:
        cache = _training_cache(ops, 32)
        assert cache.numel() * cache.element_size() == 16 * 2**20
        del cache
        assert ops.workspace_blocks() == [16 * 2**20]
    finally:
        ops.allow_workspace(before)
        cpu.empty_cache()


def test_the_cpp_step_names_an_x_t_that_is_not_a_float_matrix():
    """A mutation audit of the C++ kernel: the step's first two checks (x_t 2-D, float32 or float64) could go with
    no failing test; without them a 1-D x_t raised an IndexError and a float16 one a RuntimeError from data_ptr."""
    x, h0, w_x, w_h, b_x, b_h = _args()
    step = cpu.plain_step_op()
    with pytest.raises(ValueError, match=r"^x_t: expected an \(N, I\) tensor, got shape \[4\]"):
        step(x[0, 0], h0, w_x, w_h, b_x, b_h, True)
    half = [t.half() for t in (x[0], h0, w_x, w_h, b_x, b_h)]
    with pytest.raises(TypeError, match=r"^x_t: expected float32 or float64, got Half"):
        step(*half, True)


@pytest.mark.parametrize("reset", ["before", "after"])
def test_an_empty_batch_gives_zero_weight_gradients(reset):
    """A mutation audit of the C++ kernel: gemm's K = 0 case (a product over no rows, N = 0, must write zeros where
    beta is 0) could go with no failing test: dW_x and dW_h came back uninitialised."""
    H, I = 16, 64
    x, h0, w_x, w_h, b_x, b_h = (t.requires_grad_() for t in _args(T=3, N=0, I=I, H=H))
    garbage = torch.full((3 * H, I), 7.0)  # freed just before: malloc hands its memory to the next of its size
    garbage2 = torch.full((3 * H, H), 7.0)
    del garbage, garbage2
    output, h_n = cpu.sequence(x, h0, w_x, w_h, b_x, b_h, reset=reset)
    assert output.shape == (3, 0, H) and h_n.shape == (0, H)
    (output.sum() + h_n.sum()).backward()
    for p in (w_x, w_h, b_x, b_h):
        assert torch.equal(p.grad, torch.zeros_like(p))


@pytest.mark.parametrize("reset", ["before", "after"])
def test_no_input_features_match_fused(reset):
    """A mutation audit of the C++ kernel: with I = 0 the input projection is a product over nothing, which gemm
    must write as zeros (beta = 0); without that the cache kept whatever its memory held."""
    T, N, H = 4, 3, 5
    x, h0, w_x, w_h, b_x, b_h = _args(T=T, N=N, I=0, H=H, dtype=torch.float64)
    for _ in range(3):
        garbage = torch.full((T, N, 4 * H), 7.0, dtype=torch.float64)
        del garbage
        leaves = [t.clone().requires_grad_() for t in (x, h0, w_x, w_h, b_x, b_h)]
        got = cpu.sequence(*leaves, reset=reset)
        want = fused.sequence(*leaves, reset=reset)
        for a, b in zip(got, want):
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("after", [True, False])
def test_a_step_without_biases_after_one_with_them_adds_none(after):
    """A mutation audit of the C++ kernel: the step keeps its scratch (the bias sums among it) between calls on a
    thread, so the bias sums must be zeroed for a GRU without biases; no test stepped without biases at all, and
    without the zeroing a bias-free step after a biased one of the same size added the old biases."""
    x, h0, w_x, w_h, b_x, b_h = _args(N=2, dtype=torch.float64)
    step = cpu.plain_step_op()
    reset = "after" if after else "before"
    for bias in ((b_x, b_h), (None, None)):
        got = step(x[0], h0, w_x, w_h, *bias, after)
        torch.testing.assert_close(got, fused.step(x[0], h0, w_x, w_h, *bias, reset=reset), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("reset", ["before", "after"])
def test_a_nan_with_a_payload_propagates_like_fused(reset):
    """A mutation audit of the C++ kernel: the float32 exp returns x itself for a NaN, and without that select no
    test failed, because the NaN of float("nan") (payload 0) passes through the polynomial and the exponent
    arithmetic as NaN; a NaN whose low payload bits are set (as some tools' missing-value markers are) came out
    of exp as a finite number, so σ and tanh of it were not NaN."""
    x, h0, params, _, _, _ = _inputs(3, 2, 3, 4, torch.float32, bias=True, masked=False)
    x, h0, params = x.detach().clone(), h0.detach(), [p.detach() for p in params]
    x[1, 0, :] = torch.tensor([0x7FC00123, 0x7FC001FF, 0xFFC00041 - 2**32], dtype=torch.int32).view(torch.float32)
    assert x[1, 0].isnan().all()
    with torch.no_grad():
        got, _ = cpu.sequence(x, h0, *params, reset=reset)
        stepped = cpu.step(x[1], h0, *params, reset=reset)
    want, _ = fused.sequence(x, h0, *params, reset=reset)
    assert torch.equal(got.isnan(), want.isnan()) and got[1:, 0].isnan().all() and not got[:, 1].isnan().any()
    assert torch.equal(stepped.isnan(), fused.step(x[1], h0, *params, reset=reset).isnan())
    assert stepped[0].isnan().all()


@pytest.mark.parametrize("reset", ["before", "after"])
def test_the_update_at_z_one_half_rounds_as_torch_lerp(reset):
    """A mutation audit of the C++ kernel: lerp switches forms at w = ½ as torch.lerp does (so that the cpu kernel
    rounds as fused), and moving the switch (w ≤ ½, or w < 1) failed no test, whose tolerances hide an ulp. With
    z = σ(0) = ½ and n = tanh(20) = 1 exactly in both backends, h = lerp(h_prev, 1, ½) to the last bit."""
    N = 1001
    h0 = torch.linspace(-3, 3, N).reshape(N, 1)  # (N, H), H = I = 1
    x = torch.zeros(2, N, 1)  # (T, N, I)
    w_x, w_h = torch.zeros(3, 1), torch.zeros(3, 1)
    b_x, b_h = torch.tensor([0.0, 0.0, 20.0]), torch.zeros(3)  # a_z = 0, a_n = 20
    want = torch.lerp(h0, torch.ones_like(h0), torch.tensor(0.5))  # (N, H)
    with torch.no_grad():
        output, _ = cpu.sequence(x, h0, w_x, w_h, b_x, b_h, reset=reset)
        stepped = cpu.step(x[0], h0, w_x, w_h, b_x, b_h, reset=reset)
        reference, _ = fused.sequence(x, h0, w_x, w_h, b_x, b_h, reset=reset)
    assert torch.equal(reference[0], want)
    assert torch.equal(output[0], want) and torch.equal(stepped, want)
    assert torch.equal(output[1], reference[1])


@pytest.mark.parametrize("reset", ["before", "after"])
def test_bias_gradients_are_summed_over_rows_in_double(reset):
    """A mutation audit of the C++ kernel: the bias gradients are column sums of da accumulated in double, and
    summing in float32 instead failed no test (a few rows each). 2¹⁷ identical rows give 2¹⁷ equal values, whose
    sum in double is exactly 2¹⁷ times one row's (a power of two), and in float32 is not."""
    N = 2**17
    params = [torch.tensor([[0.3], [-0.5], [0.8]]), torch.tensor([[0.4], [0.6], [-0.7]]),
              torch.tensor([0.1, -0.2, 0.3]), torch.tensor([-0.05, 0.15, 0.25])]
    grads = {}
    for rows in (1, N):
        x, h0 = torch.full((1, rows, 1), 0.3), torch.full((rows, 1), 0.7)  # (T, N, I), (N, H): every row the same
        leaves = [p.clone().requires_grad_() for p in params]
        output, h_n = cpu.sequence(x, h0, *leaves, reset=reset)
        (output.sum() + 0.5 * h_n.sum()).backward()
        grads[rows] = [p.grad for p in leaves[2:]]  # db_x, db_h
    for many, one in zip(grads[N], grads[1]):
        assert torch.equal(many, one * N)


@pytest.mark.parametrize("reset", ["before", "after"])
def test_the_two_bias_gradients_are_tensors_of_their_own(reset):
    """A mutation audit of the C++ kernel: for reset="before" the backward returns db_h as a copy of db_x (the two
    are equal), and returning db_x itself failed no test; torch.autograd.grad then gave one tensor for both biases,
    so an in-place edit of one gradient (clipping, scaling) changed the other."""
    x, h0, params, _, d_out, _ = _inputs(3, 2, 4, 5, torch.float64, bias=True, masked=False)
    output, _ = cpu.sequence(x, h0, *params, reset=reset)
    d_bias_x, d_bias_h = torch.autograd.grad((output * d_out).sum(), params[2:])
    want = d_bias_h.clone()
    d_bias_x.mul_(2.0)
    assert torch.equal(d_bias_h, want)


def test_the_checks_name_x_t_and_the_layout_on_every_path():
    """Found by the mutation audits' side notes:
    - cpu.step with a gradient wanted runs as a one-step sequence, and a 1-D x_t was reported as "x: expected a
      (T, N, I) tensor, got shape (1, 4)", an argument and a shape the caller never gave;
    - a bfloat16 x of the wrong rank went to fused unchecked and failed there with "not enough values to unpack";
    - a sparse or mkldnn argument reached the C++ code and failed with torch's "unsupported memory format" or
      "Cannot access data pointer", naming no argument."""
    x, h0, w_x, w_h, b_x, b_h = _args()
    with pytest.raises(ValueError, match=r"^x_t: expected an \(N, I\) tensor, got shape \(4,\)"):
        cpu.step(x[0, 0], h0[0], w_x.clone().requires_grad_(), w_h, b_x, b_h, reset="after")
    bf16 = [t.to(torch.bfloat16) for t in (x, h0, w_x, w_h, b_x, b_h)]
    with pytest.raises(ValueError, match=r"^x: expected a \(T, N, I\) tensor, got shape \(2, 4\)"):
        cpu.sequence(bf16[0][0], *bf16[1:], reset="after")
    with pytest.raises(ValueError, match=r"^weight_x: expected a dense \(strided\) tensor, got layout torch.sparse"):
        cpu.sequence(x, h0, w_x.to_sparse(), w_h, b_x, b_h, reset="after")
    with pytest.raises(ValueError, match=r"^x: expected a dense \(strided\) tensor, got layout torch.sparse_coo"):
        cpu.sequence(x.to_sparse(), h0, w_x, w_h, b_x, b_h, reset="after")
    if torch.backends.mkldnn.is_available():
        with pytest.raises(ValueError, match=r"^h0: expected a dense \(strided\) tensor, got layout torch._mkldnn"):
            cpu.sequence(x, h0.to_mkldnn(), w_x, w_h, b_x, b_h, reset="after")
