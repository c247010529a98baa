// Errors raised by the library. Every boundary that reads the outside world (files, user
// parameters) throws one of these with a message that names what is wrong and where.
#pragma once

#include <stdexcept>
#include <string>

namespace bitnet {

// Bad input or a failed operation; the message is complete and meant for the user.
class Error : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

// A valid request for something this build does not implement. The message starts with
// "not supported: ".
class NotSupported : public Error {
  public:
    explicit NotSupported(const std::string& what) : Error("not supported: " + what) {}
};

}  // namespace bitnet
