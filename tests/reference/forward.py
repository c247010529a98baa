#!/usr/bin/python3
"""Independent float64 forward pass of the bitnet, bitnet-b1.58 and llama architectures.

Written from the architecture descriptions (shared FORMATS.md), not from our C++ code: weights
are read with a small GGUF parser and dequantized by ggml itself (libggml-base.so through
ctypes) or, for Microsoft's I2_S, by the layout rule; every activation stays in float64 (no
activation quantization, exact RoPE angles).

usage: forward.py REFERENCE_DIR MODEL.gguf INPUT.json OUTPUT.json
INPUT: {"ids": [...]}   OUTPUT: {"logprobs": [log p(ids[i+1] | ids[..i])], "argmax": [...]}
"""
import ctypes
import json
import struct
import sys

import numpy as np

GGML_TYPES = {0: ("f32", 1, 4), 1: ("f16", 1, 2), 2: ("q4_0", 32, 18), 8: ("q8_0", 32, 34), 12: ("q4_K", 256, 144),
              14: ("q6_K", 256, 210), 22: ("iq2_s", 256, 82), 30: ("bf16", 1, 2), 34: ("tq1_0", 256, 54),
              35: ("tq2_0", 256, 66)}
SCALAR_SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
SCALAR_FMT = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}


class Gguf:
    def __init__(self, path):
        self.data = open(path, "rb").read()
        self.pos = 0
        magic, version, n_tensors, n_kv = struct.unpack_from("<IIQQ", self.data, 0)
        assert magic == 0x46554747 and version in (2, 3)
        self.pos = 24
        self.kv = {}
        for _ in range(n_kv):
            key = self.string()
            self.kv[key] = self.value(self.u32())
        self.tensors = {}
        for _ in range(n_tensors):
            name = self.string()
            n_dims = self.u32()
            ne = [struct.unpack_from("<q", self.data, self.pos + 8 * i)[0] for i in range(n_dims)]
            self.pos += 8 * n_dims
            ttype = self.u32()
            offset = struct.unpack_from("<Q", self.data, self.pos)[0]
            self.pos += 8
            self.tensors[name] = (ne, ttype, offset)
        align = self.kv.get("general.alignment", 32)
        self.data_start = (self.pos + align - 1) // align * align

    def u32(self):
        v = struct.unpack_from("<I", self.data, self.pos)[0]
        self.pos += 4
        return v

    def string(self):
        n = struct.unpack_from("<Q", self.data, self.pos)[0]
        s = self.data[self.pos + 8:self.pos + 8 + n].decode("utf-8", "replace")
        self.pos += 8 + n
        return s

    def value(self, t):
        if t == 8:
            return self.string()
        if t == 9:
            et = self.u32()
            n = struct.unpack_from("<Q", self.data, self.pos)[0]
            self.pos += 8
            return [self.value(et) for _ in range(n)] if et in (8, 9) else self.array(et, n)
        v = struct.unpack_from(SCALAR_FMT[t], self.data, self.pos)[0]
        self.pos += SCALAR_SIZES[t]
        return v

    def array(self, et, n):
        size = SCALAR_SIZES[et] * n
        raw = self.data[self.pos:self.pos + size]
        self.pos += size
        return np.frombuffer(raw, dtype=np.dtype(SCALAR_FMT[et][1:]).newbyteorder("<")).tolist() if et != 7 else list(raw)


class Weights:
    def __init__(self, ref_dir, gguf):
        lib = ref_dir + "/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64/libggml-base.so"
        self.ggml = ctypes.CDLL(lib)
        self.g = gguf
        self.arch = gguf.kv["general.architecture"]

    def get(self, name):
        ne, ttype, offset = self.g.tensors[name]
        n = int(np.prod(ne))
        start = self.g.data_start + offset
        if ttype == 36:  # Microsoft I2_S, x86 layout: blocks of 128 values in 32 bytes
            packed = np.frombuffer(self.g.data, dtype=np.uint8, count=n // 4, offset=start)
            scale = struct.unpack_from("<f", self.g.data, start + n // 4)[0]
            blocks = packed.reshape(-1, 32)
            codes = np.concatenate([(blocks >> (6 - 2 * p)) & 3 for p in range(4)], axis=1).reshape(-1)
            out = (codes.astype(np.float64) - 1.0) * scale
        else:
            tname, block, size = GGML_TYPES[ttype]
            nbytes = n // block * size
            raw = self.g.data[start:start + nbytes]
            if ttype == 0:
                out = np.frombuffer(raw, dtype="<f4").astype(np.float64)
            else:
                buf = (ctypes.c_float * n)()
                src = ctypes.create_string_buffer(raw, nbytes)
                fn = self.ggml.ggml_fp16_to_fp32_row if ttype == 1 else (
                    self.ggml.ggml_bf16_to_fp32_row if ttype == 30 else getattr(self.ggml, "dequantize_row_" + tname))
                fn(src, buf, ctypes.c_int64(n))
                out = np.frombuffer(buf, dtype=np.float32).astype(np.float64)
        return out.reshape(list(reversed(ne)))  # rows first: [ne1, ne0]

    def maybe(self, name):
        return self.get(name) if name in self.g.tensors else None


def rms_norm(x, w, eps):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w


def rope(x, n_rot, base, neox):
    # x: [T, heads, head_dim]
    t = np.arange(x.shape[0], dtype=np.float64)[:, None]
    inv = base ** (-np.arange(0, n_rot, 2, dtype=np.float64) / n_rot)
    theta = t * inv[None, :]
    cos, sin = np.cos(theta)[:, None, :], np.sin(theta)[:, None, :]
    y = x.copy()
    half = n_rot // 2
    if neox:
        a, b = x[..., :half], x[..., half:n_rot]
        y[..., :half] = a * cos - b * sin
        y[..., half:n_rot] = a * sin + b * cos
    else:
        a, b = x[..., 0:n_rot:2], x[..., 1:n_rot:2]
        y[..., 0:n_rot:2] = a * cos - b * sin
        y[..., 1:n_rot:2] = a * sin + b * cos
    return y


def forward(w, ids):
    kv = w.g.kv
    a = w.arch
    p = a + "."
    n_embd = kv[p + "embedding_length"]
    n_head = kv[p + "attention.head_count"]
    n_head_kv = kv.get(p + "attention.head_count_kv", n_head)
    n_layer = kv[p + "block_count"]
    hd = n_embd // n_head
    n_rot = kv.get(p + "rope.dimension_count", hd)
    eps = kv.get(p + "attention.layer_norm_rms_epsilon", 1e-5)
    base = kv.get(p + "rope.freq_base", 10000.0)
    neox = a != "llama"
    sub = a != "llama"
    relu2 = a in ("bitnet-b1.58", "bitnet-25")

    def proj(name, x):
        out = x @ w.get(name + ".weight").T
        s = w.maybe(name + ".scale")
        return out * s.reshape(-1)[0] if s is not None else out

    emb = w.get("token_embd.weight")
    x = emb[ids]
    T = len(ids)
    mask = np.triu(np.full((T, T), -np.inf), k=1)
    for l in range(n_layer):
        b = f"blk.{l}."
        h = rms_norm(x, w.get(b + "attn_norm.weight"), eps)
        q = rope(proj(b + "attn_q", h).reshape(T, n_head, hd), n_rot, base, neox)
        k = rope(proj(b + "attn_k", h).reshape(T, n_head_kv, hd), n_rot, base, neox)
        v = proj(b + "attn_v", h).reshape(T, n_head_kv, hd)
        rep = n_head // n_head_kv
        k = np.repeat(k, rep, axis=1)
        v = np.repeat(v, rep, axis=1)
        att = np.einsum("thd,shd->hts", q, k) / np.sqrt(hd) + mask
        att = np.exp(att - att.max(axis=-1, keepdims=True))
        att /= att.sum(axis=-1, keepdims=True)
        o = np.einsum("hts,shd->thd", att, v).reshape(T, n_embd)
        if sub:
            o = rms_norm(o, w.get(b + "attn_sub_norm.weight"), eps)
        x = x + proj(b + "attn_output", o)
        h = rms_norm(x, w.get(b + "ffn_norm.weight"), eps)
        g = proj(b + "ffn_gate", h)
        u = proj(b + "ffn_up", h)
        act = np.maximum(g, 0.0) ** 2 if relu2 else g / (1.0 + np.exp(-g))
        f = act * u
        if sub:
            f = rms_norm(f, w.get(b + "ffn_sub_norm.weight"), eps)
        x = x + proj(b + "ffn_down", f)
    h = rms_norm(x, w.get("output_norm.weight"), eps)
    out = w.maybe("output.weight")
    logits = h @ (out if out is not None else emb).T
    m = logits.max(axis=-1, keepdims=True)
    logp = logits - m - np.log(np.exp(logits - m).sum(axis=-1, keepdims=True))
    return logp


def main():
    ref_dir, model, inp, outp = sys.argv[1:5]
    ids = json.load(open(inp))["ids"]
    w = Weights(ref_dir, Gguf(model))
    logp = forward(w, np.array(ids))
    json.dump({"logprobs": [float(logp[i, ids[i + 1]]) for i in range(len(ids) - 1)],
               "argmax": [int(i) for i in logp.argmax(axis=-1)]}, open(outp, "w"))


if __name__ == "__main__":
    main()
