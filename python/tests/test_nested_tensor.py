"""jagged.NestedTensor: exact round trips, views that share memory, padding as torch.nested pads, bad inputs."""

import numpy as np
import pytest

import jagged


def ragged(lengths, inner=(3,), dtype=np.float32, seed=0):
    """Random sequences with these lengths (0 and 1 included by the callers)."""
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal((n, *inner)) * 100).astype(dtype) for n in lengths]


LENGTHS = [5, 0, 1, 17, 0, 3]


def test_from_list_packs_and_describes():
    sequences = ragged(LENGTHS)
    nested = jagged.NestedTensor.from_list(sequences)
    assert nested.num_seqs == len(LENGTHS) == len(nested)
    assert nested.num_tokens == sum(LENGTHS)
    assert nested.max_seqlen == 17
    assert nested.cu_seqlens.dtype == np.int32
    assert nested.cu_seqlens.tolist() == [0, 5, 5, 6, 23, 23, 26]
    assert nested.seqlens.tolist() == LENGTHS
    assert nested.inner_shape == (3,)
    assert nested.dtype == np.float32
    assert nested.values.shape == (26, 3)
    np.testing.assert_array_equal(nested.values, np.concatenate(sequences))
    for i, sequence in enumerate(sequences):
        np.testing.assert_array_equal(nested[i], sequence)
    np.testing.assert_array_equal(nested[-1], sequences[-1])
    assert [s.shape[0] for s in nested] == LENGTHS
    assert "num_seqs=6" in repr(nested)


@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.int32, np.uint8])
def test_round_trips_are_exact(dtype):
    sequences = ragged(LENGTHS, inner=(2, 2), dtype=dtype, seed=1)
    nested = jagged.NestedTensor.from_list(sequences)
    assert nested.dtype == dtype
    for original, back in zip(sequences, nested.to_list()):
        assert back.dtype == dtype and back.tobytes() == original.tobytes()
    if dtype in (np.float32, np.int32):
        padded, mask = nested.to_padded(pad_value=7)
        again = jagged.NestedTensor.from_padded(padded, nested.seqlens)
        assert again.values.tobytes() == nested.values.tobytes()
        assert again.cu_seqlens.tolist() == nested.cu_seqlens.tolist()
    shared = jagged.NestedTensor(nested.values, nested.cu_seqlens)
    assert shared.values.tobytes() == nested.values.tobytes()


def test_plain_lists_become_int32_or_float32():
    ids = jagged.NestedTensor.from_list([[1, 2, 3], [4], []])
    assert ids.dtype == np.int32 and ids.values.tolist() == [1, 2, 3, 4] and ids.seqlens.tolist() == [3, 1, 0]
    floats = jagged.NestedTensor.from_list([[0.5, 1.5], [2.5]])
    assert floats.dtype == np.float32
    converted = jagged.NestedTensor.from_list([np.arange(4, dtype=np.int64)], dtype=np.int32)
    assert converted.dtype == np.int32 and converted.values.tolist() == [0, 1, 2, 3]
    empty = jagged.NestedTensor.from_list([])
    assert empty.num_seqs == 0 and empty.num_tokens == 0 and empty.cu_seqlens.tolist() == [0]


def test_views_share_memory():
    nested = jagged.NestedTensor.from_list(ragged(LENGTHS))
    values = nested.values
    assert np.shares_memory(values, nested.values)
    assert np.shares_memory(values, nested[3])
    assert np.shares_memory(nested.cu_seqlens, nested.cu_seqlens)
    nested[0][0, 0] = 1234.5  # writes through the view
    assert nested.values[0, 0] == 1234.5
    # A view keeps the tensor alive after the tensor object is gone.
    view = jagged.NestedTensor.from_list(ragged([4, 2]))[1]
    del nested
    assert view.shape == (2, 3) and np.isfinite(view).all()


def test_constructor_borrows_the_array():
    values = np.arange(12, dtype=np.float32).reshape(6, 2)
    nested = jagged.NestedTensor(values, [0, 2, 2, 6])
    assert np.shares_memory(nested.values, values)
    assert np.shares_memory(nested[2], values)
    values[5, 1] = -1.0
    assert nested[2][-1, 1] == -1.0
    del values
    assert nested.values[5, 1] == -1.0  # the tensor keeps the array alive
    read_only = np.zeros((3, 2), np.float32)
    read_only.flags.writeable = False
    view = jagged.NestedTensor(read_only, [0, 3]).values
    assert not view.flags.writeable
    with pytest.raises(ValueError):
        view[0, 0] = 1.0


def test_to_padded_matches_torch_nested():
    torch = pytest.importorskip("torch")
    for dtype, torch_dtype in [(np.float32, torch.float32), (np.int32, torch.int32)]:
        sequences = ragged([3, 1, 7, 2], inner=(4,), dtype=dtype, seed=2)
        nested = jagged.NestedTensor.from_list(sequences)
        reference = torch.nested.nested_tensor([torch.from_numpy(s) for s in sequences], dtype=torch_dtype)
        for pad in (0.0, -3.0):
            padded, mask = nested.to_padded(pad_value=pad)
            expected = torch.nested.to_padded_tensor(reference, pad).numpy()
            assert padded.dtype == expected.dtype and padded.shape == expected.shape
            assert padded.tobytes() == expected.tobytes()
            assert mask.dtype == np.bool_
            assert mask.tolist() == [[t < n for t in range(7)] for n in [3, 1, 7, 2]]


def test_from_padded_keeps_the_real_rows_of_any_layout():
    padded = np.arange(2 * 4 * 3, dtype=np.float32).reshape(2, 4, 3)
    transposed = np.ascontiguousarray(padded.transpose(1, 0, 2)).transpose(1, 0, 2)  # same values, not C-contiguous
    assert not transposed.flags.c_contiguous
    for source in (padded, transposed):
        nested = jagged.NestedTensor.from_padded(source, [4, 1])
        np.testing.assert_array_equal(nested[0], padded[0])
        np.testing.assert_array_equal(nested[1], padded[1, :1])


def test_bad_inputs_raise():
    good = np.zeros((4, 2), np.float32)
    bad_cases = [
        lambda: jagged.NestedTensor(good, [0, 5]),                    # offsets past the tokens
        lambda: jagged.NestedTensor(good, [0, 3, 2, 4]),              # not monotonic
        lambda: jagged.NestedTensor(good, [1, 4]),                    # does not start at 0
        lambda: jagged.NestedTensor(good, []),                        # no offsets
        lambda: jagged.NestedTensor(good, [0, 2**40]),                # beyond int32
        lambda: jagged.NestedTensor(good, [0.5, 4]),                  # not integers
        lambda: jagged.NestedTensor(good[:, ::2], [0, 4]),            # non-contiguous: no zero-copy view
        lambda: jagged.NestedTensor(good.astype(np.float64), [0, 4]),  # unsupported dtype
        lambda: jagged.NestedTensor(np.float32(1.0), [0, 1]),         # no token axis
        lambda: jagged.NestedTensor.from_list([good, np.zeros((2, 3), np.float32)]),  # inner shapes differ
        lambda: jagged.NestedTensor.from_list([good, good.astype(np.int32)]),          # dtypes differ
        lambda: jagged.NestedTensor.from_list([np.zeros(3, np.float64)]),              # unsupported dtype
        lambda: jagged.NestedTensor.from_list([np.zeros(3, np.int64)]),                # int64 without dtype=
        lambda: jagged.NestedTensor.from_list([[2**40]], dtype=np.int32),              # does not fit
        lambda: jagged.NestedTensor.from_list([[1.5]], dtype=np.int32),                # would truncate
        lambda: jagged.NestedTensor.from_list([np.float32(1.0)]),                      # a scalar
        lambda: jagged.NestedTensor.from_list("abc"),                                  # a string
        lambda: jagged.NestedTensor.from_list([["a", "b"]]),                           # strings
        lambda: jagged.NestedTensor.from_padded(np.zeros((2, 3), np.float32), [1, -1]),  # negative length
        lambda: jagged.NestedTensor.from_padded(np.zeros((2, 3), np.float32), [4, 1]),   # longer than padded
        lambda: jagged.NestedTensor.from_padded(np.zeros((2, 3), np.float32), [1]),      # count differs
        lambda: jagged.NestedTensor.from_padded(np.zeros(3, np.float32), [1]),           # no sequence axis
        lambda: jagged.NestedTensor.from_list([np.zeros(3, np.uint8)]).to_padded(),      # u8 has no padding
    ]
    for i, case in enumerate(bad_cases):
        with pytest.raises(ValueError):
            case()
            pytest.fail(f"bad case {i} did not raise")
    nested = jagged.NestedTensor.from_list([good])
    with pytest.raises(IndexError):
        nested[1]
    with pytest.raises(IndexError):
        nested[-2]
    with pytest.raises(TypeError):
        nested["0"]
    with pytest.raises(AttributeError):
        nested.values = good  # read-only attribute
