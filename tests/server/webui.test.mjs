// The chat page at / in headless Chromium (Debian's chromium driven by playwright-core): send a
// message, see the reply stream in, press Stop while a long reply streams.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import { makeModel, startServer, slotsFreeWithin } from "./helpers.mjs";

const tools = process.env.BITNET_NODE_TOOLS;
const { chromium } = await import(path.join(tools, "node_modules/playwright-core/index.mjs"));

let server, browser;

before(async () => {
  server = await startServer(["-m", makeModel(), "-np", "2", "-c", "4096", "-t", "2",
    "--api-key", "page-key"]);
  browser = await chromium.launch({
    executablePath: process.env.BITNET_CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox"],
  });
});
after(async () => {
  await browser?.close();
  assert.deepEqual(await server.stop(), { code: 0, signal: null }, server.stderr);
});

test("chat page: asks for the key, streams a reply, stops a long one", { timeout: 60000 }, async () => {
  const page = await browser.newPage();
  page.on("dialog", (d) => d.accept("page-key"));  // the key prompt after the first 401
  await page.goto(server.url + "/");
  // The page asked for the key (a prompt) and then showed the model's id.
  await page.waitForFunction(() => document.getElementById("model").textContent.length > 0);
  assert.equal(await page.textContent("#model"), "model.gguf");
  assert.equal(await page.title(), "bitnet chat");
  // A short reply streams in and completes.
  await page.click("summary");  // open the settings
  await page.fill("#max_tokens", "8");
  await page.fill("#input", "Hello there");
  await page.press("#input", "Enter");
  const reply = page.locator(".msg.assistant").first();
  await reply.waitFor();
  await page.waitForFunction(() => document.querySelector(".msg.assistant")?.dataset.done === "1");
  assert.ok((await reply.textContent()).length > 0);
  assert.equal(await page.locator(".msg.user").first().textContent(), "Hello there");
  // A long reply: Stop ends it, keeps the partial text and frees the server's slot.
  await page.fill("#max_tokens", "100000");
  await page.fill("#input", "Tell me a long story");
  await page.click("#send");
  const second = page.locator(".msg.assistant").nth(1);
  await page.waitForFunction(() => (document.querySelectorAll(".msg.assistant")[1]?.textContent ?? "").length > 20);
  assert.equal(await page.isEnabled("#stop"), true);
  await page.click("#stop");
  await page.waitForFunction(() => document.querySelectorAll(".msg.assistant")[1]?.dataset.done === "1");
  assert.ok((await second.textContent()).length > 20);
  assert.equal(await page.isEnabled("#send"), true);
  await slotsFreeWithin(server.url, 1000, { Authorization: "Bearer page-key" });
});
