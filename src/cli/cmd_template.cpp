// `bitnet template`: the prompt a model sees for a conversation (text or token ids), and the
// option and file helpers `bitnet chat` shares with it.
#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "bitnet/chat.h"
#include "bitnet/error.h"
#include "cli/commands.h"

namespace bitnet::cli {

void add_chat_template_options(CLI::App* cmd, ChatTemplateOptions& o) {
    std::string names;
    for (const std::string& n : chat_template_names()) names += " " + n;
    auto* t = cmd->add_option("--chat-template", o.chat_template,
                              "A built-in template name (" + names.substr(1) +
                                  ") or Jinja source; default: the file's tokenizer.chat_template "
                                  "(the 2B-4T placeholder is replaced by bitnet-b1.58), else "
                                  "chatml");
    auto* f = cmd->add_option("--chat-template-file", o.chat_template_file,
                              "A file holding a Jinja chat template");
    t->excludes(f);
}

ChatInput read_messages_file(const std::string& path) {
    const std::string text = read_text_file(path);
    Json j;
    try {
        j = Json::parse(text);
    } catch (const nlohmann::json::exception& e) {
        throw Error(path + ": not valid JSON (" + e.what() + ")");
    }
    try {
        return parse_chat_input(j);
    } catch (const Error& e) {
        throw Error(path + ": " + e.what());
    }
}

void register_template(CLI::App& app) {
    auto* cmd = app.add_subcommand(
        "template", "Print the prompt a model sees for a conversation (or its token ids)");
    struct Args {
        std::string model, messages;
        ChatTemplateOptions tmpl;
        bool no_generation_prompt = false, ids = false, verbose = false;
    };
    auto a = std::make_shared<Args>();
    cmd->add_option("-m,--model", a->model, "GGUF model (its tokenizer and chat template)")
        ->required();
    cmd->add_option("--messages", a->messages,
                    "JSON file: an array of messages, or an object with \"messages\" (and "
                    "optionally \"tools\" and extra template variables)")
        ->required();
    add_chat_template_options(cmd, a->tmpl);
    cmd->add_flag("--no-generation-prompt", a->no_generation_prompt,
                  "Render without add_generation_prompt");
    cmd->add_flag("--ids", a->ids,
                  "Print the token ids (special tokens parsed, BOS as the "
                  "vocabulary asks) instead of the text");
    cmd->add_flag("-v,--verbose", a->verbose, "Say which template is used");
    cmd->callback([a] {
        ChatInput input = read_messages_file(a->messages);
        if (a->no_generation_prompt) input.add_generation_prompt = false;
        const auto model = Model::load(a->model);
        print_load_messages(*model, a->verbose);
        const ChatFormatter f = ChatFormatter::for_model(*model, a->tmpl);
        for (const std::string& n : f.notices()) fmt::print(stderr, "note: {}\n", n);
        if (a->verbose) fmt::print(stderr, "template: {}\n", f.description());
        const std::string prompt = f.render(input);
        if (!a->ids) {
            std::fwrite(prompt.data(), 1, prompt.size(), stdout);
            return;
        }
        std::string line;
        for (const TokenId id : f.tokenize(prompt)) {
            line += (line.empty() ? "" : " ") + std::to_string(id);
        }
        fmt::print("{}\n", line);
    });
}

}  // namespace bitnet::cli
