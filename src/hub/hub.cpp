#include "bitnet/hub.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <regex>
#include <set>
#include <thread>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "bitnet/error.h"
#include "core/sys_error.h"
#include "hub/digest.h"
#include "hub/http.h"

namespace bitnet::hub {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string lower(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return s;
}

std::string env(const char* name) {
    const char* v = std::getenv(name);
    return v == nullptr ? std::string() : std::string(v);
}

std::string trim(std::string s) {
    const auto not_space = [](unsigned char c) { return !std::isspace(c); };
    s.erase(s.begin(), std::find_if(s.begin(), s.end(), not_space));
    s.erase(std::find_if(s.rbegin(), s.rend(), not_space).base(), s.end());
    return s;
}

bool is_hex(const std::string& s, size_t n) {
    return s.size() == n && std::all_of(s.begin(), s.end(), [](unsigned char c) {
               return std::isdigit(c) || (c >= 'a' && c <= 'f');
           });
}

bool name_char(unsigned char c) {
    return std::isalnum(c) || c == '-' || c == '_' || c == '.';
}

// A path inside a repository, as the hub lists it: relative, '/'-separated, no '.' or '..'
// components (it becomes a path under snapshots/).
bool safe_repo_path(const std::string& p) {
    if (p.empty() || p.size() > 1024 || p.front() == '/' || p.find('\\') != std::string::npos ||
        p.find('\0') != std::string::npos)
        return false;
    size_t start = 0;
    for (;;) {
        const size_t end = p.find('/', start);
        const std::string part = p.substr(start, end == std::string::npos ? end : end - start);
        if (part.empty() || part == "." || part == "..") return false;
        if (end == std::string::npos) return true;
        start = end + 1;
    }
}

// A revision becomes a file under refs/: branch and tag names (possibly with '/', as in
// refs/pr/1), never '..' or an absolute path.
void check_revision(const std::string& rev) {
    const bool ok = !rev.empty() && rev.size() <= 256 && safe_repo_path(rev) &&
                    std::all_of(rev.begin(), rev.end(),
                                [](unsigned char c) { return name_char(c) || c == '/'; });
    if (!ok) throw Error("invalid revision '" + rev + "'");
}

std::string repo_folder(const std::string& repo) {
    std::string out = "models--";
    for (char c : repo) {
        if (c == '/')
            out += "--";
        else
            out += c;
    }
    return out;
}

std::string url_path(const std::string& path) {
    std::string out;
    size_t start = 0;
    for (;;) {
        const size_t end = path.find('/', start);
        out += escape_segment(path.substr(start, end == std::string::npos ? end : end - start));
        if (end == std::string::npos) return out;
        out += '/';
        start = end + 1;
    }
}

bool ends_with_ci(const std::string& s, const std::string& suffix) {
    return s.size() >= suffix.size() && lower(s.substr(s.size() - suffix.size())) == suffix;
}

std::string base_name(const std::string& path) {
    const size_t slash = path.rfind('/');
    return slash == std::string::npos ? path : path.substr(slash + 1);
}

std::string list_choices(const std::vector<std::string>& files) {
    std::string out;
    for (const std::string& f : files) out += "\n  " + f;
    return out;
}

std::string human_bytes(double b) {
    if (b >= 1024.0 * 1024 * 1024) return fmt::format("{:.2f} GiB", b / (1024.0 * 1024 * 1024));
    if (b >= 1024.0 * 1024) return fmt::format("{:.1f} MiB", b / (1024.0 * 1024));
    if (b >= 1024.0) return fmt::format("{:.1f} KiB", b / 1024.0);
    return fmt::format("{:.0f} B", b);
}

// A progress line on a terminal: percentage, bytes, speed, ETA; redrawn at most 5 times a
// second.
class Progress {
  public:
    Progress(bool enabled, std::string label, uint64_t total, uint64_t start)
        : enabled_(enabled && isatty(STDERR_FILENO) != 0),
          label_(std::move(label)),
          total_(total),
          done_(start),
          resumed_(start),
          t0_(std::chrono::steady_clock::now()) {}
    ~Progress() {
        if (drawn_) std::fputs("\n", stderr);
    }
    Progress(const Progress&) = delete;
    Progress& operator=(const Progress&) = delete;
    // The server ignored a Range request: counting starts from zero again.
    void restart() {
        done_ = resumed_ = 0;
        t0_ = std::chrono::steady_clock::now();
    }
    void add(uint64_t n) {
        done_ += n;
        if (!enabled_) return;
        const auto now = std::chrono::steady_clock::now();
        if (drawn_ && now - last_ < std::chrono::milliseconds(200) && done_ != total_) return;
        last_ = now;
        drawn_ = true;
        const double secs = std::chrono::duration<double>(now - t0_).count();
        const double speed = secs > 0 ? static_cast<double>(done_ - resumed_) / secs : 0.0;
        std::string line = fmt::format("\r\033[K{}: {}", label_, human_bytes(done_));
        if (total_ > 0) {
            line += fmt::format(" / {} ({:.1f}%)", human_bytes(static_cast<double>(total_)),
                                100.0 * static_cast<double>(done_) / static_cast<double>(total_));
        }
        line += fmt::format(", {}/s", human_bytes(speed));
        if (total_ > done_ && speed > 0) {
            const auto eta = static_cast<int64_t>(static_cast<double>(total_ - done_) / speed);
            line += fmt::format(", ETA {}:{:02}:{:02}", eta / 3600, eta / 60 % 60, eta % 60);
        }
        std::fputs(line.c_str(), stderr);
        std::fflush(stderr);
    }

  private:
    bool enabled_;
    std::string label_;
    uint64_t total_, done_, resumed_;
    std::chrono::steady_clock::time_point t0_, last_;
    bool drawn_ = false;
};

// A file descriptor closed when it goes out of scope.
class UniqueFd {
  public:
    explicit UniqueFd(int fd) : fd_(fd) {}
    ~UniqueFd() {
        if (fd_ >= 0) ::close(fd_);
    }
    UniqueFd(const UniqueFd&) = delete;
    UniqueFd& operator=(const UniqueFd&) = delete;
    int get() const { return fd_; }

  private:
    int fd_;
};

// An exclusive flock held for the object's life.
class FileLock {
  public:
    FileLock(const fs::path& path, const std::function<void(const std::string&)>& log) {
        fs::create_directories(path.parent_path());
        fd_ = ::open(path.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0644);
        if (fd_ < 0) throw Error(sys_error(path.string(), "cannot create the lock file"));
        if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
            if (log)
                log("waiting for another process downloading the same file (" + path.string() +
                    ")");
            if (::flock(fd_, LOCK_EX) != 0) {
                ::close(fd_);
                throw Error(sys_error(path.string(), "cannot lock"));
            }
        }
    }
    ~FileLock() { ::close(fd_); }
    FileLock(const FileLock&) = delete;
    FileLock& operator=(const FileLock&) = delete;

  private:
    int fd_ = -1;
};

void write_text_atomically(const fs::path& path, const std::string& text) {
    fs::create_directories(path.parent_path());
    const fs::path tmp = path.string() + ".tmp" + std::to_string(::getpid());
    {
        std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
        out << text;
        if (!out.flush()) throw Error(sys_error(tmp.string(), "cannot write"));
    }
    fs::rename(tmp, path);
}

// snapshots/COMMIT/PATH -> ../../blobs/ETAG (relative, as huggingface_hub makes it).
void link_pointer(const fs::path& pointer, const fs::path& blob) {
    fs::create_directories(pointer.parent_path());
    const fs::path target = blob.lexically_relative(pointer.parent_path());
    const fs::path tmp = pointer.string() + ".tmp" + std::to_string(::getpid());
    std::error_code ec;
    fs::remove(tmp, ec);
    fs::create_symlink(target, tmp);
    fs::rename(tmp, pointer);
}

// Files under a snapshot folder, relative, '/'-separated, sorted.
std::vector<std::string> snapshot_files(const fs::path& dir) {
    std::vector<std::string> out;
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) return out;
    for (auto it = fs::recursive_directory_iterator(dir, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
        if (!it->is_directory(ec))
            out.push_back(it->path().lexically_relative(dir).generic_string());
    }
    std::sort(out.begin(), out.end());
    return out;
}

// The hub could not be reached at all (as opposed to answering with an error).
class Unreachable : public Error {
  public:
    using Error::Error;
};

bool transient_status(long s) {
    return s == 429 || s >= 500;
}

struct FileMeta {
    std::string commit;
    std::string etag;
    std::string url;  // where the bytes are (after the hub's redirect)
    uint64_t size = 0;
    bool has_size = false;
};

class Client {
  public:
    Client(const HubOptions& o, std::string repo)
        : o_(o), repo_(std::move(repo)), hub_origin_(url_origin(o.endpoint)) {
        if (hub_origin_.empty() ||
            (o.endpoint.rfind("http://", 0) != 0 && o.endpoint.rfind("https://", 0) != 0))
            throw Error("HF_ENDPOINT is not an http(s) URL: " + o.endpoint);
        repo_dir_ = o.cache_dir / repo_folder(repo_);
    }

    const fs::path& repo_dir() const { return repo_dir_; }

    // The commit the revision names and the repository's files.
    std::pair<std::string, std::vector<std::string>> list_files(const std::string& revision) {
        const std::string url = o_.endpoint + "/api/models/" + url_path(repo_) + "/revision/" +
                                escape_segment(revision);
        std::string where = url;
        HttpResponse r;
        for (int hops = 0;; ++hops) {  // a renamed repository redirects within the hub
            r = request({"GET", where, {}, 0}, repo_, true);
            if (r.status / 100 != 3) break;
            const std::string next = resolve_url(where, r.header("location"));
            if (r.header("location").empty() || !from_hub(next) || hops >= 5)
                throw Error(repo_ + ": the hub redirected the file list to " + next);
            where = next;
        }
        json j;
        try {
            j = json::parse(r.body);
        } catch (const json::exception& e) {
            throw Error(repo_ + ": the hub's file list is not valid JSON: " + e.what());
        }
        if (!j.is_object() || !j.contains("sha") || !j["sha"].is_string() ||
            !j.contains("siblings") || !j["siblings"].is_array())
            throw Error(repo_ + ": the hub's file list lacks 'sha' or 'siblings'");
        const std::string commit = j["sha"].get<std::string>();
        if (!is_hex(commit, 40)) throw Error(repo_ + ": the hub gave an invalid commit id");
        std::vector<std::string> files;
        for (const json& s : j["siblings"]) {
            if (!s.is_object() || !s.contains("rfilename") || !s["rfilename"].is_string())
                throw Error(repo_ + ": a file in the hub's list has no 'rfilename'");
            const std::string name = s["rfilename"].get<std::string>();
            if (!safe_repo_path(name))
                throw Error(repo_ + ": the hub listed an unsafe file name '" + name + "'");
            files.push_back(name);
        }
        std::sort(files.begin(), files.end());
        return {commit, files};
    }

    // The file's metadata from HEAD .../resolve/REV/PATH. Redirects within the hub (a renamed
    // repository, the hub's resolve-cache hop) are followed as huggingface_hub follows them;
    // a redirect to another host is where the bytes are.
    FileMeta head(const std::string& revision, const std::string& path) {
        std::string url = o_.endpoint + "/" + url_path(repo_) + "/resolve/" +
                          escape_segment(revision) + "/" + url_path(path);
        const std::string what = repo_ + "/" + path;
        FileMeta m;
        for (int hops = 0;; ++hops) {
            const HttpResponse r = request({"HEAD", url, {}, 0}, what, true);
            // Headers of the last response that has them (a hop may carry them, or not).
            if (!r.header("x-repo-commit").empty()) m.commit = r.header("x-repo-commit");
            const std::string etag =
                !r.header("x-linked-etag").empty() ? r.header("x-linked-etag") : r.header("etag");
            if (!etag.empty()) m.etag = normalize_etag(etag);
            // Content-Length is the size only of a 2xx answer (a redirect's is its own body's).
            const std::string size = !r.header("x-linked-size").empty() ? r.header("x-linked-size")
                                     : r.status / 100 == 2              ? r.header("content-length")
                                                                        : std::string();
            if (const auto v = parse_u64(size)) {
                m.size = *v;
                m.has_size = true;
            }
            const std::string location = r.header("location");
            if (r.status / 100 == 3 && !location.empty()) {
                const std::string next = resolve_url(url, location);
                if (url_origin(next) == hub_origin_) {
                    if (hops >= 5) throw Error(what + ": too many redirects");
                    url = next;
                    continue;
                }
                m.url = next;
            } else if (r.status / 100 == 3) {
                throw Error(what + ": the hub redirected without a Location");
            } else {
                m.url = url;
            }
            break;
        }
        if (m.etag.empty())
            throw Error(what + ": the hub sent no ETag (is HF_ENDPOINT a Hugging Face hub?)");
        if (m.etag.find_first_not_of("0123456789abcdef-_") != std::string::npos ||
            m.etag.size() > 128)
            throw Error(what + ": the hub sent an unusable ETag '" + m.etag + "'");
        if (!m.commit.empty() && !is_hex(m.commit, 40))
            throw Error(what + ": the hub sent an invalid commit id");
        return m;
    }

    // Downloads `meta` into blobs/ETAG (resuming a partial download), verifies it, links it
    // from the snapshot. Returns the bytes transferred.
    uint64_t fetch(FileMeta meta, const std::string& revision, const std::string& path,
                   const fs::path& pointer) {
        const std::string what = repo_ + "/" + path;
        const fs::path blob = repo_dir_ / "blobs" / meta.etag;
        const FileLock lock(o_.cache_dir / ".locks" / repo_folder(repo_) / (meta.etag + ".lock"),
                            o_.log);
        uint64_t got = 0;
        std::error_code ec;
        if (!fs::exists(blob, ec)) {
            fs::create_directories(blob.parent_path());
            const fs::path part = blob.string() + ".incomplete";
            got = download(meta, revision, path, part, what);
            verify(meta, part, what);
            fs::rename(part, blob);
        }
        link_pointer(pointer, blob);
        return got;
    }

  private:
    static std::string normalize_etag(std::string e) {
        if (e.rfind("W/", 0) == 0) e.erase(0, 2);
        if (e.size() >= 2 && e.front() == '"' && e.back() == '"') e = e.substr(1, e.size() - 2);
        return lower(e);
    }

    static std::optional<uint64_t> parse_u64(const std::string& s) {
        if (s.empty() || s.size() >= 20 ||
            !std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c) != 0; }))
            return std::nullopt;
        return std::stoull(s);
    }

    bool from_hub(const std::string& url) const { return url_origin(url) == hub_origin_; }

    std::vector<std::string> auth_for(const std::string& url) const {
        if (o_.token.empty() || !from_hub(url)) return {};
        return {"Authorization: Bearer " + o_.token};
    }

    void wait(int attempt, const std::string& why) const {
        const double secs =
            std::min(8.0, o_.backoff_seconds * static_cast<double>(1 << std::min(attempt - 1, 10)));
        if (o_.log) o_.log(fmt::format("{}; retrying in {:.1f} s", why, secs));
        std::this_thread::sleep_for(std::chrono::duration<double>(secs));
    }

    // An error status as an Error naming what failed; the HF_TOKEN hint only for the hub's own
    // answers (a storage host never sees the token).
    [[noreturn]] void fail(const HttpResponse& r, const std::string& what, bool hub) const {
        const std::string code = r.header("x-error-code");
        std::string msg = r.header("x-error-message");
        if (msg.empty() && !r.body.empty() && r.body.size() < 2000) {
            try {
                const json j = json::parse(r.body);
                if (j.is_object() && j.contains("error") && j["error"].is_string())
                    msg = j["error"].get<std::string>();
            } catch (const json::exception&) {
            }
        }
        std::string out = what + ": HTTP " + std::to_string(r.status);
        if (!hub) out += " from the storage host";
        if (r.status == 404) {
            out += code == "RevisionNotFound" ? " (revision '" + o_.revision + "' not found)"
                   : code == "EntryNotFound"  ? " (file not found)"
                                              : " (repository or file not found)";
        } else if (hub && (r.status == 401 || r.status == 403)) {
            out += o_.token.empty()
                       ? " (private or gated repository, or none by that name: set HF_TOKEN to "
                         "a token that has access)"
                       : " (the token in HF_TOKEN has no access to this repository; for a "
                         "gated one, accept its terms on the hub first)";
        }
        if (!msg.empty()) out += ": " + msg;
        throw Error(out);
    }

    // One request to the hub with retries on 5xx, 429 and dropped connections. Unreachable:
    // no answer at all, or only transient failures until the attempts ran out.
    HttpResponse request(const HttpRequest& base, const std::string& what,
                         bool redirects_ok = false) {
        HttpRequest req = base;
        req.timeout_seconds = o_.metadata_timeout_seconds;
        const std::vector<std::string> auth = auth_for(req.url);
        req.headers.insert(req.headers.end(), auth.begin(), auth.end());
        for (int attempt = 1;; ++attempt) {
            HttpResponse r;
            try {
                r = http_request(req, nullptr);
            } catch (const TransportError& e) {
                // A hub that does not answer in time is not asked again: the cache may serve.
                if (e.transient() && !e.timed_out() && attempt < o_.max_attempts) {
                    wait(attempt, what + ": " + e.what());
                    continue;
                }
                if (e.too_large()) throw Error(what + ": " + e.what());
                throw Unreachable(what + ": cannot reach " + o_.endpoint + ": " + e.what());
            }
            if (transient_status(r.status)) {
                if (attempt < o_.max_attempts) {
                    wait(attempt, what + ": HTTP " + std::to_string(r.status));
                    continue;
                }
                throw Unreachable(fmt::format("{}: {} answered HTTP {} {} times", what, o_.endpoint,
                                              r.status, attempt));
            }
            if (r.status / 100 == 2 || (redirects_ok && r.status / 100 == 3)) return r;
            fail(r, what, from_hub(req.url));
        }
    }

    // Fetches meta.url into `part`, resuming what is there. A round ends with the whole file,
    // or a failure: transient ones (dropped connections, 5xx, a short transfer) are retried
    // with backoff, the count starting afresh whenever the file grew past its largest size so
    // far; everything else is an error. At most 1000 rounds in any case.
    uint64_t download(FileMeta& meta, const std::string& revision, const std::string& path,
                      const fs::path& part, const std::string& what) {
        uint64_t transferred = 0, best = 0;
        int attempt = 1;
        bool refreshed = false;
        for (int round = 0; round < 1000; ++round) {
            std::error_code ec;
            uint64_t have = fs::exists(part, ec) ? fs::file_size(part) : 0;
            if (meta.has_size && have > meta.size) {
                fs::remove(part);
                have = 0;
            }
            if (meta.has_size && have == meta.size && have > 0) return transferred;
            if (have > 0 && o_.log)
                o_.log(fmt::format(
                    "{}: resuming at {} of {}", what, human_bytes(static_cast<double>(have)),
                    meta.has_size ? human_bytes(static_cast<double>(meta.size)) : "?"));
            const UniqueFd fd(::open(part.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
            if (fd.get() < 0) throw Error(sys_error(part.string(), "cannot create"));
            if (::lseek(fd.get(), static_cast<off_t>(have), SEEK_SET) < 0)
                throw Error(sys_error(part.string(), "cannot seek"));
            Progress progress(o_.progress, base_name(what), meta.has_size ? meta.size : 0, have);
            int write_errno = 0;
            uint64_t this_round = 0;
            bool first = true;
            std::string range_problem;
            const BodySink sink = [&](long status, const char* data, size_t n) {
                if (first) {
                    first = false;
                    if (status == 200 && have > 0) {  // the range was ignored: start over
                        if (::ftruncate(fd.get(), 0) != 0 || ::lseek(fd.get(), 0, SEEK_SET) != 0) {
                            write_errno = errno;
                            return false;
                        }
                        if (o_.log) o_.log(what + ": the server ignored the Range; starting over");
                        have = 0;
                        progress.restart();
                    }
                }
                while (n > 0) {
                    const ssize_t w = ::write(fd.get(), data, n);
                    if (w < 0) {
                        if (errno == EINTR) continue;
                        write_errno = errno;
                        return false;
                    }
                    data += w;
                    n -= static_cast<size_t>(w);
                    this_round += static_cast<uint64_t>(w);
                    progress.add(static_cast<uint64_t>(w));
                }
                return true;
            };
            // The storage host may redirect again (never with the token, unless back to the hub).
            std::string url = meta.url;
            HttpResponse r;
            std::string failure;
            bool transient = false;
            for (int hops = 0;; ++hops) {
                try {
                    r = http_request({"GET", url, auth_for(url), have}, &sink);
                } catch (const TransportError& e) {
                    if (e.write_failed() && write_errno != 0) {
                        std::string msg = fmt::format("{}: cannot write {}: {}", what,
                                                      part.string(), std::strerror(write_errno));
                        if (write_errno == ENOSPC || write_errno == EFBIG || write_errno == EDQUOT)
                            msg +=
                                " (disk full or file size limit; the partial download is "
                                "kept and the next pull resumes it)";
                        throw Error(msg);
                    }
                    failure = e.what();
                    transient = e.transient();
                }
                if (!failure.empty() || r.status / 100 != 3 || r.header("location").empty()) break;
                if (hops >= 5) throw Error(what + ": too many redirects");
                url = resolve_url(url, r.header("location"));
            }
            if (::fsync(fd.get()) != 0 && failure.empty())
                throw Error(sys_error(part.string(), "cannot write"));
            transferred += this_round;
            if (failure.empty() && r.status == 206) {
                // The answer must start where the partial file ends.
                const std::string cr = r.header("content-range");
                const std::string expect = "bytes " + std::to_string(have) + "-";
                if (cr.rfind(expect, 0) != 0) {
                    fs::remove(part);
                    failure = "the server answered the Range request with '" + cr + "'";
                    transient = true;
                }
            }
            if (failure.empty() && r.status / 100 == 2) {
                const uint64_t size = fs::file_size(part);
                if (!meta.has_size) return transferred;
                if (size == meta.size) return transferred;
                if (size > meta.size) {
                    fs::remove(part);
                    throw Error(
                        fmt::format("{}: the server sent {} bytes, the hub said {}; the "
                                    "download was deleted",
                                    what, size, meta.size));
                }
                failure = fmt::format("the transfer ended at {} of {} bytes", size, meta.size);
                transient = true;
            }
            if (failure.empty() && r.status == 416) {
                // Nothing left to send: complete if the server's total is what we have.
                const std::string cr = r.header("content-range");
                const size_t slash = cr.rfind('/');
                const auto total =
                    slash == std::string::npos ? std::nullopt : parse_u64(cr.substr(slash + 1));
                if (total && *total == have) {
                    meta.size = have;
                    meta.has_size = true;
                    return transferred;
                }
                fs::remove(part);
                failure = "HTTP 416 (range not satisfiable); starting over";
                transient = true;
            }
            if (failure.empty() && !from_hub(url) && !refreshed &&
                (r.status == 401 || r.status == 403 || r.status == 404)) {
                // A signed storage URL that expired while we resumed: ask the hub again.
                refreshed = true;
                const FileMeta fresh = head(revision, path);
                if (fresh.etag != meta.etag)
                    throw Error(what + ": the file changed on the hub during the download");
                meta.url = fresh.url;
                continue;
            }
            if (failure.empty()) {
                if (!transient_status(r.status)) fail(r, what, from_hub(url));
                failure = "HTTP " + std::to_string(r.status);
                transient = true;
            }
            const uint64_t now = fs::exists(part, ec) ? fs::file_size(part) : 0;
            if (now > best) {
                best = now;
                attempt = 1;
            }
            if (!transient || attempt >= o_.max_attempts) {
                throw Error(fmt::format("{}: download failed: {}{}", what, failure,
                                        fs::exists(part, ec) ? " (the partial download is kept; "
                                                               "pull again to resume)"
                                                             : ""));
            }
            wait(attempt, fmt::format("{}: {}", what, failure));
            ++attempt;
        }
        throw Error(what + ": download failed: no progress after 1000 rounds");
    }

    void verify(const FileMeta& meta, const fs::path& part, const std::string& what) const {
        const uint64_t size = fs::file_size(part);
        if (meta.has_size && size != meta.size) {
            fs::remove(part);
            throw Error(
                fmt::format("{}: {} bytes downloaded, the hub said {}; the download was "
                            "deleted",
                            what, size, meta.size));
        }
        std::string kind, got;
        if (is_hex(meta.etag, 64)) {
            kind = "sha256";
            got = sha256_file(part);
        } else if (is_hex(meta.etag, 40)) {
            kind = "git blob SHA-1";
            got = git_blob_sha1_file(part);
        } else {
            if (o_.log)
                o_.log(what +
                       ": the ETag is neither a sha256 nor a git SHA-1; only the size "
                       "was checked");
            return;
        }
        if (got != meta.etag) {
            fs::remove(part);
            throw Error(what + ": " + kind + " mismatch: expected " + meta.etag + ", got " + got +
                        "; the download was deleted");
        }
    }

    const HubOptions& o_;
    std::string repo_;
    std::string hub_origin_;
    fs::path repo_dir_;
};

bool is_gguf(const std::string& f) {
    return ends_with_ci(f, ".gguf");
}

// The GGUF file a tag names (see pull()).
std::string choose_gguf(const std::vector<std::string>& files, const std::string& repo,
                        const std::string& tag) {
    std::vector<std::string> ggufs;
    for (const std::string& f : files) {
        if (is_gguf(f)) ggufs.push_back(f);
    }
    if (ggufs.empty()) throw Error(repo + " has no GGUF file");
    std::vector<std::string> hits;
    if (tag.empty()) {
        hits = ggufs;
    } else {
        const std::string t = lower(tag);
        for (const std::string& f : ggufs) {
            if (lower(base_name(f)).find(t) != std::string::npos) hits.push_back(f);
        }
        if (hits.size() > 1) {  // prefer a name that ends with the tag ("...-I2_S.gguf")
            std::vector<std::string> exact;
            for (const std::string& f : hits) {
                const std::string b = lower(base_name(f));
                const std::string stem = b.substr(0, b.size() - 5);
                if (stem.size() >= t.size() &&
                    stem.compare(stem.size() - t.size(), t.size(), t) == 0 &&
                    (stem.size() == t.size() ||
                     !std::isalnum(static_cast<unsigned char>(stem[stem.size() - t.size() - 1]))))
                    exact.push_back(f);
            }
            if (exact.size() == 1) hits = exact;
        }
        if (hits.empty())
            throw Error(repo + " has no GGUF file matching '" + tag +
                        "'; its GGUF files are:" + list_choices(ggufs));
    }
    if (hits.size() > 1)
        throw Error(repo + " has several GGUF files" +
                    (tag.empty() ? std::string() : " matching '" + tag + "'") +
                    "; choose one with " + repo + ":TAG or --file:" + list_choices(hits));
    static const std::regex split(R"(-\d{5}-of-\d{5}\.gguf$)", std::regex::icase);
    if (std::regex_search(hits[0], split))
        throw NotSupported(repo + "/" + hits[0] + ": split GGUF files");
    return hits[0];
}

// What `bitnet convert` reads from a safetensors repository.
std::vector<std::string> convert_inputs(const std::vector<std::string>& files,
                                        const std::string& repo) {
    const std::set<std::string> have(files.begin(), files.end());
    if (!have.count("config.json"))
        throw Error(repo +
                    " has neither a GGUF file nor a config.json (not a model repository "
                    "bitnet can use); its files are:" +
                    list_choices(files));
    std::vector<std::string> out;
    for (const char* f :
         {"config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
          "special_tokens_map.json", "chat_template.jinja", "model.safetensors.index.json"}) {
        if (have.count(f)) out.emplace_back(f);
    }
    return out;
}

// The shards model.safetensors.index.json names, or the single model.safetensors.
std::vector<std::string> weight_files(const std::vector<std::string>& files, const fs::path& index,
                                      const std::string& repo) {
    std::vector<std::string> out;
    if (!index.empty()) {
        std::ifstream in(index);
        json j;
        try {
            j = json::parse(in);
        } catch (const json::exception& e) {
            throw Error(index.string() + ": not valid JSON: " + e.what());
        }
        if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object())
            throw Error(index.string() + ": no 'weight_map' object");
        std::set<std::string> shards;
        for (const auto& [name, shard] : j["weight_map"].items()) {
            if (!shard.is_string() || !safe_repo_path(shard.get<std::string>()))
                throw Error(index.string() + ": tensor '" + name + "' names an invalid shard");
            shards.insert(shard.get<std::string>());
        }
        out.assign(shards.begin(), shards.end());
        return out;
    }
    if (std::find(files.begin(), files.end(), "model.safetensors") != files.end())
        return {"model.safetensors"};
    throw Error(repo +
                " has no model.safetensors or model.safetensors.index.json; its files "
                "are:" +
                list_choices(files));
}

// -hf needs a GGUF file: say so from the file list, before anything is downloaded.
void check_gguf_wanted(const std::vector<std::string>& files, const ModelRef& ref,
                       const std::optional<std::string>& file, bool gguf_only) {
    const bool any_gguf = std::any_of(files.begin(), files.end(), is_gguf);
    if (!file && !ref.tag.empty() && !any_gguf)
        throw Error(ref.repo + " has no GGUF file for the tag ':" + ref.tag +
                    "' to pick (a Hugging Face checkpoint: pull it without a tag)");
    if (!gguf_only) return;
    if (file && !is_gguf(*file)) throw Error(ref.repo + "/" + *file + " is not a GGUF file");
    if (!file && !any_gguf)
        throw Error(ref.repo + " is a Hugging Face checkpoint, not GGUF: run `bitnet pull " +
                    ref.repo +
                    "`, then `bitnet convert FOLDER -o model.gguf` with the folder "
                    "it prints");
}

// Everything from the cache: refs/REVISION (or a commit id) to the snapshot.
PullResult pull_offline(const ModelRef& ref, const std::optional<std::string>& file,
                        const HubOptions& o, const std::string& why_offline, bool gguf_only) {
    const fs::path repo_dir = o.cache_dir / repo_folder(ref.repo);
    // An interrupted download is worth a hint.
    std::string why = why_offline;
    std::error_code dir_ec;
    for (const auto& b : fs::directory_iterator(repo_dir / "blobs", dir_ec)) {
        if (b.path().extension() == ".incomplete") {
            why += "; a download of it was interrupted: pull without --offline to resume it";
            break;
        }
    }
    std::string commit = o.revision;
    if (!is_hex(commit, 40)) {
        std::ifstream in(repo_dir / "refs" / o.revision);
        if (!in || !std::getline(in, commit) || !is_hex(trim(commit), 40))
            throw Error(ref.repo + " (revision " + o.revision + ") is not in the cache " +
                        o.cache_dir.string() + why);
        commit = trim(commit);
    }
    const fs::path snap = repo_dir / "snapshots" / commit;
    const std::vector<std::string> files = snapshot_files(snap);
    if (files.empty() && !file)
        throw Error(ref.repo + " (revision " + o.revision + ") has no files in the cache " +
                    o.cache_dir.string() + why);
    check_gguf_wanted(files, ref, file, gguf_only);
    PullResult r;
    r.repo = ref.repo;
    r.commit = commit;
    auto need = [&](const std::string& f) {
        fs::path p = snap / f;
        std::error_code ec;
        if (!fs::exists(p, ec))
            throw Error(ref.repo + "/" + f + " is not in the cache " + o.cache_dir.string() + why);
        r.files.push_back(p);
        return p;
    };
    if (file) {
        if (!safe_repo_path(*file)) throw Error("invalid file path '" + *file + "'");
        r.path = need(*file);
        r.gguf = is_gguf(*file);
        return r;
    }
    if (std::any_of(files.begin(), files.end(), is_gguf)) {
        r.path = need(choose_gguf(files, ref.repo, ref.tag));
        r.gguf = true;
        return r;
    }
    std::vector<std::string> want = convert_inputs(files, ref.repo);
    fs::path index;
    for (const std::string& f : want) {
        const fs::path p = need(f);
        if (f == "model.safetensors.index.json") index = p;
    }
    for (const std::string& f : weight_files(files, index, ref.repo)) need(f);
    r.path = snap;
    return r;
}

}  // namespace

HubOptions options_from_environment() {
    HubOptions o;
    std::string endpoint = env("HF_ENDPOINT");
    while (!endpoint.empty() && endpoint.back() == '/') endpoint.pop_back();
    if (!endpoint.empty()) o.endpoint = endpoint;
    const std::string home = env("HOME");
    if (home.empty() && env("HF_HOME").empty() && env("XDG_CACHE_HOME").empty() &&
        env("HF_HUB_CACHE").empty())
        throw Error("no cache directory: set HF_HUB_CACHE, HF_HOME or HOME");
    const std::string hf_home = !env("HF_HOME").empty() ? env("HF_HOME")
                                : !env("XDG_CACHE_HOME").empty()
                                    ? env("XDG_CACHE_HOME") + "/huggingface"
                                    : home + "/.cache/huggingface";
    o.token = trim(env("HF_TOKEN"));
    if (o.token.empty()) o.token = trim(env("HUGGING_FACE_HUB_TOKEN"));
    if (o.token.empty()) {
        std::ifstream in(!env("HF_TOKEN_PATH").empty() ? env("HF_TOKEN_PATH") : hf_home + "/token");
        std::string t;
        if (in && std::getline(in, t)) o.token = trim(t);
    }
    o.cache_dir =
        !env("HF_HUB_CACHE").empty() ? fs::path(env("HF_HUB_CACHE")) : fs::path(hf_home) / "hub";
    const std::string off = lower(env("HF_HUB_OFFLINE"));
    o.offline = off == "1" || off == "on" || off == "yes" || off == "true";
    const std::string timeout = env("HF_HUB_ETAG_TIMEOUT");
    if (!timeout.empty()) {
        char* end = nullptr;
        const long v = std::strtol(timeout.c_str(), &end, 10);
        if (end == timeout.c_str() || *end != 0 || v <= 0 || v > 3600)
            throw Error("HF_HUB_ETAG_TIMEOUT '" + timeout +
                        "' is not a number of seconds (1-3600)");
        o.metadata_timeout_seconds = v;
    }
    return o;
}

ModelRef parse_model_ref(std::string_view spec) {
    ModelRef r;
    const size_t colon = spec.find(':');
    r.repo = std::string(spec.substr(0, colon));
    if (colon != std::string_view::npos) r.tag = std::string(spec.substr(colon + 1));
    const std::string bad = "invalid model '" + std::string(spec) +
                            "': expected ORG/NAME[:TAG] (for example "
                            "microsoft/bitnet-b1.58-2B-4T-gguf)";
    // ORG/NAME, or NAME alone (the hub's oldest repositories: gpt2, bert-base-uncased).
    const size_t slash = r.repo.find('/');
    if (r.repo.empty() || r.repo.size() > 200 ||
        (slash != std::string::npos && r.repo.find('/', slash + 1) != std::string::npos))
        throw Error(bad);
    const std::vector<std::string> parts =
        slash == std::string::npos
            ? std::vector<std::string>{r.repo}
            : std::vector<std::string>{r.repo.substr(0, slash), r.repo.substr(slash + 1)};
    for (const std::string& part : parts) {
        if (part.empty() ||
            !std::all_of(part.begin(), part.end(), [](unsigned char c) { return name_char(c); }) ||
            part.find("..") != std::string::npos || part.find("--") != std::string::npos ||
            part.front() == '.' || part.front() == '-')
            throw Error(bad);
    }
    if (colon != std::string_view::npos &&
        (r.tag.empty() ||
         !std::all_of(r.tag.begin(), r.tag.end(), [](unsigned char c) { return name_char(c); })))
        throw Error(bad);
    return r;
}

namespace {

PullResult pull_impl(const ModelRef& ref, const std::optional<std::string>& file,
                     const HubOptions& o, bool gguf_only) {
    check_revision(o.revision);
    if (file && !safe_repo_path(*file)) throw Error("invalid file path '" + *file + "'");
    if (file && !ref.tag.empty())
        throw Error("give a tag (" + ref.repo + ":" + ref.tag + ") or a file (--file " + *file +
                    "), not both");
    if (o.offline) {
        return pull_offline(ref, file, o, " (offline: HF_HUB_OFFLINE or --offline)", gguf_only);
    }

    Client client(o, ref.repo);
    std::string commit;
    std::vector<std::string> files;
    try {
        std::tie(commit, files) = client.list_files(o.revision);
    } catch (const Unreachable& e) {
        // Unreachable hub: what the cache has for this revision still serves.
        PullResult r;
        try {
            r = pull_offline(ref, file, o, "", gguf_only);
        } catch (const Error& inner) {
            throw Error(std::string(e.what()) +
                        "; and the cache cannot serve it either: " + inner.what());
        }
        if (o.log) o.log(std::string(e.what()) + "; using the cached copy");
        return r;
    }
    check_gguf_wanted(files, ref, file, gguf_only);
    const fs::path snap = client.repo_dir() / "snapshots" / commit;
    // refs/REVISION once files are stored (a failed pull leaves no model behind in `ls`).
    const auto write_ref = [&] {
        if (o.revision != commit)
            write_text_atomically(client.repo_dir() / "refs" / o.revision, commit);
    };
    PullResult r;
    r.repo = ref.repo;
    r.commit = commit;
    auto get = [&](const std::string& f) {
        fs::path pointer = snap / f;
        std::error_code ec;
        if (fs::exists(pointer, ec)) {  // a commit's files never change
            r.files.push_back(pointer);
            return pointer;
        }
        const FileMeta meta = client.head(commit, f);
        if (!meta.commit.empty() && meta.commit != commit && o.log)
            o.log(ref.repo + "/" + f + ": the hub answered for commit " + meta.commit);
        if (o.log) {
            o.log(fmt::format("{}/{}: {}", ref.repo, f,
                              meta.has_size ? human_bytes(static_cast<double>(meta.size))
                                            : std::string("size unknown")));
        }
        r.bytes_downloaded += client.fetch(meta, commit, f, pointer);
        r.files.push_back(pointer);
        return pointer;
    };
    if (file) {
        if (std::find(files.begin(), files.end(), *file) == files.end())
            throw Error(ref.repo + " has no file '" + *file +
                        "'; its files are:" + list_choices(files));
        r.path = get(*file);
        r.gguf = is_gguf(*file);
        write_ref();
        return r;
    }
    if (std::any_of(files.begin(), files.end(), is_gguf)) {
        r.path = get(choose_gguf(files, ref.repo, ref.tag));
        r.gguf = true;
        write_ref();
        return r;
    }
    fs::path index;
    for (const std::string& f : convert_inputs(files, ref.repo)) {
        const fs::path p = get(f);
        if (f == "model.safetensors.index.json") index = p;
    }
    for (const std::string& f : weight_files(files, index, ref.repo)) {
        if (std::find(files.begin(), files.end(), f) == files.end())
            throw Error(ref.repo + ": the index names '" + f + "', which the repository lacks");
        get(f);
    }
    r.path = snap;
    write_ref();
    return r;
}

}  // namespace

PullResult pull(const ModelRef& ref, const std::optional<std::string>& file, const HubOptions& o) {
    return pull_impl(ref, file, o, false);
}

std::string human_size(uint64_t bytes) {
    return human_bytes(static_cast<double>(bytes));
}

fs::path resolve_gguf(const ModelRef& ref, const std::optional<std::string>& file,
                      const HubOptions& options) {
    return pull_impl(ref, file, options, true).path;
}

std::vector<CachedRepo> list_cache(const fs::path& cache_dir) {
    std::vector<CachedRepo> out;
    std::error_code ec;
    if (!fs::is_directory(cache_dir, ec)) return out;
    for (const auto& entry : fs::directory_iterator(cache_dir, ec)) {
        const std::string name = entry.path().filename().string();
        if (name.rfind("models--", 0) != 0 || !entry.is_directory(ec)) continue;
        CachedRepo repo;
        repo.repo = name.substr(8);
        const size_t sep = repo.repo.find("--");
        if (sep != std::string::npos) repo.repo.replace(sep, 2, "/");
        for (const auto& b : fs::directory_iterator(entry.path() / "blobs", ec)) {
            if (!b.is_regular_file(ec)) continue;
            const uint64_t size = b.file_size(ec);
            if (ec) continue;
            repo.bytes += size;
            if (b.path().extension() == ".incomplete") repo.partial_bytes += size;
        }
        ec.clear();
        const fs::path refs = entry.path() / "refs";
        for (const std::string& r : snapshot_files(refs)) {
            std::ifstream in(refs / r);
            std::string c;
            std::getline(in, c);
            repo.revisions.push_back(r + " -> " + trim(c).substr(0, 7));
        }
        std::set<std::string> seen;
        for (const auto& s : fs::directory_iterator(entry.path() / "snapshots", ec)) {
            repo.commits.push_back(s.path().filename().string());
            for (const std::string& f : snapshot_files(s.path())) {
                if (!seen.insert(f).second) continue;
                std::error_code fe;
                const uint64_t size = fs::file_size(s.path() / f, fe);
                repo.files.push_back({f, fe ? 0 : size, static_cast<bool>(fe)});
            }
        }
        ec.clear();
        std::sort(repo.commits.begin(), repo.commits.end());
        std::sort(repo.files.begin(), repo.files.end(),
                  [](const CachedFile& a, const CachedFile& b) { return a.path < b.path; });
        out.push_back(std::move(repo));
    }
    std::sort(out.begin(), out.end(),
              [](const CachedRepo& a, const CachedRepo& b) { return a.repo < b.repo; });
    return out;
}

}  // namespace bitnet::hub
