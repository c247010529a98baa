// Llama block:
//
//   a   = Attention(RoPE(W_q·Norm(x)), RoPE(W_k·Norm(x)), W_v·Norm(x))
//   h   = x + W_o · a
//   out = h + W_down · (SiLU(W_gate·Norm(h)) ⊙ W_up·Norm(h))
//
// RoPE rotates interleaved pairs (the converter permuted Q and K for it).
#include "kernels/ops.h"
#include "model/forward.h"

namespace bitnet {

void llama_layer(Forward& f, int il) {
    const LayerWeights& lw = f.m.layers[static_cast<size_t>(il)];
    const Hparams& h = f.m.hp;
    Activations& a = f.a;

    f.self_attention(lw, il);
    f.mm(lw.wo, a.attn, a.proj);
    f.dump("attn_out", il, a.proj, h.n_embd);
    f.add(a.x, a.proj);
    f.dump("ffn_inp", il, a.x, h.n_embd);

    f.norm(a.x, lw.ffn_norm, a.cur, h.n_embd);
    f.dump("ffn_norm", il, a.cur, h.n_embd);
    f.mm_shared({&lw.ffn_gate, &lw.ffn_up}, a.cur, {&a.gate, &a.up});
    f.glu(false);
    f.mm(lw.ffn_down, a.gate, a.proj);
    f.dump("ffn_out", il, a.proj, h.n_embd);
    f.add(a.x, a.proj);
    f.dump("l_out", il, a.x, h.n_embd);
}

}  // namespace bitnet
