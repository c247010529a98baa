#!/usr/bin/python3
"""Reads a GGUF file with gguf-py from llama.cpp's source bundle (GGUFReader) and prints what it
found as JSON: {"architecture", "tensors": [[name, type name, [ne0, ne1, ...]], ...]}.

usage: gguf_py_read.py LLAMA_CPP_DIR FILE.gguf
"""
import json
import sys

sys.path.insert(0, sys.argv[1] + "/gguf-py")
import gguf  # noqa: E402

r = gguf.GGUFReader(sys.argv[2])
arch = r.fields["general.architecture"]
out = {
    "architecture": bytes(arch.parts[arch.data[0]]).decode(),
    "tensors": [[t.name, t.tensor_type.name, [int(x) for x in t.shape]] for t in r.tensors],
}
for t in r.tensors:
    assert t.data.nbytes == t.n_bytes, t.name
print(json.dumps(out))
