// Builds the syntax tree from tokens with Jinja2's grammar and operator precedence
// (jinja2/parser.py). Unknown tags, unknown filters and tests outside if-branches and
// conditional expressions (which Jinja2 reports when compiling), and constructs this engine
// does not implement are errors naming the construct and its line:column.
#pragma once

#include <string_view>

#include "tokenizer/jinja_ast.h"

namespace bitnet::jinja {

Program parse_program(std::string_view source, int max_depth);

}  // namespace bitnet::jinja
