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

Outputs (--outputs, raw float32): mean-pooled last hidden states over each sequence's tokens [num_seqs, model_dim]
from the padded_fast path (the first path that ran otherwise).
"""
import argparse
import json
import pathlib
import sys

import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "scripts" / "fixtures"))
import safetensors_io  # noqa: E402
import torch_bench_common as common  # noqa: E402
import torch_bert_ref as ref  # noqa: E402

PATHS = ("padded_slow", "padded_fast", "nested", "one_by_one")
CLS_ID = 101


def load_model(args):
    if args.config in ref.NAMED_SHAPES:
        shape = ref.NAMED_SHAPES[args.config]
    else:
        shape = ref.shape_from_hf_config(json.loads(pathlib.Path(args.config).read_text()))
    model = ref.Bert(shape)
    if args.weights:
        ref.load_hf_state_dict(model, safetensors_io.load_file(args.weights, dtype=torch.float32))
    else:
        ref.randomize(model, args.seed)
    return shape, model.eval()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="bert-base",
                        help=f"config.json path or one of {', '.join(ref.NAMED_SHAPES)}")
    common.add_common_arguments(parser)
    args = parser.parse_args()
    common.resolve_model_arguments(args)
    torch.set_num_threads(args.threads)
    paths = args.paths.split(",") if args.paths else list(PATHS)
    unknown = set(paths) - set(PATHS)
    if unknown:
        raise SystemExit(f"--paths: unknown {sorted(unknown)}; choose from {PATHS}")

    shape, model = load_model(args)
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

    def batched(training, nested):
        def run():
            model.train(training)
            model.encoder.enable_nested_tensor = nested
            hidden = model(tokens, padding_mask=padding)
            return ref.mean_max_pool(hidden, lengths)[0]
        return run

    def one_by_one():
        model.eval()
        return torch.stack([model(tokens[i:i + 1, :n])[0].mean(0) for i, n in enumerate(lengths.tolist())])

    runners = {"padded_slow": (batched(True, False), num_seqs * max_seqlen),
               "padded_fast": (batched(False, False), num_seqs * max_seqlen),
               "nested": (batched(False, True), real_tokens), "one_by_one": (one_by_one, real_tokens)}
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
    model.eval()
    reference_path = next((p for p in ("padded_fast", "padded_slow", "nested", "one_by_one") if p in outputs), None)
    if reference_path is None:
        raise SystemExit("no path ran")
    reference = outputs[reference_path]
    report["outputs"] = {"kind": "mean-pooled last hidden states", "path": reference_path,
                         "shape": list(reference.shape),
                         "max_abs_diff_vs_" + reference_path: {
                             name: float((out - reference).abs().max()) for name, out in outputs.items()}}
    common.finish(args, report, reference)


if __name__ == "__main__":
    main()
