// `bitnet serve` through the official OpenAI client (openai@4.95.0, installed by
// scripts/setup.sh) and raw HTTP: protocol shapes, streaming, stop strings, seeds, logprobs,
// every error status with the client's own error types, cancellation, batching invariance,
// the prompt cache and the metrics that prove batching happens.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { makeModel, startServer, json, sleep, slack, sanitized, slotsFreeWithin, metrics } from "./helpers.mjs";

const tools = process.env.BITNET_NODE_TOOLS;
const { default: OpenAI } = await import(path.join(tools, "node_modules/openai/index.mjs"));

let server, client, model;

before(async () => {
  model = makeModel();
  server = await startServer(["-m", model, "-np", "8", "-c", "1024", "-t", "2", "--metrics",
    "--max-queue", "4", "--alias", "tiny-bitnet", "--timeout", "5"]);
  client = new OpenAI({ baseURL: server.url + "/v1", apiKey: "unused", maxRetries: 0 });
});
after(async () => {
  const exit = await server.stop();
  assert.deepEqual(exit, { code: 0, signal: null }, server.stderr);
});

const hello = [{ role: "user", content: "Hello, who are you?" }];

test("chat completion: shape, usage, timings", async () => {
  const r = await client.chat.completions.create({ model: "tiny-bitnet", messages: hello, max_tokens: 6, seed: 3 });
  assert.equal(r.object, "chat.completion");
  assert.match(r.id, /^chatcmpl-/);
  assert.equal(r.model, "tiny-bitnet");
  assert.equal(r.choices.length, 1);
  assert.equal(r.choices[0].message.role, "assistant");
  assert.equal(typeof r.choices[0].message.content, "string");
  assert.ok(["length", "stop"].includes(r.choices[0].finish_reason));
  assert.ok(r.usage.prompt_tokens > 5);
  assert.ok(r.usage.completion_tokens >= 1 && r.usage.completion_tokens <= 6);
  assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);
  assert.equal(typeof r.usage.prompt_tokens_details.cached_tokens, "number");
  assert.ok(r.timings.predicted_n >= 1);
});

test("chat stream: role chunk, deltas, finish chunk, usage chunk only when asked, [DONE]", async () => {
  const stream = await client.chat.completions.create({
    messages: hello, max_tokens: 5, seed: 3, stream: true, stream_options: { include_usage: true } });
  const chunks = [];
  for await (const c of stream) chunks.push(c);
  assert.deepEqual(chunks[0].choices[0].delta, { role: "assistant", content: "" });
  const finals = chunks.filter((c) => c.choices.length && c.choices[0].finish_reason);
  assert.equal(finals.length, 1);
  assert.deepEqual(finals[0].choices[0].delta, {});
  const last = chunks.at(-1);
  assert.deepEqual(last.choices, []);
  assert.equal(last.usage.completion_tokens, 5);
  const text = chunks.map((c) => c.choices[0]?.delta?.content ?? "").join("");
  // The same request unstreamed gives the same text (same seed).
  const whole = await client.chat.completions.create({ messages: hello, max_tokens: 5, seed: 3 });
  assert.equal(text, whole.choices[0].message.content);

  // Raw SSE: every event is "data: ...\n\n", the last is [DONE]; no usage without include_usage.
  const raw = await fetch(server.url + "/v1/chat/completions", { method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ messages: hello, max_tokens: 3, stream: true }) });
  assert.equal(raw.status, 200);
  assert.match(raw.headers.get("content-type"), /text\/event-stream/);
  const events = (await raw.text()).split("\n\n").filter((e) => e.length);
  assert.equal(events.at(-1), "data: [DONE]");
  for (const e of events.slice(0, -1)) {
    if (e.startsWith(":")) continue;
    const j = JSON.parse(e.slice(6));
    assert.equal(j.object, "chat.completion.chunk");
    assert.equal(j.usage, undefined);
  }
});

test("completions: string and token-id prompts, streamed and not", async () => {
  const r = await client.completions.create({ model: "x", prompt: "Once upon a time", max_tokens: 4, temperature: 0 });
  assert.equal(r.object, "text_completion");
  assert.equal(typeof r.choices[0].text, "string");
  const ids = (await json(server.url + "/tokenize", { content: "Once upon a time", add_special: true })).body.tokens;
  const r2 = await client.completions.create({ prompt: ids, max_tokens: 4, temperature: 0 });
  assert.equal(r2.choices[0].text, r.choices[0].text);
  const stream = await client.completions.create({ prompt: "Once upon a time", max_tokens: 4, temperature: 0, stream: true });
  let text = "";
  for await (const c of stream) text += c.choices[0]?.text ?? "";
  assert.equal(text, r.choices[0].text);
});

test("seeds: the same seed repeats, another seed differs", async () => {
  const ask = (seed) => client.chat.completions.create({ messages: hello, max_tokens: 12, temperature: 1.5, top_k: 0, top_p: 1, min_p: 0, seed });
  const a = await ask(11), b = await ask(11), c = await ask(12);
  assert.equal(a.choices[0].message.content, b.choices[0].message.content);
  assert.notEqual(a.choices[0].message.content, c.choices[0].message.content);
});

test("stop strings end the text and never appear in it, streamed or not", async () => {
  const base = await client.completions.create({ prompt: "The weather today", max_tokens: 16, temperature: 0 });
  const full = base.choices[0].text;
  assert.ok(full.length > 8, full);
  const stop = full.slice(Math.floor(full.length / 2), Math.floor(full.length / 2) + 3);
  const expected = full.slice(0, full.indexOf(stop));
  const r = await client.completions.create({ prompt: "The weather today", max_tokens: 16, temperature: 0, stop: [stop, "\u0000never"] });
  assert.equal(r.choices[0].text, expected);
  assert.equal(r.choices[0].finish_reason, "stop");
  const s = await client.completions.create({ prompt: "The weather today", max_tokens: 16, temperature: 0, stop, stream: true });
  let text = "";
  let reason = null;
  for await (const c of s) { text += c.choices[0]?.text ?? ""; reason = c.choices[0]?.finish_reason ?? reason; }
  assert.equal(text, expected);
  assert.equal(reason, "stop");
});

test("logprobs: chat and completions shapes", async () => {
  const r = await client.chat.completions.create({ messages: hello, max_tokens: 3, temperature: 0, logprobs: true, top_logprobs: 3 });
  const content = r.choices[0].logprobs.content;
  assert.equal(content.length, 3);
  for (const t of content) {
    assert.equal(typeof t.token, "string");
    assert.ok(t.logprob <= 0);
    assert.ok(Array.isArray(t.bytes));
    assert.equal(t.top_logprobs.length, 3);
    // Greedy: the chosen token is the most likely one.
    assert.equal(t.top_logprobs[0].logprob, t.logprob);
  }
  const c = await client.completions.create({ prompt: "Hello", max_tokens: 3, temperature: 0, logprobs: 2 });
  const lp = c.choices[0].logprobs;
  assert.equal(lp.tokens.length, 3);
  assert.equal(lp.token_logprobs.length, 3);
  assert.equal(lp.top_logprobs.length, 3);
  assert.equal(Object.keys(lp.top_logprobs[0]).length, 2);
  assert.equal(lp.text_offset[0], 0);
});

test("logit_bias: -100 bans a token, +100 forces it", async () => {
  const forced = await client.completions.create({ prompt: "Hello", max_tokens: 3, temperature: 0, logit_bias: { "1917": 100 } });
  assert.equal(forced.choices[0].text, " world world world");
  const base = await client.completions.create({ prompt: "Hello", max_tokens: 1, temperature: 0, logprobs: 0 });
  const first = (await json(server.url + "/tokenize", { content: base.choices[0].text })).body.tokens[0];
  const banned = await client.completions.create({ prompt: "Hello", max_tokens: 1, temperature: 0, logit_bias: { [first]: -100 } });
  assert.notEqual(banned.choices[0].text, base.choices[0].text);
  // <|eot_id|> forced: the answer ends at once, empty; with ignore_eos it runs to max_tokens.
  const eot = await client.completions.create({ prompt: "Hello", max_tokens: 5, logit_bias: { 128009: 100 } });
  assert.equal(eot.choices[0].finish_reason, "stop");
  assert.equal(eot.choices[0].text, "");
  assert.equal(eot.usage.completion_tokens, 1);
  const on = await client.completions.create({ prompt: "Hello", max_tokens: 5, logit_bias: { 128009: 100 }, ignore_eos: true });
  assert.equal(on.choices[0].finish_reason, "length");
  assert.equal(on.usage.completion_tokens, 5);
});

test("errors: 400 naming the field, 404, 413, 503 with the client's error types", async () => {
  const bad = async (body, param, type = "invalid_request_error") => {
    await assert.rejects(client.chat.completions.create({ messages: hello, ...body }), (e) => {
      assert.ok(e instanceof OpenAI.BadRequestError, String(e));
      assert.equal(e.status, 400);
      assert.equal(e.error.type, type);
      assert.equal(e.error.param, param);
      return true;
    });
  };
  await bad({ n: 2 }, "n", "not_supported_error");
  await bad({ tools: [{ type: "function", function: { name: "f", parameters: {} } }] }, "tools", "not_supported_error");
  await bad({ tool_choice: "auto" }, "tool_choice", "not_supported_error");
  await bad({ response_format: { type: "json_object" } }, "response_format", "not_supported_error");
  await bad({ temperature: 7 }, "temperature");
  await bad({ max_tokens: -3 }, "max_tokens");
  await bad({ top_logprobs: 2 }, "top_logprobs");
  await bad({ logit_bias: { "9999999": 1 } }, "logit_bias");
  await bad({ stop: [""] }, "stop");
  await bad({ messages: [{ role: "user" }] }, "messages");
  // Longer than a slot's context: 400 with the counts, never truncated.
  await assert.rejects(client.completions.create({ prompt: "word ".repeat(1500) }), (e) => {
    assert.ok(e instanceof OpenAI.BadRequestError);
    assert.equal(e.code, "context_length_exceeded");
    assert.match(e.message, /the prompt is 150\d tokens, more than the 1024 tokens of context/);
    return true;
  });
  const notJson = await fetch(server.url + "/v1/chat/completions", { method: "POST", body: "{oops" });
  assert.equal(notJson.status, 400);
  assert.equal((await notJson.json()).error.type, "invalid_request_error");
  await assert.rejects(client.models.retrieve("tiny-bitnet"), (e) => e instanceof OpenAI.NotFoundError);
  // curl -d sends forms, which cpp-httplib caps at 8 KiB: the error says what to do.
  const form = await fetch(server.url + "/v1/completions", { method: "POST", body: "x".repeat(9000),
    headers: { "Content-Type": "application/x-www-form-urlencoded" } });
  assert.equal(form.status, 413);
  assert.match((await form.json()).error.message, /Content-Type: application\/json/);
  const big = await fetch(server.url + "/v1/completions", { method: "POST", body: "x".repeat(17 << 20),
    headers: { "Content-Type": "application/json" } });
  assert.equal(big.status, 413);
  assert.match((await big.json()).error.message, /larger than/);
  const models = await client.models.list();
  assert.equal(models.data[0].id, "tiny-bitnet");
});

// Long requests must not end early: a random model may well sample an end-of-turn token.
const endless = { max_tokens: 100000, logit_bias: { 128001: -100, 128008: -100, 128009: -100 } };

test("the queue is bounded: beyond slots + --max-queue, 503 with Retry-After at once", async () => {
  const s = await startServer(["-m", model, "-np", "2", "-c", "4096", "-t", "2", "--metrics",
    "--max-queue", "2"]);
  const ctrl = new AbortController();
  try {
    // 2 slots + 2 queued.
    const held = [];
    for (let i = 0; i < 4; i++) {
      held.push(fetch(s.url + "/v1/chat/completions", { method: "POST", signal: ctrl.signal,
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ messages: hello, stream: true, seed: i, ...endless }) }).catch(() => null));
    }
    await Promise.all(held.slice(0, 2));
    const deadline = Date.now() + 5000;
    while ((await metrics(s.url)).requests_deferred < 2 && Date.now() < deadline) await sleep(20);
    const c = new OpenAI({ baseURL: s.url + "/v1", apiKey: "x", maxRetries: 0 });
    const t0 = Date.now();
    await assert.rejects(c.chat.completions.create({ messages: hello, max_tokens: 2 }), (e) => {
      assert.equal(e.status, 503);
      assert.equal(e.error.type, "unavailable_error");
      assert.equal(e.headers["retry-after"], "1");
      return true;
    });
    assert.ok(Date.now() - t0 < 1000 * slack);
    assert.equal((await metrics(s.url)).requests_rejected_total, 1);
  } finally {
    ctrl.abort();
    await slotsFreeWithin(s.url, 2000);
    assert.deepEqual(await s.stop(), { code: 0, signal: null });
  }
});

test("cancellation: an aborted stream or unstreamed request frees its slot within a second", async () => {
  // Streamed, aborted after a few chunks.
  const ctrl = new AbortController();
  const stream = await client.chat.completions.create(
    { messages: hello, stream: true, ...endless }, { signal: ctrl.signal });
  let n = 0;
  try {
    for await (const _ of stream) { if (++n === 5) ctrl.abort(); }
  } catch (e) { assert.ok(e.name === "APIUserAbortError" || e.name === "AbortError", String(e)); }
  await slotsFreeWithin(server.url, 1000);
  // Not streamed: the client gives up while the answer is being generated.
  const ctrl2 = new AbortController();
  const p = client.chat.completions.create({ messages: hello, ...endless }, { signal: ctrl2.signal });
  await sleep(300);
  const busy = (await json(server.url + "/slots")).body.filter((s) => s.is_processing).length;
  assert.equal(busy, 1);
  ctrl2.abort();
  await assert.rejects(p);
  await slotsFreeWithin(server.url, 1000);
  const m = await metrics(server.url);
  assert.ok(m.requests_cancelled_total >= 2);
});

test("cancellation during prompt processing: the slot is free within a second", async () => {
  // Small batches: a 3,600-token prompt takes dozens of passes, each a point to notice.
  const s = await startServer(["-m", model, "-np", "1", "-c", "4096", "-b", "48", "-t", "2", "--metrics"]);
  try {
    for (const stream of [true, false]) {
      const ctrl = new AbortController();
      const p = fetch(s.url + "/v1/completions", { method: "POST", signal: ctrl.signal,
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ prompt: "lorem ipsum dolor ".repeat(1200), max_tokens: 4, stream }) })
        .then((r) => r.text()).catch((e) => e.name);
      let seen = false;
      const deadline = Date.now() + 10000;
      while (!seen && Date.now() < deadline) {
        seen = (await json(s.url + "/slots")).body.some((x) => x.processing_prompt);
        if (!seen) await sleep(5);
      }
      assert.ok(seen, "the prompt was never seen in processing");
      ctrl.abort();
      assert.equal(await p, "AbortError");
      await slotsFreeWithin(s.url, 1000);
    }
    const m = await metrics(s.url);
    assert.equal(m.requests_cancelled_total, 2);
    assert.equal(m.tokens_predicted_total, 0, "cancelled before the first token");
  } finally {
    assert.deepEqual(await s.stop(), { code: 0, signal: null });
  }
});

test("batching invariance: 8 concurrent greedy requests give exactly what each gives alone", async () => {
  // (4 shorter ones under the sanitizers: the same batched paths, a quarter of the work.)
  const n = sanitized ? 4 : 8;
  const prompts = Array.from({ length: n }, (_, i) => `Request number ${i}: tell me about ${"abcdefgh"[i]}`);
  // Long enough that they overlap even on a busy machine (the tokens-per-pass check needs it).
  const ask = (prompt) => client.completions.create({ prompt, max_tokens: sanitized ? 24 : 48, temperature: 0, ignore_eos: true })
    .then((r) => r.choices[0].text);
  const alone = [];
  for (const p of prompts) alone.push(await ask(p));
  const before = await metrics(server.url);
  const together = await Promise.all(prompts.map(ask));
  const afterM = await metrics(server.url);
  assert.deepEqual(together, alone);
  // More than one generated token per decode pass on average: the streams were batched.
  const perPass = (afterM.decode_tokens_total - before.decode_tokens_total) /
                  (afterM.decode_passes_total - before.decode_passes_total);
  // (Under the sanitizers requests arrive further apart and overlap less.)
  assert.ok(perPass > (slack > 1 ? 1.2 : 1.5), `tokens per decode pass: ${perPass}`);
});

test("prompt cache: the second turn of a conversation reuses the first", async () => {
  const turn1 = [{ role: "system", content: "You are terse." }, { role: "user", content: "Name a colour." }];
  const r1 = await client.chat.completions.create({ messages: turn1, max_tokens: 4, temperature: 0 });
  const turn2 = [...turn1, { role: "assistant", content: r1.choices[0].message.content },
                 { role: "user", content: "Another one." }];
  const before = await metrics(server.url);
  const r2 = await client.chat.completions.create({ messages: turn2, max_tokens: 4, temperature: 0 });
  const afterM = await metrics(server.url);
  assert.ok(r2.usage.prompt_tokens_details.cached_tokens >= r1.usage.prompt_tokens - 1,
            JSON.stringify(r2.usage));
  assert.equal(afterM.prompt_tokens_cached_total - before.prompt_tokens_cached_total,
               r2.usage.prompt_tokens_details.cached_tokens);
});

test("streams keep flowing while a long prompt is processed", async () => {
  const stamps = [];
  const ctrl = new AbortController();
  const streams = [0, 1].map(async (i) => {
    const s = await client.completions.create({ prompt: `Stream ${i}`, stream: true, seed: i, ...endless },
                                              { signal: ctrl.signal });
    try { for await (const _ of s) stamps.push(Date.now()); } catch { /* aborted */ }
  });
  while (stamps.length < 10) await sleep(10);
  const t0 = Date.now();
  const long = await client.completions.create({ prompt: "lorem ipsum dolor ".repeat(300), max_tokens: 1, temperature: 0 });
  const t1 = Date.now();
  ctrl.abort();
  await Promise.all(streams);
  assert.ok(long.usage.prompt_tokens > 800, JSON.stringify(long.usage));
  const during = stamps.filter((t) => t > t0 && t < t1).length;
  assert.ok(during >= 4, `tokens streamed while a ${long.usage.prompt_tokens}-token prompt took ${t1 - t0} ms: ${during}`);
  await slotsFreeWithin(server.url, 1000);
});

test("silent clients: 40 idle or half-sent connections never starve /health", async () => {
  const sockets = [];
  const [host, port] = server.url.replace("http://", "").split(":");
  for (let i = 0; i < 40; i++) {
    sockets.push(await new Promise((resolve, reject) => {
      const s = net.connect(Number(port), host, () => resolve(s));
      s.on("error", reject);
    }));
  }
  // Half of them send half a request and then nothing.
  for (const s of sockets.slice(0, 20)) s.write("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n");
  const t0 = Date.now();
  const h = await fetch(server.url + "/health");
  assert.equal(h.status, 200);
  assert.ok(Date.now() - t0 < 1000 * slack);
  // The silent ones are dropped after --timeout (5 s) without holding anything.
  for (const s of sockets) s.destroy();
});

test("tokenize, detokenize, apply-template, props, slots, health", async () => {
  const t = await json(server.url + "/tokenize", { content: "Hello world", with_pieces: true });
  assert.deepEqual(t.body.tokens, [{ id: 9906, piece: "Hello" }, { id: 1917, piece: " world" }]);
  const d = await json(server.url + "/detokenize", { tokens: [9906, 1917] });
  assert.equal(d.body.content, "Hello world");
  const bad = await json(server.url + "/detokenize", { tokens: [999999999] });
  assert.equal(bad.status, 400);
  const a = await json(server.url + "/apply-template", { messages: [{ role: "user", content: "Hi" }] });
  assert.equal(a.body.prompt, "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
  const p = await json(server.url + "/props");
  assert.equal(p.body.total_slots, 8);
  assert.equal(p.body.n_ctx_per_slot, 1024);
  assert.ok(p.body.kv_cache_bytes > 0);
  const v1 = await json(server.url + "/v1/props");
  assert.equal(v1.status, 200);
  const s = await json(server.url + "/slots");
  assert.equal(s.body.length, 8);
  assert.deepEqual((await json(server.url + "/health")).body, { status: "ok" });
});

test("API key, CORS and the chat page's exemptions", async () => {
  const keyed = await startServer(["-m", model, "-np", "1", "-c", "256", "-t", "1", "--api-key", "sekret",
    "--cors-origins", "http://allowed.example"]);
  try {
    const c = new OpenAI({ baseURL: keyed.url + "/v1", apiKey: "wrong", maxRetries: 0 });
    await assert.rejects(c.models.list(), (e) => e instanceof OpenAI.AuthenticationError && e.status === 401);
    const ok = new OpenAI({ baseURL: keyed.url + "/v1", apiKey: "sekret", maxRetries: 0 });
    assert.equal((await ok.models.list()).data.length, 1);
    assert.equal((await fetch(keyed.url + "/health")).status, 200);
    assert.equal((await fetch(keyed.url + "/")).status, 200);
    assert.equal((await fetch(keyed.url + "/props")).status, 401);
    const pre = await fetch(keyed.url + "/v1/chat/completions", { method: "OPTIONS",
      headers: { Origin: "http://allowed.example", "Access-Control-Request-Method": "POST" } });
    assert.equal(pre.status, 204);
    assert.equal(pre.headers.get("access-control-allow-origin"), "http://allowed.example");
    const other = await fetch(keyed.url + "/health", { headers: { Origin: "http://evil.example" } });
    assert.equal(other.headers.get("access-control-allow-origin"), null);
    const noMetrics = await fetch(keyed.url + "/metrics", { headers: { Authorization: "Bearer sekret" } });
    assert.equal(noMetrics.status, 404);
  } finally {
    assert.deepEqual(await keyed.stop(), { code: 0, signal: null });
  }
});

test("loading: /health is 503 until the model is there; a model that fails to load exits 1", async () => {
  const fifo = path.join(path.dirname(model), "loading.gguf");
  execFileSync("mkfifo", [fifo]);
  // Opening a FIFO blocks until a writer comes: the server is "loading" meanwhile.
  const s = await startServer(["-m", fifo, "-np", "1", "-c", "128"], { waitReady: false });
  const h = await fetch(s.url + "/health");
  assert.equal(h.status, 503);
  assert.match((await h.json()).error.message, /loading/);
  const r = await fetch(s.url + "/v1/models");
  assert.equal(r.status, 503);
  try {
    fs.writeFileSync(fifo, "not a gguf");
  } catch (e) {
    assert.equal(e.code, "EPIPE");  // the server read enough to refuse it and closed the pipe
  }
  const exit = await new Promise((resolve) => { if (s.exited) resolve(s.exited); else s.child.on("exit", (code) => resolve({ code })); });
  assert.equal(exit.code, 1);
  assert.match(s.stderr, /error: .*loading\.gguf/);
});

test("shutdown: SIGTERM lets a running request finish, then exits 0", async () => {
  const s = await startServer(["-m", model, "-np", "2", "-c", "256", "-t", "1", "--shutdown-grace", "20"]);
  const c = new OpenAI({ baseURL: s.url + "/v1", apiKey: "x", maxRetries: 0 });
  const running = c.completions.create({ prompt: "Hello", max_tokens: 40, temperature: 0, ignore_eos: true });
  while (!(await json(s.url + "/slots")).body.some((x) => x.is_processing)) await sleep(5);
  const exited = s.stop("SIGTERM");
  const r = await running;
  assert.equal(r.usage.completion_tokens, 40);
  assert.deepEqual(await exited, { code: 0, signal: null });
  assert.match(s.stderr, /no new requests/);
});
