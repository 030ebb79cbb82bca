"""GRU: a stack of GRU layers, each in one or two directions, over whole sequences.

For each layer k and direction d, with x_t the input of the layer (the output of
layer k−1, dropout applied in training) and the cell of `grukit.GRUCell`:

    h_t = GRUCell(x_t, h_{t−1})      t = 1..T (forward) or T..1 (reverse)
    output_t = [h_t^fwd ; h_t^rev]   (T, N, D·H),   h_n = last state of each (L·D, N, H)

With `lengths`, sequence i has lengths[i] real steps: later steps give zeros in
`output`, h_n holds each sequence's state at its own last step, and the reverse
direction starts there. The sequence op is a pluggable backend (`grukit.kernels`).

Example:
    >>> import torch, grukit
    >>> gru = grukit.GRU(8, 16, num_layers=2, bidirectional=True)
    >>> x = torch.randn(5, 3, 8)                                # (T, N, I)
    >>> output, h_n = gru(x, lengths=torch.tensor([5, 2, 4]))
    >>> output.shape, h_n.shape
    (torch.Size([5, 3, 32]), torch.Size([4, 3, 16]))
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.modules.module import _global_forward_pre_hooks

from grukit import _checks, functional, kernels
from grukit._autocast import in_parameter_dtype
from grukit._config_field import ConfigField
from grukit.cell import init_parameters, make_parameters
from grukit.checkpoint import register
from grukit.functional import Gates
from grukit.inputs import finish, prepare
from grukit.kernels._first_order import beyond_reverse_mode

_PLAIN_DTYPES = (torch.float32, torch.float64)  # what a backend's plain_step takes (grukit.kernels)


@dataclass(frozen=True)
class RecurrentConfig:
    """The shape of a recurrent stack, shared by GRU and the LSTM/RNN baselines."""

    input_size: int  # I, features of x
    hidden_size: int  # H, units per direction
    num_layers: int = 1  # L, stacked layers
    bias: bool = True  # create the biases (GRU: bias_x and bias_h)
    batch_first: bool = False  # x and output are (N, T, ·) instead of (T, N, ·)
    dropout: float = 0.0  # dropout on each layer's output but the last, training only
    bidirectional: bool = False  # D = 2 directions when True


@dataclass(frozen=True)
class GRUConfig(RecurrentConfig):
    reset: str = "before"  # where r applies: "before" or "after" the U_n product
    backend: str = "auto"  # kernel name (grukit.kernels) or "auto"


_OUTSIDE_DYNAMO: dict = {}


def _outside_dynamo(forward):
    """`forward` under torch.compiler.disable, made at the first compile: the layer's kernels are compiled already,
    and dynamo tracing into them broke the graph 9-10 times per call and took 8-24 s to compile a 2-layer GRU
    (51 s with backend="eager", whose time loop it unrolled; now 1-3 s), for the same result. Made here and not
    as a decorator, which imports torch._dynamo with grukit: 1.5 s more to start any command."""
    if forward not in _OUTSIDE_DYNAMO:
        _OUTSIDE_DYNAMO[forward] = torch.compiler.disable(forward)
    return _OUTSIDE_DYNAMO[forward]


@register
class GRU(nn.Module):
    checkpoint_name = "grukit.GRU"  # stable name in saved files
    __doc__ = __doc__
    # the settings live in self.config (what grukit.save writes); these attributes read and write it
    input_size, hidden_size, num_layers, bias, bidirectional = (ConfigField() for _ in range(5))
    batch_first = ConfigField(lambda value: _checks.switch("batch_first", value))
    dropout = ConfigField(lambda p: _checks.probability("dropout", p))
    reset, backend = ConfigField(functional.check_reset), ConfigField(kernels.check_name)

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, *, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 reset: str = "before", backend: str = "auto", device=None, dtype=None):
        super().__init__()
        functional.check_reset(reset)
        kernels.check_name(backend)
        self.config = GRUConfig(
            _checks.positive_int("input_size", input_size), _checks.positive_int("hidden_size", hidden_size),
            _checks.positive_int("num_layers", num_layers), _checks.switch("bias", bias),
            _checks.switch("batch_first", batch_first), _checks.probability("dropout", dropout),
            _checks.switch("bidirectional", bidirectional), reset, backend,
        )
        if self.config.dropout > 0 and self.config.num_layers == 1:  # as torch.nn.GRU says it
            warnings.warn(f"dropout={self.config.dropout} acts between stacked layers only, so with num_layers=1 "
                          f"it does nothing; give num_layers > 1, or put an nn.Dropout on the inputs or outputs",
                          UserWarning, stacklevel=2)
        self.num_directions = 2 if bidirectional else 1
        factory = {"device": device, "dtype": dtype}
        I, H = self.config.input_size, self.config.hidden_size  # plain ints, whatever integral type was given
        for k in range(self.config.num_layers):
            layer_input = I if k == 0 else H * self.num_directions
            for suffix in self._suffixes(k):
                make_parameters(self, suffix, layer_input, H, bias, factory)
        self.reset_parameters()

    def _suffixes(self, k: int) -> tuple[str, ...]:
        return (f"_l{k}", f"_l{k}_reverse")[: self.num_directions]

    def reset_parameters(self, weight_h: str = "uniform") -> None:
        """U(−1/√H, 1/√H) everywhere, or orthogonal gate blocks of every weight_h."""
        init_parameters(self, self.hidden_size, weight_h)

    def forward(self, x, h0: Tensor | None = None, lengths=None, *, return_gates: bool = False):
        """x (T, N, I) [or (N, T, I) with batch_first, (T, I), PackedSequence] -> (output, h_n).

        output (T, N, D·H), h_n (L·D, N, H). With return_gates=True also returns Gates
        whose r, z, n are (L, D, T, N, H) (time-major, zeros on padded steps), computed
        by the readable `eager` path with gradients intact. Under `torch.compile` the layer runs as it does
        eagerly (a graph break by design); the modules around it are compiled. `torch.export` records each
        layer and direction of the cpu kernel as one op (`grukit.kernels.cpu._library`).
        """
        if torch.compiler.is_compiling():
            return _outside_dynamo(type(self)._forward)(self, x, h0, lengths, return_gates=return_gates)
        return self._forward(x, h0, lengths, return_gates=return_gates)

    @in_parameter_dtype
    def _forward(self, x, h0: Tensor | None, lengths, *, return_gates: bool):
        batch = prepare(x, h0, lengths, input_size=self.input_size, hidden_size=self.hidden_size,
                        num_states=self.num_layers * self.num_directions, batch_first=self.batch_first,
                        dtype=self.weight_x_l0.dtype, device=self.weight_x_l0.device)
        run = _eager_with_gates if return_gates else self._sequence_kernel(batch.x, batch.h0).sequence
        layer_input, h_n, gates = batch.x, [], []  # (T, N, I)
        for k in range(self.num_layers):
            if k > 0 and self.dropout > 0 and self.training:
                layer_input = F.dropout(layer_input, self.dropout, training=True)  # (T, N, D·H)
            outputs = []
            for d in range(self.num_directions):
                result = run(layer_input, batch.h0[k * self.num_directions + d], *self.parameters_of(k, d == 1),
                             reset=self.reset, mask=batch.mask, reverse=d == 1)
                outputs.append(result[0])  # (T, N, H)
                h_n.append(result[1])  # (N, H)
                gates.append(result[2:])
            layer_input = torch.cat(outputs, dim=-1) if len(outputs) > 1 else outputs[0]  # (T, N, D·H)
        output, h_n = finish(batch, layer_input, torch.stack(h_n))  # ·, (L·D, N, H)
        if not return_gates:
            return output, h_n
        stacked = Gates(*(torch.stack(parts).unflatten(0, (self.num_layers, self.num_directions))
                          for parts in zip(*(g[0] for g in gates))))  # 3 × (L, D, T, N, H)
        if batch.unbatched:
            stacked = Gates(*(g.squeeze(-2) for g in stacked))  # 3 × (L, D, T, H)
        return output, h_n, stacked

    def step(self, x_t: Tensor, h: Tensor | None = None) -> Tensor:
        """Advance one time step (streaming inference): x_t (N, I) or (I,), h (L, N, H) -> h (L, N, H).

        The top layer's new state h[-1] is the output of this step. Unidirectional models
        only; no autograd graph is recorded (use forward() to train). Forward pre-hooks run
        with the arguments (x_t, h), as forward()'s would with (x, h0), so the weights that
        `torch.nn.utils.prune` or the legacy `weight_norm` recompute in such a hook are current;
        forward hooks (after the call) do not run.
        """
        h_plain = self._plain_step(x_t, h)  # (1, N, H) or None
        return self._step(x_t, h) if h_plain is None else h_plain

    @in_parameter_dtype
    def _step(self, x_t: Tensor, h: Tensor | None) -> Tensor:
        """step() of every call that `_plain_step` leaves: checked, hooks run, any backend."""
        if self.bidirectional:
            raise ValueError("step: expected a unidirectional GRU (a reverse direction needs the whole sequence), "
                             "got bidirectional=True")
        if self._forward_pre_hooks or _global_forward_pre_hooks:
            x_t, h = self._run_pre_hooks(x_t, h)
        x_t, h, unbatched = self._step_inputs(x_t, h)  # (N, I), (L, N, H)
        step = self.kernel().step
        grad_was_enabled = torch.is_grad_enabled()
        torch._C._set_grad_enabled(False)  # what torch.no_grad() does, without its per-call Python cost
        try:
            if self.num_layers == 1:  # the common streaming case: no list, no stack
                h = step(x_t, h[0], *self.parameters_of(0), reset=self.reset).unsqueeze(0)  # (1, N, H)
            else:
                layer_input, states = x_t, []  # (N, I)
                for k in range(self.num_layers):
                    layer_input = step(layer_input, h[k], *self.parameters_of(k), reset=self.reset)  # (N, H)
                    states.append(layer_input)
                h = torch.stack(states)  # (L, N, H)
        finally:
            torch._C._set_grad_enabled(grad_was_enabled)
        return h.squeeze(1) if unbatched else h

    def _plain_step(self, x_t: Tensor, h: Tensor | None) -> Tensor | None:
        """step() of the common streaming call, where the backend has a plain_step (`grukit.kernels`): one
        unidirectional layer of this class (no override of parameters_of or kernel), x_t (N, I) and h (1, N, H)
        float32/float64 CPU tensors of the weights' dtype, every weight a parameter (none parametrized), no hooks,
        outside torch.func transforms and forward-mode AD. Python checks only what decides the way; the kernel
        checks the sizes and devices itself, and where it refuses, this gives None too: the per-step Python cost
        was larger than the step's arithmetic. None for any other call, which step() checks and runs the general
        way (naming the argument that is wrong)."""
        cls, p, config = type(self), self._parameters, self.config  # (config: one read, not one per field)
        if (self._forward_pre_hooks or _global_forward_pre_hooks or type(x_t) is not Tensor or type(h) is not Tensor
                or cls.parameters_of is not GRU.parameters_of or cls.kernel is not GRU.kernel
                or config.num_layers != 1 or config.bidirectional):
            return None
        weight_x, weight_h = p.get("weight_x_l0"), p.get("weight_h_l0")  # None when parametrized or pruned
        bias_x, bias_h = p.get("bias_x_l0"), p.get("bias_h_l0")
        if weight_x is None or weight_h is None or (config.bias and (bias_x is None or bias_h is None)):
            return None
        dtype = weight_x.dtype
        if (not weight_x.is_cpu or dtype not in _PLAIN_DTYPES or x_t.dim() != 2 or h.dim() != 3
                or x_t.dtype != dtype or h.dtype != dtype):
            return None
        plain_step = kernels.plain_step(config.backend)
        if plain_step is None or beyond_reverse_mode(x_t, h, parameters=(weight_x, weight_h, bias_x, bias_h)):
            return None
        try:  # the kernel checks the sizes and devices: where it refuses, step() says what is wrong
            return plain_step(x_t, h, weight_x, weight_h, bias_x, bias_h, config.reset == "after")  # (1, N, H)
        except (ValueError, TypeError):
            return None

    def _run_pre_hooks(self, x_t, h):
        """The global and the module's forward pre-hooks on (x_t, h), as Module.__call__ runs them before
        forward(): a hook may return new arguments (a tuple, or a single x_t)."""
        args = (x_t, h)
        for hook_id, hook in (*_global_forward_pre_hooks.items(), *self._forward_pre_hooks.items()):
            if hook_id in self._forward_pre_hooks_with_kwargs:
                result = hook(self, args, {})
                args = args if result is None else result[0]
            else:
                result = hook(self, args)
                args = args if result is None else result if isinstance(result, tuple) else (result,)
        return args[0], (args[1] if len(args) > 1 else h)

    def _step_inputs(self, x_t, h):
        """Check step()'s arguments; returns x_t (N, I), h (L, N, H) and whether x_t was unbatched."""
        weight = self.weight_x_l0
        _checks.tensor("x_t", x_t, dims=(1, 2), dtype=weight.dtype, device=weight.device)
        _checks.size("x_t", x_t.shape[-1], self.input_size, "last dimension (input_size)")
        unbatched = x_t.dim() == 1
        x_t = x_t.unsqueeze(0) if unbatched else x_t  # (N, I)
        N = x_t.shape[0]
        if h is None:
            return x_t, x_t.new_zeros(self.num_layers, N, self.hidden_size), unbatched  # (L, N, H)
        _checks.tensor("h", h, dims=(2,) if unbatched else (3,), dtype=x_t.dtype, device=x_t.device)
        want = (self.num_layers, self.hidden_size) if unbatched else (self.num_layers, N, self.hidden_size)
        if tuple(h.shape) != want:  # as the caller shapes it
            raise ValueError(f"h: expected shape {want}, got {tuple(h.shape)}")
        return x_t, h.unsqueeze(1) if unbatched else h, unbatched  # h (L, N, H)

    def use_backend(self, backend: str) -> GRU:
        """Run on kernel `backend` from now on (a name `grukit.kernels` accepts); the weights stay as they are."""
        kernels.check_name(backend)
        self.backend = backend
        return self

    def flatten_parameters(self) -> None:
        """Nothing to do (torch.nn.GRU's cuDNN weight packing has no counterpart here); kept so that code
        written for torch.nn.GRU runs unchanged."""

    def kernel(self) -> kernels.Backend:
        """The backend that runs this model's sequences on its device."""
        return kernels.get(self.backend, self.weight_x_l0.device)

    def _sequence_kernel(self, x: Tensor, h0: Tensor) -> kernels.Backend:
        """self.kernel(), but with backend="auto" `eager` inside a torch.func transform (grad, vmap, jacrev, jvp)
        or with a forward-mode tangent on x, h0 or a weight: the other backends' hand-written backward serves
        reverse mode only, and torch.nn.GRU runs under torch.func.grad. A backend named by the user is kept,
        and refuses such a call naming backend='eager'."""
        kernel = self.kernel()
        if self.backend == "auto" and kernel.name != "eager" and beyond_reverse_mode(
                x, h0, parameters=self.parameters()):
            return kernels.get("eager", x.device)
        return kernel

    def parameters_of(self, k: int, reverse: bool = False) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None]:
        """(weight_x, weight_h, bias_x, bias_h) of layer k in one direction."""
        suffix = f"_l{k}" + ("_reverse" if reverse else "")
        p = self._parameters  # a direct look-up first: step() calls this once per time step
        names = (f"weight_x{suffix}", f"weight_h{suffix}", f"bias_x{suffix}", f"bias_h{suffix}")
        # a parametrized or pruned weight is no longer in _parameters: the module attribute computes it
        return tuple(p[name] if name in p else getattr(self, name, None) for name in names)

    def extra_repr(self) -> str:
        c = self.config
        return (f"{c.input_size}, {c.hidden_size}, num_layers={c.num_layers}, bias={c.bias}, "
                f"batch_first={c.batch_first}, dropout={c.dropout}, bidirectional={c.bidirectional}, "
                f"reset={c.reset!r}, backend={c.backend!r}")


def _eager_with_gates(x, h0, weight_x, weight_h, bias_x, bias_h, *, reset, mask, reverse):
    return functional.sequence(x, h0, weight_x, weight_h, bias_x, bias_h, reset=reset, mask=mask,
                               reverse=reverse, return_gates=True)
