// `bitnet chat`: a conversation with streaming replies. On a terminal: libedit line editing
// and history, slash commands, Ctrl+C stops a reply. Piped: each input line is a user turn and
// each reply is printed followed by a newline (slash commands work there too).
#include <histedit.h>
#include <poll.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <clocale>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cwchar>
#include <filesystem>
#include <iostream>
#include <optional>
#include <random>
#include <sstream>

#include <fmt/core.h>

#include "bitnet/chat.h"
#include "bitnet/error.h"
#include "cli/commands.h"
#include "core/atomic_file.h"

namespace bitnet::cli {

namespace {

std::atomic<bool> g_interrupted{false};

extern "C" void on_sigint(int /*sig*/) {
    g_interrupted.store(true);
}

// SIGINT sets a flag (checked while a reply streams, and by the line reader) instead of
// ending the process; no SA_RESTART, so a blocking read returns EINTR.
void install_sigint_flag() {
    struct sigaction sa = {};
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;
    sigaction(SIGINT, &sa, nullptr);
}

enum class ReadStatus { Line, End, Interrupted };

struct LineIn {
    ReadStatus status = ReadStatus::End;
    std::string text;
};

class LineReader {
  public:
    virtual ~LineReader() = default;
    virtual LineIn read(bool continuation) = 0;
};

class PipedReader : public LineReader {
  public:
    LineIn read(bool /*continuation*/) override {
        LineIn in;
        if (!std::getline(std::cin, in.text)) return in;
        if (!in.text.empty() && in.text.back() == '\r') in.text.pop_back();
        in.status = ReadStatus::Line;
        return in;
    }
};

std::filesystem::path history_path() {
    if (const char* s = std::getenv("XDG_STATE_HOME"); s != nullptr && *s != '\0')
        return std::filesystem::path(s) / "bitnet" / "history";
    if (const char* h = std::getenv("HOME"); h != nullptr && *h != '\0')
        return std::filesystem::path(h) / ".local" / "state" / "bitnet" / "history";
    return {};
}

// libedit with a character reader of our own, so that Ctrl+C (as SIGINT or as the byte 0x03)
// ends the line being edited at once.
class EditReader : public LineReader {
  public:
    EditReader() : el_(el_init("bitnet", stdin, stdout, stderr)), hist_(history_init()) {
        if (el_ == nullptr || hist_ == nullptr) throw Error("libedit could not be initialised");
        HistEvent ev;
        history(hist_, &ev, H_SETSIZE, 1000);
        history(hist_, &ev, H_SETUNIQUE, 1);
        el_set(el_, EL_EDITOR, "emacs");
        el_set(el_, EL_CLIENTDATA, this);
        el_set(el_, EL_PROMPT, &EditReader::prompt);
        el_set(el_, EL_HIST, history, hist_);
        el_set(el_, EL_GETCFN, &EditReader::getc);
        el_source(el_, nullptr);
        path_ = history_path();
        if (!path_.empty()) {
            std::error_code ec;
            std::filesystem::create_directories(path_.parent_path(), ec);
            history(hist_, &ev, H_LOAD, path_.c_str());
        }
    }
    ~EditReader() override {
        el_end(el_);
        history_end(hist_);
    }
    EditReader(const EditReader&) = delete;
    EditReader& operator=(const EditReader&) = delete;

    LineIn read(bool continuation) override {
        prompt_ = continuation ? "... " : ">>> ";
        interrupted_ = false;
        int count = 0;
        const char* line = el_gets(el_, &count);
        LineIn in;
        if (interrupted_) {
            in.status = ReadStatus::Interrupted;
            in.text = line_was_empty_ ? "" : "x";  // non-empty: the user was typing
            return in;
        }
        if (line == nullptr) return in;
        in.status = ReadStatus::Line;
        in.text = line;
        while (!in.text.empty() && (in.text.back() == '\n' || in.text.back() == '\r'))
            in.text.pop_back();
        if (!in.text.empty()) {
            HistEvent ev;
            history(hist_, &ev, H_ENTER, in.text.c_str());
            if (!path_.empty()) history(hist_, &ev, H_SAVE, path_.c_str());
        }
        return in;
    }

  private:
    static EditReader* self(EditLine* el) {
        void* p = nullptr;
        el_get(el, EL_CLIENTDATA, &p);
        return static_cast<EditReader*>(p);
    }
    static char* prompt(EditLine* el) { return self(el)->prompt_.data(); }

    static int getc(EditLine* el, wchar_t* out) {
        EditReader* r = self(el);
        std::mbstate_t st{};
        for (;;) {
            // Polling closes the window where SIGINT lands before read() starts.
            pollfd p{STDIN_FILENO, POLLIN, 0};
            const int ready = poll(&p, 1, 100);
            if (g_interrupted.exchange(false)) return r->interrupt(el);
            if (ready <= 0) continue;
            char c = 0;
            const ssize_t n = ::read(STDIN_FILENO, &c, 1);
            if (n == 0) return 0;
            if (n < 0) {
                if (errno != EINTR) return -1;
                if (!g_interrupted.exchange(false)) continue;
                c = 3;
            }
            if (c == 3) return r->interrupt(el);
            const size_t k = std::mbrtowc(out, &c, 1, &st);
            if (k == static_cast<size_t>(-2)) continue;
            if (k == static_cast<size_t>(-1)) *out = static_cast<unsigned char>(c);
            return 1;
        }
    }

    // Ends el_gets (as if at end of input), remembering whether a line was being typed.
    int interrupt(EditLine* el) {
        const LineInfo* li = el_line(el);
        line_was_empty_ = li == nullptr || li->buffer == li->lastchar;
        interrupted_ = true;
        return 0;
    }

    EditLine* el_;
    History* hist_;
    std::filesystem::path path_;
    std::string prompt_ = ">>> ";
    bool interrupted_ = false;
    bool line_was_empty_ = true;
};

struct ChatArgs {
    ModelArgs m;
    std::string system, system_file, messages;
    ChatTemplateOptions tmpl;
    int n_predict = -1;
    SamplingOptions sampling;
    std::optional<uint64_t> seed;
    bool context_shift = false, no_escape = false;
};

constexpr const char* kHelp =
    "commands:\n"
    "  /help                 this text\n"
    "  /clear                forget the conversation (the system message stays)\n"
    "  /system TEXT          set the system message (empty: remove it)\n"
    "  /set PARAM VALUE      temperature, top_k, top_p, min_p, seed, repeat_penalty, "
    "max_tokens\n"
    "  /show WHAT            template, prompt, params or stats\n"
    "  /save FILE, /load FILE  the conversation as JSON (the format --messages reads)\n"
    "  /regen                drop the last reply and generate it again\n"
    "  /exit                 leave (also Ctrl+D, or Ctrl+C at an empty prompt)\n"
    "  \"\"\"                   starts and ends multi-line input\n"
    "Ctrl+C while a reply is written stops it; the partial reply is kept.\n";

class ChatLoop {
  public:
    ChatLoop(Conversation& conv, const ChatArgs& args, bool interactive)
        : conv_(conv), args_(args), interactive_(interactive) {}

    // One user turn (or regeneration); prints the reply and its stats.
    void respond(const std::optional<std::string>& user_text) {
        g_interrupted.store(false);
        const auto stream = [](std::string_view text) {
            std::fwrite(text.data(), 1, text.size(), stdout);
            std::fflush(stdout);
            return !g_interrupted.load();
        };
        ChatReply r;
        try {
            r = user_text ? conv_.reply(*user_text, stream) : conv_.regenerate(stream);
        } catch (const TemplateRaise& e) {
            fmt::print(stderr, "error: {}\n", e.what());
            return;
        }
        fmt::print("\n");
        std::fflush(stdout);
        for (const std::string& n : r.notices) fmt::print(stderr, "note: {}\n", n);
        if (r.stats.stop == StopReason::Cancelled)
            fmt::print(stderr, "(stopped: the partial reply is kept)\n");
        if (r.stats.stop == StopReason::ContextFull) {
            fmt::print(stderr, "note: the context is full; the reply was cut{}\n",
                       args_.context_shift ? " (the next turn drops the oldest turns)"
                                           : " (--context-shift drops the oldest turns)");
        }
        if (args_.m.verbose) fmt::print(stderr, "stats: {}\n", r.stats.summary());
        g_interrupted.store(false);
    }

    // Returns false for /exit.
    bool command(const std::string& line) {
        std::istringstream in(line);
        std::string cmd;
        in >> cmd;
        std::string rest;
        std::getline(in, rest);
        const size_t start = rest.find_first_not_of(' ');
        rest = start == std::string::npos ? "" : rest.substr(start);
        if (cmd == "/exit" || cmd == "/bye") return false;
        if (cmd == "/help" || cmd == "/?") {
            fmt::print("{}", kHelp);
        } else if (cmd == "/clear") {
            conv_.clear();
            fmt::print(stderr, "conversation cleared\n");
        } else if (cmd == "/system") {
            conv_.set_system(rest);
            fmt::print(stderr, "system message {}\n", rest.empty() ? "removed" : "set");
        } else if (cmd == "/set") {
            set_param(rest);
        } else if (cmd == "/show") {
            show(rest);
        } else if (cmd == "/save") {
            save(rest);
        } else if (cmd == "/load") {
            if (rest.empty()) throw Error("/load needs a file name");
            conv_.set_input(read_messages_file(rest));
            fmt::print(stderr, "loaded {} message(s) from {}\n", conv_.input().messages.size(),
                       rest);
        } else if (cmd == "/regen") {
            respond(std::nullopt);
        } else {
            fmt::print(stderr, "unknown command {} (see /help)\n", cmd);
        }
        return true;
    }

  private:
    void set_param(const std::string& rest) {
        std::istringstream in(rest);
        std::string name, value;
        in >> name >> value;
        if (value.empty()) throw Error("/set needs PARAM VALUE (see /help)");
        GenerateOptions& g = conv_.options().generate;
        SamplingOptions s = g.sampling;
        int n_predict = g.n_predict;
        try {
            if (name == "temperature" || name == "temp") {
                s.temperature = std::stof(value);
            } else if (name == "top_k") {
                s.top_k = std::stoi(value);
            } else if (name == "top_p") {
                s.top_p = std::stof(value);
            } else if (name == "min_p") {
                s.min_p = std::stof(value);
            } else if (name == "seed") {
                s.seed = std::stoull(value);
            } else if (name == "repeat_penalty") {
                s.repeat_penalty = std::stof(value);
            } else if (name == "max_tokens") {
                n_predict = std::stoi(value);
            } else {
                throw Error("/set: unknown parameter '" + name + "' (see /help)");
            }
        } catch (const std::logic_error&) {
            throw Error("/set " + name + ": '" + value + "' is not a number");
        }
        validate(s);
        g.sampling = s;
        g.n_predict = n_predict;
        fmt::print(stderr, "{} = {}\n", name, value);
    }

    void show(const std::string& what) {
        if (what == "template") {
            fmt::print("{}\n{}\n", conv_.formatter().description(), conv_.formatter().source());
        } else if (what == "prompt") {
            fmt::print("{}\n", conv_.render(false));
        } else if (what == "params") {
            const GenerateOptions& g = conv_.options().generate;
            fmt::print(
                "temperature {} top_k {} top_p {} min_p {} repeat_penalty {} seed {} "
                "max_tokens {} context {} context_shift {}\n",
                g.sampling.temperature, g.sampling.top_k, g.sampling.top_p, g.sampling.min_p,
                g.sampling.repeat_penalty, g.sampling.seed, g.n_predict, conv_.session().n_ctx(),
                conv_.options().context_shift ? "on" : "off");
        } else if (what == "stats") {
            const auto& s = conv_.last_stats();
            fmt::print("{}\n", s ? "stats: " + s->summary() : "no reply yet");
        } else {
            throw Error("/show takes template, prompt, params or stats");
        }
    }

    void save(const std::string& path) {
        if (path.empty()) throw Error("/save needs a file name");
        // A reply cut by Ctrl+C or max_tokens may end inside a UTF-8 character: U+FFFD there.
        const std::string text =
            chat_input_to_json(conv_.input())
                .dump(2, ' ', false, nlohmann::json::error_handler_t::replace) +
            "\n";
        AtomicFile f(path);
        f.write(text.data(), text.size());
        f.commit();
        fmt::print(stderr, "saved {} message(s) to {}\n", conv_.input().messages.size(), path);
    }

    Conversation& conv_;
    const ChatArgs& args_;
    bool interactive_;

  public:
    // Reads lines until the end, running commands and turns. Errors in one turn are reported
    // and the conversation goes on.
    void run(LineReader& reader) {
        for (;;) {
            LineIn in = reader.read(false);
            if (in.status == ReadStatus::End) break;
            if (in.status == ReadStatus::Interrupted) {
                if (in.text.empty()) break;
                fmt::print("\n");
                continue;
            }
            std::string text = in.text;
            if (text.starts_with("\"\"\"")) {
                if (!read_multiline(reader, text)) break;
            }
            if (text.empty() || text.find_first_not_of(" \t") == std::string::npos) continue;
            try {
                if (text.front() == '/') {
                    if (!command(text)) break;
                } else {
                    respond(text);
                }
            } catch (const std::exception& e) {
                // Scripts get exit status 1 and main's one line; at a terminal the conversation
                // survives whatever one command or turn ran into.
                if (!interactive_) throw;
                fmt::print(stderr, "error: {}\n", e.what());
            }
        }
    }

  private:
    // `"""` opens: lines up to one ending with `"""` form one message.
    static bool read_multiline(LineReader& reader, std::string& text) {
        std::string body = text.substr(3);
        for (;;) {
            if (body.ends_with("\"\"\"")) {
                body.resize(body.size() - 3);
                text = body;
                return true;
            }
            LineIn more = reader.read(true);
            if (more.status != ReadStatus::Line) return false;
            body += (body.empty() ? "" : "\n") + more.text;
        }
    }
};

void add_chat_options(CLI::App* cmd, ChatArgs& a) {
    add_model_options(cmd, a.m,
                      "Print a stats line per reply (prompt tokens new and reused, tokens/s) and "
                      "what was assumed about the file");
    auto* s = cmd->add_option("--system-prompt", a.system,
                              "System message (also -sys; escapes \\n \\t ... are processed)");
    auto* sf = cmd->add_option("--system-prompt-file", a.system_file,
                               "Read the system message from a file (also -sysf; verbatim)");
    s->excludes(sf);
    cmd->add_flag("--no-escape", a.no_escape, "Take --system-prompt literally (no \\n etc.)");
    add_chat_template_options(cmd, a.tmpl);
    cmd->add_option("--messages", a.messages,
                    "Start from a saved conversation (JSON: an array of messages or an object "
                    "with \"messages\")");
    cmd->add_option("-n,--n-predict", a.n_predict,
                    "At most this many tokens per reply (-1: until the end of the turn)")
        ->capture_default_str()
        ->check(CLI::Range(-1, 1 << 20));
    cmd->add_option("--temp", a.sampling.temperature, "Temperature (0: greedy)")
        ->capture_default_str();
    cmd->add_option("--top-k", a.sampling.top_k, "Top-k (0: off)")->capture_default_str();
    cmd->add_option("--top-p", a.sampling.top_p, "Top-p (1: off)")->capture_default_str();
    cmd->add_option("--min-p", a.sampling.min_p, "Min-p (0: off)")->capture_default_str();
    cmd->add_option("--repeat-penalty", a.sampling.repeat_penalty, "Repetition penalty (1: off)")
        ->capture_default_str();
    cmd->add_option("--repeat-last-n", a.sampling.repeat_last_n, "Tokens the penalties look back")
        ->capture_default_str();
    cmd->add_option("--seed", a.seed, "Random seed (default: random)");
    cmd->add_flag("--context-shift", a.context_shift,
                  "When the context is full, drop the oldest whole turns (the system message "
                  "stays) and go on. Unlike llama.cpp's --context-shift, which discards half of "
                  "the tokens after --keep, no turn is ever cut in the middle");
}

void run_chat(const ChatArgs& a) {
    SamplingOptions sampling = a.sampling;
    sampling.seed = a.seed ? *a.seed : std::random_device{}();
    validate(sampling);
    auto model = load_model(a.m);
    ChatFormatter formatter = ChatFormatter::for_model(*model, a.tmpl);
    for (const std::string& n : formatter.notices()) fmt::print(stderr, "note: {}\n", n);
    if (a.m.verbose) fmt::print(stderr, "template: {}\n", formatter.description());
    const SessionOptions so = session_options(a.m);
    ConversationOptions co;
    co.generate.n_predict = a.n_predict;
    co.generate.sampling = sampling;
    co.context_shift = a.context_shift;
    Conversation conv(Session(std::move(model), so), std::move(formatter), co);
    if (!a.messages.empty()) conv.set_input(read_messages_file(a.messages));
    if (!a.system.empty()) conv.set_system(a.no_escape ? a.system : process_escapes(a.system));
    if (!a.system_file.empty()) conv.set_system(read_text_file(a.system_file));

    const bool interactive = isatty(STDIN_FILENO) != 0;
    ChatLoop loop(conv, a, interactive);
    if (!interactive) {
        PipedReader reader;
        loop.run(reader);
        return;
    }
    std::setlocale(LC_CTYPE, "");
    install_sigint_flag();
    fmt::print(stderr, "chatting with {} ({}); /help for commands, Ctrl+D to leave\n",
               model_path(a.m), conv.formatter().description());
    EditReader reader;
    loop.run(reader);
}

}  // namespace

void register_chat(CLI::App& app) {
    auto* cmd = app.add_subcommand("chat",
                                   "Chat with a model (interactive, or one turn per "
                                   "input line when stdin is not a terminal)");
    auto a = std::make_shared<ChatArgs>();
    add_chat_options(cmd, *a);
    cmd->callback([a] { run_chat(*a); });
}

}  // namespace bitnet::cli
