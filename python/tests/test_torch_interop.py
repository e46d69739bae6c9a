"""NestedTensor <-> PyTorch 1.13: plain tensors and torch.nested, zero-copy where the layout allows, exact."""

import numpy as np
import pytest

import jagged

torch = pytest.importorskip("torch")

LENGTHS = [4, 0, 1, 9]


def make(dtype=np.float32, inner=(3,)):
    rng = np.random.default_rng(5)
    return jagged.NestedTensor.from_list([rng.standard_normal((n, *inner)).astype(dtype) for n in LENGTHS])


def test_to_torch_shares_memory_and_round_trips():
    nested = make()
    values, cu_seqlens = nested.to_torch()
    assert values.data_ptr() == nested.values.ctypes.data  # no copy
    assert cu_seqlens.tolist() == nested.cu_seqlens.tolist()
    back = jagged.NestedTensor.from_torch(values, cu_seqlens)
    assert back.values.ctypes.data == values.data_ptr()  # no copy either way
    assert back.values.tobytes() == nested.values.tobytes()


def test_torch_nested_round_trip_is_exact_and_zero_copy():
    nested = make()
    as_torch = nested.to_torch_nested()
    assert as_torch.is_nested
    for i, component in enumerate(as_torch.unbind()):
        assert component.numpy().tobytes() == nested[i].tobytes()
    if hasattr(torch.ops.aten, "_nested_view_from_buffer"):
        assert as_torch.values().data_ptr() == nested.values.ctypes.data
    back = jagged.NestedTensor.from_torch_nested(as_torch)
    assert back.values.tobytes() == nested.values.tobytes()
    assert back.cu_seqlens.tolist() == nested.cu_seqlens.tolist()
    padded, _ = nested.to_padded()
    assert padded.tobytes() == torch.nested.to_padded_tensor(as_torch, 0.0).numpy().tobytes()


def test_from_torch_nested_views_its_buffer():
    components = [torch.randn(n, 2) for n in LENGTHS]
    reference = torch.nested.nested_tensor(components)
    nested = jagged.NestedTensor.from_torch_nested(reference)
    assert nested.values.ctypes.data == reference.values().data_ptr()
    assert nested.seqlens.tolist() == LENGTHS
    for i, component in enumerate(components):
        assert nested[i].tobytes() == component.numpy().tobytes()
    ids = torch.nested.nested_tensor([torch.tensor([1, 2, 3], dtype=torch.int32), torch.tensor([4], dtype=torch.int32)])
    assert jagged.NestedTensor.from_torch_nested(ids).values.tolist() == [1, 2, 3, 4]


def test_bad_torch_inputs_raise():
    with pytest.raises(ValueError):
        jagged.NestedTensor.from_torch(np.zeros(3, np.float32), [0, 3])
    with pytest.raises(ValueError):
        jagged.NestedTensor.from_torch(torch.zeros(4, 2, dtype=torch.float64), [0, 4])
    with pytest.raises(ValueError):
        jagged.NestedTensor.from_torch(torch.zeros(4, 2).t(), [0, 2])  # not contiguous
    with pytest.raises(ValueError):
        jagged.NestedTensor.from_torch(torch.zeros(4), [0, 5])
    with pytest.raises(ValueError):
        jagged.NestedTensor.from_torch_nested(torch.zeros(3))
    with pytest.raises(ValueError):
        jagged.NestedTensor.from_torch_nested(torch.nested.nested_tensor([torch.zeros(2, 3), torch.zeros(2, 4)]))
