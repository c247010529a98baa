// Where tests find the reference install, the llama.cpp source tree and the CLI, and helpers
// to run the CLI as a user would.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace bitnet::test {

// The npm reference (scripts/setup.sh installs it). BITNET_REFERENCE_DIR overrides.
std::filesystem::path reference_dir();
// The clone of llama.cpp's source bundle inside the reference dir.
std::filesystem::path llama_cpp_dir();
// libggml-base.so inside the reference install.
std::filesystem::path ggml_base_library();
// Every models/ggml-vocab-*.gguf of the bundle, sorted. Fails the test if there are none.
std::vector<std::filesystem::path> vocab_files();
// The bundle's models/ggml-vocab-NAME.gguf ("llama-bpe", "llama-spm", ...).
std::string vocab_path(const std::string& name);
// " 1 2 3": token ids for a failure message.
std::string show_ids(const std::vector<int32_t>& ids);

// A fresh empty directory, removed when the object dies.
class TempDir {
  public:
    TempDir();
    ~TempDir();
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const std::filesystem::path& path() const { return path_; }
    std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

  private:
    std::filesystem::path path_;
};

struct RunResult {
    int exit_code = -1;  // -1: killed by a signal
    int signal = 0;
    std::string out;
    std::string err;
};

// Runs the bitnet CLI with arguments (no shell), capturing stdout and stderr.
RunResult run_cli(const std::vector<std::string>& args);
// Runs any program found on PATH the same way.
RunResult run_program(const std::string& program, const std::vector<std::string>& args);
// The repository root.
std::filesystem::path source_dir();
// Starts the CLI without waiting (output discarded); returns its pid.
int spawn_cli(const std::vector<std::string>& args);
// Waits for a pid from spawn_cli; returns the raw wait status.
int wait_cli(int pid);

std::string read_file(const std::filesystem::path& p);
void write_file(const std::filesystem::path& p, const std::string& bytes);

}  // namespace bitnet::test
