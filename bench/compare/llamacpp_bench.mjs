// Prefill (pp) and decode (tg) tokens/s of llama.cpp on the CPU, through the prebuilt binary that
// ships in the npm package @node-llama-cpp/linux-x64 (node-llama-cpp 3.22.1). Prints markdown rows
// with the same columns as leoam-bench-runtime so the two can be put side by side.
//
// Mirrors llama-bench: pp = P random (seeded, non-special) tokens evaluated on an empty context in
// batches of --ubatch tokens (llama-bench default n_ubatch 512), logits for the last token only;
// tg = D single-token llama_decode calls after the prompt with fixed random tokens (no sampling).
// Best of --reps. It drives node-llama-cpp's native AddonContext directly (initBatch / addToBatch /
// decodeBatch, i.e. llama_batch + llama_decode + llama_synchronize on a worker thread), skipping
// the JS batching scheduler. The reported tok/s come from llama.cpp's own llama_perf_context
// counters (performanceTracking), read before and after each phase; the JS wall-clock time of the
// same phase is printed to stderr so the JS/N-API overhead is visible.
//
//   node llamacpp_bench.mjs --model FILE [--label NAME] [--prompt-tokens 512,4096]
//        [--decode-tokens 128] [--threads 2] [--reps 3] [--ubatch 512] [--flash-attn off|on|auto]
//        [--header true|false] [--timing perf|wall] [--load-only]
//
// Nothing is downloaded or built: getLlama runs with build "never", skipDownload and gpu false; if
// the prebuilt binary cannot be used it fails instead.
import {spawnSync} from "node:child_process";
import process from "node:process";

// node-llama-cpp runs each llama_decode on a libuv pool thread (4 by default, taken in turn). With
// the default pool, 2-thread decode in this prebuilt ggml collapses on an idle 2-core machine
// (stories260K tg128: 69 vs 2289 tok/s with one pool thread); we did not pin down why (ggml's
// per-calling-thread worker state is the likely cause). llama-bench calls llama_decode from one
// thread, so use one pool thread. The size is read when the pool starts: re-run with it set.
if (process.env.UV_THREADPOOL_SIZE !== "1") {
  const r = spawnSync(process.execPath, process.argv.slice(1),
                      {stdio: "inherit", env: {...process.env, UV_THREADPOOL_SIZE: "1"}});
  process.exit(r.status ?? 1);
}
const {getLlama, LlamaLogLevel} = await import("node-llama-cpp");

function parseArgs(argv) {
  const opts = {
    model: "", label: "", promptTokens: "512", decodeTokens: 128, threads: 2, reps: 3, ubatch: 512,
    flashAttn: "off", header: true, timing: "perf", seed: 1234, loadOnly: false,
  };
  const names = {
    "--model": "model", "--label": "label", "--prompt-tokens": "promptTokens",
    "--decode-tokens": "decodeTokens", "--threads": "threads", "--reps": "reps", "--ubatch": "ubatch",
    "--flash-attn": "flashAttn", "--header": "header", "--timing": "timing", "--seed": "seed", "--load-only": "loadOnly",
  };
  for (let i = 0; i < argv.length; i++) {
    let [flag, value] = argv[i].split("=", 2);
    if (!(flag in names)) throw new Error(`unknown flag ${flag}`);
    if (value === undefined) value = names[flag] === "loadOnly" ? "true" : argv[++i];
    const key = names[flag];
    if (typeof opts[key] === "number") opts[key] = Number(value);
    else if (typeof opts[key] === "boolean") opts[key] = value === "true" || value === "1";
    else opts[key] = value;
  }
  if (!opts.model) throw new Error("--model is required");
  opts.lengths = opts.promptTokens.split(",").filter(Boolean).map(Number);
  return opts;
}

// mulberry32: small seeded PRNG so both runs of a row see the same prompt.
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// llama_perf_context_print lines arrive through the log callback; AddonContext.printTimings also
// resets the counters, so each read gives the time spent since the previous read.
const perfLines = [];
function onLog(level, message) {
  if (/eval time =|load time =|total time =/.test(message)) perfLines.push(message);
  else if (level === LlamaLogLevel.error || level === LlamaLogLevel.fatal) process.stderr.write(message + "\n");
}

async function readPerf(ctx) {
  perfLines.length = 0;
  ctx._ctx.printTimings();
  for (let i = 0; i < 50 && !perfLines.some((l) => /total time/.test(l)); i++)
    await new Promise((r) => setTimeout(r, 2));
  const text = perfLines.join("\n");
  const grab = (re) => {
    const m = text.match(re);
    return m ? {ms: Number(m[1]), n: Number(m[2])} : {ms: NaN, n: 0};
  };
  return {
    prompt: grab(/prompt eval time =\s*([\d.]+) ms \/\s*(\d+) tokens/),
    eval: grab(/\beval time =\s*([\d.]+) ms \/\s*(\d+) runs/m),
  };
}

async function decode(addon, pos, tokens, wantLogits) {
  addon.initBatch(tokens.length);
  addon.addToBatch(0, pos, tokens, wantLogits ? Uint32Array.of(tokens.length - 1) : new Uint32Array(0));
  await addon.decodeBatch();
}

async function prefill(addon, prompt, ubatch) {
  for (let i = 0; i < prompt.length; i += ubatch) {
    const chunk = prompt.subarray(i, Math.min(prompt.length, i + ubatch));
    await decode(addon, i, chunk, i + ubatch >= prompt.length);
  }
}

async function generate(addon, pos, tokens) {
  for (let i = 0; i < tokens.length; i++) await decode(addon, pos + i, tokens.subarray(i, i + 1), true);
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const llama = await getLlama({
    gpu: false, build: "never", usePrebuiltBinaries: true, skipDownload: true, progressLogs: false,
    maxThreads: o.threads, logLevel: LlamaLogLevel.info, logger: onLog,
  });
  const model = await llama.loadModel({modelPath: o.model, gpuLayers: 0});
  const meta = model.fileInfo.metadata;
  const vocab = meta?.tokenizer?.ggml?.tokens?.length ?? meta?.[meta?.general?.architecture]?.vocab_size;
  if (!vocab) throw new Error("cannot determine the vocabulary size");
  const label = o.label || o.model.split("/").pop();
  if (o.loadOnly) {
    const g = meta?.general ?? {};
    console.log(`llama.cpp loaded ${o.model}: arch=${g.architecture} vocab=${vocab} ` +
                `size=${(model.size / 1e6).toFixed(1)} MB params=${(model._model.getTotalParameters() / 1e6).toFixed(2)}M ` +
                `trainContext=${model.trainContextSize}`);
    await model.dispose();
    await llama.dispose();
    return;
  }
  if (o.header) {
    console.log("| model | weights | threads | context | prefill tok/s | decode tok/s | decode ms/token |");
    console.log("|---|---|---|---|---|---|---|");
  }
  const next = rng(o.seed);
  const randomTokens = (n) => {
    const out = new Uint32Array(n);
    for (let i = 0; i < n; ) {
      const t = 3 + Math.floor(next() * (vocab - 3));
      if (!model.isSpecialToken(t)) out[i++] = t;
    }
    return out;
  };
  for (const len of o.lengths) {
    const prompt = randomTokens(len);
    const gen = randomTokens(o.decodeTokens);
    const ctx = await model.createContext({
      contextSize: len + o.decodeTokens, batchSize: Math.min(o.ubatch, len), sequences: 1, threads: o.threads,
      flashAttention: o.flashAttn === "auto" ? "auto" : o.flashAttn === "on", performanceTracking: true,
      ignoreMemorySafetyChecks: true,
    });
    const addon = ctx._ctx;  // the native llama_context wrapper
    const clear = () => addon.removeTokenCellsFromSequence(0, -1, -1);
    // Warm-up, as llama-bench does: one batch and a few single-token decodes.
    await prefill(addon, prompt.subarray(0, Math.min(len, o.ubatch)), o.ubatch);
    await generate(addon, Math.min(len, o.ubatch), gen.subarray(0, Math.min(4, gen.length)));
    clear();
    const best = {ppPerf: Infinity, ppWall: Infinity, tgPerf: Infinity, tgWall: Infinity};
    for (let rep = 0; rep < o.reps; rep++) {
      await readPerf(ctx);
      let t0 = process.hrtime.bigint();
      await prefill(addon, prompt, o.ubatch);
      const ppWall = Number(process.hrtime.bigint() - t0) / 1e6;
      const ppPerf = await readPerf(ctx);
      t0 = process.hrtime.bigint();
      await generate(addon, len, gen);
      const tgWall = Number(process.hrtime.bigint() - t0) / 1e6;
      const tgPerf = await readPerf(ctx);
      clear();
      if (ppPerf.prompt.n !== len || tgPerf.eval.n !== o.decodeTokens)
        process.stderr.write(`warning: perf counted ${ppPerf.prompt.n} prompt tokens / ${tgPerf.eval.n} evals\n`);
      best.ppPerf = Math.min(best.ppPerf, ppPerf.prompt.ms);
      best.ppWall = Math.min(best.ppWall, ppWall);
      best.tgPerf = Math.min(best.tgPerf, tgPerf.eval.ms);
      best.tgWall = Math.min(best.tgWall, tgWall);
    }
    const usePerf = o.timing === "perf" && Number.isFinite(best.ppPerf) && Number.isFinite(best.tgPerf);
    const ppMs = usePerf ? best.ppPerf : best.ppWall;
    const tgMs = usePerf ? best.tgPerf : best.tgWall;
    console.log(`| ${label} | ${(model.size / 1e6).toFixed(1)} MB | ${addon.getThreads()} | ${len} | ` +
                `${(len / ppMs * 1e3).toFixed(1)} | ${(o.decodeTokens / tgMs * 1e3).toFixed(1)} | ` +
                `${(tgMs / o.decodeTokens).toFixed(3)} |`);
    process.stderr.write(
        `[llama.cpp ${label} t=${addon.getThreads()} ctx=${len}] best pp: perf ${best.ppPerf.toFixed(2)} ms, ` +
        `JS wall ${best.ppWall.toFixed(2)} ms; best tg${o.decodeTokens}: perf ${best.tgPerf.toFixed(2)} ms, ` +
        `JS wall ${best.tgWall.toFixed(2)} ms (JS/N-API overhead ` +
        `${((best.tgWall - best.tgPerf) / o.decodeTokens * 1e3).toFixed(1)} us/token)\n`);
    await ctx.dispose();
  }
  await model.dispose();
  await llama.dispose();
}

main().catch((e) => {
  process.stderr.write(`llamacpp_bench: ${e?.stack ?? e}\n`);
  process.exit(1);
});
