"""grukit.kernels._first_order: a first-order backward refuses create_graph=True instead of
returning gradients that silently lack the second-order terms."""
import pytest
import torch

import grukit
from grukit import kernels

BACKENDS = [name for name in ("eager", "fused", "cpu") if kernels.available(name)]


def _penalised_weight_grad(backend: str) -> torch.Tensor:
    """∂/∂U of h_n.sum() + |∂(h_n.sum())/∂x|²: a gradient penalty, linear task loss (the case
    torch's once_differentiable lets through without an error)."""
    torch.manual_seed(0)
    gru = grukit.GRU(3, 4, backend=backend, dtype=torch.float64)
    x = torch.randn(5, 2, 3, dtype=torch.float64, requires_grad=True)
    _, h_n = gru(x)
    task = h_n.sum()
    (gx,) = torch.autograd.grad(task, x, create_graph=True)
    (task + (gx ** 2).sum()).backward()
    return gru.weight_h_l0.grad


@pytest.mark.parametrize("backend", [b for b in BACKENDS if b != "eager"])
def test_first_order_backends_refuse_a_gradient_of_a_gradient(backend):
    with pytest.raises(RuntimeError, match=f"backend '{backend}'.*create_graph=True.*backend='eager'"):
        _penalised_weight_grad(backend)


def test_eager_differentiates_twice_and_a_plain_backward_still_works():
    want = _penalised_weight_grad("eager")
    assert want.abs().max() > 0
    for backend in BACKENDS:
        gru = grukit.GRU(3, 4, backend=backend)
        out, h_n = gru(torch.randn(5, 2, 3))
        (out.sum() + h_n.sum()).backward()  # first order: unaffected
        assert gru.weight_h_l0.grad.isfinite().all()


@pytest.mark.parametrize("backend", [b for b in BACKENDS if b != "eager"])
def test_torch_func_forward_ad_and_a_vmapped_backward_name_the_eager_backend(backend):
    import torch.autograd.forward_ad as forward_ad
    from torch.func import functional_call, grad

    gru = grukit.GRU(3, 4, backend=backend)
    x = torch.randn(5, 2, 3)  # (T, N, I)
    params = dict(gru.named_parameters())
    attempts = [  # torch.func.grad; jacobian(vectorize=True), whose backward is vmapped
        lambda: grad(lambda p: functional_call(gru, p, (x,))[0].sum())(params),
        lambda: torch.autograd.functional.jacobian(lambda x: gru(x)[0].sum(0), x, vectorize=True),
    ]
    for attempt in attempts:
        with pytest.raises(RuntimeError, match=rf"backend '{backend}'.*need backend='eager'"):
            attempt()
    with forward_ad.dual_level(), pytest.raises(RuntimeError, match="need backend='eager'"):
        gru(forward_ad.make_dual(x, torch.randn_like(x)))
    with forward_ad.dual_level():  # no tangent: an ordinary call
        assert gru(x)[0].shape == (5, 2, 4)
    eager = grukit.GRU(3, 4, backend="eager")
    eager.load_state_dict(gru.state_dict())
    g = grad(lambda p: functional_call(eager, p, (x,))[0].sum())(dict(eager.named_parameters()))
    output, _ = gru(x)
    output.sum().backward()
    for name, p in gru.named_parameters():
        torch.testing.assert_close(g[name], p.grad)  # the way out gives the same gradients


def test_auto_runs_torch_func_transforms_and_forward_mode_on_the_eager_backend():
    """torch.func.grad over torch.nn.GRU works; over grukit.GRU(backend="auto") it stopped at the cpu kernel's
    guard. "auto" now takes `eager` for such a call, with eager's results; a named backend still refuses."""
    import torch.autograd.forward_ad as forward_ad
    from torch.func import functional_call, grad, jvp, vmap

    torch.manual_seed(0)
    auto = grukit.GRU(3, 4, num_layers=2, bidirectional=True, dtype=torch.float64)
    eager = grukit.GRU(3, 4, num_layers=2, bidirectional=True, dtype=torch.float64, backend="eager")
    eager.load_state_dict(auto.state_dict())
    x, lengths = torch.randn(5, 2, 3, dtype=torch.float64), torch.tensor([5, 3])  # (T, N, I), (N,)
    params = dict(auto.named_parameters())

    def loss(model):
        return lambda p, x: functional_call(model, p, (x,), {"lengths": lengths})[0].pow(2).sum()

    got, want = grad(loss(auto), argnums=(0, 1))(params, x), grad(loss(eager), argnums=(0, 1))(params, x)
    for name in params:
        torch.testing.assert_close(got[0][name], want[0][name], rtol=0, atol=0)
    torch.testing.assert_close(got[1], want[1], rtol=0, atol=0)
    xs = torch.randn(4, 5, 2, 3, dtype=torch.float64)  # (B, T, N, I)
    torch.testing.assert_close(vmap(lambda x: auto(x)[0])(xs), torch.stack([auto(x)[0] for x in xs]))
    v = torch.randn_like(x)  # a direction for x
    _, tangent = jvp(lambda x: auto(x)[0], (x,), (v,))  # (T, N, 2H)
    with forward_ad.dual_level():
        dual = forward_ad.unpack_dual(auto(forward_ad.make_dual(x, v))[0]).tangent  # (T, N, 2H)
    eps = 1e-6
    numeric = (auto(x + eps * v)[0] - auto(x - eps * v)[0]) / (2 * eps)  # (T, N, 2H)
    torch.testing.assert_close(tangent, numeric, atol=1e-8, rtol=1e-6)
    torch.testing.assert_close(dual, tangent, rtol=0, atol=0)
    with forward_ad.dual_level():  # a tangent on a weight alone
        weight = forward_ad.make_dual(auto.weight_h_l0.detach(), torch.randn_like(auto.weight_h_l0))
        out = functional_call(auto, {**params, "weight_h_l0": weight}, (x,))[0]  # (T, N, 2H)
        assert forward_ad.unpack_dual(out).tangent is not None
    for name in [b for b in BACKENDS if b != "eager"]:  # named: refused as before
        with pytest.raises(RuntimeError, match=f"backend '{name}'.*need backend='eager'"):
            vmap(grukit.GRU(3, 4, backend=name))(torch.randn(2, 5, 2, 3))


@pytest.mark.parametrize("backend", BACKENDS)
def test_step_carries_forward_mode_and_vmap_on_every_backend(backend):
    """Found by a review: the cpu backend's no-grad step dropped a forward-mode tangent without a word, and
    vmap over it ended in torch's data-pointer error; a step is one cell, which plain torch ops can carry."""
    import torch.autograd.forward_ad as forward_ad

    torch.manual_seed(0)
    gru = grukit.GRU(3, 4, backend=backend, dtype=torch.float64)
    x, v = torch.randn(2, 3, dtype=torch.float64), torch.randn(2, 3, dtype=torch.float64)  # (N, I)
    with forward_ad.dual_level():
        tangent = forward_ad.unpack_dual(gru.step(forward_ad.make_dual(x, v))).tangent  # (1, N, H)
    eps = 1e-6
    numeric = (gru.step(x + eps * v) - gru.step(x - eps * v)) / (2 * eps)  # (1, N, H)
    torch.testing.assert_close(tangent, numeric, atol=1e-8, rtol=1e-6)
    xs = torch.randn(5, 2, 3, dtype=torch.float64)  # (B, N, I)
    torch.testing.assert_close(torch.func.vmap(gru.step)(xs), torch.stack([gru.step(x) for x in xs]))
    # with a state given, as a stream passes it: the call GRU.step would otherwise send to the plain C++ step
    h = torch.randn(1, 2, 4, dtype=torch.float64)  # (1, N, H)
    with forward_ad.dual_level():
        tangent = forward_ad.unpack_dual(gru.step(forward_ad.make_dual(x, v), h)).tangent  # (1, N, H)
    torch.testing.assert_close(tangent, (gru.step(x + eps * v, h) - gru.step(x - eps * v, h)) / (2 * eps),
                               atol=1e-8, rtol=1e-6)
    torch.testing.assert_close(torch.func.vmap(gru.step, in_dims=(0, None))(xs, h),
                               torch.stack([gru.step(x, h) for x in xs]))


@pytest.mark.parametrize("backend", [b for b in BACKENDS if b != "eager"])
def test_a_tangent_on_any_argument_names_the_eager_backend(backend):
    """A mutation audit: the forward's guard looked at x alone in every test (the dual tensor was always x), so it
    could skip h0 and the weights without a failing test; a tangent on any of them leaves torch's own message,
    which names neither the cause nor backend='eager'."""
    import torch.autograd.forward_ad as forward_ad

    torch.manual_seed(0)
    T, N, I, H = 3, 2, 3, 4
    args = [torch.randn(T, N, I), torch.randn(N, H), torch.randn(3 * H, I), torch.randn(3 * H, H),
            torch.randn(3 * H), torch.randn(3 * H)]
    kernel = kernels.get(backend, torch.device("cpu"))
    for i in range(1, len(args)):
        with forward_ad.dual_level(), pytest.raises(RuntimeError, match=rf"^backend '{backend}'.*need backend='eager'"):
            dual = [forward_ad.make_dual(a, torch.randn_like(a)) if j == i else a for j, a in enumerate(args)]
            kernel.sequence(*dual, reset="after")
