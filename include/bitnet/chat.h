// The chat API: OpenAI-shaped messages in, the prompt a model sees (text and token ids) out,
// and a Conversation that keeps its Session so that each turn evaluates only what is new.
// Used by `bitnet chat`, `bitnet template` and the server.
//
// Templates are Jinja (include/bitnet/chat_template.h), chosen as llama.cpp chooses them:
// --chat-template NAME|JINJA, else --chat-template-file, else the file's
// tokenizer.chat_template, else chatml. Built-in names render exactly what llama.cpp's
// llama_chat_apply_template renders for the names it shares with us (tested by dlopen-ing it).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "bitnet/chat_template.h"
#include "bitnet/generate.h"
#include "bitnet/model.h"
#include "bitnet/session.h"

namespace bitnet {

using Json = nlohmann::ordered_json;

// The names of the built-in templates, and the Jinja source of one (nullopt: not a name).
std::vector<std::string> chat_template_names();
std::optional<std::string> builtin_chat_template(std::string_view name);

// True for the placeholder template Microsoft's converter wrote into BitNet b1.58 2B-4T's
// GGUF (`Human: ...BITNETAssistant: ` + EOS), which is not the format the model was trained on.
bool is_bitnet_placeholder_template(std::string_view source);

// What goes into a render: messages (OpenAI shape: role, content as a string, null or a list
// of {"type": "text", "text": ...} parts, tool_calls, ...), tools and extra template variables.
struct ChatInput {
    Json messages = Json::array();
    Json tools;                   // null: none
    Json extra = Json::object();  // more template variables (e.g. enable_thinking)
    bool add_generation_prompt = true;
};

// Reads the JSON --messages takes: an array of messages, or an object with "messages" (and
// optionally "tools"; any other key becomes an extra template variable). Checks each message
// has a string role and a content of a known shape; throws Error naming the message index.
ChatInput parse_chat_input(const Json& json);
// The conversation as /save writes it ({"messages": [...]}, tools and extras when present).
Json chat_input_to_json(const ChatInput& input);

struct ChatTemplateOptions {
    std::string chat_template;       // --chat-template: a built-in name or Jinja source
    std::string chat_template_file;  // --chat-template-file: a file holding Jinja source
};

// A chosen template bound to a tokenizer: renders messages into the prompt text and ids.
class ChatFormatter {
  public:
    // Chooses the template for `model` as described at the top; `notices` (one line each) say
    // when a default was taken or the 2B-4T placeholder was replaced. Throws Error for a
    // template that does not parse (with line:column) or an unreadable file.
    static ChatFormatter for_model(const Model& model, const ChatTemplateOptions& options = {});
    ChatFormatter(const Tokenizer& tokenizer, std::string source, std::string description);

    // The text after rendering, less a leading BOS text when the tokenizer adds BOS itself and
    // a trailing EOS text when it adds EOS. Throws TemplateRaise / Error from the template.
    std::string render(const ChatInput& input) const;
    // Tokenizes a rendered prompt: special tokens parsed, BOS/EOS as the vocabulary asks.
    std::vector<TokenId> tokenize(const std::string& prompt) const;

    const std::string& source() const { return source_; }
    // Where the template came from ("built-in chatml", "the file's tokenizer.chat_template").
    const std::string& description() const { return description_; }
    const std::vector<std::string>& notices() const { return notices_; }

  private:
    const Tokenizer* tokenizer_;
    std::string source_, description_;
    std::vector<std::string> notices_;
    ChatTemplate template_;
};

// What one reply cost and how it ended.
struct ChatStats {
    int64_t prompt_tokens = 0;  // the whole rendered conversation
    int64_t reused_tokens = 0;  // of those, kept from the KV cache
    int64_t new_tokens = 0;     // of those, evaluated for this reply
    int64_t gen_tokens = 0;
    double prompt_ms = 0, gen_ms = 0;
    StopReason stop = StopReason::Length;
    int dropped_messages = 0;  // removed by the context shift before this reply

    double prompt_tokens_per_second() const;
    double gen_tokens_per_second() const;
    std::string summary() const;  // one line for --verbose and /show stats
};

struct ChatReply {
    std::string text;
    ChatStats stats;
    std::vector<std::string> notices;  // e.g. what the context shift dropped
};

struct ConversationOptions {
    GenerateOptions generate;
    // When the conversation no longer fits: drop the oldest whole messages (keeping system
    // messages and the last user message) instead of failing.
    bool context_shift = false;
};

class Conversation {
  public:
    Conversation(Session session, ChatFormatter formatter, ConversationOptions options = {});

    // Appends a user message, renders, reuses the cached prefix, generates; the reply (partial
    // when on_text returned false) becomes an assistant message. Throws Error when the
    // conversation does not fit the context (and context_shift is off); the user message is
    // removed again then.
    using OnText = std::function<bool(std::string_view)>;
    ChatReply reply(std::string_view user_text, const OnText& on_text = {});
    // Drops the last assistant message (if the conversation ends with one) and replies again.
    ChatReply regenerate(const OnText& on_text = {});

    // Keeps only the system message(s).
    void clear();
    // Replaces the system message (or inserts one at the start); "" removes it.
    void set_system(const std::string& text);
    void set_input(ChatInput input);
    const ChatInput& input() const { return input_; }
    // The rendered conversation (with the generation prompt when asked).
    std::string render(bool add_generation_prompt) const;

    ConversationOptions& options() { return options_; }
    const ChatFormatter& formatter() const { return formatter_; }
    const Session& session() const { return session_; }
    const std::optional<ChatStats>& last_stats() const { return last_stats_; }

  private:
    ChatReply generate_reply(const OnText& on_text);
    std::vector<TokenId> fit_context(ChatReply& out);

    Session session_;
    ChatFormatter formatter_;
    ConversationOptions options_;
    ChatInput input_;
    std::optional<ChatStats> last_stats_;
};

}  // namespace bitnet
