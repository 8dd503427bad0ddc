'use strict';
// A small Node.js client of the LeoAM generation service (leoam.v1.Generation over gRPC).
// @grpc/proto-loader reads proto/leoam/v1/generation.proto at run time (no generated code); set
// LEOAM_PROTO_DIR to the directory holding leoam/v1/generation.proto when this file is moved.
//
//   const { LeoamClient } = require('./leoam_client');
//   const client = new LeoamClient('unix:///tmp/leoam/compute.sock');
//   const call = client.generate({ text: 'Once upon a time', max_tokens: 32 });
//   call.on('data', (r) => { if (r.chunk) process.stdout.write(r.chunk.text); });

const path = require('node:path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const PROTO_DIR = process.env.LEOAM_PROTO_DIR || path.join(__dirname, '..', '..', 'proto');

// keepCase: field names as in the .proto (max_tokens); longs as strings (uint64 seed, int64 counters);
// enums as names (FINISH_REASON_STOP); oneofs: `payload` names the field that is set.
const packageDefinition = protoLoader.loadSync('leoam/v1/generation.proto', {
  includeDirs: [PROTO_DIR],
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
});
const leoam = grpc.loadPackageDefinition(packageDefinition).leoam.v1;

// grpc.health.v1.HealthCheckResponse.ServingStatus.
const HEALTH_STATUS = { 0: 'UNKNOWN', 1: 'SERVING', 2: 'NOT_SERVING', 3: 'SERVICE_UNKNOWN' };

function channelTarget(server) {
  // A bare path is a unix socket; unix:/p, unix:///p and host:port pass through.
  return server.startsWith('/') ? `unix://${server}` : server;
}

// HealthCheckRequest{string service = 1} and HealthCheckResponse{ServingStatus status = 1} encoded by
// hand: two one-field messages do not warrant a second proto file.
function encodeHealthRequest(service) {
  const data = Buffer.from(service || '', 'utf8');
  if (data.length >= 128) throw new Error('health service name too long');
  return data.length ? Buffer.concat([Buffer.from([0x0a, data.length]), data]) : Buffer.alloc(0);
}
function decodeHealthResponse(buffer) {
  return buffer.length >= 2 && buffer[0] === 0x08 ? buffer[1] : 0;
}

function deadlineIn(seconds) {
  return seconds ? new Date(Date.now() + seconds * 1000) : undefined;
}

class LeoamClient {
  // timeoutSeconds: default deadline of unary calls (and of generate when given none).
  constructor(server, timeoutSeconds) {
    this.target = channelTarget(server);
    this.stub = new leoam.Generation(this.target, grpc.credentials.createInsecure());
    this.timeoutSeconds = timeoutSeconds;
  }

  close() {
    this.stub.close();
  }

  waitReady(timeoutSeconds) {
    return new Promise((resolve, reject) => {
      this.stub.waitForReady(deadlineIn(timeoutSeconds), (err) => (err ? reject(err) : resolve()));
    });
  }

  _unary(method, request) {
    return new Promise((resolve, reject) => {
      this.stub[method](request, { deadline: deadlineIn(this.timeoutSeconds) }, (err, response) =>
        err ? reject(err) : resolve(response));
    });
  }

  // grpc.health.v1 Check: resolves to 'SERVING', 'NOT_SERVING', 'UNKNOWN' or 'SERVICE_UNKNOWN'.
  health(service = '', timeoutSeconds = 5) {
    return new Promise((resolve, reject) => {
      this.stub.makeUnaryRequest('/grpc.health.v1.Health/Check', encodeHealthRequest, decodeHealthResponse,
        service, new grpc.Metadata(), { deadline: deadlineIn(timeoutSeconds) },
        (err, status) => (err ? reject(err) : resolve(HEALTH_STATUS[status] || String(status))));
    });
  }

  // Starts a streaming generation; returns the call (an EventEmitter of GenerateResponse: 'data',
  // 'error' with a gRPC status, 'end'; .cancel() stops it). `request` is a GenerateRequest object
  // with the .proto's field names, e.g. { text, max_tokens, sampling: { temperature, seed, has_seed } }.
  generate(request, timeoutSeconds) {
    return this.stub.Generate(request, { deadline: deadlineIn(timeoutSeconds || this.timeoutSeconds) });
  }

  // Runs a generation to the end: resolves to { tokenIds, text, final, progress, chunks, requestId }.
  // onChunk(chunk), when given, sees each TokenChunk as it arrives.
  generateAll(request, { timeoutSeconds, onChunk } = {}) {
    return new Promise((resolve, reject) => {
      const result = { tokenIds: [], text: '', final: null, progress: [], chunks: 0, requestId: '' };
      const call = this.generate(request, timeoutSeconds);
      call.on('data', (response) => {
        result.requestId = response.request_id || result.requestId;
        if (response.payload === 'chunk') {
          result.chunks += 1;
          result.tokenIds.push(...response.chunk.token_ids);
          result.text += response.chunk.text;
          if (onChunk) onChunk(response.chunk);
        } else if (response.payload === 'progress') {
          result.progress.push(response.progress);
        } else if (response.payload === 'final') {
          result.final = response.final;
        }
      });
      call.on('error', reject);
      call.on('end', () => resolve(result));
    });
  }

  abort(requestId) {
    return this._unary('Abort', { request_id: requestId });
  }

  async tokenize(text, addSpecial = false) {
    return (await this._unary('Tokenize', { text, add_special: addSpecial })).token_ids;
  }

  async detokenize(tokenIds, renderSpecial = false) {
    return (await this._unary('Detokenize', { token_ids: tokenIds, render_special: renderSpecial })).text;
  }

  modelInfo() {
    return this._unary('GetModelInfo', {});
  }

  serverInfo() {
    return this._unary('GetServerInfo', {});
  }
}

function finishReasonName(reason) {
  return String(reason).replace('FINISH_REASON_', '').toLowerCase();
}

module.exports = { LeoamClient, channelTarget, finishReasonName, grpc, status: grpc.status };
