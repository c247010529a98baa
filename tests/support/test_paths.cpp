#include "support/test_paths.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>

#include <gtest/gtest.h>

extern char** environ;

namespace bitnet::test {

namespace fs = std::filesystem;

fs::path reference_dir() {
    if (const char* env = std::getenv("BITNET_REFERENCE_DIR"); env != nullptr && *env != '\0') {
        return env;
    }
    return BITNET_REFERENCE_DIR;
}

fs::path llama_cpp_dir() {
    return reference_dir() / "llama.cpp";
}

fs::path ggml_base_library() {
    return reference_dir() /
           "node_modules/@node-llama-cpp/linux-x64/bins/linux-x64/libggml-base.so";
}

std::string vocab_path(const std::string& name) {
    return (llama_cpp_dir() / "models" / ("ggml-vocab-" + name + ".gguf")).string();
}

std::string show_ids(const std::vector<int32_t>& ids) {
    std::string s;
    for (int32_t id : ids) s += " " + std::to_string(id);
    return s;
}

std::vector<fs::path> vocab_files() {
    std::vector<fs::path> out;
    const fs::path dir = llama_cpp_dir() / "models";
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir, ec)) {
        const std::string name = e.path().filename().string();
        if (name.rfind("ggml-vocab-", 0) == 0 && e.path().extension() == ".gguf") {
            out.push_back(e.path());
        }
    }
    std::sort(out.begin(), out.end());
    if (out.empty()) {
        ADD_FAILURE() << "no ggml-vocab-*.gguf in " << dir
                      << ": the reference is not installed (run scripts/setup.sh)";
    }
    return out;
}

TempDir::TempDir() {
    std::random_device rd;
    path_ = fs::temp_directory_path() /
            ("bitnet-test-" + std::to_string(::getpid()) + "-" + std::to_string(rd()));
    fs::create_directories(path_);
}

TempDir::~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
}

std::string read_file(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

void write_file(const fs::path& p, const std::string& bytes) {
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

namespace {

// Starts `program` (searched on PATH) with stdin from /dev/null and stdout/stderr sent to the
// given files; returns its pid or -1.
pid_t start(const std::string& program, const std::vector<std::string>& args, const char* out,
            const char* err) {
    std::vector<std::string> argv_s = {program};
    argv_s.insert(argv_s.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (std::string& s : argv_s) argv.push_back(s.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&fa, 2, err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    pid_t pid = 0;
    const int rc = posix_spawnp(&pid, argv[0], &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
        ADD_FAILURE() << "cannot start " << program;
        return -1;
    }
    return pid;
}

}  // namespace

int spawn_cli(const std::vector<std::string>& args) {
    return start(BITNET_CLI_PATH, args, "/dev/null", "/dev/null");
}

int wait_cli(int pid) {
    int status = 0;
    waitpid(pid, &status, 0);
    return status;
}

fs::path source_dir() {
    return BITNET_SOURCE_DIR;
}

RunResult run_cli(const std::vector<std::string>& args) {
    return run_program(BITNET_CLI_PATH, args);
}

RunResult run_program(const std::string& program, const std::vector<std::string>& args) {
    TempDir tmp;
    const fs::path out_path = tmp / "stdout";
    const fs::path err_path = tmp / "stderr";
    RunResult r;
    const pid_t pid = start(program, args, out_path.c_str(), err_path.c_str());
    if (pid < 0) return r;
    int status = 0;
    waitpid(pid, &status, 0);
    if (WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
    if (WIFSIGNALED(status)) r.signal = WTERMSIG(status);
    r.out = read_file(out_path);
    r.err = read_file(err_path);
    return r;
}

}  // namespace bitnet::test
