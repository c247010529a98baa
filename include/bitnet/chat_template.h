// Chat templates: Jinja2 templates as Hugging Face transformers renders them in
// `apply_chat_template` (transformers/utils/chat_template_utils.py, _compile_jinja_template):
// an ImmutableSandboxedEnvironment with trim_blocks=True, lstrip_blocks=True,
// keep_trailing_newline=False and the loopcontrols extension; `tojson` replaced by
// json.dumps(x, ensure_ascii=False, indent=indent, separators=None, sort_keys=False) (no HTML
// escaping, key order kept); globals raise_exception(msg) and strftime_now(fmt); the
// {% generation %} tag renders its body. Output is byte-identical to Python's jinja2 for the
// supported language (tests/unit/test_jinja.cpp diffs it against tests/reference/
// render_template.py over llama.cpp's models/templates corpus).
//
// Supported: expressions (literals, lists, dicts, tuples, attribute/item access, slices,
// arithmetic, ~, comparisons, in, and/or/not, inline if, calls with keyword arguments, filters,
// tests), statements if/elif/else, for (loop.*, else, inline if, unpacking, break/continue),
// set (also block set, namespace attributes, unpacking), macro (defaults, varargs, kwargs,
// caller), call, filter, with, raw, comments, whitespace control; Jinja2's built-in filters and
// tests as chat templates use them, and Python's str/dict/list methods (see jinja_builtins.h).
// Python's printing rules (repr of lists, dicts, None, True, floats) and Jinja2's Undefined
// (prints empty, falsy, errors on attribute access) are reproduced.
//
// Not supported (an Error or NotSupported naming the construct, never silent output):
// include/import/extends/block, recursive loops, *args/**kwargs in calls, autoescape, some
// rarely used filters (e.g. groupby, truncate, wordwrap, urlencode), printf-style '%' on
// strings, integers beyond 64 bits.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "bitnet/error.h"

namespace bitnet {

// Bounds on one render (and on parsing); exceeding any is an Error, never a hang or a crash.
struct TemplateLimits {
    int64_t max_loop_iterations = 1'000'000;  // for-loop iterations plus macro calls, in total
    int max_depth = 256;                      // syntax nesting and macro call depth
    size_t max_output_bytes = 16u << 20;      // the output and any string the template builds
    int64_t max_range = 1'000'000;            // the length of a range()
};

// raise_exception(msg) was called by the template: the template rejects its input
// (for example roles that do not alternate). message() is the template's own text.
class TemplateRaise : public Error {
  public:
    explicit TemplateRaise(const std::string& message)
        : Error("chat template raised an exception: " + message), message_(message) {}
    const std::string& message() const { return message_; }

  private:
    std::string message_;
};

class ChatTemplate {
  public:
    // Seconds since the Unix epoch for strftime_now (rendered in UTC). Defaults to the system
    // clock; tests inject a fixed time.
    using Clock = std::function<int64_t()>;

    // Parses once; throws Error (syntax, with line:column) or NotSupported.
    static ChatTemplate parse(std::string_view source, const TemplateLimits& limits = {});

    // Renders with the given variables: usually messages, add_generation_prompt, bos_token,
    // eos_token, tools and any extra template arguments. Keys keep their order (tojson, items).
    // Thread-safe: concurrent renders of one template share only the immutable syntax tree.
    // Throws TemplateRaise for raise_exception, Error for anything else that goes wrong.
    std::string render(const nlohmann::ordered_json& context) const;

    void set_clock(Clock clock) { clock_ = std::move(clock); }
    const TemplateLimits& limits() const { return limits_; }

  private:
    struct Impl;
    std::shared_ptr<const Impl> impl_;
    TemplateLimits limits_;
    Clock clock_;
};

}  // namespace bitnet
