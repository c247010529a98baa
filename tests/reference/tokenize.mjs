// Reference tokenizer: llama.cpp through node-llama-cpp (the npm reference install).
// usage: node tokenize.mjs REFERENCE_DIR VOCAB.gguf INPUT.json OUTPUT.json
// INPUT: {"texts": [...]}; OUTPUT: {"results": [{"plain": ids, "special": ids,
// "text_plain": detokenized plain ids, "text_special": detokenized special ids}]}
// "plain" treats special-token text as text; "special" parses it. No BOS/EOS is added.
import fs from "node:fs";
import path from "node:path";
import {pathToFileURL} from "node:url";

const [refDir, vocab, input, output] = process.argv.slice(2);
const entry = path.join(refDir, "node_modules", "node-llama-cpp", "dist", "index.js");
const {getLlama} = await import(pathToFileURL(entry).href);
const llama = await getLlama({gpu: false, build: "never", logLevel: "error"});
const model = await llama.loadModel({modelPath: vocab, vocabOnly: true});
const {texts} = JSON.parse(fs.readFileSync(input, "utf8"));
const results = texts.map((t) => {
    const plain = Array.from(model.tokenize(t, false));
    const special = Array.from(model.tokenize(t, true));
    return {
        plain,
        special,
        text_plain: model.detokenize(plain, false),
        text_special: model.detokenize(special, true),
    };
});
fs.writeFileSync(output, JSON.stringify({results}));
await model.dispose();
await llama.dispose();
