// Downloads from the Hugging Face hub into the cache huggingface_hub itself uses, so that
// files other tools downloaded are reused and ours are theirs.
//
// Cache layout (huggingface_hub's "file_download" module, which defines it):
//   CACHE/models--ORG--NAME/blobs/ETAG                 the file's bytes; ETAG is the file's
//                                                      sha256 (LFS files) or its git blob SHA-1
//   CACHE/models--ORG--NAME/blobs/ETAG.incomplete      a partial download, resumed by Range
//   CACHE/models--ORG--NAME/refs/REVISION              the commit a branch or tag pointed to
//   CACHE/models--ORG--NAME/snapshots/COMMIT/PATH      relative symlink to ../../blobs/ETAG
//   CACHE/.locks/models--ORG--NAME/ETAG.lock           held (flock) while a blob is written
// CACHE is $HF_HUB_CACHE, else $HF_HOME/hub, else $XDG_CACHE_HOME/huggingface/hub, else
// ~/.cache/huggingface/hub.
//
// Protocol (the hub's public HTTP API, as huggingface_hub speaks it):
//   GET  ENDPOINT/api/models/REPO/revision/REV   -> {"sha": COMMIT, "siblings": [{"rfilename"}]}
//   HEAD ENDPOINT/REPO/resolve/REV/PATH          -> X-Repo-Commit, ETag or X-Linked-Etag,
//        Content-Length or X-Linked-Size, and for large (LFS) files a redirect to a storage
//        host; the bearer token (HF_TOKEN) is sent to the hub, never to another host.
// Downloads retry with exponential backoff on 5xx, 429 and dropped connections, resuming with
// a Range request; a complete file's sha256 (64-hex ETag) or git blob SHA-1 (40-hex ETag) must
// match, otherwise it is deleted and the call fails.
//
// Errors: bitnet::Error naming the repository, file and what went wrong (not found, 401/403
// with a hint about HF_TOKEN, unreachable host, disk full, checksum mismatch);
// bitnet::NotSupported for split GGUF files.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace bitnet::hub {

struct HubOptions {
    std::string endpoint = "https://huggingface.co";  // no trailing slash
    std::string token;                                // empty: anonymous
    std::filesystem::path cache_dir;                  // the hub cache (see above)
    bool offline = false;                             // the cache only, no network at all
    std::string revision = "main";                    // branch, tag or commit
    bool progress = false;                            // a progress line on stderr
    int max_attempts = 5;                             // per request, transient failures
    long metadata_timeout_seconds = 10;               // file list and HEAD (HF_HUB_ETAG_TIMEOUT)
    double backoff_seconds = 0.5;                     // first wait; doubles, at most 8 s
    // Informational lines ("downloading ...", "resuming ..."); none when empty.
    std::function<void(const std::string&)> log;
};

// HF_ENDPOINT, HF_TOKEN (else the file HF_TOKEN_PATH or HF_HOME/token), the cache directory
// as above, HF_HUB_OFFLINE=1, HF_HUB_ETAG_TIMEOUT (seconds for a metadata request; a hub that
// does not answer in time counts as unreachable, and the cache serves what it has).
HubOptions options_from_environment();

// "ORG/NAME[:TAG]" (or "NAME[:TAG]", as the hub's oldest repositories are named). The name is
// checked (letters, digits, '-', '_', '.'; no '..' or '--', at most one '/'), so it can name a
// cache folder safely.
struct ModelRef {
    std::string repo;
    std::string tag;  // empty when none
};
ModelRef parse_model_ref(std::string_view spec);

struct PullResult {
    std::string repo;
    std::string commit;
    // A GGUF repository: the chosen file's snapshot path. A safetensors repository: the
    // snapshot folder holding what `bitnet convert` reads.
    std::filesystem::path path;
    bool gguf = false;
    std::vector<std::filesystem::path> files;  // every file fetched or found in the cache
    uint64_t bytes_downloaded = 0;             // 0 when everything came from the cache
};

// Fetches a model. With `file`, exactly that file. Otherwise a GGUF repository gives the file
// the tag names (case-insensitive substring of the file name; the only GGUF when there is no
// tag; an error listing the choices when that is ambiguous), and a safetensors repository
// gives config.json, the tokenizer files, generation_config.json and the weights (sharded or
// not).
PullResult pull(const ModelRef& ref, const std::optional<std::string>& file,
                const HubOptions& options);

// What -hf resolves to: pull() of a GGUF file (from the cache when it is there). A repository
// without one, or a --file that is not one, is an error before anything is downloaded.
std::filesystem::path resolve_gguf(const ModelRef& ref, const std::optional<std::string>& file,
                                   const HubOptions& options);

struct CachedFile {
    std::string path;  // inside the snapshot
    uint64_t bytes = 0;
    bool missing = false;  // the snapshot's link points at no blob
};
struct CachedRepo {
    std::string repo;                    // ORG/NAME
    uint64_t bytes = 0;                  // all blobs, partial downloads included
    uint64_t partial_bytes = 0;          // .incomplete blobs
    std::vector<std::string> revisions;  // refs/*, as "main -> 1a2b3c4"
    std::vector<std::string> commits;    // snapshots/*
    std::vector<CachedFile> files;       // of every snapshot, deduplicated by path
};
// Model repositories in the cache, sorted by name; an absent cache is empty.
std::vector<CachedRepo> list_cache(const std::filesystem::path& cache_dir);

// "512 B", "3.2 KiB", "16.5 MiB", "1.10 GiB".
std::string human_size(uint64_t bytes);

}  // namespace bitnet::hub
