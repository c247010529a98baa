// BitNet b1.58 block (upstream "bitnet" and Microsoft's "bitnet-b1.58"):
//
//   a   = Attention(RoPE(W_q·Norm(x)), RoPE(W_k·Norm(x)), W_v·Norm(x))
//   h   = x + W_o · SubNorm_attn(a)
//   out = h + W_down · SubNorm_ffn(act(W_gate·Norm(h)) ⊙ W_up·Norm(h))
//
// act is SiLU for "bitnet", ReLU² for "bitnet-b1.58". Shapes per token: x [n_embd],
// q [n_head · head_dim], k, v [n_head_kv · head_dim], gate, up [n_ff].
#include "kernels/ops.h"
#include "model/forward.h"

namespace bitnet {

void bitnet_layer(Forward& f, int il) {
    const LayerWeights& lw = f.m.layers[static_cast<size_t>(il)];
    const Hparams& h = f.m.hp;
    Activations& a = f.a;

    f.self_attention(lw, il);
    f.norm(a.attn, lw.attn_sub_norm, a.cur, h.n_embd);
    f.dump("attn_sub_norm", il, a.cur, h.n_embd);
    f.mm(lw.wo, a.cur, a.proj);
    f.dump("attn_out", il, a.proj, h.n_embd);
    f.add(a.x, a.proj);
    f.dump("ffn_inp", il, a.x, h.n_embd);

    f.norm(a.x, lw.ffn_norm, a.cur, h.n_embd);
    f.dump("ffn_norm", il, a.cur, h.n_embd);
    f.mm_shared({&lw.ffn_gate, &lw.ffn_up}, a.cur, {&a.gate, &a.up});
    f.glu(h.arch == Architecture::BitnetB158);
    f.dump("ffn_sub_out", il, a.gate, h.n_ff);
    f.norm(a.gate, lw.ffn_sub_norm, a.up, h.n_ff);
    f.dump("ffn_sub_norm", il, a.up, h.n_ff);
    f.mm(lw.ffn_down, a.up, a.proj);
    f.dump("ffn_down", il, a.proj, h.n_embd);
    f.add(a.x, a.proj);
    f.dump("l_out", il, a.x, h.n_embd);
}

}  // namespace bitnet
