"""grukit ↔ torch.nn.GRU / torch.nn.GRUCell, exactly.

torch computes the reset-after GRU with the flipped update gate z' = 1 − z:

    r  = σ(W_ir x + b_ir + W_hr h + b_hr)
    z' = σ(W_iz x + b_iz + W_hz h + b_hz)
    n  = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))
    h  = (1 − z') ⊙ n + z' ⊙ h_prev

which is grukit's reset="after" GRU with the z rows (H..2H) of weight_ih, weight_hh,
bias_ih and bias_hh negated (σ(−a) = 1 − σ(a)); gate order (r, z, n) is the same.
Negation is exact, so converted models agree to float rounding and a round trip
grukit → torch → grukit gives back the same bits. torch's bias=False means zero
biases, which grukit's bias=False also means.

Example:
    >>> import torch
    >>> from grukit.interop import from_torch, to_torch
    >>> theirs = torch.nn.GRU(3, 4, num_layers=2, bidirectional=True)
    >>> ours = from_torch(theirs)
    >>> x = torch.randn(5, 2, 3)
    >>> torch.allclose(ours(x)[0], theirs(x)[0], atol=1e-6)
    True
    >>> torch.equal(to_torch(ours).weight_hh_l1, theirs.weight_hh_l1)
    True
"""
from __future__ import annotations

import warnings

import torch
from torch import nn

from grukit.interop.gates import flip_z, layer_names

_TORCH_NAMES = {"weight_x": "weight_ih", "weight_h": "weight_hh", "bias_x": "bias_ih", "bias_h": "bias_hh"}


def _param_pairs(model):
    """(grukit name, torch name) for every parameter of `model` (a grukit GRU or GRUCell)."""
    for _, _, suffix in layer_names(model):
        for ours, theirs in _TORCH_NAMES.items():
            if getattr(model, ours + suffix) is not None:
                yield ours + suffix, theirs + suffix


def _copy(dst_module: nn.Module, src_module: nn.Module, pairs) -> None:
    """dst.<a> = flip_z(src.<b>) for each (a, b) in pairs, exactly."""
    with torch.no_grad():
        for dst_name, src_name in pairs:
            src, dst = getattr(src_module, src_name), getattr(dst_module, dst_name)
            if src.shape != dst.shape:
                raise ValueError(f"{src_name}: expected shape {tuple(dst.shape)}, got {tuple(src.shape)}")
            dst.copy_(flip_z(src))  # (3H, ·)


def from_torch(module: nn.GRU | nn.GRUCell):
    """A grukit GRU (reset="after") equal to a torch.nn.GRU, or a GRUCell equal to a torch.nn.GRUCell.

    Same sizes, layers, directions, bias, batch_first and dropout; same dtype, device
    and train/eval mode. Example: see the module docstring.
    """
    from grukit.cell import GRUCell
    from grukit.layer import GRU

    if isinstance(module, nn.GRU):
        if getattr(module, "proj_size", 0):
            raise ValueError(f"module: expected a torch.nn.GRU without projections, got proj_size={module.proj_size}")
        factory = {"device": module.weight_ih_l0.device, "dtype": module.weight_ih_l0.dtype}
        with warnings.catch_warnings():  # torch warned of dropout with one layer when the module was built
            warnings.filterwarnings("ignore", message="dropout=.* acts between stacked layers only")
            model = GRU(module.input_size, module.hidden_size, module.num_layers, bias=module.bias,
                        batch_first=module.batch_first, dropout=float(module.dropout),
                        bidirectional=module.bidirectional, reset="after", **factory)
        _copy(model, module, list(_param_pairs(model)))
    elif isinstance(module, nn.GRUCell):
        factory = {"device": module.weight_ih.device, "dtype": module.weight_ih.dtype}
        model = GRUCell(module.input_size, module.hidden_size, bias=module.bias, reset="after", **factory)
        _copy(model, module, list(_param_pairs(model)))
    else:
        raise TypeError(f"module: expected a torch.nn.GRU or torch.nn.GRUCell, got {type(module).__name__}")
    return model.train(module.training)


def to_torch(model) -> nn.GRU | nn.GRUCell:
    """A torch.nn.GRU equal to a grukit GRU (or torch.nn.GRUCell equal to a GRUCell).

    Only reset="after" models can be converted: torch.nn.GRU implements no other
    candidate. Example: see the module docstring.
    """
    from grukit.cell import GRUCell
    from grukit.layer import GRU

    if not isinstance(model, (GRU, GRUCell)):
        raise TypeError(f"model: expected a grukit.GRU or grukit.GRUCell, got {type(model).__name__}")
    if model.reset != "after":
        raise ValueError(
            f"model: expected reset='after' to convert to torch, got reset={model.reset!r}. torch.nn.GRU only "
            "computes the reset-after candidate n = tanh(W_n x + b_in + r ⊙ (U_n h + b_hn)); reset='before' "
            "computes n = tanh(W_n x + b_xn + U_n (r ⊙ h) + b_hn), a different function that no torch weights "
            "reproduce. Use reset='after' for torch, or grukit.interop.to_onnx / to_keras, which support both."
        )
    suffix = layer_names(model)[0][2]
    weight_x = getattr(model, "weight_x" + suffix)  # (3H, I)
    factory = {"device": weight_x.device, "dtype": weight_x.dtype}
    has_bias = getattr(model, "bias_x" + suffix) is not None
    if isinstance(model, GRU):
        with warnings.catch_warnings():  # grukit warned of dropout with one layer when the model was built
            warnings.filterwarnings("ignore", message="dropout option adds dropout after all but last")
            module = nn.GRU(model.input_size, model.hidden_size, model.num_layers, bias=has_bias,
                            batch_first=model.batch_first, dropout=model.dropout,
                            bidirectional=model.bidirectional, **factory)
    else:
        module = nn.GRUCell(model.input_size, model.hidden_size, bias=has_bias, **factory)
    _copy(module, model, [(theirs, ours) for ours, theirs in _param_pairs(model)])
    return module.train(model.training)
