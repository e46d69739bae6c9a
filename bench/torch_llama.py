#!/usr/bin/python3
"""PyTorch baseline of `jagged bench` on a Llama-family shape, float32, torch.inference_mode().

Paths, each timed on the same ragged batch with the same weights:
  padded      one right-padded batch, causal + key-padding mask (PyTorch's usual way)
  one_by_one  each sequence alone (no padding, no batching)
  nested      torch.nested (PyTorch 1.13) where it has the ops, a packed view of its buffer where it does not
              (the JSON lists the missing ops and the workarounds)
The model is scripts/fixtures/torch_llama_ref.py, the same code that produces the test fixtures.

  /usr/bin/python3 bench/torch_llama.py --config smollm-135m --threads 2 --runs 3 --json out.json
  /usr/bin/python3 bench/torch_llama.py --model-dir DIR --tokens tokens.json --outputs logits.f32   (jagged's hook)

Outputs (--outputs, raw float32): the padded path's logits of each sequence's last token [num_seqs, vocab_size], or
with --all-logits every token's, packed [num_tokens, vocab_size]. Needs Debian's python3-torch with
libopenblas0-openmp (scripts/setup.sh); run with /usr/bin/python3, not another python on PATH.
"""
import argparse
import json
import pathlib
import sys

import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "scripts" / "fixtures"))
import safetensors_io  # noqa: E402
import torch_bench_common as common  # noqa: E402
import torch_llama_ref as ref  # noqa: E402

PATHS = ("padded", "one_by_one", "nested")


def load_model(args):
    if args.config in ref.NAMED_SHAPES:
        shape = ref.NAMED_SHAPES[args.config]
    else:
        shape = ref.shape_from_hf_config(json.loads(pathlib.Path(args.config).read_text()))
    if args.weights:
        weights = ref.hf_to_canonical(safetensors_io.load_file(args.weights, dtype=torch.float32))
        if shape.tied_output:
            weights.pop("output.weight", None)
    else:
        weights = ref.random_weights(shape, args.seed)
    return shape, weights


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="smollm-135m",
                        help=f"config.json path or one of {', '.join(ref.NAMED_SHAPES)}")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--last-token-logits", action="store_true", help="LM head on each last token (default)")
    group.add_argument("--all-logits", action="store_true", help="LM head on every token")
    common.add_common_arguments(parser)
    args = parser.parse_args()
    common.resolve_model_arguments(args)
    torch.set_num_threads(args.threads)
    last_only = not args.all_logits
    paths = args.paths.split(",") if args.paths else list(PATHS)
    unknown = set(paths) - set(PATHS)
    if unknown:
        raise SystemExit(f"--paths: unknown {sorted(unknown)}; choose from {PATHS}")

    shape, weights = load_model(args)
    sequences = common.token_batch(args, shape.vocab_size, first_token=shape.bos_id)
    lengths = torch.tensor([len(s) for s in sequences])
    if int(lengths.max()) > shape.context_length:
        raise SystemExit(f"the longest sequence ({int(lengths.max())}) exceeds the context length "
                         f"{shape.context_length}")
    real_tokens, max_seqlen = int(lengths.sum()), int(lengths.max())
    padded_tokens = torch.zeros(len(sequences), max_seqlen, dtype=torch.int64)
    for i, seq in enumerate(sequences):
        padded_tokens[i, :len(seq)] = torch.tensor(seq)
    print(f"llama {args.config}: {len(sequences)} sequences, {real_tokens} real tokens, padded to "
          f"{len(sequences) * max_seqlen}, {args.threads} threads", file=sys.stderr)

    def one_by_one():
        outs = [ref.forward(weights, shape, padded_tokens[i:i + 1, :n], last_only=last_only)[0]
                for i, n in enumerate(lengths.tolist())]
        return torch.stack(outs) if last_only else torch.cat(outs)

    def padded():
        out = ref.forward(weights, shape, padded_tokens, lengths, last_only=last_only)
        return out if last_only else torch.cat([out[i, :n] for i, n in enumerate(lengths.tolist())])

    runners = {"padded": (padded, len(sequences) * max_seqlen), "one_by_one": (one_by_one, real_tokens),
               "nested": (lambda: ref.forward_nested(weights, shape, sequences, last_only=last_only), real_tokens)}
    report = {"family": "llama", "config": args.config, "shape": vars(shape), "lengths": lengths.tolist(),
              "real_tokens": real_tokens, "padded_tokens": len(sequences) * max_seqlen,
              "last_token_logits": last_only, "environment": common.environment(args.threads), "paths": {}}
    outputs = {}
    for name in paths:
        function, processed = runners[name]
        print(f"  running {name} ...", file=sys.stderr)
        try:
            seconds, outputs[name] = common.timed(function, args.runs, args.warmup)
        except (RuntimeError, NotImplementedError) as error:
            report["paths"][name] = {"unsupported": f"{type(error).__name__}: {str(error).splitlines()[0]}"}
            continue
        extra = {}
        if name == "nested":
            extra = {"torch_nested_ops": ref.probe_nested_ops(), "workarounds": ref.NESTED_WORKAROUNDS}
        report["paths"][name] = common.path_result(seconds, real_tokens, processed, **extra)
    reference_path = next((p for p in ("padded", "one_by_one", "nested") if p in outputs), None)
    if reference_path is None:
        raise SystemExit("no path ran")
    reference = outputs[reference_path]
    report["outputs"] = {"path": reference_path, "shape": list(reference.shape),
                         "max_abs_diff_vs_" + reference_path: {
                             name: float((out - reference).abs().max()) for name, out in outputs.items()}}
    common.finish(args, report, reference)


if __name__ == "__main__":
    main()
