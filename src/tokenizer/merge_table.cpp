#include "tokenizer/merge_table.h"

#include <bit>
#include <cstring>
#include <limits>

#include "bitnet/error.h"

namespace bitnet {

uint64_t MergeTable::hash(std::string_view left, std::string_view right) {
    // Eight bytes at a time, multiply and fold; the lengths keep ("ab", "c") apart from
    // ("a", "bc").
    auto mix = [](uint64_t h, std::string_view s) {
        size_t i = 0;
        for (; i + 8 <= s.size(); i += 8) {
            uint64_t w;
            std::memcpy(&w, s.data() + i, 8);
            h = (h ^ w) * 0x9e3779b97f4a7c15ull;
            h ^= h >> 32;
        }
        uint64_t w = 0;
        if (i < s.size()) std::memcpy(&w, s.data() + i, s.size() - i);
        h = (h ^ w ^ (static_cast<uint64_t>(s.size()) << 56)) * 0x9e3779b97f4a7c15ull;
        return h ^ (h >> 29);
    };
    return mix(mix(0x243f6a8885a308d3ull, left), right);
}

size_t MergeTable::probe(std::string_view left, std::string_view right, uint64_t h) const {
    const size_t mask = slots_.size() - 1;
    const auto tag = static_cast<uint32_t>(h >> 32);
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        const uint64_t s = slots_[i];
        const auto index = static_cast<uint32_t>(s);
        if (index == 0) return i;
        if (static_cast<uint32_t>(s >> 32) != tag) continue;
        const Entry& e = entries_[index - 1];
        if (e.left_len == left.size() && e.right_len == right.size() &&
            std::string_view(arena_).substr(e.offset, left.size()) == left &&
            std::string_view(arena_).substr(e.offset + left.size(), right.size()) == right) {
            return i;
        }
    }
}

void MergeTable::rehash(size_t slots) {
    slots_.assign(slots, 0);
    const size_t mask = slots - 1;
    for (size_t k = 0; k < entries_.size(); ++k) {
        const Entry& e = entries_[k];
        const std::string_view text(arena_.data() + e.offset, e.left_len + e.right_len);
        const uint64_t h = hash(text.substr(0, e.left_len), text.substr(e.left_len));
        size_t i = h & mask;
        while (slots_[i] != 0) i = (i + 1) & mask;
        slots_[i] = slot_value(k, h);
    }
}

void MergeTable::reserve(size_t n) {
    entries_.reserve(n);
    // At most half full.
    const size_t want = std::bit_ceil(std::max<size_t>(16, 2 * n));
    if (want > slots_.size()) rehash(want);
}

void MergeTable::insert(std::string_view left, std::string_view right, int rank) {
    if (left.size() > std::numeric_limits<uint32_t>::max() ||
        right.size() > std::numeric_limits<uint32_t>::max() ||
        entries_.size() >= std::numeric_limits<uint32_t>::max() - 1) {
        throw Error("merge table: too large");
    }
    if (2 * (entries_.size() + 1) > slots_.size()) rehash(std::max<size_t>(16, 2 * slots_.size()));
    const uint64_t h = hash(left, right);
    const size_t i = probe(left, right, h);
    if (slots_[i] != 0) return;  // the first rank wins
    entries_.push_back({arena_.size(), static_cast<uint32_t>(left.size()),
                        static_cast<uint32_t>(right.size()), rank});
    arena_.append(left);
    arena_.append(right);
    slots_[i] = slot_value(entries_.size() - 1, h);
}

std::vector<std::string> MergeTable::joined() const {
    std::vector<std::string> out;
    out.reserve(entries_.size());
    for (const Entry& e : entries_) {
        const std::string_view text(arena_.data() + e.offset, e.left_len + e.right_len);
        std::string w(text.substr(0, e.left_len));
        w += ' ';
        w += text.substr(e.left_len);
        out.push_back(std::move(w));
    }
    return out;
}

int MergeTable::find(std::string_view left, std::string_view right) const {
    if (slots_.empty()) return -1;
    const auto index = static_cast<uint32_t>(slots_[probe(left, right, hash(left, right))]);
    return index == 0 ? -1 : entries_[index - 1].rank;
}

}  // namespace bitnet
