// The syntax tree of a parsed template: expressions and statements as Jinja2's parser builds
// them (jinja2/nodes.py), reduced to what chat templates use. Immutable after parsing, so one
// tree can be rendered from many threads.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tokenizer/jinja_value.h"

namespace bitnet::jinja {

enum class ExprKind : uint8_t {
    Const,     // value
    Name,      // name
    List,      // children
    Tuple,     // children
    Dict,      // children: key0, value0, key1, value1, ...
    GetAttr,   // children[0].name
    GetItem,   // children[0][children[1]]
    Slice,     // children[0][c1:c2:c3], absent parts are null
    Neg,       // -children[0]
    Pos,       // +children[0]
    Not,       // not children[0]
    Binary,    // children[0] <name> children[1]: + - * / // % **
    And,       // children[0] and children[1]
    Or,        // children[0] or children[1]
    Compare,   // children[0] ops[0] children[1] ops[1] children[2] ...
    Concat,    // children joined with ~
    CondExpr,  // children[1] if children[0] else children[2] (null: undefined)
    Call,      // children[0](children[1..], kwargs)
    Filter,    // children[0] | name(children[1..], kwargs); children[0] null in {% filter %}
    Test,      // children[0] is [not] name(children[1..], kwargs)
};

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Expr {
    ExprKind kind = ExprKind::Const;
    int line = 0;
    int col = 0;
    Value value;
    std::string name;
    std::vector<ExprPtr> children;
    std::vector<std::string> ops;
    std::vector<std::pair<std::string, ExprPtr>> kwargs;
    bool negated = false;
};

enum class StmtKind : uint8_t {
    Data,         // text
    Print,        // {{ expr }}
    If,           // branches (condition null for else)
    For,          // target in iter [if cond] body [else else_body]
    Set,          // target = expr
    SetBlock,     // {% set target %}body{% endset %} (expr: optional filter chain)
    Macro,        // name(params) body
    CallBlock,    // {% call(params) expr %}body{% endcall %}
    FilterBlock,  // {% filter expr %}body{% endfilter %}
    With,         // {% with assigns %}body{% endwith %}
    Generation,   // Hugging Face's {% generation %}body{% endgeneration %}
    Break,
    Continue,
};

struct Stmt;
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

struct Param {
    std::string name;
    ExprPtr default_value;  // null: required (undefined when missing)
};

struct Stmt {
    StmtKind kind = StmtKind::Data;
    int line = 0;
    int col = 0;
    std::string text;
    std::string name;
    ExprPtr expr;
    ExprPtr target;
    ExprPtr condition;
    std::vector<std::pair<ExprPtr, Body>> branches;
    Body body;
    Body else_body;
    std::vector<Param> params;
    std::vector<std::pair<ExprPtr, ExprPtr>> assigns;  // With: target, value
    bool uses_caller = false;
    bool uses_varargs = false;
    bool uses_kwargs = false;
};

struct Program {
    Body body;
};

}  // namespace bitnet::jinja
