// Stop strings in streamed text: the tail that could still become a stop string is held back,
// so that no part of a stop string is ever emitted (generate() and the server share it).
#pragma once

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "bitnet/error.h"

namespace bitnet {

// Holds back the tail of the text that could still become a stop string.
class StopFilter {
  public:
    explicit StopFilter(const std::vector<std::string>& stops) : stops_(stops) {
        for (const auto& s : stops_) {
            if (s.empty()) throw Error("stop strings must not be empty");
        }
    }
    // Adds text; returns what is safe to emit. Sets `hit` when a stop string completed.
    std::string push(const std::string& piece, bool& hit) {
        buf_ += piece;
        size_t cut = std::string::npos;
        for (const auto& s : stops_) cut = std::min(cut, buf_.find(s));
        if (cut != std::string::npos) {
            hit = true;
            std::string out = buf_.substr(0, cut);
            buf_.clear();
            return out;
        }
        // Keep the longest suffix that is a prefix of some stop string.
        size_t keep = 0;
        for (const auto& s : stops_) {
            for (size_t k = std::min(s.size() - 1, buf_.size()); k > keep; --k) {
                if (buf_.compare(buf_.size() - k, k, s, 0, k) == 0) {
                    keep = k;
                    break;
                }
            }
        }
        std::string out = buf_.substr(0, buf_.size() - keep);
        buf_.erase(0, buf_.size() - keep);
        return out;
    }
    // Whatever is held (at the end of the stream, when no stop string completed).
    std::string flush() { return std::exchange(buf_, {}); }

  private:
    std::vector<std::string> stops_;
    std::string buf_;
};

}  // namespace bitnet
