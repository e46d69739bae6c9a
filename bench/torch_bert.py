#!/usr/bin/python3
"""PyTorch baseline of `jagged bench` on a BERT-family shape: nn.TransformerEncoder (post-LayerNorm, GELU), float32,
torch.inference_mode(). Paths, each timed on the same ragged batch with the same weights:
  padded_slow  right-padded batch + src_key_padding_mask through the Python path (train() with dropout 0: the
               path a training-style forward takes)
  padded_fast  the same batch through the fused encoder-layer kernel (eval, enable_nested_tensor=False)
  nested       eval, enable_nested_tensor=True: PyTorch converts the padded batch to a nested tensor internally
  one_by_one   each sequence alone through the fused kernel, no mask
The model is scripts/fixtures/torch_bert_ref.py, the code behind tests/fixtures/bert-tiny.

  /usr/bin/python3 bench/torch_bert.py --config bert-base --threads 2 --runs 3 --json out.json
  /usr/bin/python3 bench/torch_bert.py --model-dir DIR --tokens tokens.json --outputs embeddings.f32
  /usr/bin/python3 bench/torch_bert.py --model-dir DIR --export-onnx model.onnx     (no benchmark; needs python3-onnx)

Outputs (--outputs, raw float32): mean-pooled last hidden states over each sequence's tokens [num_seqs, model_dim]
from the padded_fast path (the first path that ran otherwise); --hidden-outputs: that path's last hidden states of
the real tokens, packed [num_tokens, model_dim] (computed once more after the timed runs).

--export-onnx writes the same model as an ONNX graph for bench/onnxruntime/run.mjs: inputs input_ids and
attention_mask [batch, sequence] int64 (1 = real token; both axes dynamic), output embeddings [batch, model_dim]
(mean over the real tokens), traced through nn.TransformerEncoder's plain path (the fused kernels have no ONNX form).
"""
import argparse
import json
import pathlib
import sys

import torch
from torch import nn

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "scripts" / "fixtures"))
import safetensors_io  # noqa: E402
import torch_bench_common as common  # noqa: E402
import torch_bert_ref as ref  # noqa: E402

PATHS = ("padded_slow", "padded_fast", "nested", "one_by_one")
CLS_ID = 101
ONNX_OPSET = 17  # the newest torch 1.13 writes; LayerNormalization is an ONNX op from 17 on


def load_model(args):
    if args.config in ref.NAMED_SHAPES:
        shape = ref.NAMED_SHAPES[args.config]
    else:
        config = json.loads(pathlib.Path(args.config).read_text())
        activation = config.get("hidden_act", "gelu")
        if activation != "gelu":
            raise SystemExit(f"{args.config}: hidden_act {activation!r}: the nn.TransformerEncoder reference has "
                             f"the exact (erf) GELU only")
        shape = ref.shape_from_hf_config(config)
    model = ref.Bert(shape)
    if args.weights:
        state = safetensors_io.load_file(args.weights, dtype=torch.float32)
        state = {(n if n.startswith(("bert.", "classifier.")) else "bert." + n): t for n, t in state.items()}
        # Embedding models may come without the pooler; the bench never reads it.
        state.setdefault("bert.pooler.dense.weight", model.pooler.weight.detach())
        state.setdefault("bert.pooler.dense.bias", model.pooler.bias.detach())
        ref.load_hf_state_dict(model, state)
    else:
        ref.randomize(model, args.seed)
    return shape, model.eval()


class PooledEncoder(nn.Module):
    """What an embedding service runs: ids + attention mask -> mean of the last hidden states over real tokens."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask):
        hidden = self.model(input_ids, padding_mask=attention_mask == 0)
        real = attention_mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * real).sum(1) / real.sum(1).clamp(min=1.0)


def export_onnx(model, path):
    """Traces the plain (slow) path: grad enabled with parameters that require it rules out the fused fast path."""
    model.eval()
    model.encoder.enable_nested_tensor = False
    graph = PooledEncoder(model)
    ids = torch.tensor([[CLS_ID % model.shape.vocab_size, 5, 6, 7], [CLS_ID % model.shape.vocab_size, 8, 0, 0]])
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]])
    with torch.enable_grad():
        torch.onnx.export(graph, (ids, mask), str(path), input_names=["input_ids", "attention_mask"],
                          output_names=["embeddings"], opset_version=ONNX_OPSET, do_constant_folding=True,
                          dynamic_axes={"input_ids": {0: "batch", 1: "sequence"},
                                        "attention_mask": {0: "batch", 1: "sequence"},
                                        "embeddings": {0: "batch"}})
    with torch.inference_mode():
        expected = graph(ids, mask)
    return expected


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="bert-base",
                        help=f"config.json path or one of {', '.join(ref.NAMED_SHAPES)}")
    parser.add_argument("--hidden-outputs", help="write the reference path's packed last hidden states here (f32)")
    parser.add_argument("--export-onnx", help="write the model as ONNX here and exit (no benchmark)")
    common.add_common_arguments(parser)
    args = parser.parse_args()
    common.resolve_model_arguments(args)
    torch.set_num_threads(args.threads)
    paths = args.paths.split(",") if args.paths else list(PATHS)
    unknown = set(paths) - set(PATHS)
    if unknown:
        raise SystemExit(f"--paths: unknown {sorted(unknown)}; choose from {PATHS}")

    shape, model = load_model(args)
    if args.export_onnx:
        export_onnx(model, args.export_onnx)
        print(f"bert {args.config}: ONNX opset {ONNX_OPSET} written to {args.export_onnx}", file=sys.stderr)
        return
    sequences = common.token_batch(args, shape.vocab_size, first_token=CLS_ID if shape.vocab_size > CLS_ID else None)
    lengths = torch.tensor([len(s) for s in sequences])
    if int(lengths.max()) > shape.context_length:
        raise SystemExit(f"the longest sequence ({int(lengths.max())}) exceeds max_position_embeddings "
                         f"{shape.context_length}")
    real_tokens, max_seqlen, num_seqs = int(lengths.sum()), int(lengths.max()), len(sequences)
    tokens = torch.zeros(num_seqs, max_seqlen, dtype=torch.int64)
    for i, seq in enumerate(sequences):
        tokens[i, :len(seq)] = torch.tensor(seq)
    padding = torch.arange(max_seqlen)[None, :] >= lengths[:, None]
    print(f"bert {args.config}: {num_seqs} sequences, {real_tokens} real tokens, padded to {num_seqs * max_seqlen}, "
          f"{args.threads} threads", file=sys.stderr)

    def set_mode(training, nested):
        model.train(training)
        model.encoder.enable_nested_tensor = nested

    def batched(training, nested):
        def run():
            set_mode(training, nested)
            hidden = model(tokens, padding_mask=padding)
            return ref.mean_max_pool(hidden, lengths)[0]
        return run

    def one_by_one():
        set_mode(False, False)
        return torch.stack([model(tokens[i:i + 1, :n])[0].mean(0) for i, n in enumerate(lengths.tolist())])

    runners = {"padded_slow": (batched(True, False), num_seqs * max_seqlen),
               "padded_fast": (batched(False, False), num_seqs * max_seqlen),
               "nested": (batched(False, True), real_tokens), "one_by_one": (one_by_one, real_tokens)}
    modes = {"padded_slow": (True, False), "padded_fast": (False, False), "nested": (False, True),
             "one_by_one": (False, False)}
    report = {"family": "bert", "config": args.config, "shape": vars(shape), "lengths": lengths.tolist(),
              "real_tokens": real_tokens, "padded_tokens": num_seqs * max_seqlen,
              "environment": common.environment(args.threads), "paths": {},
              "notes": {"nested": "embeddings, the nested conversion and the pooling run on the padded batch; the "
                                  "encoder layers run on the nested tensor (requires an even head count)"}}
    outputs = {}
    for name in paths:
        function, processed = runners[name]
        print(f"  running {name} ...", file=sys.stderr)
        try:
            seconds, outputs[name] = common.timed(function, args.runs, args.warmup)
        except (RuntimeError, NotImplementedError) as error:
            report["paths"][name] = {"unsupported": f"{type(error).__name__}: {str(error).splitlines()[0]}"}
            continue
        report["paths"][name] = common.path_result(seconds, real_tokens, processed)
    reference_path = next((p for p in ("padded_fast", "padded_slow", "nested", "one_by_one") if p in outputs), None)
    if reference_path is None:
        raise SystemExit("no path ran")
    reference = outputs[reference_path]
    report["outputs"] = {"kind": "mean-pooled last hidden states", "path": reference_path,
                         "shape": list(reference.shape),
                         "max_abs_diff_vs_" + reference_path: {
                             name: float((out - reference).abs().max()) for name, out in outputs.items()}}
    if args.hidden_outputs:
        with torch.inference_mode():
            if reference_path == "one_by_one":
                set_mode(False, False)
                hidden = torch.cat([model(tokens[i:i + 1, :n])[0] for i, n in enumerate(lengths.tolist())])
            else:
                set_mode(*modes[reference_path])
                hidden = model(tokens, padding_mask=padding)[~padding]
        hidden.to(torch.float32).contiguous().numpy().astype("<f4").tofile(args.hidden_outputs)
        report["outputs"]["hidden_states"] = {"path": reference_path, "shape": list(hidden.shape)}
    model.eval()
    common.finish(args, report, reference)


if __name__ == "__main__":
    main()
