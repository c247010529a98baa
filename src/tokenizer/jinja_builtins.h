// Jinja2's built-in filters, tests and globals plus the object methods templates call
// (str, dict, list methods), with Python semantics; the sandbox's refusals (list.append,
// dict.update, ...) are errors like Jinja2's SecurityError.
#pragma once

#include <string>
#include <string_view>

#include "tokenizer/jinja_value.h"

namespace bitnet::jinja {

bool has_filter(std::string_view name);
bool has_test(std::string_view name);
Value apply_filter(Interp& in, std::string_view name, const Value& subject, CallArgs& args);
bool apply_test(Interp& in, std::string_view name, const Value& subject, CallArgs& args);

// obj.name as Jinja2's sandboxed getattr does it (attribute first, then item).
Value get_attr(const Value& obj, const std::string& name);
// obj[key] (item first, then attribute for string keys).
Value get_item(const Value& obj, const Value& key);

// Argument binding for builtins: positional or keyword parameter `index` named `name`.
const Value* arg(const CallArgs& args, size_t index, std::string_view name);
// Throws when more positional arguments or unknown keywords were given than `names` lists.
void check_args(const CallArgs& args, std::string_view func,
                std::initializer_list<std::string_view> names);

}  // namespace bitnet::jinja
