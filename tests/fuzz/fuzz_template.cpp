// libFuzzer target: arbitrary bytes as chat template source, parsed and rendered with a fixed
// conversation (system, user, assistant with a tool call, tool result; tools offered). Only
// bitnet::Error (and its TemplateRaise / NotSupported) may come out; any other exception,
// crash, hang or sanitizer report is a bug. Tight limits keep every input fast.
// Seeds: llama.cpp's models/templates/*.jinja.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include <nlohmann/json.hpp>

#include "bitnet/chat_template.h"

namespace {

const nlohmann::ordered_json& context() {
    static const nlohmann::ordered_json ctx = nlohmann::ordered_json::parse(R"({
      "bos_token": "<s>", "eos_token": "</s>", "add_generation_prompt": true,
      "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Weather.",
        "parameters": {"type": "object", "properties": {"location": {"type": "string"}},
                       "required": ["location"]}}}],
      "messages": [
        {"role": "system", "content": "Be brief. é 日本 🚀"},
        {"role": "user", "content": [{"type": "text", "text": "Weather in {{ city }}?"}]},
        {"role": "assistant", "content": "", "tool_calls": [{"id": "c1", "type": "function",
          "function": {"name": "get_weather", "arguments": {"location": "Paris"}}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "22 C"},
        {"role": "user", "content": "Thanks\n"}]})");
    return ctx;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    bitnet::TemplateLimits limits;
    limits.max_loop_iterations = 20000;
    limits.max_depth = 64;
    limits.max_output_bytes = 1 << 16;
    limits.max_range = 10000;
    const std::string_view source(reinterpret_cast<const char*>(data), size);
    try {
        bitnet::ChatTemplate t = bitnet::ChatTemplate::parse(source, limits);
        t.set_clock([] { return int64_t{1700000000}; });
        (void)t.render(context());
    } catch (const bitnet::Error&) {
        // Rejected input: fine.
    }
    return 0;
}
