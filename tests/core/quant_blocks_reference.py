# gguf-py's numpy (de)quantizers (llama.cpp's gguf/quants.py) on raw bytes, for tests/core/quant_blocks_test.cpp.
#   dequantize TYPE IN OUT: IN holds whole blocks of ggml type TYPE ("Q4_K"); OUT gets their values as f32.
#   quantize TYPE IN OUT:   IN holds f32 values (a multiple of 32); OUT gets gguf-py's blocks.
# Several jobs in one run: the arguments are groups of four (numpy's start-up dominates a run).
# Run with Debian's /usr/bin/python3 (numpy) and llama.cpp's gguf-py on PYTHONPATH.
import sys

import numpy as np
from gguf import GGMLQuantizationType, quants
from gguf.constants import GGML_QUANT_SIZES


def run(mode: str, type_name: str, source: str, target: str) -> None:
    qtype = GGMLQuantizationType[type_name]
    block_values, block_bytes = GGML_QUANT_SIZES[qtype]
    if mode == "dequantize":
        data = np.fromfile(source, dtype=np.uint8).reshape(-1, block_bytes)
        quants.dequantize(data, qtype).astype(np.float32).tofile(target)
    elif mode == "quantize":
        data = np.fromfile(source, dtype=np.float32).reshape(-1, block_values)
        quants.quantize(data, qtype).astype(np.uint8).tofile(target)
    else:
        raise SystemExit(f"unknown mode {mode}")


def main() -> None:
    args = sys.argv[1:]
    if not args or len(args) % 4 != 0:
        raise SystemExit("usage: quant_blocks_reference.py (dequantize|quantize TYPE IN OUT)...")
    for i in range(0, len(args), 4):
        run(*args[i : i + 4])


if __name__ == "__main__":
    main()
