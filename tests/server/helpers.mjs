// Shared by the server tests: a small synthetic model with a real vocabulary, and `bitnet
// serve` started on a free loopback port.
import { spawn, execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

export const cli = process.env.BITNET_CLI;
export const vocabDir = process.env.BITNET_VOCAB_DIR;
if (!cli || !vocabDir) throw new Error("BITNET_CLI and BITNET_VOCAB_DIR must be set");

export const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "bitnet-serve-"));
process.on("exit", () => fs.rmSync(tmp, { recursive: true, force: true }));

// A 2-layer BitNet b1.58 model (ReLU², TQ2_0) with Llama-3's vocabulary (end-of-turn tokens
// included). Random weights: the text is nonsense, the mechanics are real.
export function makeModel(name = "model.gguf", extra = []) {
  const out = path.join(tmp, name);
  if (!fs.existsSync(out)) {
    execFileSync(cli, ["synth", "-o", out, "--arch", "bitnet-b1.58",
      "--vocab", path.join(vocabDir, "ggml-vocab-llama-bpe.gguf"),
      "--n-embd", "256", "--n-layer", "2", "--n-ff", "512", "--n-ctx", "4096",
      "--ternary", "--type", "tq2_0", ...extra], { stdio: "ignore" });
  }
  return out;
}

// Starts the server; resolves once /health says 200. `server.stderr` collects its log.
export async function startServer(args, { waitReady = true, binary = cli, env = {} } = {}) {
  const child = spawn(binary, ["serve", "--port", "0", ...args],
                      { stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, ...env } });
  const server = { child, stderr: "", url: null, exited: null };
  child.on("exit", (code, signal) => { server.exited = { code, signal }; });
  const listening = new Promise((resolve, reject) => {
    child.stderr.on("data", (d) => {
      server.stderr += d.toString();
      const m = server.stderr.match(/listening on (http:\/\/[0-9.]+:\d+)/);
      if (m && !server.url) { server.url = m[1]; resolve(); }
    });
    child.on("exit", () => reject(new Error("the server exited: " + server.stderr)));
  });
  await listening;
  if (waitReady) {
    const deadline = Date.now() + 30000;
    for (;;) {
      const r = await fetch(server.url + "/health").catch(() => null);
      if (r && r.status === 200) break;
      if (Date.now() > deadline) throw new Error("the server never became ready: " + server.stderr);
      await sleep(50);
    }
  }
  server.stop = async (signal = "SIGTERM") => {
    if (server.exited) return server.exited;
    const done = new Promise((resolve) => child.on("exit", (code, sig) => resolve({ code, signal: sig })));
    child.kill(signal);
    return done;
  };
  return server;
}

// Time limits are multiplied by this (the sanitizer build sets 4).
export const slack = Number(process.env.BITNET_TIME_SLACK || 1);
// Set for the sanitizer build's server (several times slower): tests that only repeat the same
// paths with more data run fewer rounds there; the optimized build runs them in full.
export const sanitized = process.env.BITNET_SANITIZED === "1";

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export async function json(url, body, headers = {}) {
  const r = await fetch(url, {
    method: body === undefined ? "GET" : "POST",
    headers: { "Content-Type": "application/json", ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  let parsed = null;
  try { parsed = JSON.parse(text); } catch { /* not JSON */ }
  return { status: r.status, headers: r.headers, body: parsed, text };
}

// Polls /slots until no slot is busy; returns the milliseconds it took (or throws).
export async function slotsFreeWithin(url, limit, headers = {}) {
  const ms = limit * slack;
  const t0 = Date.now();
  for (;;) {
    const r = await json(url + "/slots", undefined, headers);
    if (r.body.every((s) => !s.is_processing)) return Date.now() - t0;
    if (Date.now() - t0 > ms) throw new Error("slots still busy: " + r.text);
    await sleep(20);
  }
}

export async function metrics(url, headers = {}) {
  const r = await fetch(url + "/metrics", { headers });
  const out = {};
  for (const line of (await r.text()).split("\n")) {
    const m = line.match(/^bitnet_(\w+) ([0-9.e+-]+)$/);
    if (m) out[m[1]] = Number(m[2]);
  }
  return out;
}

export function rssKiB(pid) {
  const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
  return Number(status.match(/VmRSS:\s+(\d+)/)[1]);
}
