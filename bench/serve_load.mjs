// A bounded load test for OpenAI-compatible servers (jagged serve, llama-server): CLIENTS concurrent clients each
// send REQUESTS streaming completions one after another, on loopback; every request has a deadline. Reports
// generated tokens/s, p50/p99 time to first token and request latency, errors, and the server's peak RSS (VmHWM of
// --pid). JSON on stdout. Node 18+ (global fetch), no packages.
//   node bench/serve_load.mjs --url http://127.0.0.1:8080 [--pid PID] [--clients 64] [--requests 10]
//        [--max-tokens 64] [--prompt-ids] [--timeout-s 120] [--label NAME]
import { readFileSync } from 'node:fs';

const args = Object.fromEntries(process.argv.slice(2).reduce((pairs, arg, i, all) => {
  if (arg.startsWith('--')) pairs.push([arg.slice(2), all[i + 1] && !all[i + 1].startsWith('--') ? all[i + 1] : 'true']);
  return pairs;
}, []));
const url = args.url ?? 'http://127.0.0.1:8080';
const clients = Number(args.clients ?? 64);
const requests = Number(args.requests ?? 10);
const maxTokens = Number(args['max-tokens'] ?? 64);
const timeoutMs = Number(args['timeout-s'] ?? 120) * 1000;
const prompts = ['Once upon a time', 'The cat sat', 'Lily and Tom went to the park', 'One day, a little girl',
                 'The sun was hot and', 'Tim had a red ball'];

function peakRss(pid) {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    return Number(/VmHWM:\s+(\d+) kB/.exec(status)[1]) * 1024;
  } catch { return null; }
}

async function one(client, index) {
  // --prompt-ids: token-id prompts (models without a tokenizer, e.g. synthetic:smollm-135m), 8 + client % 24 long.
  const prompt = args['prompt-ids']
    ? [1, ...Array.from({ length: 8 + client % 24 }, (_, t) => 100 + ((client * 31 + index * 7 + t * 13) % 900))]
    : prompts[(client + index) % prompts.length];
  const body = { prompt, max_tokens: maxTokens, temperature: 0.8,
                 seed: client * 1000 + index, stream: true, stream_options: { include_usage: true }, ignore_eos: true };
  if (args.model) body.model = args.model;
  const start = performance.now();
  const response = await fetch(`${url}/v1/completions`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body),
    signal: AbortSignal.timeout(timeoutMs) });
  if (!response.ok) throw new Error(`HTTP ${response.status}: ${await response.text()}`);
  let firstToken = null;
  let tokens = 0;
  let buffer = '';
  const decoder = new TextDecoder();
  for await (const bytes of response.body) {
    buffer += decoder.decode(bytes, { stream: true });
    let end;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      if (!event.startsWith('data: ') || event === 'data: [DONE]') continue;
      const chunk = JSON.parse(event.slice(6));
      if (chunk.usage) tokens = chunk.usage.completion_tokens;
      // The first chunk with a choice carries the first token (its text may be empty: no tokenizer, held back).
      if (firstToken === null && chunk.choices?.length) firstToken = performance.now() - start;
    }
  }
  return { ttft_s: (firstToken ?? performance.now() - start) / 1000, latency_s: (performance.now() - start) / 1000, tokens };
}

function percentile(values, p) {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(p / 100 * sorted.length))];
}

const results = [];
const errors = [];
const start = performance.now();
await Promise.all(Array.from({ length: clients }, async (_, client) => {
  for (let index = 0; index < requests; ++index) {  // bounded: `requests` per client, each with a deadline
    try { results.push(await one(client, index)); } catch (error) { errors.push(String(error.message ?? error)); }
  }
}));
const wall = (performance.now() - start) / 1000;
const tokens = results.reduce((sum, r) => sum + r.tokens, 0);
console.log(JSON.stringify({
  label: args.label ?? url, clients, requests_per_client: requests, max_tokens: maxTokens,
  completed: results.length, errors: errors.length, first_error: errors[0] ?? null, wall_s: wall,
  generated_tokens: tokens, tokens_per_s: tokens / wall, requests_per_s: results.length / wall,
  ttft_p50_s: percentile(results.map(r => r.ttft_s), 50), ttft_p99_s: percentile(results.map(r => r.ttft_s), 99),
  latency_p50_s: percentile(results.map(r => r.latency_s), 50), latency_p99_s: percentile(results.map(r => r.latency_s), 99),
  peak_rss_bytes: args.pid ? peakRss(args.pid) : null,
}, null, 2));
if (errors.length) process.exitCode = 1;
