#include "hub/http.h"

#include <algorithm>
#include <cctype>
#include <exception>
#include <memory>
#include <mutex>

#include <curl/curl.h>

#include "bitnet/error.h"

namespace bitnet::hub {

namespace {

void global_init() {
    static std::once_flag once;
    std::call_once(once, [] {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
            throw Error("cannot initialise libcurl");
    });
}

struct Transfer {
    HttpResponse* response;
    const BodySink* sink;
    size_t max_body;
    CURL* curl = nullptr;
    bool sink_refused = false;
    bool too_large = false;
    std::exception_ptr error;  // thrown inside a callback, rethrown after curl returns
};

std::string lower(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return s;
}

// libcurl's callbacks are called from C: nothing may be thrown through them.
size_t on_header_impl(char* data, size_t size, size_t n, Transfer* t) {
    const std::string line(data, size * n);
    if (line.rfind("HTTP/", 0) == 0) {
        t->response->headers.clear();  // a new response (after 100 Continue)
        return size * n;
    }
    const size_t colon = line.find(':');
    if (colon != std::string::npos) {
        std::string value = line.substr(colon + 1);
        const auto not_space = [](unsigned char c) { return !std::isspace(c); };
        value.erase(value.begin(), std::find_if(value.begin(), value.end(), not_space));
        value.erase(std::find_if(value.rbegin(), value.rend(), not_space).base(), value.end());
        t->response->headers[lower(line.substr(0, colon))] = value;
    }
    return size * n;
}

size_t on_header(char* data, size_t size, size_t n, void* user) {
    auto* t = static_cast<Transfer*>(user);
    try {
        return on_header_impl(data, size, n, t);
    } catch (...) {
        t->error = std::current_exception();
        return 0;
    }
}

size_t on_body_impl(char* data, size_t size, size_t n, Transfer* t) {
    const size_t bytes = size * n;
    long status = 0;
    curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &status);
    if (t->sink != nullptr && status / 100 == 2) {
        if (!(*t->sink)(status, data, bytes)) {
            t->sink_refused = true;
            return 0;
        }
        return bytes;
    }
    if (t->response->body.size() + bytes > t->max_body) {
        t->too_large = true;
        return 0;
    }
    t->response->body.append(data, bytes);
    return bytes;
}

size_t on_body(char* data, size_t size, size_t n, void* user) {
    auto* t = static_cast<Transfer*>(user);
    try {
        return on_body_impl(data, size, n, t);
    } catch (...) {
        t->error = std::current_exception();
        return 0;
    }
}

struct CurlDeleter {
    void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct SlistDeleter {
    void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};
struct UrlDeleter {
    void operator()(CURLU* u) const { curl_url_cleanup(u); }
};

bool transient_code(CURLcode c) {
    switch (c) {
        case CURLE_PARTIAL_FILE:
        case CURLE_RECV_ERROR:
        case CURLE_SEND_ERROR:
        case CURLE_OPERATION_TIMEDOUT:
        case CURLE_GOT_NOTHING:
        case CURLE_HTTP2:
        case CURLE_HTTP2_STREAM:
        case CURLE_SSL_CONNECT_ERROR:
            return true;
        default:
            return false;
    }
}

}  // namespace

HttpResponse http_request(const HttpRequest& request, const BodySink* sink, size_t max_body) {
    global_init();
    std::unique_ptr<CURL, CurlDeleter> curl(curl_easy_init());
    if (!curl) throw Error("cannot create a libcurl handle");
    HttpResponse response;
    CURL* c = curl.get();
    Transfer transfer{&response, sink, max_body, c, false, false, nullptr};
    curl_easy_setopt(c, CURLOPT_URL, request.url.c_str());
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "bitnet/0.1.0");
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
    // A stalled transfer (under 1 byte/s for 30 s) fails and is retried.
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 30L);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &transfer);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &transfer);
    if (request.method == "HEAD") {
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    } else if (request.method != "GET") {
        throw Error("http: unsupported method " + request.method);
    }
    std::unique_ptr<curl_slist, SlistDeleter> headers;
    for (const std::string& h : request.headers) {
        curl_slist* next = curl_slist_append(headers.get(), h.c_str());
        if (next == nullptr) throw Error("http: out of memory for headers");
        (void)headers.release();
        headers.reset(next);
    }
    if (headers) curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
    const std::string range = std::to_string(request.range_from) + "-";
    if (request.range_from > 0) curl_easy_setopt(c, CURLOPT_RANGE, range.c_str());
    if (request.timeout_seconds > 0) {
        curl_easy_setopt(c, CURLOPT_TIMEOUT, request.timeout_seconds);
        curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, std::min(10L, request.timeout_seconds));
    }

    char error[CURL_ERROR_SIZE] = {};
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, error);
    const CURLcode rc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    response.status = status;
    if (transfer.error) std::rethrow_exception(transfer.error);
    if (rc != CURLE_OK) {
        if (transfer.sink_refused)
            throw TransportError(request.url + ": write failed", false, true);
        if (transfer.too_large)
            throw TransportError(
                request.url + ": response body over " + std::to_string(max_body) + " bytes", false,
                false, true);
        const std::string what = error[0] != 0 ? error : curl_easy_strerror(rc);
        throw TransportError(what, transient_code(rc), false, false,
                             rc == CURLE_OPERATION_TIMEDOUT);
    }
    return response;
}

std::string url_origin(const std::string& url) {
    global_init();
    std::unique_ptr<CURLU, UrlDeleter> u(curl_url());
    if (!u || curl_url_set(u.get(), CURLUPART_URL, url.c_str(), 0) != CURLUE_OK) return {};
    auto part = [&](CURLUPart p) {
        char* s = nullptr;
        if (curl_url_get(u.get(), p, &s, p == CURLUPART_PORT ? CURLU_DEFAULT_PORT : 0) != CURLUE_OK)
            return std::string();
        std::string out = s;
        curl_free(s);
        return out;
    };
    return lower(part(CURLUPART_SCHEME) + "://" + part(CURLUPART_HOST) + ":" +
                 part(CURLUPART_PORT));
}

std::string resolve_url(const std::string& base, const std::string& location) {
    global_init();
    std::unique_ptr<CURLU, UrlDeleter> u(curl_url());
    if (!u || curl_url_set(u.get(), CURLUPART_URL, base.c_str(), 0) != CURLUE_OK ||
        curl_url_set(u.get(), CURLUPART_URL, location.c_str(), 0) != CURLUE_OK)
        throw Error("the server redirected to an invalid URL: " + location);
    char* s = nullptr;
    if (curl_url_get(u.get(), CURLUPART_URL, &s, 0) != CURLUE_OK)
        throw Error("the server redirected to an invalid URL: " + location);
    std::string out = s;
    curl_free(s);
    return out;
}

std::string escape_segment(const std::string& s) {
    static const char* hex = "0123456789ABCDEF";
    std::string out;
    for (const unsigned char ch : s) {
        if (std::isalnum(ch) || ch == '-' || ch == '.' || ch == '_' || ch == '~') {
            out += static_cast<char>(ch);
        } else {
            out += '%';
            out += hex[ch >> 4];
            out += hex[ch & 15];
        }
    }
    return out;
}

}  // namespace bitnet::hub
