// IQ2_S tables. kIq2sGridCodes holds 1024 points of the 8-dimensional grid, 2 bits per
// coordinate (coordinate value 2l+1, l in 0..2); kIq2sGrid holds the same points as the bytes
// the dequantizer multiplies (l = 0, 1, 2 -> 8, 25, 43). The search map, built once on first
// use, sends each of the 4^8 points to its grid index or to its nearest grid points.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <vector>

namespace bitnet {

#include "quant/iq2s_tables.inc"

class Iq2sSearch {
  public:
    static const Iq2sSearch& get();

    // Grid index of the point with 2-bit coordinates `code` (l_i at bits 2i), or -1.
    int grid_index(uint16_t code) const { return map_[code]; }
    // For a point off the grid: the grid indices at the smallest squared distance, ascending.
    std::span<const uint16_t> neighbours(uint16_t code) const;
    // Coordinates 2l+1 of grid point k.
    const std::array<int8_t, 8>& point(int k) const { return points_[static_cast<size_t>(k)]; }

    static constexpr int kMapSize = 43692;  // covers every code with coordinates l <= 2

  private:
    Iq2sSearch();
    std::vector<std::array<int8_t, 8>> points_;
    std::vector<int32_t> map_;     // >= 0: grid index; < 0: -(offset + 1) into lists_
    std::vector<uint16_t> lists_;  // [n, idx...] per off-grid code
};

}  // namespace bitnet
