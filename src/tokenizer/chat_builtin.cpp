// Built-in chat templates, written as Jinja so that one engine renders everything. Each one
// that llama.cpp also has reproduces its llm_chat_apply_template (src/llama-chat.cpp) byte for
// byte, quirks included (llama2 ignores add_generation_prompt and drops <<SYS>>; gemma folds the
// system prompt into the next user turn); tests/parity/test_chat_templates_llamacpp.cpp checks
// them against the reference's libllama.
#include <array>
#include <string>
#include <string_view>
#include <vector>

#include "bitnet/chat.h"

namespace bitnet {

namespace {

struct Builtin {
    std::string_view name;
    std::string_view source;
};

constexpr std::array kBuiltins = {
    Builtin{"chatml",
            "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + "
            "message['content'] + '<|im_end|>\\n' }}{% endfor %}{% if add_generation_prompt %}"
            "{{ '<|im_start|>assistant\\n' }}{% endif %}"},
    Builtin{"llama2",
            "{{ '[INST] ' }}{% set ns = namespace(inside=true) %}{% for message in messages %}"
            "{% if not ns.inside %}{% set ns.inside = true %}{{ '[INST] ' }}{% endif %}"
            "{% if message['role'] == 'system' %}{{ message['content'] + '\\n' }}"
            "{% elif message['role'] == 'user' %}{{ message['content'] + ' [/INST]' }}"
            "{% else %}{{ message['content'] + '</s>' }}{% set ns.inside = false %}{% endif %}"
            "{% endfor %}"},
    Builtin{
        "llama3",
        "{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + "
        "'<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}{% endfor %}"
        "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' "
        "}}{% endif %}"},
    Builtin{"phi3",
            "{% for message in messages %}{{ '<|' + message['role'] + '|>\\n' + "
            "message['content'] + '<|end|>\\n' }}{% endfor %}{% if add_generation_prompt %}"
            "{{ '<|assistant|>\\n' }}{% endif %}"},
    Builtin{"phi4",
            "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '<|im_sep|>' + "
            "message['content'] + '<|im_end|>' }}{% endfor %}{% if add_generation_prompt %}"
            "{{ '<|im_start|>assistant<|im_sep|>' }}{% endif %}"},
    Builtin{"gemma",
            "{% set ns = namespace(sys='') %}{% for message in messages %}"
            "{% if message['role'] == 'system' %}{% set ns.sys = ns.sys + message['content'] | "
            "trim %}{% else %}{% set role = 'model' if message['role'] == 'assistant' else "
            "message['role'] %}{{ '<start_of_turn>' + role + '\\n' }}"
            "{% if ns.sys != '' and role != 'model' %}{{ ns.sys + '\\n\\n' }}"
            "{% set ns.sys = '' %}{% endif %}{{ message['content'] | trim + '<end_of_turn>\\n' }}"
            "{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '<start_of_turn>model\\n' }}"
            "{% endif %}"},
    Builtin{"mistral-v7",
            "{% for message in messages %}{% if message['role'] == 'system' %}"
            "{{ '[SYSTEM_PROMPT] ' + message['content'] + '[/SYSTEM_PROMPT]' }}"
            "{% elif message['role'] == 'user' %}{{ '[INST] ' + message['content'] + '[/INST]' }}"
            "{% else %}{{ ' ' + message['content'] + '</s>' }}{% endif %}{% endfor %}"},
    Builtin{"falcon3",
            "{% for message in messages %}{{ '<|' + message['role'] + '|>\\n' + "
            "message['content'] + '\\n' }}{% endfor %}{% if add_generation_prompt %}"
            "{{ '<|assistant|>\\n' }}{% endif %}"},
    Builtin{"zephyr",
            "{% for message in messages %}{{ '<|' + message['role'] + '|>\\n' + "
            "message['content'] + '<|endoftext|>\\n' }}{% endfor %}{% if add_generation_prompt %}"
            "{{ '<|assistant|>\\n' }}{% endif %}"},
    Builtin{"deepseek",
            "{% for message in messages %}{% if message['role'] == 'system' %}"
            "{{ message['content'] }}{% elif message['role'] == 'user' %}"
            "{{ '### Instruction:\\n' + message['content'] + '\\n' }}"
            "{% elif message['role'] == 'assistant' %}"
            "{{ '### Response:\\n' + message['content'] + '\\n<|EOT|>\\n' }}{% endif %}"
            "{% endfor %}{% if add_generation_prompt %}{{ '### Response:\\n' }}{% endif %}"},
    Builtin{"command-r",
            "{% set tags = {'system': 'SYSTEM', 'user': 'USER', 'assistant': 'CHATBOT'} %}"
            "{% for message in messages %}{% if message['role'] in tags %}"
            "{{ '<|START_OF_TURN_TOKEN|><|' + tags[message['role']] + '_TOKEN|>' + "
            "message['content'] | trim + '<|END_OF_TURN_TOKEN|>' }}{% endif %}{% endfor %}"
            "{% if add_generation_prompt %}{{ '<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>' }}"
            "{% endif %}"},
    // bitnet.cpp's built-in format (MODELS.md): no <|eot_id|> after system and assistant turns,
    // and every user turn carries the generation prompt.
    Builtin{"bitnet",
            "{% for message in messages %}{% if message['role'] == 'system' %}"
            "{{ 'System: ' + message['content'] }}{% elif message['role'] == 'user' %}"
            "{{ 'User: ' + message['content'] + '<|eot_id|>Assistant: ' }}"
            "{% else %}{{ message['content'] }}{% endif %}{% endfor %}"},
    // The format BitNet b1.58 2B-4T was trained on: the template of its Hugging Face
    // tokenizer_config.json, verbatim (MODELS.md).
    Builtin{"bitnet-b1.58",
            "{% set loop_messages = messages %}{% for message in loop_messages %}"
            "{% set content = message['role'] | capitalize + ': '+ message['content'] | trim + "
            "'<|eot_id|>' %}{{ content }}{% endfor %}{% if add_generation_prompt %}"
            "{{ 'Assistant: ' }}{% endif %}"},
};

}  // namespace

std::vector<std::string> chat_template_names() {
    std::vector<std::string> out;
    out.reserve(kBuiltins.size());
    for (const Builtin& b : kBuiltins) out.emplace_back(b.name);
    return out;
}

std::optional<std::string> builtin_chat_template(std::string_view name) {
    for (const Builtin& b : kBuiltins) {
        if (b.name == name) return std::string(b.source);
    }
    return std::nullopt;
}

bool is_bitnet_placeholder_template(std::string_view source) {
    return source.find("BITNETAssistant") != std::string_view::npos;
}

}  // namespace bitnet
