"""NestedTensor <-> PyTorch (torch is imported only when these are called).

Plain tensors: to_torch() returns (values, cu_seqlens) as torch tensors sharing jagged's memory; from_torch(values,
cu_seqlens) borrows a contiguous CPU tensor's memory. torch.nested (PyTorch 1.13's strided nested tensors):
to_torch_nested() is a view of jagged's buffer through aten::_nested_view_from_buffer, and from_torch_nested() a
view of the nested tensor's buffer when its components are packed one after another in order; otherwise (or
without those private operators) each copies once.
"""

import numpy as np

from ._jagged import NestedTensor


def _torch():
    import torch
    return torch


def to_torch(self):
    """(values, cu_seqlens) as torch tensors that share this tensor's memory."""
    torch = _torch()
    return torch.from_numpy(self.values), torch.from_numpy(self.cu_seqlens.astype(np.int32))


def from_torch(values, cu_seqlens):
    """A NestedTensor viewing a contiguous CPU tensor's memory (no copy): values [num_tokens, ...]."""
    torch = _torch()
    if not isinstance(values, torch.Tensor):
        raise ValueError(f"values: expected a torch.Tensor, got {type(values).__name__}")
    if values.device.type != "cpu":
        raise ValueError(f"values: on {values.device}; jagged runs on the CPU (call .cpu())")
    if values.requires_grad:
        values = values.detach()
    if isinstance(cu_seqlens, torch.Tensor):
        cu_seqlens = cu_seqlens.detach().cpu().numpy()
    return NestedTensor(values.numpy(), cu_seqlens)


def to_torch_nested(self):
    """A torch.nested tensor (PyTorch 1.13) viewing the same memory where possible, else a copy."""
    torch = _torch()
    buffer = torch.from_numpy(self.values).reshape(-1)
    inner = list(self.inner_shape)
    lengths = self.seqlens.tolist()
    if not lengths:
        return torch.nested.nested_tensor([], dtype=buffer.dtype)
    row = int(np.prod(inner)) if inner else 1
    sizes = torch.tensor([[n] + inner for n in lengths], dtype=torch.int64)
    strides = torch.tensor([[row] + _row_major_strides(inner) for _ in lengths], dtype=torch.int64)
    offsets = [int(o) * row for o in self.cu_seqlens[:-1]]
    view_from_buffer = getattr(torch.ops.aten, "_nested_view_from_buffer", None)
    if view_from_buffer is not None:
        try:
            return view_from_buffer(buffer, sizes, strides, offsets)
        except (RuntimeError, TypeError):
            pass
    return torch.nested.nested_tensor([torch.from_numpy(s) for s in self])


def _row_major_strides(inner):
    strides = []
    step = 1
    for extent in reversed(inner):
        strides.insert(0, step)
        step *= extent
    return strides


def from_torch_nested(nested):
    """A NestedTensor from a torch.nested tensor: a view of its buffer when the components are packed in order
    (as torch.nested.nested_tensor makes them), else a copy."""
    torch = _torch()
    if not isinstance(nested, torch.Tensor) or not nested.is_nested:
        raise ValueError("expected a torch.nested tensor (torch.nested.nested_tensor(...))")
    components = nested.unbind()
    if not components:
        return NestedTensor.from_list([], dtype=_numpy_dtype(nested.dtype))
    if any(c.dim() == 0 for c in components):
        raise ValueError("torch.nested components must have a token axis")
    lengths = [int(c.shape[0]) for c in components]
    inner = list(components[0].shape[1:])
    if any(list(c.shape[1:]) != inner for c in components):
        raise ValueError("torch.nested components differ in their inner shapes; jagged needs [len_i, *inner] for all")
    cu_seqlens = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    try:
        buffer = nested.values()  # 1.13: the packed storage of all components
        row = int(np.prod(inner)) if inner else 1
        strides = [row] + _row_major_strides(inner)
        packed = (list(torch.ops.aten._nested_tensor_offsets(nested)) == [int(o) * row for o in cu_seqlens[:-1]]
                  and all(s == strides for s in torch.ops.aten._nested_tensor_strides(nested).tolist())
                  and buffer.is_contiguous() and buffer.numel() == int(cu_seqlens[-1]) * row)
    except (AttributeError, RuntimeError):  # another PyTorch: no such private operators
        packed = False
    if packed:
        values = buffer.detach().reshape([int(cu_seqlens[-1])] + inner)
        return from_torch(values, cu_seqlens)
    return NestedTensor.from_list([c.detach().cpu().numpy() for c in components])


def _numpy_dtype(torch_dtype):
    torch = _torch()
    return {torch.float32: np.float32, torch.float16: np.float16, torch.int32: np.int32,
            torch.uint8: np.uint8}.get(torch_dtype, np.float32)
