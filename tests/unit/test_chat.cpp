// The chat API (template choice, the 2B-4T placeholder, BOS handling, input parsing), prefix
// reuse in the Session, the Conversation, and `bitnet template` / `bitnet chat` as a user runs
// them: piped, and on a pseudo-terminal (forkpty) with Ctrl+C, /regen, /save, /load, Ctrl+D.
#include <gtest/gtest.h>
#include <poll.h>
#include <pty.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <functional>
#include <regex>
#include <string>
#include <thread>

#include "bitnet/chat.h"
#include "bitnet/error.h"
#include "bitnet/synth.h"
#include "support/test_paths.h"

namespace bitnet::test {
namespace {

// MODELS.md: the template Microsoft's converter wrote into the released 2B-4T GGUF.
constexpr const char* kPlaceholder =
    "{% for message in messages %}{% if loop.first %}{{ bos_token }}{% endif %}{% if "
    "message['role'] == 'user' %}{{ 'Human: ' + message['content'] + '\\n\\nBITNETAssistant: ' + "
    "eos_token }}{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token }}{% "
    "endif %}{% endfor %}";

// Built once per test binary: a tiny 2B-4T replica (Llama-3 vocabulary) and a tiny SPM model
// with a 4096-token context (long replies for the Ctrl+C test).
struct Models {
    TempDir dir;
    std::string replica, spm;
    Models() {
        SynthOptions r = replica_2b4t_defaults();
        r.vocab_from = vocab_path("llama-bpe");
        r.n_embd = 128;
        r.n_ff = 256;
        r.n_layer = 1;
        r.n_head = 4;
        r.n_head_kv = 2;
        r.n_ctx = 512;
        replica = (dir / "replica.gguf").string();
        write_synthetic_model(r, replica);
        SynthOptions s;
        s.vocab_from = vocab_path("llama-spm");
        s.n_embd = 64;
        s.n_ff = 128;
        s.n_layer = 2;
        s.n_ctx = 4096;
        spm = (dir / "spm.gguf").string();
        write_synthetic_model(s, spm);
    }
};

const Models& models() {
    static const Models m;
    return m;
}

Json msgs(std::initializer_list<std::pair<const char*, const char*>> list) {
    Json out = Json::array();
    for (const auto& [role, content] : list) out.push_back({{"role", role}, {"content", content}});
    return out;
}

TEST(Chat, BuiltinTemplatesParseAndRender) {
    const Tokenizer tok = Tokenizer::from_gguf_file(vocab_path("llama-bpe"));
    ChatInput in;
    in.messages = msgs({{"system", "S"}, {"user", "U"}, {"assistant", "A"}, {"user", "V"}});
    for (const std::string& name : chat_template_names()) {
        const ChatFormatter f(tok, *builtin_chat_template(name), name);
        EXPECT_NE(f.render(in).find('V'), std::string::npos) << name;
    }
    EXPECT_FALSE(builtin_chat_template("no-such-template"));
    const ChatFormatter bitnet(tok, *builtin_chat_template("bitnet"), "bitnet");
    EXPECT_EQ(bitnet.render(in),
              "System: SUser: U<|eot_id|>Assistant: AUser: V<|eot_id|>Assistant: ");
}

TEST(Chat, PlaceholderOf2B4TIsReplacedByTrainedFormat) {
    const auto model = Model::load(models().replica);
    EXPECT_EQ(model->file().metadata().get_or<std::string>("tokenizer.chat_template", ""),
              kPlaceholder);
    EXPECT_TRUE(is_bitnet_placeholder_template(kPlaceholder));
    const ChatFormatter f = ChatFormatter::for_model(*model);
    ASSERT_EQ(f.notices().size(), 1u);
    EXPECT_NE(f.notices()[0].find("placeholder"), std::string::npos);
    EXPECT_EQ(f.description(), "built-in bitnet-b1.58");
    ChatInput in;
    in.messages = msgs({{"system", "You are helpful."}, {"user", " Hi "}});
    const std::string prompt = f.render(in);
    EXPECT_EQ(prompt, "System: You are helpful.<|eot_id|>User: Hi<|eot_id|>Assistant: ");
    const std::vector<TokenId> ids = f.tokenize(prompt);
    ASSERT_GE(ids.size(), 3u);
    EXPECT_EQ(ids[0], 128000);
    EXPECT_NE(ids[1], 128000);
    EXPECT_EQ(std::count(ids.begin(), ids.end(), 128009), 2);
    // --chat-template overrides the substitution, by name or as Jinja source.
    const ChatFormatter forced = ChatFormatter::for_model(*model, {"llama3", ""});
    EXPECT_TRUE(forced.notices().empty());
    EXPECT_TRUE(forced.render(in).starts_with("<|start_header_id|>system"));
    const ChatFormatter literal = ChatFormatter::for_model(*model, {kPlaceholder, ""});
    // The placeholder itself, forced: a leading BOS text is dropped (the tokenizer adds BOS).
    EXPECT_EQ(literal.render(in), "Human:  Hi \n\nBITNETAssistant: <|end_of_text|>");
    EXPECT_THROW(ChatFormatter::for_model(*model, {"chatmlx", ""}), Error);
}

TEST(Chat, DefaultAndInputParsing) {
    const auto model = Model::load(models().spm);
    const ChatFormatter f = ChatFormatter::for_model(*model);
    EXPECT_EQ(f.description(), "built-in chatml");
    ASSERT_EQ(f.notices().size(), 1u);
    const ChatInput in = parse_chat_input(Json::parse(R"({"messages": [
        {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}],
        "tools": [{"type": "function"}], "enable_thinking": false})"));
    EXPECT_EQ(in.tools.size(), 1u);
    EXPECT_EQ(in.extra.at("enable_thinking"), false);
    EXPECT_EQ(f.render(in), "<|im_start|>user\na\nb<|im_end|>\n<|im_start|>assistant\n");
    EXPECT_EQ(chat_input_to_json(in).at("enable_thinking"), false);
    EXPECT_THROW(parse_chat_input(Json::parse(R"([{"content": "x"}])")), Error);
    EXPECT_THROW(parse_chat_input(Json::parse(R"({"role": "user"})")), Error);
    EXPECT_THROW(parse_chat_input(Json::parse(R"([{"role": "user", "content": 3}])")), Error);
    ChatInput image =
        parse_chat_input(Json::parse(R"([{"role": "user", "content": [{"type": "image_url"}]}])"));
    EXPECT_THROW((void)f.render(image), NotSupported);
}

TEST(Chat, PrefixReuseGivesBitIdenticalLogits) {
    auto model = std::shared_ptr<const Model>(Model::load(models().spm));
    SessionOptions so;
    so.n_ctx = 256;
    so.threads = 2;
    const std::vector<TokenId> a = {1, 450, 4996, 17354, 1701, 29916, 432, 3262};
    const std::vector<TokenId> b = {1, 450, 4996, 17354, 2278, 338, 263, 1243, 29889};
    Session cached(model, so);
    cached.evaluate(a);
    EXPECT_EQ(cached.history().size(), a.size());
    EXPECT_EQ(cached.reuse_prefix(b), 4);
    EXPECT_EQ(cached.n_past(), 4);
    cached.evaluate(std::span(b).subspan(4));
    Session fresh(model, so);
    fresh.evaluate(b);
    const auto x = cached.logits();
    const auto y = fresh.logits();
    ASSERT_EQ(x.size(), y.size());
    EXPECT_EQ(std::memcmp(x.data(), y.data(), x.size() * sizeof(float)), 0);
    // Everything cached: one token is left to evaluate, so that logits exist.
    EXPECT_EQ(cached.reuse_prefix(b), static_cast<int64_t>(b.size()) - 1);
    EXPECT_EQ(cached.reuse_prefix(std::vector<TokenId>{7}), 0);
    EXPECT_EQ(cached.n_past(), 0);
    EXPECT_TRUE(cached.history().empty());
}

Conversation make_conversation(int n_predict, int64_t n_ctx, bool shift) {
    auto model = std::shared_ptr<const Model>(Model::load(models().spm));
    ChatFormatter f = ChatFormatter::for_model(*model);
    SessionOptions so;
    so.n_ctx = n_ctx;
    so.threads = 2;
    ConversationOptions co;
    co.generate.n_predict = n_predict;
    co.generate.sampling.seed = 7;
    co.context_shift = shift;
    return {Session(model, so), std::move(f), co};
}

TEST(Chat, ConversationReusesCancelsRegeneratesAndShifts) {
    Conversation c = make_conversation(6, 512, false);
    c.set_system("Be brief.");
    const ChatReply r1 = c.reply("Hello");
    EXPECT_EQ(r1.stats.reused_tokens, 0);
    const ChatReply r2 = c.reply("Again");
    // Everything the first turn evaluated is still in the cache, except at most the last few
    // tokens where the reply joins the rendered history.
    EXPECT_GE(r2.stats.reused_tokens, r1.stats.prompt_tokens - 2)
        << r2.stats.reused_tokens << " of " << r1.stats.prompt_tokens;
    EXPECT_EQ(r2.stats.new_tokens + r2.stats.reused_tokens, r2.stats.prompt_tokens);
    EXPECT_EQ(c.input().messages.size(), 5u);
    int pieces = 0;
    const ChatReply cut = c.reply("Stop", [&](std::string_view) { return ++pieces < 2; });
    EXPECT_EQ(cut.stats.stop, StopReason::Cancelled);
    EXPECT_EQ(c.input().messages.back().at("content"), cut.text);
    EXPECT_FALSE(cut.text.empty());
    const ChatReply again = c.regenerate();
    EXPECT_EQ(c.input().messages.size(), 7u);
    EXPECT_GT(again.stats.reused_tokens, 0);
    c.clear();
    EXPECT_EQ(c.input().messages.size(), 1u);

    Conversation small = make_conversation(8, 64, false);
    EXPECT_THROW(small.reply(std::string(300, 'x')), Error);
    EXPECT_TRUE(small.input().messages.empty());
    Conversation shifting = make_conversation(8, 96, true);
    shifting.set_system("S");
    std::vector<std::string> notices;
    for (int i = 0; i < 6; ++i) {
        const ChatReply r = shifting.reply("turn number " + std::to_string(i));
        notices.insert(notices.end(), r.notices.begin(), r.notices.end());
    }
    ASSERT_FALSE(notices.empty());
    EXPECT_NE(notices[0].find("context shift: dropped"), std::string::npos) << notices[0];
    EXPECT_EQ(shifting.input().messages[0].at("role"), "system");
}

TEST(ChatCli, TemplateCommand) {
    TempDir tmp;
    write_file(tmp / "m.json",
               R"({"messages": [{"role": "system", "content": "You are helpful."},
                   {"role": "user", "content": "Hi"}]})");
    const std::string file = (tmp / "m.json").string();
    const RunResult t = run_cli({"template", "-m", models().replica, "--messages", file});
    EXPECT_EQ(t.exit_code, 0) << t.err;
    EXPECT_EQ(t.out, "System: You are helpful.<|eot_id|>User: Hi<|eot_id|>Assistant: ");
    EXPECT_NE(t.err.find("placeholder"), std::string::npos) << t.err;
    const RunResult ids =
        run_cli({"template", "-m", models().replica, "--messages", file, "--ids"});
    EXPECT_TRUE(ids.out.starts_with("128000 ")) << ids.out;
    const RunResult named = run_cli({"template", "-m", models().replica, "--messages", file,
                                     "--chat-template", "chatml", "--no-generation-prompt"});
    EXPECT_EQ(named.out,
              "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n");
    write_file(tmp / "t.jinja", "{% for m in messages %}[{{ m.role }}]{% endfor %}");
    const RunResult fromfile = run_cli({"template", "-m", models().replica, "--messages", file,
                                        "--chat-template-file", (tmp / "t.jinja").string()});
    EXPECT_EQ(fromfile.out, "[system][user]");
    const RunResult bad = run_cli(
        {"template", "-m", models().replica, "--messages", file, "--chat-template", "{% if %}"});
    EXPECT_EQ(bad.exit_code, 1);
    EXPECT_NE(bad.err.find("error: "), std::string::npos);
}

// Runs `bitnet chat` with stdin from a file, through sh.
RunResult chat_piped(const std::string& input, const std::vector<std::string>& args,
                     const TempDir& tmp) {
    write_file(tmp / "stdin.txt", input);
    std::string cmd = std::string("'") + BITNET_CLI_PATH + "' chat";
    for (const std::string& a : args) cmd += " '" + a + "'";
    cmd += " < '" + (tmp / "stdin.txt").string() + "'";
    return run_program("sh", {"-c", cmd});
}

TEST(ChatCli, PipedTurnsSaveAndMessages) {
    TempDir tmp;
    const std::string saved = (tmp / "conv.json").string();
    const RunResult r = chat_piped(
        "Hello there\nHow are you\n/save " + saved + "\n",
        {"-m", models().spm, "-n", "5", "--seed", "3", "-v", "-sys", "Be\\tbrief."}, tmp);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const std::regex stats(R"(stats: prompt: (\d+) tokens \((\d+) new, (\d+) reused\))");
    std::vector<int> reused;
    for (auto it = std::sregex_iterator(r.err.begin(), r.err.end(), stats);
         it != std::sregex_iterator(); ++it) {
        reused.push_back(std::stoi((*it)[3]));
    }
    ASSERT_EQ(reused.size(), 2u) << r.err;
    EXPECT_EQ(reused[0], 0);
    EXPECT_GT(reused[1], 0);
    EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 2) << r.out;
    EXPECT_EQ(r.out.find(">>>"), std::string::npos);
    const Json conv = Json::parse(read_file(saved));
    ASSERT_EQ(conv.at("messages").size(), 5u);
    EXPECT_EQ(conv["messages"][0]["content"], "Be\tbrief.");
    EXPECT_EQ(conv["messages"][3]["content"], "How are you");
    // --messages continues it: the old turns are in the prompt, one more reply is added.
    const std::string saved2 = (tmp / "conv2.json").string();
    const RunResult more = chat_piped("Third\n/save " + saved2 + "\n",
                                      {"-m", models().spm, "-n", "3", "--messages", saved}, tmp);
    ASSERT_EQ(more.exit_code, 0) << more.err;
    EXPECT_EQ(Json::parse(read_file(saved2)).at("messages").size(), 7u);
    const RunResult full =
        chat_piped(std::string(600, 'z') + "\n", {"-m", models().spm, "-n", "3", "-c", "64"}, tmp);
    EXPECT_EQ(full.exit_code, 1);
    EXPECT_NE(full.err.find("--context-shift"), std::string::npos) << full.err;
}

// A `bitnet chat` on a pseudo-terminal, driven like a user at a keyboard.
class PtyChat {
  public:
    PtyChat(const std::vector<std::string>& args, const std::string& state_dir) {
        pid_ = forkpty(&fd_, nullptr, nullptr, nullptr);
        if (pid_ == 0) {
            setenv("XDG_STATE_HOME", state_dir.c_str(), 1);
            setenv("TERM", "dumb", 1);
            std::vector<char*> argv;
            argv.push_back(const_cast<char*>("bitnet"));
            for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
            argv.push_back(nullptr);
            execv(BITNET_CLI_PATH, argv.data());
            _exit(127);
        }
    }
    ~PtyChat() {
        if (pid_ > 0 && !waited_) {
            kill(pid_, SIGKILL);
            waitpid(pid_, nullptr, 0);
        }
        if (fd_ >= 0) close(fd_);
    }
    PtyChat(const PtyChat&) = delete;
    PtyChat& operator=(const PtyChat&) = delete;

    void send(const std::string& s) {
        ASSERT_EQ(write(fd_, s.data(), s.size()), static_cast<ssize_t>(s.size()));
    }
    // Reads until `pattern` occurs `count` times in the whole transcript (or 30 s pass).
    bool expect(const std::string& pattern, int count = 1, int seconds = 30) {
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
        while (occurrences(pattern) < count) {
            if (std::chrono::steady_clock::now() > deadline) return false;
            pollfd p{fd_, POLLIN, 0};
            if (poll(&p, 1, 200) <= 0) continue;
            char buf[4096];
            const ssize_t n = read(fd_, buf, sizeof buf);
            if (n <= 0) return occurrences(pattern) >= count;
            out_.append(buf, static_cast<size_t>(n));
        }
        return true;
    }
    // Reads until the transcript has grown by `bytes` (or `seconds` pass).
    bool grow(size_t bytes, int seconds = 30) {
        const size_t want = out_.size() + bytes;
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
        while (out_.size() < want) {
            if (std::chrono::steady_clock::now() > deadline) return false;
            pollfd p{fd_, POLLIN, 0};
            if (poll(&p, 1, 200) <= 0) continue;
            char buf[4096];
            const ssize_t n = read(fd_, buf, sizeof buf);
            if (n <= 0) return false;
            out_.append(buf, static_cast<size_t>(n));
        }
        return true;
    }
    int occurrences(const std::string& pattern) const {
        int n = 0;
        for (size_t at = out_.find(pattern); at != std::string::npos;
             at = out_.find(pattern, at + 1))
            ++n;
        return n;
    }
    int wait_exit(int seconds = 10) {
        expect("\x01never\x01", 1, seconds);  // drain until EOF (or the time passes)
        int status = 0;
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
        while (waitpid(pid_, &status, WNOHANG) == 0) {
            if (std::chrono::steady_clock::now() > deadline) return -2;  // the destructor kills it
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        waited_ = true;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }
    // Ctrl+D at an empty prompt, sent again until the program exits. libedit switches the
    // terminal to its own mode after printing the prompt, and an end-of-file typed in between
    // is dropped by the terminal driver (seen in CI), so one keystroke is not enough to test.
    int end_of_file_until_exit() {
        int rc = -2;
        for (int attempt = 0; attempt < 10 && rc == -2; ++attempt) {
            // The program may be exiting already: a failed write is not an error here.
            if (write(fd_, "\x04", 1) != 1) break;
            rc = wait_exit(2);
        }
        return rc == -2 ? wait_exit(10) : rc;
    }
    const std::string& transcript() const { return out_; }

  private:
    int fd_ = -1;
    pid_t pid_ = -1;
    bool waited_ = false;
    std::string out_;
};

TEST(ChatCli, TerminalSession) {
    TempDir tmp;
    const std::string saved = (tmp / "conv.json").string();
    PtyChat chat(
        {"chat", "-m", models().spm, "-n", "6", "-c", "4096", "-t", "2", "--seed", "5", "-v"},
        tmp.path().string());
    ASSERT_TRUE(chat.expect(">>> ")) << chat.transcript();
    chat.send("Hello there\r");
    ASSERT_TRUE(chat.expect("stats: ", 1) && chat.expect(">>> ", 2)) << chat.transcript();
    chat.send("How are you\r");
    ASSERT_TRUE(chat.expect("stats: ", 2) && chat.expect(">>> ", 3)) << chat.transcript();
    // A long reply, stopped by Ctrl+C while it streams: the partial reply is kept.
    chat.send("/set max_tokens 3000\r");
    ASSERT_TRUE(chat.expect(">>> ", 4)) << chat.transcript();
    chat.send("Tell me everything\r");
    // Past the echo of the line, wait for the reply to stream before stopping it.
    ASSERT_TRUE(chat.expect("Tell me everything") && chat.grow(40)) << chat.transcript();
    chat.send("\x03");
    ASSERT_TRUE(chat.expect("partial reply is kept") && chat.expect(">>> ", 5))
        << chat.transcript();
    chat.send("/set max_tokens 6\r");
    ASSERT_TRUE(chat.expect(">>> ", 6)) << chat.transcript();
    chat.send("\"\"\"Two\r");
    chat.send("lines\"\"\"\r");
    ASSERT_TRUE(chat.expect("stats: ", 4) && chat.expect(">>> ", 7)) << chat.transcript();
    chat.send("/regen\r");
    ASSERT_TRUE(chat.expect("stats: ", 5) && chat.expect(">>> ", 8)) << chat.transcript();
    chat.send("/save " + saved + "\r");
    ASSERT_TRUE(chat.expect("saved 8 message(s)")) << chat.transcript();
    chat.send("/clear\r");
    ASSERT_TRUE(chat.expect("conversation cleared")) << chat.transcript();
    chat.send("/load " + saved + "\r");
    ASSERT_TRUE(chat.expect("loaded 8 message(s)") && chat.expect(">>> ", 11)) << chat.transcript();
    chat.send("/show stats\r");
    ASSERT_TRUE(chat.expect("stats: ", 6) && chat.expect(">>> ", 12)) << chat.transcript();
    // /exit, not Ctrl+D: a line typed ahead is kept whatever the terminal mode, an end-of-file is
    // not (Ctrl+D has its own test below).
    chat.send("/exit\r");
    EXPECT_EQ(chat.wait_exit(), 0) << chat.transcript();

    const Json conv = Json::parse(read_file(saved)).at("messages");
    ASSERT_EQ(conv.size(), 8u);
    EXPECT_EQ(conv[0]["content"], "Hello there");
    EXPECT_EQ(conv[4]["content"], "Tell me everything");
    EXPECT_EQ(conv[6]["content"], "Two\nlines");
    const std::string partial = conv[5]["content"].get<std::string>();
    EXPECT_FALSE(partial.empty());
    EXPECT_NE(chat.transcript().find("stopped: cancelled"), std::string::npos);
    // The second turn evaluated only its new tokens.
    const std::regex stats(R"(stats: prompt: \d+ tokens \(\d+ new, (\d+) reused\))");
    std::vector<int> reused;
    const std::string& t = chat.transcript();
    for (auto it = std::sregex_iterator(t.begin(), t.end(), stats); it != std::sregex_iterator();
         ++it)
        reused.push_back(std::stoi((*it)[1]));
    ASSERT_GE(reused.size(), 2u);
    EXPECT_EQ(reused[0], 0);
    EXPECT_GT(reused[1], 0);
    const std::string history = read_file(tmp / "bitnet" / "history");
    EXPECT_NE(history.find("Hello"), std::string::npos) << history;
}

TEST(ChatCli, CtrlDAtEmptyPromptExits) {
    TempDir tmp;
    PtyChat chat({"chat", "-m", models().spm, "-n", "4"}, tmp.path().string());
    ASSERT_TRUE(chat.expect(">>> ")) << chat.transcript();
    // Let libedit settle in its own terminal mode; an end-of-file typed while the driver is
    // still in canonical mode is dropped by it, so the helper sends it again if needed.
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    EXPECT_EQ(chat.end_of_file_until_exit(), 0) << chat.transcript();
}

TEST(ChatCli, CtrlCAtEmptyPromptExits) {
    TempDir tmp;
    PtyChat chat({"chat", "-m", models().spm, "-n", "4"}, tmp.path().string());
    ASSERT_TRUE(chat.expect(">>> ")) << chat.transcript();
    chat.send("\x03");
    EXPECT_EQ(chat.wait_exit(), 0) << chat.transcript();
}

}  // namespace
}  // namespace bitnet::test
