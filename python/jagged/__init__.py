"""jagged: transformer inference on nested (ragged) batches, no padding.

    import jagged
    model = jagged.load("stories260K.bin")               # llama2.c .bin, Hugging Face dir, .gguf, synthetic:NAME
    model.generate(["Once upon a time"], max_tokens=20)
    logits = model.forward(["Hello", "A longer prompt"])  # a NestedTensor [num_tokens, vocab_size]

NestedTensor shares memory with NumPy (``.values``, ``[i]``) and with PyTorch (``to_torch``, ``from_torch``,
``to_torch_nested``, ``from_torch_nested``) wherever the layout allows.
"""

from ._jagged import (  # noqa: F401
    FileError,
    bench,
    InvalidArgument,
    Model,
    NestedTensor,
    Tokenizer,
    load,
    load_tokenizer,
    num_threads,
    set_num_threads,
)
from . import torch_interop as _torch_interop

__all__ = ["FileError", "InvalidArgument", "Model", "NestedTensor", "Tokenizer", "bench", "load",
           "load_tokenizer", "num_threads", "set_num_threads"]
__version__ = "0.1.0"


def _iter(self):
    return (self[i] for i in range(len(self)))


NestedTensor.__iter__ = _iter
NestedTensor.to_torch = _torch_interop.to_torch
NestedTensor.to_torch_nested = _torch_interop.to_torch_nested
NestedTensor.from_torch = staticmethod(_torch_interop.from_torch)
NestedTensor.from_torch_nested = staticmethod(_torch_interop.from_torch_nested)
NestedTensor.to_list = lambda self: [s.copy() for s in self]
NestedTensor.to_list.__doc__ = "Copies of the sequences, as a list of arrays"
