// The built-in chat templates against llama.cpp's own (llama_chat_apply_template in the
// reference's libllama, loaded with dlopen): every name both engines know, on conversations
// with and without a system message, several turns, text that trim would change, and with
// add_generation_prompt on and off.
#include <dlfcn.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "bitnet/chat.h"
#include "support/test_paths.h"

namespace bitnet::test {
namespace {

// include/llama.h of the bundle: struct llama_chat_message { const char* role; const char*
// content; }; int32_t llama_chat_apply_template(const char* tmpl, const llama_chat_message*
// chat, size_t n_msg, bool add_ass, char* buf, int32_t length) returns the full length.
struct LlamaChatMessage {
    const char* role;
    const char* content;
};
using ApplyFn = int32_t (*)(const char*, const LlamaChatMessage*, size_t, bool, char*, int32_t);

class LlamaCpp {
  public:
    LlamaCpp() {
        const std::filesystem::path dir = ggml_base_library().parent_path();
        std::error_code ec;
        for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
            const std::string name = e.path().filename().string();
            if (name.starts_with("libllama.") && name.find(".so") != std::string::npos)
                lib_ = e.path();
        }
        if (lib_.empty()) return;
        dlopen(ggml_base_library().c_str(), RTLD_NOW | RTLD_GLOBAL);
        handle_ = dlopen(lib_.c_str(), RTLD_NOW | RTLD_GLOBAL);
        if (handle_ != nullptr)
            apply_ = reinterpret_cast<ApplyFn>(dlsym(handle_, "llama_chat_apply_template"));
    }
    bool ok() const { return apply_ != nullptr; }
    std::string where() const { return lib_.empty() ? "no libllama.*.so" : lib_.string(); }

    // nullopt-like: returns false when llama.cpp does not know the template.
    bool apply(const std::string& name, const Json& messages, bool add_ass,
               std::string& out) const {
        std::vector<std::string> roles, contents;
        for (const Json& m : messages) {
            roles.push_back(m["role"].get<std::string>());
            contents.push_back(m["content"].get<std::string>());
        }
        std::vector<LlamaChatMessage> chat;
        for (size_t i = 0; i < roles.size(); ++i)
            chat.push_back({roles[i].c_str(), contents[i].c_str()});
        const int32_t n = apply_(name.c_str(), chat.data(), chat.size(), add_ass, nullptr, 0);
        if (n < 0) return false;
        std::vector<char> buf(static_cast<size_t>(n) + 1);
        apply_(name.c_str(), chat.data(), chat.size(), add_ass, buf.data(), n + 1);
        out.assign(buf.data(), static_cast<size_t>(n));
        return true;
    }

  private:
    std::filesystem::path lib_;
    void* handle_ = nullptr;
    ApplyFn apply_ = nullptr;
};

std::vector<Json> conversations() {
    const Json sys = {{"role", "system"}, {"content", "You are a helpful assistant."}};
    const Json u1 = {{"role", "user"}, {"content", "Hello! How are you?"}};
    const Json a1 = {{"role", "assistant"}, {"content", "  I'm fine, thanks.\nAnd you?  "}};
    const Json u2 = {{"role", "user"}, {"content", " Tell me a joke about \"quotes\" {{ x }}\n"}};
    const Json u3 = {{"role", "user"}, {"content", "Grüße, 世界 🙂"}};
    return {
        Json::array({sys, u1}), Json::array({sys, u1, a1, u2}),         Json::array({u1, a1, u2}),
        Json::array({u3}),      Json::array({sys, u1, a1, u2, a1, u3}),
    };
}

TEST(ChatTemplatesVsLlamaCpp, BuiltinsRenderAsLlamaCpp) {
    const LlamaCpp ref;
    ASSERT_TRUE(ref.ok()) << "cannot load llama_chat_apply_template from " << ref.where()
                          << " (run scripts/setup.sh)";
    // A tokenizer only supplies bos/eos text and the BOS stripping; llama.cpp's function
    // renders no BOS, and neither do these templates.
    const auto vocab = llama_cpp_dir() / "models" / "ggml-vocab-llama-spm.gguf";
    const Tokenizer tok = Tokenizer::from_gguf_file(vocab.string());
    int names = 0, cases = 0;
    for (const std::string& name : chat_template_names()) {
        std::string probe;
        if (!ref.apply(name, conversations()[0], true, probe)) continue;  // ours only
        ++names;
        const ChatFormatter f(tok, *builtin_chat_template(name), name);
        for (const Json& conv : conversations()) {
            for (const bool gen : {true, false}) {
                std::string expected;
                ASSERT_TRUE(ref.apply(name, conv, gen, expected));
                ChatInput in;
                in.messages = conv;
                in.add_generation_prompt = gen;
                EXPECT_EQ(f.render(in), expected)
                    << name << ", add_generation_prompt " << gen << ", " << conv.dump();
                ++cases;
            }
        }
    }
    EXPECT_GE(names, 11);
    std::printf("[ compared %d built-in templates with llama.cpp on %d cases ]\n", names, cases);
}

}  // namespace
}  // namespace bitnet::test
