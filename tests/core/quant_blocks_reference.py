# gguf-py's numpy (de)quantizers (llama.cpp's gguf/quants.py) on raw bytes, for tests/core/quant_blocks_test.cpp.
#   dequantize TYPE IN OUT: IN holds whole blocks of ggml type TYPE ("Q4_K"); OUT gets their values as f32.
#   quantize TYPE IN OUT:   IN holds f32 values (a multiple of 32); OUT gets gguf-py's blocks.
# Run with Debian's /usr/bin/python3 (numpy) and llama.cpp's gguf-py on PYTHONPATH.
import sys

import numpy as np
from gguf import GGMLQuantizationType, quants
from gguf.constants import GGML_QUANT_SIZES


def main() -> None:
    mode, type_name, source, target = sys.argv[1:5]
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


if __name__ == "__main__":
    main()
