#!/usr/bin/python3
"""Synthetic Hugging Face checkpoints and an independent float64 forward pass over them.

  hf_checkpoint.py make DIR KIND TOKENIZER_DIR SEED
      writes config.json, model.safetensors, tokenizer.json and tokenizer_config.json (copied
      from TOKENIZER_DIR) and generation_config.json. KIND:
        b158-packed-auto   BitNetForCausalLM (2B-4T layout), packed uint8 ternary weights,
                           weight_scale multiplies (quantization_config.linear_class autobitlinear)
        b158-packed-div    the same weights packed for BitLinear: weight_scale divides
        b158-master        the same model as bf16 master weights (no quantization_config)
        b158-packed-bf16   the same codes with the scale rounded to bf16 and stored as BF16
                           (autobitlinear), as a bf16 checkpoint stores it
        b158-ternary-master
                           the weights of b158-packed-bf16 as bf16 master weights that are already
                           ternary (code x scale), which a converter must keep as they are
        bitnet-1bit        BitnetForCausalLM (1bitLLM): SiLU, inner_attn_ln/ffn_layernorm names,
                           float latent weights
        llama              LlamaForCausalLM, float weights, untied lm_head
      Every kind but llama ties its head to the embeddings. The three b158 kinds of one seed hold the same model: master weights W, t = absmean(W),
      packed codes t with the matching scale.

  hf_checkpoint.py forward DIR INPUT.json OUTPUT.json
      {"ids": [...]} -> {"logprobs": [log p(ids[i+1] | ids[..i])]}, in float64, read from the
      safetensors file directly. The BitNet layers port transformers' integrations/bitnet.py
      line for line: unpack_weights; BitLinear (int8 per-token activations, output divided by
      input_scale * weight_scale); AutoBitLinear (ActQuant, output multiplied by weight_scale).
      Master weights (no quantization_config) go through AutoBitLinear's online mode
      (WeightQuant, absmean), as the BitNet b1.58 paper, 1bitLLM's utils_quant and llama.cpp's
      converter quantize them; transformers itself would load such a checkpoint as plain
      nn.Linear layers, a model nobody runs. modeling_bitnet.py / modeling_llama.py for the
      rest: RMSNorm, rotate_half RoPE, grouped-query attention, attn_sub_norm before o_proj,
      ffn_sub_norm before down_proj, relu2 (BitNet) or SiLU gating.
"""
import json
import os
import shutil
import struct
import sys

import numpy as np

SHAPE = dict(hidden=256, layers=2, heads=4, kv=2, ff=512, ctx=512)


def tokenizer_facts(tok_dir):
    """(vocabulary size, bos id, eos ids) of a tokenizer.json and its tokenizer_config.json."""
    tj = json.load(open(os.path.join(tok_dir, "tokenizer.json")))
    tc = json.load(open(os.path.join(tok_dir, "tokenizer_config.json")))
    ids = dict(tj["model"]["vocab"])
    ids.update({a["content"]: a["id"] for a in tj.get("added_tokens", [])})
    name = lambda v: v if isinstance(v, str) else v["content"]
    eos = [ids[name(tc["eos_token"])]] + [ids[t] for t in ("<|eot_id|>",) if t in ids]
    return max(ids.values()) + 1, ids[name(tc["bos_token"])], eos

# ---- safetensors ------------------------------------------------------------------------------

DTYPES = {"F32": (np.float32, 4), "F16": (np.float16, 2), "U8": (np.uint8, 1), "I8": (np.int8, 1),
          "BF16": (None, 2)}


def to_bf16_bytes(a):
    """float32 -> bfloat16 (round to nearest even), little-endian bytes."""
    u = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)
    r = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)
    return r.tobytes()


def bf16_round(a):
    u = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)
    r = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint32) << 16
    return r.view(np.float32)


def write_safetensors(path, tensors):
    """tensors: list of (name, dtype string, numpy array)."""
    header, blobs, off = {}, [], 0
    for name, dt, arr in tensors:
        b = to_bf16_bytes(arr) if dt == "BF16" else np.ascontiguousarray(arr, dtype=DTYPES[dt][0]).tobytes()
        header[name] = {"dtype": dt, "shape": list(arr.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    header["__metadata__"] = {"format": "pt"}
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def read_safetensors(path):
    data = open(path, "rb").read()
    n = struct.unpack_from("<Q", data, 0)[0]
    header = json.loads(data[8:8 + n])
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        b, end = e["data_offsets"]
        raw = data[8 + n + b:8 + n + end]
        if e["dtype"] == "BF16":
            a = (np.frombuffer(raw, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)
        else:
            a = np.frombuffer(raw, dtype=DTYPES[e["dtype"]][0])
        out[name] = a.reshape(e["shape"])
    return out

# ---- transformers' BitNet integration, in NumPy --------------------------------------------------

VALUES_PER_ITEM = 4


def pack_weights(t):
    """transformers' pack_weights: ternary [out, in] -> uint8 [out/4, in]."""
    q = (t + 1).astype(np.uint8)
    rows = q.shape[0] // VALUES_PER_ITEM
    packed = np.zeros((rows,) + q.shape[1:], dtype=np.uint8)
    for i in range(VALUES_PER_ITEM):
        packed |= q[i * rows:(i + 1) * rows] << (2 * i)
    return packed


def unpack_weights(packed):
    """transformers' unpack_weights (integrations/bitnet.py)."""
    packed_shape = packed.shape
    original_row_dim = packed_shape[0] * VALUES_PER_ITEM
    unpacked = np.zeros((original_row_dim,) + packed_shape[1:], dtype=np.uint8)
    for i in range(VALUES_PER_ITEM):
        start = i * packed_shape[0]
        end = start + packed_shape[0]
        mask = 3 << (2 * i)
        unpacked[start:end] = (packed & mask) >> (2 * i)
    return unpacked.astype(np.float64) - 1


def activation_quant(x, num_bits=8):
    """BitLinear.activation_quant: per-token absmax to int8."""
    Qn = -(2 ** (num_bits - 1))
    Qp = 2 ** (num_bits - 1) - 1
    scale = Qp / np.maximum(np.abs(x).max(axis=-1, keepdims=True), 1e-5)
    result = np.clip(np.round(x * scale), Qn, Qp)
    return result, scale


def bitlinear(x, packed, weight_scale):
    """BitLinear.forward: y = (q(x) @ unpack(w).T) / (input_scale * weight_scale)."""
    w_quant = unpack_weights(packed)
    input_quant, input_scale = activation_quant(x)
    y = input_quant @ w_quant.T
    return y / (input_scale * weight_scale)


def act_quant(x):
    """ActQuant.forward (AutoBitLinear)."""
    scale = 127 / np.maximum(np.abs(x).max(axis=-1, keepdims=True), 1e-5)
    return np.clip(np.round(x * scale), -128, 127) / scale


def weight_quant(w):
    """WeightQuant.forward: absmean ternary (float32 as torch computes it)."""
    w = w.astype(np.float32)
    scale = np.float32(1.0) / np.maximum(np.float32(np.abs(w.astype(np.float64)).mean()), np.float32(1e-5))
    return (np.clip(np.round(w * scale), -1, 1) / scale).astype(np.float64)


def autobitlinear(x, weight, weight_scale=None, online=False):
    """AutoBitLinear.forward."""
    if online:
        weight = weight_quant(weight)
    x = act_quant(x)
    out = x @ weight.T
    if not online:
        out = out * weight_scale
    return out

# ---- checkpoints -------------------------------------------------------------------------------


def absmean_codes(w):
    """The ternary codes and scale WeightQuant gives, with the scale the packed forms store."""
    w = w.astype(np.float32)
    iscale = np.float32(1.0) / np.maximum(np.float32(np.abs(w.astype(np.float64)).mean()), np.float32(1e-5))
    t = np.clip(np.round(w * iscale), -1, 1).astype(np.int8)
    return t, iscale


def make(d, kind, tok_dir, seed):
    os.makedirs(d, exist_ok=True)
    rng = np.random.default_rng(seed)
    s = SHAPE
    e, kv_dim, ff = s["hidden"], s["hidden"] // s["heads"] * s["kv"], s["ff"]
    b158 = kind.startswith("b158")
    VOCAB, bos, eos = tokenizer_facts(tok_dir)
    tensors = []

    def norm(name, n):
        tensors.append((name, "BF16" if b158 else "F32", (1.0 + 0.1 * rng.standard_normal(n)).astype(np.float32)))

    def proj(name, rows, cols):
        # Master weights with scales far from 1 (0.02-0.2) so that multiplying and dividing by
        # weight_scale give very different models.
        w = bf16_round((rng.standard_normal((rows, cols)) * rng.uniform(0.02, 0.2)).astype(np.float32))
        if kind == "b158-master":
            tensors.append((name + ".weight", "BF16", w))
        elif kind in ("b158-packed-bf16", "b158-ternary-master"):
            t, iscale = absmean_codes(w)
            scale = bf16_round(np.array([np.float32(1.0) / iscale], dtype=np.float32))
            if kind == "b158-ternary-master":
                tensors.append((name + ".weight", "BF16", t.astype(np.float32) * scale[0]))
            else:
                tensors.append((name + ".weight", "U8", pack_weights(t)))
                tensors.append((name + ".weight_scale", "BF16", scale))
        elif kind in ("b158-packed-auto", "b158-packed-div"):
            t, iscale = absmean_codes(w)
            tensors.append((name + ".weight", "U8", pack_weights(t)))
            scale = iscale if kind == "b158-packed-div" else np.float32(1.0) / iscale
            tensors.append((name + ".weight_scale", "F32", np.array([scale], dtype=np.float32)))
        else:
            tensors.append((name + ".weight", "F32" if kind == "llama" else "F16", w))

    # std 0.25: logits of std about 4 through the tied head, as the engine tests' models.
    emb = (rng.standard_normal((VOCAB, e)) * 0.25).astype(np.float32)
    tensors.append(("model.embed_tokens.weight", "BF16" if b158 else "F16", emb))
    for l in range(s["layers"]):
        p = f"model.layers.{l}."
        norm(p + "input_layernorm.weight", e)
        proj(p + "self_attn.q_proj", e, e)
        proj(p + "self_attn.k_proj", kv_dim, e)
        proj(p + "self_attn.v_proj", kv_dim, e)
        proj(p + "self_attn.o_proj", e, e)
        if b158:
            norm(p + "self_attn.attn_sub_norm.weight", e)
        elif kind == "bitnet-1bit":
            norm(p + "self_attn.inner_attn_ln.weight", e)
        norm(p + "post_attention_layernorm.weight", e)
        proj(p + "mlp.gate_proj", ff, e)
        proj(p + "mlp.up_proj", ff, e)
        proj(p + "mlp.down_proj", e, ff)
        if b158:
            norm(p + "mlp.ffn_sub_norm.weight", ff)
        elif kind == "bitnet-1bit":
            norm(p + "mlp.ffn_layernorm.weight", ff)
    norm("model.norm.weight", e)
    tied = kind != "llama"  # llama.cpp's bitnet architecture has no separate output.weight
    if not tied:
        tensors.append(("lm_head.weight", "F16", (rng.standard_normal((VOCAB, e)) * 0.1).astype(np.float32)))
    if kind == "b158-packed-div":
        # Two shards and an index, as large checkpoints come.
        half = len(tensors) // 2
        index = {"metadata": {"total_size": 0}, "weight_map": {}}
        for i, part in enumerate((tensors[:half], tensors[half:])):
            shard = f"model-{i + 1:05d}-of-00002.safetensors"
            write_safetensors(os.path.join(d, shard), part)
            index["weight_map"].update({name: shard for name, _, _ in part})
        json.dump(index, open(os.path.join(d, "model.safetensors.index.json"), "w"), indent=2)
    else:
        write_safetensors(os.path.join(d, "model.safetensors"), tensors)

    cls = {"llama": "LlamaForCausalLM", "bitnet-1bit": "BitnetForCausalLM"}.get(kind, "BitNetForCausalLM")
    config = {"architectures": [cls], "hidden_size": e, "num_hidden_layers": s["layers"],
              "num_attention_heads": s["heads"], "num_key_value_heads": s["kv"], "intermediate_size": ff,
              "max_position_embeddings": s["ctx"], "vocab_size": VOCAB, "rms_norm_eps": 1e-5,
              "rope_theta": 500000.0, "tie_word_embeddings": tied,
              "hidden_act": "relu2" if b158 else "silu", "bos_token_id": bos, "eos_token_id": eos[0]}
    if kind in ("b158-packed-auto", "b158-packed-div", "b158-packed-bf16"):
        config["quantization_config"] = {
            "quant_method": "bitnet", "quantization_mode": "offline",
            "linear_class": "bitlinear" if kind == "b158-packed-div" else "autobitlinear"}
    json.dump(config, open(os.path.join(d, "config.json"), "w"), indent=2)
    for f in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(os.path.join(tok_dir, f), os.path.join(d, f))
    json.dump({"bos_token_id": bos, "eos_token_id": eos},
              open(os.path.join(d, "generation_config.json"), "w"))


# ---- float64 forward -----------------------------------------------------------------------------

def rms_norm(x, w, eps):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w


def rotate_half(x):
    half = x.shape[-1] // 2
    return np.concatenate([-x[..., half:], x[..., :half]], axis=-1)


def forward(d, ids):
    cfg = json.load(open(os.path.join(d, "config.json")))
    W = {}
    index = os.path.join(d, "model.safetensors.index.json")
    shards = sorted(set(json.load(open(index))["weight_map"].values())) if os.path.exists(index) \
        else ["model.safetensors"]
    for shard in shards:
        W.update(read_safetensors(os.path.join(d, shard)))
    cls = cfg["architectures"][0]
    qc = cfg.get("quantization_config")
    e, H, Hkv = cfg["hidden_size"], cfg["num_attention_heads"], cfg.get("num_key_value_heads", cfg["num_attention_heads"])
    hd = e // H
    eps, base = cfg["rms_norm_eps"], cfg.get("rope_theta", 10000.0)
    bitnet = cls in ("BitNetForCausalLM", "BitnetForCausalLM")
    relu2 = cfg.get("hidden_act") == "relu2"

    def f64(name):
        return W[name].astype(np.float64)

    def linear(name, x):
        if not bitnet:
            return x @ f64(name + ".weight").T
        if qc is None:  # master weights: AutoBitLinear in online mode
            return autobitlinear(x, f64(name + ".weight"), online=True)
        scale = float(W[name + ".weight_scale"].reshape(-1)[0])
        if qc.get("linear_class", "bitlinear") == "autobitlinear":
            return autobitlinear(x, unpack_weights(W[name + ".weight"]), weight_scale=scale)
        return bitlinear(x, W[name + ".weight"], scale)

    def sub(name_new, name_old):
        return name_new if name_new in W else name_old

    T = len(ids)
    x = f64("model.embed_tokens.weight")[ids]
    pos = np.arange(T, dtype=np.float64)[:, None]
    inv = 1.0 / (base ** (np.arange(0, hd, 2, dtype=np.float64) / hd))
    freqs = pos * inv[None, :]
    emb = np.concatenate([freqs, freqs], axis=-1)
    cos, sin = np.cos(emb)[:, None, :], np.sin(emb)[:, None, :]
    mask = np.triu(np.full((T, T), -np.inf), k=1)
    for l in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{l}."
        h = rms_norm(x, f64(p + "input_layernorm.weight"), eps)
        q = linear(p + "self_attn.q_proj", h).reshape(T, H, hd)
        k = linear(p + "self_attn.k_proj", h).reshape(T, Hkv, hd)
        v = linear(p + "self_attn.v_proj", h).reshape(T, Hkv, hd)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = np.repeat(k, H // Hkv, axis=1)
        v = np.repeat(v, H // Hkv, axis=1)
        att = np.einsum("thd,shd->hts", q, k) / np.sqrt(hd) + mask
        att = np.exp(att - att.max(axis=-1, keepdims=True))
        att /= att.sum(axis=-1, keepdims=True)
        o = np.einsum("hts,shd->thd", att, v).reshape(T, e)
        if bitnet:
            o = rms_norm(o, f64(sub(p + "self_attn.attn_sub_norm.weight", p + "self_attn.inner_attn_ln.weight")), eps)
        x = x + linear(p + "self_attn.o_proj", o)
        h = rms_norm(x, f64(p + "post_attention_layernorm.weight"), eps)
        g = linear(p + "mlp.gate_proj", h)
        u = linear(p + "mlp.up_proj", h)
        act = np.maximum(g, 0.0) ** 2 if relu2 else g / (1.0 + np.exp(-g))
        f = act * u
        if bitnet:
            f = rms_norm(f, f64(sub(p + "mlp.ffn_sub_norm.weight", p + "mlp.ffn_layernorm.weight")), eps)
        x = x + linear(p + "mlp.down_proj", f)
    h = rms_norm(x, f64("model.norm.weight"), eps)
    head = f64("lm_head.weight") if "lm_head.weight" in W else f64("model.embed_tokens.weight")
    logits = h @ head.T
    m = logits.max(axis=-1, keepdims=True)
    logp = logits - m - np.log(np.exp(logits - m).sum(axis=-1, keepdims=True))
    return [float(logp[i, ids[i + 1]]) for i in range(T - 1)]


def main():
    if sys.argv[1] == "make":
        make(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
    elif sys.argv[1] == "forward":
        ids = json.load(open(sys.argv[3]))["ids"]
        json.dump({"logprobs": forward(sys.argv[2], np.array(ids))}, open(sys.argv[4], "w"))
    else:
        sys.exit("usage: hf_checkpoint.py make|forward ...")


if __name__ == "__main__":
    main()
