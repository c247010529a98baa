// Aggregate generation speed with 1, 4 and 8 concurrent streams: `bitnet serve -np N` through
// its HTTP API, against llama.cpp (node-llama-cpp, the npm reference) with N sequences in one
// context (`createContext({sequences: N})`, which batches them the same way), on the same file
// and threads. Greedy, end-of-generation ignored, each stream its own short prompt.
// usage: node serve_bench.mjs BITNET_CLI REFERENCE_DIR MODEL.gguf THREADS N_GEN [STREAMS...]
// Prints a table, then one JSON line per row.
import { spawn } from "node:child_process";
import path from "node:path";
import { pathToFileURL } from "node:url";

const [cli, refDir, modelPath, threadsS, nGenS, ...streamsS] = process.argv.slice(2);
const threads = Number(threadsS), nGen = Number(nGenS);
const streams = streamsS.length ? streamsS.map(Number) : [1, 4, 8];
const prompt = (i) => `Stream ${i}: write a long story about the number ${i * 7 + 3}.`;

async function ours(n) {
  const child = spawn(cli, ["serve", "-m", modelPath, "--port", "0", "-np", String(n), "-c", String(nGen + 64),
    "-t", String(threads)], { stdio: ["ignore", "ignore", "pipe"] });
  let log = "";
  const url = await new Promise((resolve, reject) => {
    child.stderr.on("data", (d) => {
      log += d;
      const m = log.match(/listening on (http:\/\/[0-9.]+:\d+)/);
      if (m) resolve(m[1]);
    });
    child.on("exit", () => reject(new Error(log)));
  });
  while ((await fetch(url + "/health").then((r) => r.status).catch(() => 0)) !== 200) {
    await new Promise((r) => setTimeout(r, 100));
  }
  const one = async (i, tokens) => {
    const t0 = performance.now();
    const r = await fetch(url + "/v1/completions", { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ prompt: prompt(i), max_tokens: tokens, temperature: 0, ignore_eos: true, stream: true,
                             stream_options: { include_usage: true } }) });
    const reader = r.body.getReader();
    let ttft = null, usage = null, buf = "";
    const dec = new TextDecoder();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += dec.decode(value, { stream: true });
      let at;
      while ((at = buf.indexOf("\n\n")) >= 0) {
        const ev = buf.slice(0, at);
        buf = buf.slice(at + 2);
        if (!ev.startsWith("data: {")) continue;
        const j = JSON.parse(ev.slice(6));
        if (ttft === null && j.choices.length) ttft = performance.now() - t0;
        if (j.usage) usage = j.usage;
      }
    }
    return { ttft, tokens: usage.completion_tokens };
  };
  await one(0, 8);  // warm-up
  const t0 = performance.now();
  const results = await Promise.all(Array.from({ length: n }, (_, i) => one(i, nGen)));
  const seconds = (performance.now() - t0) / 1000;
  child.kill("SIGTERM");
  await new Promise((r) => child.on("exit", r));
  const total = results.reduce((a, r) => a + r.tokens, 0);
  return { tok_s: total / seconds, ttft_ms: Math.max(...results.map((r) => r.ttft)) };
}

async function reference(n) {
  const entry = path.join(refDir, "node_modules", "node-llama-cpp", "dist", "index.js");
  const { getLlama } = await import(pathToFileURL(entry).href);
  const llama = await getLlama({ gpu: false, build: "never", logLevel: "error" });
  const model = await llama.loadModel({ modelPath });
  const context = await model.createContext({ contextSize: n * (nGen + 64), sequences: n, threads });
  const run = async (i, tokens, seq) => {
    const ids = model.tokenize(prompt(i));
    const t0 = performance.now();
    let ttft = null, count = 0;
    for await (const t of seq.evaluate(ids, { temperature: 0 })) {
      void t;
      if (ttft === null) ttft = performance.now() - t0;
      if (++count >= tokens) break;
    }
    return { ttft, tokens: count };
  };
  const seqs = Array.from({ length: n }, () => context.getSequence());
  await run(0, 8, seqs[0]);  // warm-up
  await seqs[0].clearHistory();
  const t0 = performance.now();
  const results = await Promise.all(seqs.map((s, i) => run(i, nGen, s)));
  const seconds = (performance.now() - t0) / 1000;
  await context.dispose();
  await model.dispose();
  await llama.dispose();
  const total = results.reduce((a, r) => a + r.tokens, 0);
  return { tok_s: total / seconds, ttft_ms: Math.max(...results.map((r) => r.ttft)) };
}

const rows = [];
for (const n of streams) {
  const a = await ours(n);
  const b = await reference(n);
  rows.push({ streams: n, bitnet_tok_s: a.tok_s, bitnet_ttft_ms: a.ttft_ms, llamacpp_tok_s: b.tok_s,
              llamacpp_ttft_ms: b.ttft_ms, ratio: a.tok_s / b.tok_s });
}
const single = rows.find((r) => r.streams === 1);
console.log(`model ${path.basename(modelPath)}, ${threads} threads, ${nGen} tokens per stream`);
console.log("streams  bitnet tok/s  (x single)  ttft ms   llama.cpp tok/s  ttft ms   ratio");
for (const r of rows) {
  const scale = single ? (r.bitnet_tok_s / single.bitnet_tok_s).toFixed(2) : "-";
  console.log(`${String(r.streams).padStart(7)}  ${r.bitnet_tok_s.toFixed(2).padStart(12)}  ${scale.padStart(10)}  ` +
              `${r.bitnet_ttft_ms.toFixed(0).padStart(7)}  ${r.llamacpp_tok_s.toFixed(2).padStart(15)}  ` +
              `${r.llamacpp_ttft_ms.toFixed(0).padStart(7)}  ${r.ratio.toFixed(2).padStart(6)}`);
}
for (const r of rows) console.log(JSON.stringify(r));
