// Reference tokenizer throughput: llama.cpp through node-llama-cpp.
// usage: node reference_tokenize.mjs REFERENCE_DIR VOCAB.gguf TEXT_FILE RUNS
// prints {"bytes": N, "seconds_per_run": X, "tokens": N}
import fs from "node:fs";
import path from "node:path";
import {pathToFileURL} from "node:url";

const [refDir, vocab, textFile, runsArg] = process.argv.slice(2);
const entry = path.join(refDir, "node_modules", "node-llama-cpp", "dist", "index.js");
const {getLlama} = await import(pathToFileURL(entry).href);
const llama = await getLlama({gpu: false, build: "never", logLevel: "error"});
const model = await llama.loadModel({modelPath: vocab, vocabOnly: true});
const text = fs.readFileSync(textFile, "utf8");
const runs = Number(runsArg);
let tokens = model.tokenize(text, false).length;  // warm-up
const t0 = process.hrtime.bigint();
for (let i = 0; i < runs; i++) tokens = model.tokenize(text, false).length;
const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
console.log(JSON.stringify({bytes: Buffer.byteLength(text, "utf8"), seconds_per_run: seconds / runs, tokens}));
await model.dispose();
await llama.dispose();
