#include "quant/iq2s_tables.h"

#include <climits>

namespace bitnet {

const Iq2sSearch& Iq2sSearch::get() {
    static const Iq2sSearch search;
    return search;
}

Iq2sSearch::Iq2sSearch() : points_(kIq2sGridCodes.size()), map_(kMapSize, -1) {
    for (size_t k = 0; k < kIq2sGridCodes.size(); ++k) {
        uint16_t code = 0;
        for (int i = 0; i < 8; ++i) {
            const int l = (kIq2sGridCodes[k] >> (2 * i)) & 3;
            points_[k][static_cast<size_t>(i)] = static_cast<int8_t>(2 * l + 1);
            code |= static_cast<uint16_t>(l << (2 * i));
        }
        map_[code] = static_cast<int32_t>(k);
    }
    // Each off-grid code lists every grid point at the minimum squared distance, in ascending
    // index order: what sorting by (distance, index) and keeping the first group yields.
    std::array<int8_t, 8> pos{};
    for (int code = 0; code < kMapSize; ++code) {
        if (map_[static_cast<size_t>(code)] >= 0) continue;
        for (int i = 0; i < 8; ++i)
            pos[static_cast<size_t>(i)] = static_cast<int8_t>(2 * ((code >> (2 * i)) & 3) + 1);
        int best = INT_MAX;
        const size_t start = lists_.size();
        lists_.push_back(0);
        for (size_t k = 0; k < points_.size(); ++k) {
            int d2 = 0;
            for (size_t i = 0; i < 8; ++i) {
                const int d = points_[k][i] - pos[i];
                d2 += d * d;
            }
            if (d2 < best) {
                best = d2;
                lists_.resize(start + 1);
            }
            if (d2 == best) lists_.push_back(static_cast<uint16_t>(k));
        }
        lists_[start] = static_cast<uint16_t>(lists_.size() - start - 1);
        map_[static_cast<size_t>(code)] = -static_cast<int32_t>(start) - 1;
    }
}

std::span<const uint16_t> Iq2sSearch::neighbours(uint16_t code) const {
    const int32_t m = map_[code];
    if (m >= 0) return {};
    const auto start = static_cast<size_t>(-m - 1);
    return {lists_.data() + start + 1, lists_[start]};
}

}  // namespace bitnet
