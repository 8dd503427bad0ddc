#!/usr/bin/env node
'use strict';
// Example: talk to leoam-compute from Node.js (@grpc/grpc-js; run `npm ci` in client/node first).
//
//   node leoam_example.js --server unix:///tmp/leoam/compute.sock generate --prompt "Once upon a time" --max-tokens 64
//   node leoam_example.js --server localhost:50051 tokenize "Hello world"
//   node leoam_example.js --server ... detokenize 1 403 407
//   node leoam_example.js --server ... info | stats | health
//
// generate streams the text as it arrives (stdout), prefill progress and the final usage (stderr);
// --json prints one JSON object at the end instead. Exit status: 0 on success, 1 on a gRPC error
// (status name and message on stderr), 2 when a generation finished with an error, 3 when health is
// not SERVING, 64 on bad usage.

const { parseArgs } = require('node:util');
const { LeoamClient, finishReasonName, grpc } = require('./leoam_client');

const USAGE = `usage: leoam_example.js [--server ADDR] [--timeout S] COMMAND [options]
  ADDR: unix:///path/to/socket, /path/to/socket or host:port (default $LEOAM_SERVER or
        unix:///tmp/leoam/compute.sock)
commands:
  generate [--prompt TEXT | --token-ids "1 2 3"] [--max-tokens N] [--temperature T] [--top-k K]
           [--top-p P] [--min-p M] [--seed S] [--stop STR]... [--stop-token-id ID]... [--ignore-eos]
           [--request-id ID] [--time-limit-ms MS] [--no-progress] [--json]
  tokenize TEXT [--add-special]      detokenize ID... [--render-special]
  info    stats    health [--service NAME]`;

const OPTIONS = {
  server: { type: 'string', default: process.env.LEOAM_SERVER || 'unix:///tmp/leoam/compute.sock' },
  timeout: { type: 'string' },
  prompt: { type: 'string', default: 'Once upon a time' },
  'token-ids': { type: 'string' },
  'max-tokens': { type: 'string', default: '0' },
  temperature: { type: 'string', default: '0' },
  'top-k': { type: 'string', default: '0' },
  'top-p': { type: 'string', default: '0' },
  'min-p': { type: 'string', default: '0' },
  seed: { type: 'string' },
  stop: { type: 'string', multiple: true, default: [] },
  'stop-token-id': { type: 'string', multiple: true, default: [] },
  'ignore-eos': { type: 'boolean', default: false },
  'request-id': { type: 'string', default: '' },
  'time-limit-ms': { type: 'string', default: '0' },
  'no-progress': { type: 'boolean', default: false },
  json: { type: 'boolean', default: false },
  'add-special': { type: 'boolean', default: false },
  'render-special': { type: 'boolean', default: false },
  service: { type: 'string', default: '' },
  help: { type: 'boolean', short: 'h', default: false },
};

function number(text, name) {
  const value = Number(text);
  if (text === '' || !Number.isFinite(value)) throw new UsageError(`--${name}: not a number: ${text}`);
  return value;
}

class UsageError extends Error {}

function ids(text) {
  return text.split(/[\s,]+/).filter((t) => t !== '').map((t) => number(t, 'token-ids'));
}

async function generate(client, v) {
  const request = {
    request_id: v['request-id'],
    max_tokens: number(v['max-tokens'], 'max-tokens'),
    sampling: {
      temperature: number(v.temperature, 'temperature'),
      top_k: number(v['top-k'], 'top-k'),
      top_p: number(v['top-p'], 'top-p'),
      min_p: number(v['min-p'], 'min-p'),
    },
    stop_strings: v.stop,
    stop_token_ids: v['stop-token-id'].map((t) => number(t, 'stop-token-id')),
    ignore_eos: v['ignore-eos'],
    time_limit_ms: number(v['time-limit-ms'], 'time-limit-ms'),
    report_progress: !v['no-progress'] && !v.json,
  };
  if (v.seed !== undefined) {
    number(v.seed, 'seed');
    request.sampling.seed = v.seed;  // uint64: passed as a string, exact beyond 2^53
    request.sampling.has_seed = true;
  }
  if (v['token-ids'] !== undefined) request.token_ids = ids(v['token-ids']);
  else request.text = v.prompt;

  const call = client.generate(request);
  process.on('SIGINT', () => call.cancel());
  const out = { request_id: '', token_ids: [], text: '', final: null };
  let progressShown = false;
  await new Promise((resolve, reject) => {
    call.on('data', (r) => {
      out.request_id = r.request_id || out.request_id;
      if (r.payload === 'progress' && !v.json) {
        const p = r.progress;
        process.stderr.write(`\r[prefill ${p.processed_tokens}/${p.prompt_tokens} tokens, ${p.cached_tokens} cached]`);
        progressShown = true;
      } else if (r.payload === 'chunk') {
        if (progressShown) {  // end the progress line before the text starts
          process.stderr.write('\n');
          progressShown = false;
        }
        out.token_ids.push(...r.chunk.token_ids);
        out.text += r.chunk.text;
        if (!v.json) process.stdout.write(r.chunk.text);
      } else if (r.payload === 'final') {
        out.final = r.final;
      }
    });
    call.on('error', reject);
    call.on('end', resolve);
  });
  if (!out.final) {
    process.stderr.write('leoam_example: the stream ended without a final message\n');
    return 2;
  }
  const u = out.final.usage;
  if (v.json) {
    process.stdout.write(JSON.stringify({
      request_id: out.request_id, token_ids: out.token_ids, text: out.text,
      finish_reason: finishReasonName(out.final.finish_reason), error: out.final.error, usage: u,
    }) + '\n');
  } else {
    process.stdout.write('\n');
    process.stderr.write(`[${finishReasonName(out.final.finish_reason)}] ${u.prompt_tokens} prompt tokens ` +
      `(${u.cached_tokens_memory + u.cached_tokens_disk} cached: ${u.cached_tokens_memory} memory, ` +
      `${u.cached_tokens_disk} disk), ${u.completion_tokens} generated; TTFT ${u.ttft_ms.toFixed(1)} ms, ` +
      `${u.decode_tokens_per_second.toFixed(1)} tokens/s\n`);
  }
  if (out.final.finish_reason === 'FINISH_REASON_ERROR') {
    process.stderr.write(`leoam_example: generation failed: ${out.final.error}\n`);
    return 2;
  }
  return 0;
}

async function run(argv) {
  const { values: v, positionals } = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true });
  if (v.help || positionals.length === 0) {
    process.stdout.write(USAGE + '\n');
    return v.help ? 0 : 64;
  }
  const [command, ...rest] = positionals;
  const client = new LeoamClient(v.server, v.timeout !== undefined ? number(v.timeout, 'timeout') : undefined);
  try {
    switch (command) {
      case 'generate':
        return await generate(client, v);
      case 'tokenize':
        if (rest.length !== 1) throw new UsageError('tokenize takes one TEXT argument');
        console.log((await client.tokenize(rest[0], v['add-special'])).join(' '));
        return 0;
      case 'detokenize':
        console.log(await client.detokenize(ids(rest.join(' ')), v['render-special']));
        return 0;
      case 'info':
        console.log(JSON.stringify(await client.modelInfo(), null, 2));
        return 0;
      case 'stats':
        console.log(JSON.stringify(await client.serverInfo(), null, 2));
        return 0;
      case 'health': {
        const status = await client.health(v.service, v.timeout !== undefined ? Number(v.timeout) : 5);
        console.log(status);
        return status === 'SERVING' ? 0 : 3;
      }
      default:
        throw new UsageError(`unknown command ${command}`);
    }
  } finally {
    client.close();
  }
}

if (require.main === module) {
  run(process.argv.slice(2)).then((code) => { process.exitCode = code; }, (err) => {
    if (err instanceof UsageError || err.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
      process.stderr.write(`leoam_example: ${err.message}\n${USAGE}\n`);
      process.exitCode = 64;
    } else if (err.code !== undefined && grpc.status[err.code] !== undefined) {
      process.stderr.write(`leoam_example: ${grpc.status[err.code]}: ${err.details}\n`);
      process.exitCode = 1;
    } else {
      process.stderr.write(`leoam_example: ${err.stack || err}\n`);
      process.exitCode = 1;
    }
  });
}

module.exports = { run };
