// The official `openai` npm client against a running `jagged serve` on stories260K: models, completions and chat
// (whole and streamed with usage), seeded sampling reproducible across both, and errors as the client's APIError.
// Usage: node openai_client_test.mjs OPENAI_PACKAGE_DIR PORT EXPECTED_GREEDY_200_TXT
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import path from 'node:path';

const [packageDir, port, expectedPath] = process.argv.slice(2);
const { default: OpenAI } = await import(pathToFileURL(path.join(packageDir, 'index.mjs')).href);
const client = new OpenAI({ baseURL: `http://127.0.0.1:${port}/v1`, apiKey: 'unused', timeout: 30000, maxRetries: 0 });

const models = await client.models.list();
assert.equal(models.data[0].id, 'stories260K');

// Greedy from BOS: llama2.c's own output.
const expected = readFileSync(expectedPath, 'utf8');
const greedy = await client.completions.create({ model: 'stories260K', prompt: '', max_tokens: 200, temperature: 0 });
assert.equal(greedy.choices[0].text, expected);
assert.equal(greedy.choices[0].finish_reason, 'length');
assert.deepEqual(greedy.usage, { prompt_tokens: 1, completion_tokens: 200, total_tokens: 201 });

// Seeded sampling, streamed with usage, equals the same request whole.
const request = { model: 'stories260K', prompt: 'Once upon a time', max_tokens: 60, temperature: 0.9, top_p: 0.95,
                  seed: 1234, logprobs: 1 };
const whole = await client.completions.create(request);
const stream = await client.completions.create({ ...request, stream: true, stream_options: { include_usage: true } });
let text = '';
let usage = null;
let finish = null;
const logprobs = [];
let chunks = 0;
for await (const chunk of stream) {
  ++chunks;
  if (chunk.usage) usage = chunk.usage;
  if (chunk.choices.length === 0) continue;
  text += chunk.choices[0].text;
  if (chunk.choices[0].logprobs) logprobs.push(...chunk.choices[0].logprobs.token_logprobs);
  if (chunk.choices[0].finish_reason) finish = chunk.choices[0].finish_reason;
}
assert.ok(chunks > 2, `expected several chunks, got ${chunks}`);
assert.equal(text, whole.choices[0].text);
assert.equal(finish, whole.choices[0].finish_reason);
assert.deepEqual(logprobs, whole.choices[0].logprobs.token_logprobs);
assert.deepEqual(usage, whole.usage);

// Errors arrive as the client's typed errors with OpenAI's fields.
await assert.rejects(client.completions.create({ model: 'stories260K', prompt: 'a', n: 2 }), (error) => {
  assert.equal(error.status, 400);
  assert.equal(error.param, 'n');
  assert.equal(error.type, 'invalid_request_error');
  return true;
});
await assert.rejects(client.completions.create({ model: 'gpt-4', prompt: 'a' }), (error) => error.status === 404);

// Chat (the server runs with a ChatML template), whole and streamed.
const chatRequest = { model: 'stories260K', messages: [{ role: 'user', content: 'Hello' }], max_tokens: 30,
                      temperature: 0.8, seed: 9 };
let chat = null;
try {
  chat = await client.chat.completions.create(chatRequest);
} catch (error) {
  if (!String(error.message).includes('Jinja engine')) throw error;
  console.log('chat skipped: this build has no Jinja engine');
}
if (chat) {
  assert.equal(chat.object, 'chat.completion');
  assert.equal(chat.choices[0].message.role, 'assistant');
  assert.ok(chat.usage.completion_tokens > 0);
  const chatStream = await client.chat.completions.create({ ...chatRequest, stream: true,
                                                            stream_options: { include_usage: true } });
  let content = '';
  let chatUsage = null;
  for await (const chunk of chatStream) {
    if (chunk.usage) chatUsage = chunk.usage;
    if (chunk.choices.length) content += chunk.choices[0].delta.content ?? '';
  }
  assert.equal(content, chat.choices[0].message.content);
  assert.deepEqual(chatUsage, chat.usage);
}
console.log('openai client: all checks passed');
