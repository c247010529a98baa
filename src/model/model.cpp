// Loading: architecture and hyperparameters from metadata, every tensor checked for presence,
// type and shape, weights bound in place.
#include <fmt/format.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <set>

#include "bitnet/error.h"
#include "kernels/gemm.h"
#include "kernels/repack.h"
#include "model/model_impl.h"
#include "quant/blocks.h"

namespace bitnet {

namespace {

std::string shape_text(std::initializer_list<int64_t> ne) {
    std::string s = "[";
    for (int64_t d : ne) s += (s.size() > 1 ? ", " : "") + std::to_string(d);
    return s + "]";
}

std::string shape_text(const GgufTensorInfo& t) {
    std::string s = "[";
    for (uint32_t d = 0; d < t.n_dims; ++d) s += (d > 0 ? ", " : "") + std::to_string(t.ne[d]);
    return s + "]";
}

// Drops the mapped pages of a tensor that now lives repacked in memory, so that the model is not
// resident twice (the file stays mapped; its pages come back from the page cache if read).
void release_pages(std::span<const uint8_t> bytes) {
    const auto page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
    const auto addr = reinterpret_cast<uintptr_t>(bytes.data());
    const uintptr_t skip = (page - addr % page) % page;  // to the first whole page
    if (bytes.size() <= skip) return;
    const size_t len = (bytes.size() - skip) / page * page;
    // The mapping is read-only and private: the pointer is only handed back to the kernel.
    if (len > 0) ::madvise(const_cast<uint8_t*>(bytes.data() + skip), len, MADV_DONTNEED);
}

class Binder {
  public:
    explicit Binder(const GgufFile& f) : f_(f) {}

    // Looks a tensor up and marks it as used by the architecture.
    const GgufTensorInfo* find(const std::string& name) {
        const GgufTensorInfo* t = f_.find_tensor(name);
        if (t != nullptr) used_.insert(name);
        return t;
    }

    const GgufTensorInfo& require(const std::string& name, std::initializer_list<int64_t> shape) {
        const GgufTensorInfo* t = find(name);
        if (t == nullptr) {
            throw Error(f_.path() + ": tensor '" + name + "' is missing (expected shape " +
                        shape_text(shape) + ")");
        }
        bool ok = t->n_dims == shape.size();
        size_t d = 0;
        for (int64_t want : shape) ok = ok && d < 4 && t->ne[d++] == want;
        // A trailing dimension of 1 may be stored or not.
        if (!ok && shape.size() == 1 && t->n_dims == 2 && t->ne[0] == *shape.begin() &&
            t->ne[1] == 1)
            ok = true;
        if (!ok) {
            throw Error(f_.path() + ": tensor '" + name + "' has shape " + shape_text(*t) +
                        ", expected " + shape_text(shape));
        }
        return *t;
    }

    // A small float tensor (norm weights, scales), checked for NaN and infinities: a broken
    // conversion shows up here, at load, instead of as garbage text.
    std::vector<float> vector(const std::string& name, int64_t n) {
        const GgufTensorInfo& t = require(name, {n});
        if (!can_dequantize(t.type)) {
            throw NotSupported(f_.path() + ": tensor '" + name + "' of type " +
                               std::string(type_name(t.type)));
        }
        std::vector<float> v(static_cast<size_t>(n));
        dequantize_tensor(t.type, f_.tensor_data(t), 1, n, v.data());
        for (size_t i = 0; i < v.size(); ++i) {
            if (!std::isfinite(v[i])) {
                throw Error(f_.path() + ": tensor '" + name + "' has a non-finite value (" +
                            fmt::format("{}", v[i]) + ") at index " + std::to_string(i) +
                            " (a broken conversion?)");
            }
        }
        return v;
    }

    // A projection inside a block, bound in place; Holder may hold it in memory later.
    WeightMatrix projection(const std::string& name, int64_t cols, int64_t rows) {
        return matrix(name, cols, rows);
    }

    WeightMatrix matrix(const std::string& name, int64_t cols, int64_t rows) {
        const GgufTensorInfo& t = require(name, {cols, rows});
        WeightMatrix w;
        w.type = t.type;
        w.data = f_.tensor_data(t).data();
        w.rows = rows;
        w.cols = cols;
        try {
            act_format_for(t.type);
        } catch (const NotSupported&) {
            throw NotSupported(f_.path() + ": tensor '" + name + "' of type " +
                               std::string(type_name(t.type)) + " in a matrix multiplication");
        }
        if (t.type == GgmlType::I2_S) {
            w.i2s_layout = resolve_i2s_layout(i2s_layout_, t.n_elements());
            const int64_t block = w.i2s_layout == I2sLayout::Arm ? 64 : 128;
            if (cols % block != 0) {
                throw NotSupported(f_.path() + ": I2_S tensor '" + name + "' with rows of " +
                                   std::to_string(cols) + " values (needs a multiple of " +
                                   std::to_string(block) + ")");
            }
            w.row_bytes = static_cast<size_t>(cols / 4);
            w.scale = i2s_scale(f_.tensor_data(t), t.n_elements());
            if (!std::isfinite(w.scale)) {
                throw Error(f_.path() + ": I2_S tensor '" + name + "' has a non-finite scale (" +
                            fmt::format("{}", w.scale) + ") at index " +
                            std::to_string(t.n_elements() / 4) + " (its byte offset)");
            }
        } else {
            const TypeInfo& ti = type_info(t.type);
            w.row_bytes = static_cast<size_t>(cols / ti.block_size) * ti.block_bytes;
        }
        // Optional per-projection scale (upstream bitnet conversions).
        const std::string scale_name =
            name.substr(0, name.size() - std::string(".weight").size()) + ".scale";
        if (find(scale_name) != nullptr) {
            const std::vector<float> s = vector(scale_name, 1);
            w.scale *= s[0];
        }
        return w;
    }

    // Tensors in the file that nothing bound, in file order.
    std::vector<std::string> unused() const {
        std::vector<std::string> out;
        for (const GgufTensorInfo& t : f_.tensors()) {
            if (used_.count(t.name) == 0) out.push_back(t.name);
        }
        return out;
    }

    I2sLayout i2s_layout() const { return i2s_layout_; }
    void set_i2s_layout(I2sLayout l) { i2s_layout_ = l; }

  private:
    const GgufFile& f_;
    std::set<std::string> used_;
    I2sLayout i2s_layout_ = I2sLayout::Auto;
};

Architecture architecture_of(const std::string& name, const std::string& path) {
    if (name == "bitnet") return Architecture::Bitnet;
    if (name == "bitnet-b1.58" || name == "bitnet-25") return Architecture::BitnetB158;
    if (name == "llama") return Architecture::Llama;
    throw NotSupported(path + ": architecture '" + name +
                       "' (supported: bitnet, bitnet-b1.58, bitnet-25, llama)");
}

Hparams read_hparams(const GgufFile& f) {
    const GgufMetadata& m = f.metadata();
    Hparams h;
    h.arch_name = f.architecture();
    if (h.arch_name.empty()) throw Error(f.path() + ": general.architecture is missing");
    h.arch = architecture_of(h.arch_name, f.path());
    const std::string p = h.arch_name + ".";
    auto u = [&](const std::string& key) { return static_cast<int64_t>(m.get_uint(p + key)); };
    auto u_or = [&](const std::string& key, int64_t fallback) {
        return m.contains(p + key) ? static_cast<int64_t>(m.get_uint(p + key)) : fallback;
    };
    h.n_embd = u("embedding_length");
    h.n_layer = u("block_count");
    h.n_ff = u("feed_forward_length");
    h.n_head = u("attention.head_count");
    h.n_head_kv = u_or("attention.head_count_kv", h.n_head);
    h.n_ctx_train = u_or("context_length", 2048);
    h.rms_eps = m.get_or<float>(p + "attention.layer_norm_rms_epsilon", 1e-5f);
    h.rope_freq_base = m.get_or<float>(p + "rope.freq_base", 10000.0f);
    auto bad = [&](const std::string& what) { return Error(f.path() + ": " + what); };
    if (h.n_embd <= 0 || h.n_embd > (1 << 16))
        throw bad("embedding_length " + std::to_string(h.n_embd) + " is out of range");
    if (h.n_layer <= 0 || h.n_layer > 1024)
        throw bad("block_count " + std::to_string(h.n_layer) + " is out of range");
    if (h.n_ff <= 0 || h.n_ff > (1 << 20))
        throw bad("feed_forward_length " + std::to_string(h.n_ff) + " is out of range");
    if (h.n_head <= 0 || h.n_embd % h.n_head != 0) {
        throw bad("attention.head_count " + std::to_string(h.n_head) +
                  " does not divide embedding_length " + std::to_string(h.n_embd));
    }
    if (h.n_head_kv <= 0 || h.n_head % h.n_head_kv != 0) {
        throw bad("attention.head_count_kv " + std::to_string(h.n_head_kv) +
                  " does not divide head_count " + std::to_string(h.n_head));
    }
    h.head_dim = h.n_embd / h.n_head;
    h.n_rot = u_or("rope.dimension_count", h.head_dim);
    if (h.n_rot <= 0 || h.n_rot > h.head_dim || h.n_rot % 2 != 0 || h.n_rot > 1024) {
        throw bad("rope.dimension_count " + std::to_string(h.n_rot) +
                  " must be even and at most the head size " + std::to_string(h.head_dim));
    }
    if (!(h.rms_eps > 0.0f) || !std::isfinite(h.rms_eps))
        throw bad("attention.layer_norm_rms_epsilon must be positive");
    if (!(h.rope_freq_base > 0.0f) || !std::isfinite(h.rope_freq_base))
        throw bad("rope.freq_base must be positive");
    if (h.n_ctx_train <= 0) throw bad("context_length must be positive");
    h.neox_rope = h.arch != Architecture::Llama;
    return h;
}

// Weights read once per generated token, held in one buffer of anonymous memory
// (core/page_buffer.h: huge pages, ~20 % more streaming bandwidth than the file's 4 KiB pages
// on the machine measured) instead of the mapped file: projections rearranged rows16
// (kernels/repack.h) or copied, the output head copied or requantized (--head-type). The file's
// pages of what is held are released, so the model is not resident twice. A plain copy is made
// only where huge pages can back it (it buys nothing else) and is given up when the memory
// cannot be reserved (the matrix then stays mapped).
class Holder {
  public:
    // hold = false (BITNET_REPACK=0): everything stays mapped but a requantized head.
    explicit Holder(bool hold) : hold_(hold) {}

    // A projection: rows16 where a tiled kernel exists, else copied as stored.
    void projection(WeightMatrix& w) {
        if (!hold_) return;
        const GgmlType held = rows16_type(w.type);
        if (gemm_rows16_for(held) != nullptr &&
            can_repack_rows16(w.type, w.i2s_layout, w.rows, w.cols)) {
            // IQ2_S codes take 68 % more than the file (kernels/repack.h): like a copy, they are
            // given up when the memory cannot be reserved (the stored layout has kernels too).
            add(w, How::Rows16, rows16_bytes(w.type, w.rows, w.cols)).optional =
                w.type == GgmlType::IQ2_S;
        } else if (w.type != GgmlType::I2_S) {
            // (I2_S without a tiled kernel, a CPU without AVX2 or odd shapes, stays mapped:
            // its layouts index the whole tensor, not rows.)
            add(w, How::Copy, held_bytes(w)).optional = true;
        }
    }

    // The output head (token_embd when tied, then `embd` is it too): requantized to `type`, or
    // copied when `type` is its own. A requantized tied head leaves the embedding lookup reading
    // the file's exact values.
    void head(WeightMatrix& head, std::optional<GgmlType> type, WeightMatrix* embd) {
        if (type && *type != head.type) {
            if (*type != GgmlType::Q8_0 && *type != GgmlType::Q6_K) {
                throw NotSupported("--head-type " + std::string(type_name(*type)) +
                                   " (the output head can be requantized to q8_0 or q6_k)");
            }
            if (!can_dequantize(head.type) || head.type == GgmlType::I2_S)
                throw NotSupported("requantizing an output head of type " +
                                   std::string(type_name(head.type)));
            const bool rows16 = *type == GgmlType::Q8_0 && gemm_rows16_for(*type) != nullptr &&
                                can_repack_rows16(*type, I2sLayout::X86, head.rows, head.cols);
            const std::optional<size_t> plain =
                tensor_bytes(*type, head.cols, head.rows * head.cols);
            if (!rows16 && !plain) {
                throw NotSupported("--head-type " + std::string(type_name(*type)) +
                                   " for a head with rows of " + std::to_string(head.cols) +
                                   " values (needs a multiple of " +
                                   std::to_string(type_info(*type).block_size) + ")");
            }
            const size_t bytes = rows16 ? rows16_bytes(*type, head.rows, head.cols) : *plain;
            add(head, How::Requantize, bytes, *type, rows16, embd == nullptr);
        } else if (hold_ && head.type != GgmlType::I2_S) {
            Item& it = add(head, How::Copy, held_bytes(head));
            it.follower = embd;
            it.optional = true;
        }
    }

    // Allocates the memory and fills it; the matrices then point into it.
    void run(std::vector<PageBuffer>& buffers) {
        const auto drop_copies = [&] {
            std::erase_if(items_, [](const Item& it) { return it.how == How::Copy; });
        };
        const auto drop_optional = [&] {
            std::erase_if(items_, [](const Item& it) { return it.optional; });
        };
        const auto place = [&] {
            size_t total = 0;
            for (Item& it : items_) {
                it.offset = kSeparateBuffers ? 0 : total;
                total += (it.bytes + 63) / 64 * 64;
            }
            return total;
        };
        if (!huge_pages_enabled()) drop_copies();
        buffers.clear();
        if (kSeparateBuffers) {
            place();
            for (const Item& it : items_) buffers.emplace_back(it.bytes);
        } else {
            try {
                buffers.emplace_back(place());
            } catch (const Error&) {
                drop_optional();  // without room for them, hold only what must be rearranged
                buffers.emplace_back(place());
            }
        }
        for (size_t i = 0; i < items_.size(); ++i) {
            Item& it = items_[i];
            WeightMatrix& w = *it.w;
            uint8_t* base = buffers[kSeparateBuffers ? i : 0].data();
            const std::span<const uint8_t> src(w.data, held_bytes(w));
            const std::span<uint8_t> dst(base + it.offset, it.bytes);
            switch (it.how) {
                case How::Rows16:
                    repack_rows16(w.type, w.i2s_layout, src, w.rows, w.cols, dst);
                    w.rows16 = true;
                    if (rows16_type(w.type) != w.type) {  // TQ1_0 held as TQ2_0 (kernels/repack.h)
                        w.converted_from = w.type;
                        w.type = rows16_type(w.type);
                        w.row_bytes = *tensor_bytes(w.type, w.cols, w.cols);
                    } else if (w.type == GgmlType::IQ2_S) {  // rows of HeldIq2s blocks
                        w.row_bytes = static_cast<size_t>(w.cols / kQK) * sizeof(HeldIq2s);
                    }
                    break;
                case How::Copy:
                    // In slices, each released once copied: copying a 657 MB head whole kept
                    // the source and the copy resident together (peak RSS +0.37 GB).
                    for (size_t off = 0; off < src.size(); off += kCopySlice) {
                        const size_t n = std::min(kCopySlice, src.size() - off);
                        std::memcpy(dst.data() + off, src.data() + off, n);
                        release_pages(src.subspan(off, n));
                    }
                    break;
                case How::Requantize: {
                    requantize_rows(w.type, it.to, src, w.rows, w.cols, it.rows16, dst);
                    const TypeInfo& ti = type_info(it.to);
                    w.type = it.to;
                    w.row_bytes = static_cast<size_t>(w.cols / ti.block_size) * ti.block_bytes;
                    w.rows16 = it.rows16;
                    break;
                }
            }
            if (it.release) release_pages(src);
            w.data = dst.data();
            if (it.follower != nullptr) *it.follower = w;
        }
    }

  private:
    static constexpr size_t kCopySlice = size_t{32} << 20;
    enum class How { Rows16, Copy, Requantize };
    struct Item {
        WeightMatrix* w;
        How how;
        size_t bytes;
        GgmlType to;
        bool rows16;
        bool release;
        WeightMatrix* follower = nullptr;  // a tied embedding: set to the held head
        bool optional = false;             // given up when the memory cannot be reserved
        size_t offset = 0;
    };

    Item& add(WeightMatrix& w, How how, size_t bytes, GgmlType to = GgmlType::F32,
              bool rows16 = false, bool release = true) {
        return items_.emplace_back(Item{&w, how, bytes, to, rows16, release});
    }

    std::vector<Item> items_;
    bool hold_;
};

// Tensors llama.cpp knows that this engine does not implement: refusing them is honest,
// ignoring them would compute another function.
const char* unsupported_tensor_kind(const std::string& name) {
    auto ends = [&](const char* suffix) {
        const size_t n = std::char_traits<char>::length(suffix);
        return name.size() >= n && name.compare(name.size() - n, n, suffix) == 0;
    };
    if (name == "rope_freqs.weight") return "RoPE frequency factors";
    if (name.rfind("rope_factors_", 0) == 0) return "long-context RoPE factors";
    if (ends(".bias")) return "bias vectors";
    if (name.rfind("position_embd", 0) == 0) return "learned position embeddings";
    if (name.rfind("token_types", 0) == 0) return "token type embeddings";
    if (ends("attn_q_norm.weight") || ends("attn_k_norm.weight")) return "Q/K norms";
    return nullptr;
}

// Every tensor must be bound by the architecture: a leftover means a file the engine would
// misread (e.g. block_count 1 in a file holding two blocks).
void check_leftovers(const std::vector<std::string>& left, const Hparams& h,
                     const std::string& path) {
    if (left.empty()) return;
    for (const std::string& name : left) {
        if (const char* kind = unsupported_tensor_kind(name))
            throw NotSupported(fmt::format("{}: tensor '{}' ({})", path, name, kind));
    }
    int64_t max_block = -1;
    for (const std::string& name : left) {
        if (name.rfind("blk.", 0) != 0) continue;
        try {
            max_block = std::max<int64_t>(max_block, std::stoll(name.substr(4)));
        } catch (const std::exception&) {
        }
    }
    std::string list;
    for (size_t i = 0; i < left.size() && i < 8; ++i) list += (i > 0 ? ", " : "") + left[i];
    if (left.size() > 8) list += fmt::format(", ... ({} more)", left.size() - 8);
    std::string cause;
    if (max_block >= h.n_layer) {
        cause = fmt::format("{}.block_count is {} but the file has tensors for blocks up to {}",
                            h.arch_name, h.n_layer, max_block);
    } else {
        cause = "the file may hold another architecture than '" + h.arch_name +
                "' (general.architecture), or was converted incompletely";
    }
    throw Error(fmt::format("{}: {} tensor{} not used by the {} architecture: {}; {}", path,
                            left.size(), left.size() == 1 ? " is" : "s are", h.arch_name, list,
                            cause));
}

}  // namespace

I2sLayout i2s_layout_for(const GgufFile& f, I2sLayout requested, std::string* assumption) {
    if (requested != I2sLayout::Auto) return requested;
    const GgufValue* v = f.metadata().find(kI2sLayoutKey);
    if (v == nullptr) {
        bool any = false;
        for (const GgufTensorInfo& t : f.tensors()) any = any || t.type == GgmlType::I2_S;
        if (any && assumption != nullptr) {
            *assumption =
                "I2_S layout not recorded in the file: assuming x86 (128-value blocks, as "
                "Microsoft's released files); --i2s-layout arm for files from ARM builds";
        }
        return I2sLayout::Auto;
    }
    const std::string* text = std::get_if<std::string>(&v->data);
    if (text != nullptr && *text == "x86") return I2sLayout::X86;
    if (text != nullptr && *text == "arm") return I2sLayout::Arm;
    throw Error(f.path() + ": " + kI2sLayoutKey + " must be the string \"x86\" or \"arm\"");
}

void ModelImpl::embed(int32_t token, float* out) const {
    const WeightMatrix& e = token_embd;
    if (token < 0 || token >= e.rows) {
        throw Error("token id " + std::to_string(token) + " is outside the embedding table (0.." +
                    std::to_string(e.rows - 1) + ")");
    }
    if (e.type == GgmlType::I2_S) {
        for (int64_t i = 0; i < e.cols; ++i) {
            const uint8_t code = i2s_code({e.data, static_cast<size_t>(e.rows * e.cols / 4)},
                                          token * e.cols + i, e.i2s_layout);
            out[i] = e.scale * static_cast<float>(code - 1);
        }
        return;
    }
    dequantize_tensor(e.type, {e.data + static_cast<size_t>(token) * e.row_bytes, e.row_bytes}, 1,
                      e.cols, out);
}

Model::Model(std::unique_ptr<ModelImpl> impl) : impl_(std::move(impl)) {}
Model::~Model() = default;

std::shared_ptr<Model> Model::load(const std::string& path, const ModelOptions& options) {
    auto m = std::make_unique<ModelImpl>();
    m->file = GgufFile::open(path);
    const GgufFile& f = m->file;
    m->hp = read_hparams(f);
    Hparams& h = m->hp;
    if (!f.metadata().contains("tokenizer.ggml.model"))
        throw Error(path + ": the file has no tokenizer (tokenizer.ggml.model)");
    m->tokenizer.emplace(Tokenizer::from_gguf(f.metadata()));
    m->warnings = m->tokenizer->warnings();
    m->assumptions = m->tokenizer->notes();

    Binder b(f);
    std::string layout_note;
    b.set_i2s_layout(i2s_layout_for(f, options.i2s_layout, &layout_note));
    if (!layout_note.empty()) m->assumptions.push_back(layout_note);
    const GgufTensorInfo* embd = b.find("token_embd.weight");
    if (embd == nullptr) throw Error(path + ": tensor 'token_embd.weight' is missing");
    h.n_vocab = embd->n_dims == 2 ? embd->ne[1] : 0;
    if (h.n_vocab < static_cast<int64_t>(m->tokenizer->size())) {
        throw Error(path + ": token_embd.weight has " + std::to_string(h.n_vocab) + " rows for " +
                    std::to_string(m->tokenizer->size()) + " tokens");
    }
    if (!can_dequantize(embd->type)) {
        throw NotSupported(path + ": token_embd.weight of type " +
                           std::string(type_name(embd->type)));
    }
    m->token_embd = b.matrix("token_embd.weight", h.n_embd, h.n_vocab);
    m->output_norm = b.vector("output_norm.weight", h.n_embd);
    h.tied_output = b.find("output.weight") == nullptr;
    m->output = h.tied_output ? m->token_embd : b.matrix("output.weight", h.n_embd, h.n_vocab);

    const int64_t e = h.n_embd, kv = h.head_dim * h.n_head_kv, ff = h.n_ff;
    const bool sub_norms = h.arch != Architecture::Llama;
    for (int64_t l = 0; l < h.n_layer; ++l) {
        const std::string p = "blk." + std::to_string(l) + ".";
        LayerWeights lw;
        lw.attn_norm = b.vector(p + "attn_norm.weight", e);
        lw.ffn_norm = b.vector(p + "ffn_norm.weight", e);
        if (sub_norms) {
            lw.attn_sub_norm = b.vector(p + "attn_sub_norm.weight", e);
            lw.ffn_sub_norm = b.vector(p + "ffn_sub_norm.weight", ff);
        }
        lw.wq = b.projection(p + "attn_q.weight", e, e);
        lw.wk = b.projection(p + "attn_k.weight", e, kv);
        lw.wv = b.projection(p + "attn_v.weight", e, kv);
        lw.wo = b.projection(p + "attn_output.weight", e, e);
        lw.ffn_gate = b.projection(p + "ffn_gate.weight", e, ff);
        lw.ffn_up = b.projection(p + "ffn_up.weight", e, ff);
        lw.ffn_down = b.projection(p + "ffn_down.weight", ff, e);
        m->layers.push_back(std::move(lw));
    }
    check_leftovers(b.unused(), h, path);
    // Only a file that will be used pays for holding its weights. BITNET_REPACK=0 keeps them
    // as mapped (to compare the two paths, or to save the load time); --head-type still
    // requantizes the head.
    const char* repack_env = std::getenv("BITNET_REPACK");
    Holder holder(repack_env == nullptr || std::string(repack_env) != "0");
    for (LayerWeights& lw : m->layers) {
        for (WeightMatrix* w :
             {&lw.wq, &lw.wk, &lw.wv, &lw.wo, &lw.ffn_gate, &lw.ffn_up, &lw.ffn_down})
            holder.projection(*w);
    }
    holder.head(m->output, options.head_type, h.tied_output ? &m->token_embd : nullptr);
    holder.run(m->held);
    return std::shared_ptr<Model>(new Model(std::move(m)));
}

uint64_t Model::weight_bytes_per_token() const {
    const ModelImpl& m = *impl_;
    uint64_t total = held_bytes(m.output) + m.token_embd.row_bytes;
    for (const LayerWeights& l : m.layers) {
        for (const WeightMatrix* w :
             {&l.wq, &l.wk, &l.wv, &l.wo, &l.ffn_gate, &l.ffn_up, &l.ffn_down})
            total += held_bytes(*w);
    }
    return total;
}

uint64_t Model::held_weight_bytes() const {
    uint64_t total = 0;
    for (const PageBuffer& b : impl_->held) total += b.size();
    return total;
}

std::string Model::kernel_summary() const {
    const ModelImpl& m = *impl_;
    if (m.layers.empty()) return "";
    const WeightMatrix& w = m.layers[0].wq;
    const std::string held =
        w.converted_from
            ? fmt::format("{} held as {}", type_name(*w.converted_from), type_name(w.type))
            : std::string(type_name(w.type));
    return fmt::format("{} {}, head {} {}", held, kernel_name(w), type_name(m.output.type),
                       kernel_name(m.output));
}

const std::vector<std::string>& Model::assumptions() const {
    return impl_->assumptions;
}
const std::vector<std::string>& Model::warnings() const {
    return impl_->warnings;
}

const Hparams& Model::hparams() const {
    return impl_->hp;
}
const Tokenizer& Model::tokenizer() const {
    return *impl_->tokenizer;
}
const GgufFile& Model::file() const {
    return impl_->file;
}

std::string Model::describe() const {
    const Hparams& h = impl_->hp;
    return fmt::format(
        "{}: {} layers, width {}, {} heads ({} KV), FFN {}, vocabulary {}, weights {}", h.arch_name,
        h.n_layer, h.n_embd, h.n_head, h.n_head_kv, h.n_ff, h.n_vocab,
        impl_->layers.empty() ? "-"
                              : std::string(type_name(impl_->layers[0].wq.converted_from.value_or(
                                    impl_->layers[0].wq.type))));
}

}  // namespace bitnet
