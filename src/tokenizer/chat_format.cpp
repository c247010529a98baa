// Choosing a chat template for a model and rendering OpenAI-shaped messages with it.
#include <fstream>
#include <iterator>
#include <string>
#include <utility>

#include "bitnet/chat.h"
#include "bitnet/error.h"

namespace bitnet {

namespace {

std::string where(size_t i) {
    return "message " + std::to_string(i);
}

void check_message(const Json& m, size_t i) {
    if (!m.is_object()) throw Error(where(i) + " is not a JSON object");
    const auto role = m.find("role");
    if (role == m.end() || !role->is_string()) throw Error(where(i) + " has no \"role\" string");
    const auto content = m.find("content");
    if (content == m.end() || content->is_null() || content->is_string()) return;
    if (!content->is_array()) {
        throw Error(where(i) + ": \"content\" must be a string, null or a list of parts, not " +
                    std::string(content->type_name()));
    }
    for (const Json& part : *content) {
        if (!part.is_object() || !part.contains("type") || !part["type"].is_string())
            throw Error(where(i) + ": a content part is not an object with a \"type\"");
    }
}

// Text parts joined by newlines, as llama.cpp passes list contents to templates that take
// strings; other part types (images, audio) are refused rather than silently dropped.
Json flatten_content(const Json& content, size_t i) {
    if (!content.is_array()) return content;
    std::string text;
    for (const Json& part : content) {
        const std::string type = part.at("type").get<std::string>();
        if (type != "text") {
            throw NotSupported("content part of type \"" + type + "\" in " + where(i) +
                               " (only text parts)");
        }
        if (!part.contains("text") || !part["text"].is_string())
            throw Error(where(i) + ": a text part has no \"text\" string");
        if (!text.empty()) text += '\n';
        text += part["text"].get<std::string>();
    }
    return text;
}

std::string special_text(const Tokenizer& tok, TokenId id) {
    return id == kNoToken ? std::string() : tok.token_text(id);
}

}  // namespace

ChatInput parse_chat_input(const Json& json) {
    ChatInput in;
    if (json.is_array()) {
        in.messages = json;
    } else if (json.is_object() && json.contains("messages")) {
        for (const auto& [key, value] : json.items()) {
            if (key == "messages") {
                in.messages = value;
            } else if (key == "tools") {
                in.tools = value;
            } else if (key == "add_generation_prompt") {
                if (!value.is_boolean())
                    throw Error("\"add_generation_prompt\" must be true or false");
                in.add_generation_prompt = value.get<bool>();
            } else if (key == "bos_token" || key == "eos_token") {
                // The tokenizer's own: a file cannot redefine them (the BOS/EOS trimming after
                // rendering depends on them being the vocabulary's text).
                throw Error("\"" + key + "\" comes from the model's vocabulary and cannot be set");
            } else {
                in.extra[key] = value;
            }
        }
    } else {
        throw Error("messages JSON must be an array of messages or an object with \"messages\"");
    }
    if (!in.messages.is_array()) throw Error("\"messages\" must be an array");
    for (size_t i = 0; i < in.messages.size(); ++i) check_message(in.messages[i], i);
    return in;
}

Json chat_input_to_json(const ChatInput& input) {
    Json out = Json::object();
    out["messages"] = input.messages;
    if (!input.tools.is_null()) out["tools"] = input.tools;
    for (const auto& [key, value] : input.extra.items()) out[key] = value;
    return out;
}

ChatFormatter::ChatFormatter(const Tokenizer& tokenizer, std::string source,
                             std::string description)
    : tokenizer_(&tokenizer),
      source_(std::move(source)),
      description_(std::move(description)),
      template_(ChatTemplate::parse(source_)) {}

ChatFormatter ChatFormatter::for_model(const Model& model, const ChatTemplateOptions& o) {
    const Tokenizer& tok = model.tokenizer();
    if (!o.chat_template.empty()) {
        if (auto named = builtin_chat_template(o.chat_template)) {
            return {tok, *named, "built-in " + o.chat_template};
        }
        if (o.chat_template.find("{%") == std::string::npos &&
            o.chat_template.find("{{") == std::string::npos) {
            std::string names;
            for (const std::string& n : chat_template_names()) names += " " + n;
            throw Error("--chat-template '" + o.chat_template + "' is neither a built-in name (" +
                        names.substr(1) + ") nor Jinja source");
        }
        return {tok, o.chat_template, "--chat-template"};
    }
    if (!o.chat_template_file.empty()) {
        std::ifstream in(o.chat_template_file, std::ios::binary);
        if (!in) throw Error(o.chat_template_file + ": cannot open the chat template file");
        std::string src{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
        return {tok, std::move(src), o.chat_template_file};
    }
    const std::string file_template =
        model.file().metadata().get_or<std::string>("tokenizer.chat_template", "");
    if (is_bitnet_placeholder_template(file_template)) {
        ChatFormatter f(tok, *builtin_chat_template("bitnet-b1.58"), "built-in bitnet-b1.58");
        f.notices_.emplace_back(
            "the file's chat template is the placeholder of Microsoft's converter (Human: ... "
            "BITNETAssistant:), not the trained format: using bitnet-b1.58 instead "
            "(--chat-template overrides)");
        return f;
    }
    if (!file_template.empty()) return {tok, file_template, "the file's tokenizer.chat_template"};
    ChatFormatter f(tok, *builtin_chat_template("chatml"), "built-in chatml");
    f.notices_.emplace_back(
        "the file has no tokenizer.chat_template: using chatml, as llama.cpp does (choose "
        "another with --chat-template)");
    return f;
}

std::string ChatFormatter::render(const ChatInput& input) const {
    const Tokenizer& tok = *tokenizer_;
    Json messages = Json::array();
    for (size_t i = 0; i < input.messages.size(); ++i) {
        Json m = input.messages[i];
        check_message(m, i);
        if (m.contains("content")) m["content"] = flatten_content(m["content"], i);
        messages.push_back(std::move(m));
    }
    Json context = Json::object();
    context["messages"] = std::move(messages);
    context["bos_token"] = special_text(tok, tok.special().bos);
    context["eos_token"] = special_text(tok, tok.special().eos);
    context["add_generation_prompt"] = input.add_generation_prompt;
    if (!input.tools.is_null()) context["tools"] = input.tools;
    for (const auto& [key, value] : input.extra.items()) context[key] = value;
    std::string text = template_.render(context);
    const std::string bos = context["bos_token"].get<std::string>();
    const std::string eos = context["eos_token"].get<std::string>();
    if (tok.add_bos() && !bos.empty() && text.starts_with(bos)) text.erase(0, bos.size());
    if (tok.add_eos() && !eos.empty() && text.ends_with(eos)) text.resize(text.size() - eos.size());
    return text;
}

std::vector<TokenId> ChatFormatter::tokenize(const std::string& prompt) const {
    EncodeOptions eo;
    eo.add_special = true;
    eo.parse_special = true;
    return tokenizer_->encode(prompt, eo);
}

}  // namespace bitnet
