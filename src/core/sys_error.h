// The message for a failed system call on a file: "PATH: WHAT: strerror(errno)".
#pragma once

#include <cerrno>
#include <cstring>
#include <string>

namespace bitnet {

inline std::string sys_error(const std::string& path, const char* what) {
    return path + ": " + what + ": " + std::strerror(errno);
}

}  // namespace bitnet
