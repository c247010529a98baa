// llama.cpp's speed on a model, through node-llama-cpp (the npm reference), measured the way
// `bitnet bench` measures ours: -p tokens in one batch from an empty context, then -n tokens
// generated one at a time (greedy), repeated after a warm-up.
// usage: node reference_bench.mjs REFERENCE_DIR MODEL.gguf N_PROMPT N_GEN THREADS REPS [DEPTH]
// Prints one JSON line: {"pp_tok_s", "pp_stddev", "tg_tok_s", "tg_stddev", ...}.
import path from "node:path";
import {pathToFileURL} from "node:url";

const [refDir, modelPath, nPromptS, nGenS, threadsS, repsS, depthS] = process.argv.slice(2);
const nPrompt = Number(nPromptS), nGen = Number(nGenS), threads = Number(threadsS);
const reps = Number(repsS), depth = Number(depthS ?? 0);
const entry = path.join(refDir, "node_modules", "node-llama-cpp", "dist", "index.js");
const {getLlama} = await import(pathToFileURL(entry).href);
const llama = await getLlama({gpu: false, build: "never", logLevel: "error"});
const model = await llama.loadModel({modelPath});
const contextSize = depth + nPrompt + nGen + 16;
const context = await model.createContext({
    contextSize, threads, batchSize: Math.max(nPrompt, depth, 1), sequences: 1,
});
const nVocab = model.tokens.vocabularySize ?? 32000;

function tokens(n, salt) {
    // The same xorshift as bitnet bench, so both engines see the same ids.
    let x = 0x9e3779b97f4a7c15n ^ BigInt(salt);
    const mask = (1n << 64n) - 1n;
    const out = [];
    const lo = Math.min(256, nVocab - 1);
    for (let i = 0; i < n; i++) {
        x ^= (x << 13n) & mask;
        x ^= x >> 7n;
        x ^= (x << 17n) & mask;
        out.push(lo + Number(x % BigInt(nVocab - lo)));
    }
    return out;
}
const depthIds = tokens(depth, 1), prompt = tokens(nPrompt, 2);

const pp = [], tg = [];
const seq = context.getSequence();
for (let rep = 0; rep <= reps; rep++) {
    await seq.clearHistory();
    if (depth > 0) await seq.evaluateWithoutGeneratingNewTokens(depthIds);
    let t0 = performance.now();
    if (nPrompt > 0) {
        await seq.evaluateWithoutGeneratingNewTokens(prompt);
        if (rep > 0) pp.push(nPrompt / ((performance.now() - t0) / 1000));
    }
    if (nGen > 0) {
        // Generation starts from the last prompt token: n tokens, each one decode step.
        const last = prompt.length > 0 ? [prompt[prompt.length - 1]] : [tokens(1, 3)[0]];
        await seq.eraseContextTokenRanges([{start: seq.nextTokenIndex - last.length, end: seq.nextTokenIndex}]);
        t0 = performance.now();
        let n = 0;
        for await (const t of seq.evaluate(last, {temperature: 0})) {
            void t;
            if (++n >= nGen) break;
        }
        if (rep > 0) tg.push(nGen / ((performance.now() - t0) / 1000));
    }
}
const stat = (v) => {
    if (v.length === 0) return [0, 0];
    const m = v.reduce((a, b) => a + b, 0) / v.length;
    const s = v.length > 1 ? Math.sqrt(v.reduce((a, b) => a + (b - m) ** 2, 0) / (v.length - 1)) : 0;
    return [m, s];
};
const [ppm, pps] = stat(pp), [tgm, tgs] = stat(tg);
console.log(JSON.stringify({engine: "llama.cpp (node-llama-cpp 3.22.1)", threads, n_prompt: nPrompt,
    n_gen: nGen, n_depth: depth, pp_tok_s: ppm, pp_stddev: pps, tg_tok_s: tgm, tg_stddev: tgs}));
await context.dispose();
await model.dispose();
await llama.dispose();
