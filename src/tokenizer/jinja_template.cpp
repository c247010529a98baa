// bitnet::ChatTemplate: parse once, render many times.
#include <chrono>

#include "bitnet/chat_template.h"
#include "tokenizer/jinja_interp.h"
#include "tokenizer/jinja_parser.h"

namespace bitnet {

struct ChatTemplate::Impl {
    jinja::Program program;
};

ChatTemplate ChatTemplate::parse(std::string_view source, const TemplateLimits& limits) {
    auto impl = std::make_shared<Impl>();
    impl->program = jinja::parse_program(source, limits.max_depth);
    ChatTemplate t;
    t.impl_ = std::move(impl);
    t.limits_ = limits;
    return t;
}

std::string ChatTemplate::render(const nlohmann::ordered_json& context) const {
    if (!impl_) throw Error("chat template: render() on a template that was not parsed");
    if (!context.is_object()) throw Error("chat template: the context must be a JSON object");
    const int64_t now = clock_ ? clock_()
                               : std::chrono::duration_cast<std::chrono::seconds>(
                                     std::chrono::system_clock::now().time_since_epoch())
                                     .count();
    jinja::Interp interp(limits_, now);
    return interp.render(impl_->program, jinja::from_json(context));
}

}  // namespace bitnet
