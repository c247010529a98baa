// Reference model evaluation: llama.cpp through node-llama-cpp.
// usage: node logits.mjs REFERENCE_DIR MODEL.gguf INPUT.json OUTPUT.json
// INPUT: {"ids": [...], "n_predict": N, "threads": T, "ctx": C, "flash_attention": bool,
//         "type_k": "F16"|"Q8_0"|..., "type_v": ... (KV cache types; default F16)}
// OUTPUT: {"logprobs": [log p(ids[i+1] | ids[..i]) for each i], "argmax": [per position],
//          "greedy": [N greedy tokens after all of ids]}
import fs from "node:fs";
import path from "node:path";
import {pathToFileURL} from "node:url";

const [refDir, modelPath, input, output] = process.argv.slice(2);
const entry = path.join(refDir, "node_modules", "node-llama-cpp", "dist", "index.js");
const {getLlama} = await import(pathToFileURL(entry).href);
const req = JSON.parse(fs.readFileSync(input, "utf8"));
const llama = await getLlama({gpu: false, build: "never", logLevel: "error"});
const model = await llama.loadModel({modelPath});
const context = await model.createContext({
    contextSize: req.ctx, threads: req.threads, batchSize: req.ctx, sequences: 2,
    flashAttention: Boolean(req.flash_attention),
    ...(req.type_k ? {experimentalKvCacheKeyType: req.type_k} : {}),
    ...(req.type_v ? {experimentalKvCacheValueType: req.type_v} : {}),
});

function logSoftmaxAt(map, token) {
    let max = -Infinity;
    for (const v of map.values()) if (v > max) max = v;
    let z = 0;
    for (const v of map.values()) z += Math.exp(v - max);
    return map.get(token) - max - Math.log(z);
}

const seq = context.getSequence();
const items = req.ids.map((t) => [t, {generateNext: {logits: true}}]);
const results = await seq.controlledEvaluate(items);
const logprobs = [];
const argmax = [];
for (let i = 0; i < req.ids.length; i++) {
    const logits = results[i].next.logits;
    let best = -1, bestV = -Infinity;
    for (const [t, v] of logits) if (v > bestV || (v === bestV && t < best)) { best = t; bestV = v; }
    argmax.push(best);
    if (i + 1 < req.ids.length) logprobs.push(logSoftmaxAt(logits, req.ids[i + 1]));
}
seq.dispose();

const greedy = [];
if (req.n_predict > 0) {
    const seq2 = context.getSequence();
    for await (const t of seq2.evaluate(req.ids, {temperature: 0})) {
        greedy.push(t);
        if (greedy.length >= req.n_predict) break;
    }
    seq2.dispose();
}
fs.writeFileSync(output, JSON.stringify({logprobs, argmax, greedy}));
await context.dispose();
await model.dispose();
await llama.dispose();
