// `bitnet pull` (download from the Hugging Face hub into its cache), `bitnet ls` (what the
// cache holds), and the -hf options of the commands that load a model.
#include <chrono>
#include <cstdio>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "bitnet/error.h"
#include "bitnet/hub.h"
#include "cli/commands.h"

namespace bitnet::cli {

void add_hub_options(CLI::App* cmd, HubArgs& a, bool with_repo) {
    if (with_repo) {
        cmd->add_option("--hf-repo", a.repo,
                        "Model from the Hugging Face hub, ORG/NAME[:TAG] (short: -hf): the GGUF "
                        "file whose name contains TAG, from the cache or downloaded into it");
        cmd->add_option("--hf-file", a.file, "With -hf: this file of the repository (short: -hff)");
    }
    cmd->add_option("--hf-revision", a.revision, "Branch, tag or commit of the repository")
        ->capture_default_str();
    cmd->add_flag("--offline", a.offline,
                  "Use the cache only, never the network (as HF_HUB_OFFLINE=1)");
}

hub::HubOptions hub_options(const HubArgs& a) {
    hub::HubOptions o = hub::options_from_environment();
    o.offline = o.offline || a.offline;
    o.revision = a.revision;
    o.progress = true;
    o.log = [](const std::string& line) { fmt::print(stderr, "{}\n", line); };
    return o;
}

std::string model_path(const std::string& model, const HubArgs& hf) {
    if (!model.empty() && !hf.repo.empty()) throw Error("give either -m or -hf, not both");
    if (hf.repo.empty()) {
        if (!hf.file.empty()) throw Error("--hf-file needs -hf REPO");
        if (hf.revision != "main") throw Error("--hf-revision needs -hf REPO");
        if (model.empty()) throw Error("give a model with -m FILE or -hf ORG/NAME[:TAG]");
        return model;
    }
    const std::optional<std::string> file =
        hf.file.empty() ? std::nullopt : std::optional<std::string>(hf.file);
    return hub::resolve_gguf(hub::parse_model_ref(hf.repo), file, hub_options(hf)).string();
}

const std::string& model_path(const ModelArgs& a) {
    if (a.resolved.empty()) a.resolved = model_path(a.model, a.hf);
    return a.resolved;
}

void register_pull(CLI::App& app) {
    auto* cmd = app.add_subcommand(
        "pull",
        "Download a model from the Hugging Face hub into its cache (HF_HUB_CACHE, HF_HOME/hub or "
        "~/.cache/huggingface/hub); prints the local path. HF_ENDPOINT and HF_TOKEN apply");
    struct Args {
        std::string spec, file;
        HubArgs hf;
    };
    auto a = std::make_shared<Args>();
    cmd->add_option("model", a->spec,
                    "ORG/NAME[:TAG]: a GGUF repository (TAG picks the file whose name contains "
                    "it, e.g. :i2_s) or a safetensors checkpoint (for bitnet convert)")
        ->required();
    cmd->add_option("--file,--hf-file", a->file, "Exactly this file of the repository (also -hff)");
    add_hub_options(cmd, a->hf, false);
    cmd->callback([a] {
        const hub::ModelRef ref = hub::parse_model_ref(a->spec);
        const hub::HubOptions o = hub_options(a->hf);
        const auto t0 = std::chrono::steady_clock::now();
        const std::optional<std::string> file =
            a->file.empty() ? std::nullopt : std::optional<std::string>(a->file);
        const hub::PullResult r = hub::pull(ref, file, o);
        const double secs =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if (r.bytes_downloaded == 0) {
            fmt::print(stderr, "{}: {} file(s), all in the cache (commit {})\n", r.repo,
                       r.files.size(), r.commit.substr(0, 7));
        } else {
            fmt::print(stderr, "{}: downloaded {} in {:.1f} s (commit {})\n", r.repo,
                       hub::human_size(r.bytes_downloaded), secs, r.commit.substr(0, 7));
        }
        if (!r.gguf && !file) {
            fmt::print(
                stderr,
                "a Hugging Face checkpoint: convert it with\n  bitnet convert {} -o MODEL.gguf\n",
                r.path.string());
        }
        fmt::print("{}\n", r.path.string());
    });
}

void register_ls(CLI::App& app) {
    auto* cmd = app.add_subcommand("ls", "List the models in the Hugging Face hub cache");
    struct Args {
        bool json = false;
    };
    auto a = std::make_shared<Args>();
    cmd->add_flag("--json", a->json, "Print one JSON object");
    cmd->callback([a] {
        const hub::HubOptions o = hub::options_from_environment();
        const std::vector<hub::CachedRepo> repos = hub::list_cache(o.cache_dir);
        if (a->json) {
            nlohmann::json out = {{"cache", o.cache_dir.string()},
                                  {"models", nlohmann::json::array()}};
            for (const hub::CachedRepo& r : repos) {
                nlohmann::json files = nlohmann::json::array();
                for (const hub::CachedFile& f : r.files)
                    files.push_back({{"path", f.path}, {"bytes", f.bytes}, {"missing", f.missing}});
                out["models"].push_back({{"repo", r.repo},
                                         {"bytes", r.bytes},
                                         {"partial_bytes", r.partial_bytes},
                                         {"revisions", r.revisions},
                                         {"commits", r.commits},
                                         {"files", files}});
            }
            fmt::print("{}\n", out.dump());
            return;
        }
        fmt::print("cache: {}\n", o.cache_dir.string());
        if (repos.empty()) {
            fmt::print("(no models)\n");
            return;
        }
        for (const hub::CachedRepo& r : repos) {
            std::string revs;
            for (const std::string& rev : r.revisions) revs += (revs.empty() ? "" : ", ") + rev;
            fmt::print("{}  {}{}{}\n", r.repo, hub::human_size(r.bytes),
                       revs.empty() ? std::string() : "  [" + revs + "]",
                       r.partial_bytes > 0
                           ? fmt::format("  ({} of interrupted downloads: pull again to resume)",
                                         hub::human_size(r.partial_bytes))
                           : std::string());
            for (const hub::CachedFile& f : r.files) {
                fmt::print("  {}  {}\n", f.path,
                           f.missing ? std::string("(missing: its blob was deleted)")
                                     : hub::human_size(f.bytes));
            }
        }
    });
}

}  // namespace bitnet::cli
