// Reads the chat-template cases of llama.cpp's tests/test-chat-template.cpp (real templates, their conversation,
// bos/eos tokens, expected outputs) and renders each with @huggingface/jinja (Hugging Face's JavaScript Jinja),
// writing both to a JSON file for tests/server/chat_template_test.cpp.
// Usage: node chat_template_cases.mjs LLAMA_CPP_DIR HF_JINJA_PACKAGE_DIR OUT.json
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const [llamaDir, jinjaDir, outPath] = process.argv.slice(2);
const pkg = JSON.parse(readFileSync(path.join(jinjaDir, 'package.json'), 'utf8'));
const entry = pkg.exports?.['.']?.import ?? pkg.module ?? pkg.main;
const { Template } = await import(pathToFileURL(path.join(jinjaDir, typeof entry === 'string' ? entry : entry.default)).href);

const source = readFileSync(path.join(llamaDir, 'tests', 'test-chat-template.cpp'), 'utf8');
const literal = /"(?:[^"\\]|\\.)*"/g;
const cString = (text) => [...text.matchAll(literal)].map((m) => JSON.parse(m[0].replace(/\\'/g, "'"))).join('');

const start = source.indexOf('std::vector<TestCase> test_cases {');
const end = source.indexOf('std::vector<char> formatted_chat', start);
const conversation = [
  { role: 'system', content: 'You are a helpful assistant' }, { role: 'user', content: 'Hello' },
  { role: 'assistant', content: 'Hi there' }, { role: 'user', content: 'Who are you' },
  { role: 'assistant', content: '   I am an assistant   ' }, { role: 'user', content: 'Another question' },
];
const cases = [];
let current = null;
for (const line of source.slice(start, end).split('\n')) {
  const field = /^\s*\/\* \.(\w+)= \*\/\s*(.*)$/.exec(line);
  if (!field) continue;
  const [, name, raw] = field;
  if (name === 'name') {
    current = { name: cString(raw), bos_token: '', eos_token: '', supported_with_jinja: true, extra: [] };
    cases.push(current);
  } else if (name === 'supported_with_jinja') {
    current.supported_with_jinja = raw.trim().startsWith('true');
  } else if (name === 'extra_conversation') {
    for (const pair of raw.matchAll(/\{("(?:[^"\\]|\\.)*"),\s*("(?:[^"\\]|\\.)*")\}/g)) {
      current.extra.push({ role: cString(pair[1]), content: cString(pair[2]) });
    }
  } else {
    current[name] = cString(raw);
  }
}
const out = cases.map((c) => {
  const messages = [...conversation, ...c.extra];
  const result = { name: c.name, template: c.template_str, bos_token: c.bos_token, eos_token: c.eos_token,
                   supported_with_jinja: c.supported_with_jinja, messages,
                   expected: c.expected_output_jinja || c.expected_output, hf_output: null, hf_error: null };
  try {
    result.hf_output = new Template(c.template_str).render({ messages, bos_token: c.bos_token, eos_token: c.eos_token,
                                                             add_generation_prompt: true });
  } catch (error) {
    result.hf_error = String(error.message ?? error);
  }
  return result;
});
writeFileSync(outPath, JSON.stringify(out, null, 1));
console.log(`${out.length} cases; @huggingface/jinja rendered ${out.filter((c) => c.hf_output !== null).length}`);
