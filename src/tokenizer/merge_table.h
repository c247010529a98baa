// BPE merge ranks: (left, right) text pairs to their rank in tokenizer.ggml.merges (or
// tokenizer.json's model.merges). One arena for all the texts and an open-addressing index,
// so that loading a 280,000-merge vocabulary (Llama-3) allocates a few large blocks instead of
// a node and two strings per merge, and a lookup hashes two views without building a key.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace bitnet {

class MergeTable {
  public:
    void reserve(size_t n);
    // Adds a pair unless it is already there: the first rank wins, as in llama.cpp.
    void insert(std::string_view left, std::string_view right, int rank);
    // The pair's rank, or -1.
    int find(std::string_view left, std::string_view right) const;
    size_t size() const { return entries_.size(); }
    // Every pair as "left right", in the order inserted (rank order for a merges list).
    std::vector<std::string> joined() const;

  private:
    struct Entry {
        uint64_t offset;  // of left then right in arena_
        uint32_t left_len, right_len;
        int32_t rank;
    };
    static uint64_t hash(std::string_view left, std::string_view right);
    // The slot holding the pair, or the empty slot where it would go.
    size_t probe(std::string_view left, std::string_view right, uint64_t h) const;
    void rehash(size_t slots);
    static uint64_t slot_value(size_t index, uint64_t h) { return (index + 1) | (h >> 32 << 32); }

    std::string arena_;
    std::vector<Entry> entries_;
    // Per slot: entry index + 1 (0: empty) in the low 32 bits, the pair's hash in the high 32
    // bits (most mismatches are rejected without reading the entry). Size: a power of two.
    std::vector<uint64_t> slots_;
};

}  // namespace bitnet
