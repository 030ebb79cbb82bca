"""Converters between grukit and the GRUs of torch, Keras 3 and ONNX — exact, both ways.

All three peers use the flipped update gate z' = 1 − z, so every converter negates
the z blocks (exact) and reorders gates (r, z, n) ↔ (z, r, n) where needed:

| peer          | gate order   | layout                                    | reset            |
|---------------|--------------|-------------------------------------------|------------------|
| torch.nn.GRU  | r,z,n rows   | weight_ih [3H,I], weight_hh [3H,H]        | after only       |
| Keras 3 GRU   | z,r,h cols   | kernel [I,3H], recurrent_kernel [H,3H]    | reset_after=T/F  |
| ONNX GRU op   | z,r,h rows   | W [D,3H,I], R [D,3H,H], B [D,6H]          | linear_before_reset=1/0 |

One module per peer: `torch_gru`, `keras_gru` (keras imported only when called, on
its torch backend), `onnx_gru` (onnx imported only when called). docs/interop.md
has the details and an example per direction.

Example:
    >>> import torch
    >>> from grukit.interop import from_torch, to_torch
    >>> ours = from_torch(torch.nn.GRU(3, 4))
    >>> ours.reset, type(to_torch(ours)).__name__
    ('after', 'GRU')
"""
from grukit.interop.keras_gru import from_keras, to_keras
from grukit.interop.onnx_gru import from_onnx, to_onnx
from grukit.interop.torch_gru import from_torch, to_torch

__all__ = ["from_torch", "to_torch", "from_keras", "to_keras", "to_onnx", "from_onnx"]
