// A bounded load run on loopback: many requests from a few concurrent clients (streamed and
// not, some disconnecting mid-stream), then a burst beyond slots + queue. Afterwards: nothing
// but 200s and 503s, no failed request, every slot free, and a second identical run grows the
// server's RSS by less than 5 %. Run against the sanitizer build too (BITNET_SERVE_CLI), where
// LeakSanitizer makes the server's exit status non-zero on a leak.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { makeModel, startServer, sleep, sanitized, slotsFreeWithin, metrics, rssKiB } from "./helpers.mjs";

const binary = process.env.BITNET_SERVE_CLI || process.env.BITNET_CLI;
let server;

before(async () => {
  server = await startServer(["-m", makeModel(), "-np", "4", "-c", "512", "-t", "2", "--metrics",
    "--max-queue", "4", "--timeout", "10"], { binary });
});
after(async () => {
  const exit = await server.stop();
  assert.deepEqual(exit, { code: 0, signal: null }, server.stderr.slice(-4000));
});

async function request(i, statuses) {
  const stream = i % 2 === 0;
  const disconnect = i % 4 === 1;
  const ctrl = new AbortController();
  const body = {
    messages: [{ role: "user", content: `Request ${i}: ${"talk ".repeat(i % 7)}` }],
    max_tokens: disconnect ? 400 : 12, stream: stream || disconnect, seed: i,
  };
  try {
    const r = await fetch(server.url + "/v1/chat/completions", { method: "POST", signal: ctrl.signal,
      headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    statuses.push(r.status);
    if (disconnect) {
      const reader = r.body.getReader();
      for (let k = 0; k < 3; k++) await reader.read();
      ctrl.abort();
      return;
    }
    await r.text();
  } catch (e) {
    if (e.name !== "AbortError") throw e;
  }
}

const kRequests = sanitized ? 24 : 48;

async function run() {
  const statuses = [];
  // 48 requests, 6 clients (24 under the sanitizers).
  let next = 0;
  const clients = Array.from({ length: 6 }, async () => {
    while (next < kRequests) await request(next++, statuses);
  });
  await Promise.all(clients);
  // A burst of 16 long streams at once: 4 slots + 4 queued are taken, the rest get 503; the
  // accepted ones are dropped by their clients after a few chunks.
  await Promise.all(Array.from({ length: 16 }, async (_, i) => {
    const ctrl = new AbortController();
    try {
      const r = await fetch(server.url + "/v1/completions", { method: "POST", signal: ctrl.signal,
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ prompt: `Burst ${i}`, max_tokens: 300, stream: true,
                               logit_bias: { 128001: -100, 128008: -100, 128009: -100 } }) });
      statuses.push(r.status);
      if (r.status !== 200) return void await r.text();
      const reader = r.body.getReader();
      for (let k = 0; k < 3; k++) await reader.read();
      ctrl.abort();
    } catch (e) {
      if (e.name !== "AbortError") throw e;
    }
  }));
  await slotsFreeWithin(server.url, 5000);
  return statuses;
}

test("bounded load: only 200/503, no failures, slots free, RSS stable", { timeout: 120000 }, async () => {
  const first = await run();
  const rss1 = rssKiB(server.child.pid);
  const second = await run();
  const rss2 = rssKiB(server.child.pid);
  for (const s of [...first, ...second]) assert.ok(s === 200 || s === 503, `status ${s}`);
  assert.ok(first.filter((s) => s === 503).length >= 1, "the burst went beyond the queue");
  assert.ok(first.filter((s) => s === 200).length >= kRequests);
  const m = await metrics(server.url);
  assert.equal(m.requests_failed_total, 0);
  assert.equal(m.requests_processing, 0);
  assert.equal(m.requests_deferred, 0);
  assert.ok(m.requests_cancelled_total >= 12, JSON.stringify(m));
  assert.ok(rss2 < rss1 * 1.05, `RSS grew from ${rss1} KiB to ${rss2} KiB`);
  await sleep(10);
});
