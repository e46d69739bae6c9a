#!/usr/bin/python3
"""Writes a Hugging Face Llama directory (config.json + model.safetensors) of SmolLM-135M's shape with seeded
random weights, in f32 or bf16: a file-backed model for measuring load and resident memory (jagged's peak RSS with
--dtype f32/bf16) without downloading one. Uses only numpy (Debian's python3-numpy under /usr/bin/python3).

    /usr/bin/python3 scripts/synthetic_hf_llama.py OUT_DIR [--dtype f32|bf16] [--layers 30]
"""
import argparse
import json
import os
import struct

import numpy as np


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out_dir")
    parser.add_argument("--dtype", choices=["f32", "bf16"], default="f32")
    parser.add_argument("--layers", type=int, default=30)
    args = parser.parse_args()
    dim, ffn, heads, kv_heads, vocab = 576, 1536, 9, 3, 49152
    head_dim = dim // heads
    config = {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": dim,
        "intermediate_size": ffn, "num_hidden_layers": args.layers, "num_attention_heads": heads,
        "num_key_value_heads": kv_heads, "vocab_size": vocab, "max_position_embeddings": 2048,
        "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "tie_word_embeddings": True, "hidden_act": "silu",
        "bos_token_id": 1, "eos_token_id": 2,
        "torch_dtype": "float32" if args.dtype == "f32" else "bfloat16",
    }
    rng = np.random.default_rng(1234)
    shapes = {"model.embed_tokens.weight": (vocab, dim), "model.norm.weight": (dim,)}
    for i in range(args.layers):
        p = f"model.layers.{i}."
        shapes[p + "self_attn.q_proj.weight"] = (dim, dim)
        shapes[p + "self_attn.k_proj.weight"] = (kv_heads * head_dim, dim)
        shapes[p + "self_attn.v_proj.weight"] = (kv_heads * head_dim, dim)
        shapes[p + "self_attn.o_proj.weight"] = (dim, dim)
        shapes[p + "mlp.gate_proj.weight"] = (ffn, dim)
        shapes[p + "mlp.up_proj.weight"] = (ffn, dim)
        shapes[p + "mlp.down_proj.weight"] = (dim, ffn)
        shapes[p + "input_layernorm.weight"] = (dim,)
        shapes[p + "post_attention_layernorm.weight"] = (dim,)
    element = 4 if args.dtype == "f32" else 2
    header, offset = {}, 0
    for name, shape in shapes.items():
        size = int(np.prod(shape)) * element
        header[name] = {"dtype": "F32" if args.dtype == "f32" else "BF16", "shape": list(shape),
                        "data_offsets": [offset, offset + size]}
        offset += size
    encoded = json.dumps(header).encode()
    encoded += b" " * (-len(encoded) % 8)
    os.makedirs(args.out_dir, exist_ok=True)
    with open(os.path.join(args.out_dir, "config.json"), "w") as f:
        json.dump(config, f, indent=1)
    with open(os.path.join(args.out_dir, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(encoded)))
        f.write(encoded)
        for name, shape in shapes.items():
            if name.endswith("norm.weight"):
                values = (1.0 + 0.1 * rng.uniform(-1, 1, shape)).astype(np.float32)
            else:
                scale = 1.0 if "embed" in name else 1.0 / np.sqrt(shape[1])
                values = (scale * rng.uniform(-1, 1, shape)).astype(np.float32)
            if args.dtype == "bf16":
                values = (values.view(np.uint32) >> 16).astype(np.uint16)  # truncated: fine for a fixture
            f.write(values.tobytes())


if __name__ == "__main__":
    main()
