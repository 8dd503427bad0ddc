'use strict';
// The Node client (client/node) against a running leoam-compute serving stories260K. Started by
// run_node_client_test.py, which runs the servers and passes LEOAM_SERVER, LEOAM_REFERENCE and
// LEOAM_SOURCE_DIR. Uses node:test; a failed assertion makes the process exit non-zero.

const assert = require('node:assert/strict');
const { execFile } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const test = require('node:test');

const SOURCE_DIR = process.env.LEOAM_SOURCE_DIR || path.join(__dirname, '..', '..');
const CLIENT_DIR = path.join(SOURCE_DIR, 'client', 'node');
const { LeoamClient, status } = require(path.join(CLIENT_DIR, 'leoam_client.js'));

const SERVER = process.env.LEOAM_SERVER;
const REFERENCE = fs.readFileSync(process.env.LEOAM_REFERENCE, 'utf8').split('\n')
  .filter((line) => line.trim() !== '').map((line) => JSON.parse(line));
const BOS = 1;  // stories260K ends a story by emitting BOS; the reference stops before it.

const client = new LeoamClient(SERVER, 120);
test.after(() => client.close());

// max_tokens and the finish reason that reproduce one reference line exactly: it stopped either at a
// generated BOS (one more step yields BOS: STOP) or when its positions ran out (LENGTH).
function referenceRequest(ref) {
  const stoppedAtBos = ref.prompt_ids.length + ref.generated_ids.length <= ref.positions;
  return stoppedAtBos ? [ref.generated_ids.length + 1, 'FINISH_REASON_STOP']
                      : [ref.generated_ids.length, 'FINISH_REASON_LENGTH'];
}

async function expectStatus(code, promise) {
  await assert.rejects(promise, (err) => {
    assert.equal(err.code, code, `${status[err.code]}: ${err.details}`);
    assert.ok(err.details, 'a status without a message');
    return true;
  });
}

function runExample(args) {
  return new Promise((resolve) => {
    execFile(process.execPath, [path.join(CLIENT_DIR, 'leoam_example.js'), '--server', SERVER, ...args],
      { timeout: 300000 }, (err, stdout, stderr) => resolve({ code: err ? err.code : 0, stdout, stderr }));
  });
}

test('health is SERVING', async () => {
  await client.waitReady(30);
  assert.equal(await client.health(), 'SERVING');
});

test('model info describes stories260K', async () => {
  const info = await client.modelInfo();
  assert.equal(info.architecture, 'llama');
  assert.equal(info.vocab_size, 512);
  assert.equal(info.num_layers, 5);
  assert.equal(info.num_kv_heads, 4);
  assert.equal(info.bos_token_id, 1);
});

test('streamed greedy generation reproduces the reference tokens', async () => {
  for (const ref of REFERENCE) {
    const [maxTokens, reason] = referenceRequest(ref);
    const r = await client.generateAll({ token_ids: ref.prompt_ids, max_tokens: maxTokens,
                                         sampling: { temperature: 0 }, stop_token_ids: [BOS] });
    assert.deepEqual(r.tokenIds, ref.generated_ids, `prompt ${JSON.stringify(ref.prompt)}`);
    assert.ok(r.final, 'stream ended without a final message');
    assert.equal(r.final.finish_reason, reason);
    assert.equal(r.final.usage.prompt_tokens, ref.prompt_ids.length);
    assert.equal(r.final.usage.completion_tokens, ref.generated_ids.length);
    assert.ok(r.chunks > 1, `~200 tokens arrived in ${r.chunks} message(s): not streamed`);
    // The streamed text continues the prompt as the reference printed it (after a BOS-only prompt the
    // reference drops the first piece's SentencePiece space; the service keeps it, as llama.cpp does).
    if (ref.prompt !== '') assert.equal(ref.prompt + r.text, ref.text);
    else assert.equal(r.text.replace(/^ +/, ''), ref.text);
    // Detokenize of the whole sequence without its BOS is the reference text.
    assert.equal(await client.detokenize(ref.prompt_ids.slice(1).concat(r.tokenIds)), ref.text);
  }
});

test('text prompt: same tokens, and prompt + streamed text is the reference text', async () => {
  const ref = REFERENCE.find((r) => r.prompt !== '');
  const [maxTokens] = referenceRequest(ref);
  const r = await client.generateAll({ text: ref.prompt, max_tokens: maxTokens, stop_token_ids: [BOS] });
  assert.deepEqual(r.tokenIds, ref.generated_ids);
  assert.equal(ref.prompt + r.text, ref.text);
});

test('tokenize round trip', async () => {
  for (const ref of REFERENCE.filter((r) => r.prompt !== '')) {
    assert.deepEqual(await client.tokenize(ref.prompt, true), ref.prompt_ids);
    const ids = await client.tokenize(ref.prompt, false);
    assert.deepEqual(ids, ref.prompt_ids.slice(1));
    assert.equal(await client.detokenize(ids), ref.prompt);
  }
});

test('a seeded sampled generation repeats', async () => {
  const request = { text: 'Lily and Tom', max_tokens: 24,
                    sampling: { temperature: 0.8, top_k: 40, seed: '1234', has_seed: true } };
  const a = await client.generateAll(request);
  const b = await client.generateAll(request);
  assert.deepEqual(a.tokenIds, b.tokenIds);
  assert.equal(a.final.usage.seed, '1234');
});

test('malformed requests get their documented status codes', async () => {
  const vocab = (await client.modelInfo()).vocab_size;
  await expectStatus(status.INVALID_ARGUMENT, client.generateAll({}));
  await expectStatus(status.INVALID_ARGUMENT, client.generateAll({ token_ids: [1, vocab] }));
  await expectStatus(status.INVALID_ARGUMENT, client.generateAll({ text: 'a', sampling: { temperature: -1 } }));
  await expectStatus(status.INVALID_ARGUMENT, client.generateAll({ text: 'a', sampling: { top_p: 1.5 } }));
  const limit = (await client.serverInfo()).max_tokens_limit;
  assert.ok(limit > 0);
  await expectStatus(status.RESOURCE_EXHAUSTED, client.generateAll({ text: 'a', max_tokens: limit + 1 }));
  await expectStatus(status.NOT_FOUND, client.abort('no-such-request-id'));
  const r = await client.generateAll({ text: 'The cat', max_tokens: 4 });
  assert.equal(r.tokenIds.length, 4);
});

test('cancelling the call ends the stream with CANCELLED', async () => {
  // As long a generation as the server allows, so that it is still running when the cancel arrives.
  const maxTokens = Math.min((await client.serverInfo()).max_tokens_limit,
                             (await client.modelInfo()).context_length - 16);
  const call = client.generate({ text: 'Once upon a time', max_tokens: maxTokens, ignore_eos: true });
  let chunks = 0;
  const err = await new Promise((resolve) => {
    call.on('data', (r) => { if (r.payload === 'chunk' && ++chunks === 2) call.cancel(); });
    call.on('error', resolve);
    call.on('end', () => resolve(null));
  });
  assert.ok(err, 'the stream ended normally after cancel');
  assert.equal(err.code, status.CANCELLED);
  // The server keeps serving.
  assert.equal((await client.generateAll({ text: 'The cat', max_tokens: 3 })).tokenIds.length, 3);
});

test('the example script streams, prints JSON and reports errors', async () => {
  const ref = REFERENCE.find((r) => r.prompt !== '');
  const [maxTokens] = referenceRequest(ref);
  let out = await runExample(['generate', '--prompt', ref.prompt, '--max-tokens', String(maxTokens),
                              '--stop-token-id', String(BOS), '--json']);
  assert.equal(out.code, 0, out.stderr);
  const result = JSON.parse(out.stdout);
  assert.deepEqual(result.token_ids, ref.generated_ids);
  assert.equal(ref.prompt + result.text, ref.text);
  out = await runExample(['generate', '--prompt', ref.prompt, '--max-tokens', '16']);
  assert.equal(out.code, 0, out.stderr);
  assert.ok(ref.text.startsWith(ref.prompt + out.stdout.replace(/\n$/, '')), out.stdout);
  assert.match(out.stderr, /TTFT/);
  for (const args of [['tokenize', ref.prompt], ['info'], ['stats'], ['health']]) {
    out = await runExample(args);
    assert.equal(out.code, 0, `${args}: ${out.stderr}`);
  }
  out = await runExample(['generate', '--token-ids', '1 999999']);
  assert.equal(out.code, 1);
  assert.match(out.stderr, /INVALID_ARGUMENT/);
});
