#!/usr/bin/env node
// ONNX Runtime baseline of `jagged bench --compare-onnx`: the encoder exported by bench/torch_bert.py --export-onnx
// (inputs input_ids, attention_mask [batch, sequence] int64; output embeddings [batch, model_dim], mean-pooled),
// run by onnxruntime-node on the CPU with every graph optimisation on, as an embedding service would. Paths:
//   padded      the whole batch, right-padded to its longest sequence, with its attention mask (one run() call)
//   one_by_one  each sequence alone, no padding (one run() call per sequence)
// Each path: `warmup` unmeasured runs, then `runs` timed ones; the median is reported.
//
//   node bench/onnxruntime/run.mjs --model model.onnx --tokens tokens.json --threads 2 --runs 3 --warmup 1 \
//        --json ort.json --outputs ort_embeddings.f32
//
// onnxruntime-node is loaded from --deps (default: $JAGGED_BENCH_DEPS, else build/bench-deps), where
// scripts/setup_bench.sh installs it. --outputs: the padded path's embeddings [num_seqs, model_dim], raw
// little-endian float32. Spinning: ONNX Runtime's own thread pool spins while waiting for work unless
// OMP_WAIT_POLICY=PASSIVE is set, which maps to session.intra_op.allow_spinning=0 (the policy is recorded).
import { createRequire } from 'node:module';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';

const PATHS = ['padded', 'one_by_one'];

function parseArgs(argv) {
  const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
  const args = {
    model: null, tokens: null, threads: os.availableParallelism?.() ?? os.cpus().length, runs: 3, warmup: 1,
    json: null, outputs: null, paths: PATHS.join(','),
    deps: process.env.JAGGED_BENCH_DEPS || path.join(repo, 'build', 'bench-deps'),
  };
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, '');
    if (!(key in args) || i + 1 >= argv.length) throw new Error(`unknown or incomplete argument ${argv[i]}`);
    args[key] = ['threads', 'runs', 'warmup'].includes(key) ? Number(argv[i + 1]) : argv[i + 1];
  }
  if (!args.model || !args.tokens) throw new Error('--model and --tokens are required');
  if (!(args.threads >= 1 && args.runs >= 1 && args.warmup >= 0)) {
    throw new Error('need --threads >= 1, --runs >= 1, --warmup >= 0 ' +
                    `(got ${args.threads}, ${args.runs}, ${args.warmup})`);
  }
  args.paths = args.paths.split(',');
  const unknown = args.paths.filter((p) => !PATHS.includes(p));
  if (unknown.length) throw new Error(`--paths: unknown ${unknown}; choose from ${PATHS}`);
  return args;
}

function loadOrt(deps) {
  try {
    return createRequire(path.resolve(deps) + path.sep)('onnxruntime-node');
  } catch (error) {
    throw new Error(`onnxruntime-node is not installed in ${deps} (run scripts/setup_bench.sh): ${error.message}`);
  }
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : 0.5 * (sorted[mid - 1] + sorted[mid]);
}

// [num_seqs, max_seqlen] int64 ids (0 in the padding) and mask (1 = real token).
function paddedInputs(ort, sequences) {
  const maxSeqlen = Math.max(...sequences.map((s) => s.length));
  const ids = new BigInt64Array(sequences.length * maxSeqlen);
  const mask = new BigInt64Array(sequences.length * maxSeqlen);
  sequences.forEach((seq, row) => seq.forEach((id, col) => {
    ids[row * maxSeqlen + col] = BigInt(id);
    mask[row * maxSeqlen + col] = 1n;
  }));
  const dims = [sequences.length, maxSeqlen];
  return { input_ids: new ort.Tensor('int64', ids, dims), attention_mask: new ort.Tensor('int64', mask, dims) };
}

async function timed(run, runs, warmup) {
  const seconds = [];
  let output = null;
  for (let i = 0; i < warmup + runs; ++i) {
    const start = process.hrtime.bigint();
    output = await run();
    const elapsed = Number(process.hrtime.bigint() - start) * 1e-9;
    if (i >= warmup) seconds.push(elapsed);
  }
  return { seconds, output };
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const ort = loadOrt(args.deps);
  const sequences = JSON.parse(fs.readFileSync(args.tokens, 'utf8'));
  if (!Array.isArray(sequences) || sequences.length === 0 || sequences.some((s) => !Array.isArray(s) || !s.length)) {
    throw new Error(`${args.tokens}: need a non-empty list of non-empty token-id lists`);
  }
  const spinning = process.env.OMP_WAIT_POLICY?.toUpperCase() === 'PASSIVE' ? '0' : '1';
  const options = {
    executionProviders: ['cpu'], graphOptimizationLevel: 'all', intraOpNumThreads: args.threads,
    interOpNumThreads: 1, executionMode: 'sequential',
    extra: { session: { intra_op: { allow_spinning: spinning } } },
  };
  const loadStart = process.hrtime.bigint();
  const session = await ort.InferenceSession.create(args.model, options);
  const loadSeconds = Number(process.hrtime.bigint() - loadStart) * 1e-9;

  const realTokens = sequences.reduce((n, s) => n + s.length, 0);
  const maxSeqlen = Math.max(...sequences.map((s) => s.length));
  const padded = paddedInputs(ort, sequences);
  const singles = sequences.map((seq) => paddedInputs(ort, [seq]));
  const runners = {
    padded: [async () => (await session.run(padded, ['embeddings'])).embeddings.data, sequences.length * maxSeqlen],
    one_by_one: [async () => {
      const rows = [];
      for (const feeds of singles) rows.push((await session.run(feeds, ['embeddings'])).embeddings.data);
      const out = new Float32Array(rows.reduce((n, r) => n + r.length, 0));
      let offset = 0;
      for (const row of rows) { out.set(row, offset); offset += row.length; }
      return out;
    }, realTokens],
  };
  const report = {
    engine: 'onnxruntime-node', version: ort.env.versions?.common ?? null, node: process.version,
    model: args.model, lengths: sequences.map((s) => s.length), real_tokens: realTokens,
    padded_tokens: sequences.length * maxSeqlen, threads: args.threads, session_create_seconds: loadSeconds,
    session_options: options, environment: {
      OMP_WAIT_POLICY: process.env.OMP_WAIT_POLICY ?? null, load_average: os.loadavg(),
      command: process.argv.join(' '),
    },
    paths: {},
  };
  const outputs = {};
  for (const name of args.paths) {
    const [run, processed] = runners[name];
    process.stderr.write(`  onnxruntime ${name} ...\n`);
    const { seconds, output } = await timed(run, args.runs, args.warmup);
    const med = median(seconds);
    outputs[name] = output;
    report.paths[name] = {
      median_seconds: med, run_seconds: seconds, real_tokens_per_second: realTokens / med, processed_tokens: processed,
    };
    process.stderr.write(`  ${name.padEnd(12)} ${(med * 1e3).toFixed(1).padStart(10)} ms  ` +
                         `${(realTokens / med).toFixed(0).padStart(9)} real tokens/s\n`);
  }
  const referenceName = args.paths.includes('padded') ? 'padded' : args.paths[0];
  const reference = outputs[referenceName];
  const diffs = {};
  for (const [name, out] of Object.entries(outputs)) {
    let worst = 0;
    for (let i = 0; i < out.length; ++i) worst = Math.max(worst, Math.abs(out[i] - reference[i]));
    diffs[name] = worst;
  }
  report.outputs = {
    kind: 'mean-pooled last hidden states', path: referenceName,
    shape: [sequences.length, reference.length / sequences.length], [`max_abs_diff_vs_${referenceName}`]: diffs,
  };
  report.process_peak_rss_bytes = process.resourceUsage().maxRSS * 1024;
  if (args.json) fs.writeFileSync(args.json, JSON.stringify(report, null, 2) + '\n');
  if (args.outputs) {
    fs.writeFileSync(args.outputs, Buffer.from(reference.buffer, reference.byteOffset, reference.byteLength));
  }
}

main().catch((error) => {
  process.stderr.write(`run.mjs: ${error.message}\n`);
  process.exit(1);
});
