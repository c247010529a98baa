// A small HTTP client over libcurl for the hub: one request at a time, no automatic
// redirects (the caller decides where the token may go), headers collected with lower-case
// names, bodies either kept (bounded) or handed to a sink as they arrive.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace bitnet::hub {

// The request never produced an HTTP status (refused, reset, timed out, dropped mid-body).
class TransportError : public std::runtime_error {
  public:
    TransportError(const std::string& what, bool transient, bool write_failed,
                   bool too_large = false, bool timed_out = false)
        : std::runtime_error(what),
          transient_(transient),
          write_failed_(write_failed),
          too_large_(too_large),
          timed_out_(timed_out) {}
    bool transient() const { return transient_; }
    // The sink refused the bytes (disk full): never retried.
    bool write_failed() const { return write_failed_; }
    // The body was over the caller's limit (a hostile or broken server).
    bool too_large() const { return too_large_; }
    // The request's time limit (HttpRequest::timeout_seconds) ran out.
    bool timed_out() const { return timed_out_; }

  private:
    bool transient_;
    bool write_failed_;
    bool too_large_;
    bool timed_out_;
};

struct HttpRequest {
    std::string method = "GET";  // GET or HEAD
    std::string url;
    std::vector<std::string> headers;  // "Name: value"
    uint64_t range_from = 0;           // > 0: "Range: bytes=N-"
    long timeout_seconds = 0;          // > 0: the whole request, else only stalls fail
};

struct HttpResponse {
    long status = 0;
    std::map<std::string, std::string> headers;  // lower-case names, last value wins
    std::string body;                            // when no sink was given
    std::string header(const std::string& name) const {
        auto it = headers.find(name);
        return it == headers.end() ? std::string() : it->second;
    }
};

// Receives body bytes of a 2xx response with its status (200, or 206 for a range); returns
// false to abort (the transfer then fails with write_failed()).
using BodySink = std::function<bool(long status, const char* data, size_t size)>;

// Performs one request. Without a sink, bodies over `max_body` bytes are an error. With a sink,
// only 2xx bodies go to it; other statuses keep their (bounded) body in `body`.
HttpResponse http_request(const HttpRequest& request, const BodySink* sink,
                          size_t max_body = 64u << 20);

// "scheme://host[:port]" of an absolute URL (lower-cased host), "" when it has none.
std::string url_origin(const std::string& url);
// Resolves a Location header against the URL it answered.
std::string resolve_url(const std::string& base, const std::string& location);
// Percent-encodes one path segment (RFC 3986 unreserved characters stay).
std::string escape_segment(const std::string& s);

}  // namespace bitnet::hub
