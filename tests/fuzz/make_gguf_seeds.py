#!/usr/bin/env python3
"""Writes the small seed corpus for the GGUF reader fuzzer (tests/fuzz/corpus/gguf).

Kept small on purpose (a few KB each) so the fuzzer mutates structure, not bulk data.
"""
import os
import struct
import sys

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus", "gguf")
os.makedirs(out, exist_ok=True)


def s(x: bytes) -> bytes:
    return struct.pack("<Q", len(x)) + x


def kv(key: str, t: int, payload: bytes) -> bytes:
    return s(key.encode()) + struct.pack("<i", t) + payload


def tensor(name: str, ne, t: int, off: int) -> bytes:
    return s(name.encode()) + struct.pack("<I", len(ne)) + b"".join(struct.pack("<q", d) for d in ne) + struct.pack("<IQ", t, off)


def gguf(kvs, tensors, data, align=32, version=3):
    head = b"GGUF" + struct.pack("<IQQ", version, len(tensors), len(kvs)) + b"".join(kvs) + b"".join(tensors)
    if tensors:
        head += b"\0" * (-len(head) % align)
    return head + data


def pad(b: bytes, a=32) -> bytes:
    return b + b"\0" * (-len(b) % a)


every = [
    kv("general.architecture", 8, s(b"llama")),
    kv("u8", 0, b"\x07"), kv("i8", 1, b"\xf9"), kv("u16", 2, struct.pack("<H", 9)),
    kv("i16", 3, struct.pack("<h", -9)), kv("u32", 4, struct.pack("<I", 9)),
    kv("i32", 5, struct.pack("<i", -9)), kv("f32", 6, struct.pack("<f", 0.5)),
    kv("bool", 7, b"\x01"), kv("u64", 10, struct.pack("<Q", 9)), kv("i64", 11, struct.pack("<q", -9)),
    kv("f64", 12, struct.pack("<d", 0.25)),
    kv("arr_str", 9, struct.pack("<iQ", 8, 3) + s(b"a") + s(b"bc") + s(b"")),
    kv("arr_i32", 9, struct.pack("<iQ", 5, 2) + struct.pack("<ii", 1, -1)),
]
data = pad(b"\x11" * 32) + pad(b"\x22" * 34) + b"\x33" * 66
t = [tensor("f32", [8], 0, 0), tensor("q8", [32], 8, 32), tensor("tq2", [256], 35, 96)]
open(os.path.join(out, "every_type.gguf"), "wb").write(gguf(every, t, data))

ms = [kv("general.architecture", 8, s(b"bitnet-b1.58")), kv("general.alignment", 4, struct.pack("<I", 64))]
i2s = b"\x5a" * 32 + struct.pack("<f", 0.75) + b"\0" * 28
open(os.path.join(out, "i2s.gguf"), "wb").write(gguf(ms, [tensor("blk.0.attn_q.weight", [128], 36, 0)], i2s, 64))

open(os.path.join(out, "empty_v2.gguf"), "wb").write(gguf([], [], b"", version=2))
open(os.path.join(out, "vocab_like.gguf"), "wb").write(gguf(
    [kv("tokenizer.ggml.model", 8, s(b"gpt2")),
     kv("tokenizer.ggml.tokens", 9, struct.pack("<iQ", 8, 4) + s(b"<s>") + s(b"a") + s(b"b") + s(b"ab")),
     kv("tokenizer.ggml.scores", 9, struct.pack("<iQ", 6, 4) + struct.pack("<4f", 0, -1, -2, -3)),
     kv("tokenizer.ggml.add_bos_token", 7, b"\x01")], [], b""))
