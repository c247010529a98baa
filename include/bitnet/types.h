// ggml tensor type ids and their storage geometry.
//
// Ids follow upstream ggml (ggml.h). Microsoft's bitnet.cpp fork reuses ids that upstream
// retired (36 = I2_S) or later reassigned (39 = MXFP4 upstream, TL2 in the fork), so an id is
// only meaningful together with the file's architecture: see resolve_type_id().
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace bitnet {

enum class GgmlType : uint32_t {
    F32 = 0,
    F16 = 1,
    Q4_0 = 2,
    Q4_1 = 3,
    Q5_0 = 6,
    Q5_1 = 7,
    Q8_0 = 8,
    Q8_1 = 9,
    Q2_K = 10,
    Q3_K = 11,
    Q4_K = 12,
    Q5_K = 13,
    Q6_K = 14,
    Q8_K = 15,
    IQ2_XXS = 16,
    IQ2_XS = 17,
    IQ3_XXS = 18,
    IQ1_S = 19,
    IQ4_NL = 20,
    IQ3_S = 21,
    IQ2_S = 22,
    IQ4_XS = 23,
    I8 = 24,
    I16 = 25,
    I32 = 26,
    I64 = 27,
    F64 = 28,
    IQ1_M = 29,
    BF16 = 30,
    TQ1_0 = 34,
    TQ2_0 = 35,
    I2_S = 36,  // Microsoft bitnet.cpp only; upstream retired this id
    MXFP4 = 39,
    NVFP4 = 40,
    Q1_0 = 41,
    Q2_0 = 42,
};

struct TypeInfo {
    GgmlType type;
    std::string_view name;  // canonical upper-case name, e.g. "TQ2_0"
    int64_t block_size;     // values per block; I2_S: 4 (its size rule is per tensor)
    size_t block_bytes;     // bytes per block; I2_S: 1 (plus 32 per tensor)
};

// Geometry of a type; throws Error for ids that name no type.
const TypeInfo& type_info(GgmlType type);

// Every type this table knows, in id order.
std::span<const TypeInfo> all_types();

// Case-insensitive lookup by name ("tq2_0", "IQ2_S", "i2_s").
std::optional<GgmlType> type_from_name(std::string_view name);

std::string_view type_name(GgmlType type);

// Maps a raw id read from a file to a type. `architecture` is general.architecture (may be
// empty). Throws Error naming `what` (e.g. "tensor 'blk.0.attn_q.weight'"), the id and what
// it could mean when the id is unknown, retired or ambiguous for that architecture.
GgmlType resolve_type_id(uint32_t id, std::string_view architecture, const std::string& what);

// True for general.architecture values written by Microsoft's bitnet.cpp.
bool is_microsoft_bitnet_arch(std::string_view architecture);

// Number of bytes a tensor of `n_elements` values (rows of `row_length`) occupies; std::nullopt
// on overflow or when the row length is not a multiple of the block size.
std::optional<uint64_t> tensor_bytes(GgmlType type, int64_t row_length, int64_t n_elements);

}  // namespace bitnet
