// Renders a parsed template: scopes as Jinja2's frames behave (a for-loop body, macro and call
// bodies get their own scope; if does not), control flow, macros, and the resource limits.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "bitnet/chat_template.h"
#include "tokenizer/jinja_ast.h"
#include "tokenizer/jinja_value.h"

namespace bitnet::jinja {

struct Scope {
    std::vector<std::pair<std::string, Value>> vars;
    std::shared_ptr<Scope> parent;

    const Value* find(std::string_view name) const;
    void set(const std::string& name, Value v);
};
using ScopePtr = std::shared_ptr<Scope>;

enum class Flow : uint8_t { Normal, Break, Continue };

class Interp {
  public:
    Interp(const TemplateLimits& limits, int64_t now);
    std::string render(const Program& program, const Value& context);

    // Calls a callable (macro, builtin, bound method) with the depth and work limits applied.
    Value call(const Value& fn, CallArgs& args);
    // Throws when a string of n bytes would exceed the output limit.
    void check_size(size_t n) const;
    // Counts one unit of work (a loop iteration or a call) against the limit.
    void count_work();
    int64_t now() const { return now_; }
    const TemplateLimits& limits() const { return limits_; }

  private:
    const TemplateLimits& limits_;
    int64_t now_;
    int64_t work_ = 0;
    int depth_ = 0;
    // Namespaces assigned to during the render. `{% set ns.x = (ns, 1) %}` makes one hold
    // itself, a cycle of shared pointers that would outlive the render; render() empties every
    // one still alive at its end, which frees such cycles.
    std::vector<std::weak_ptr<DictData>> assigned_;

    Flow exec(const Body& body, const ScopePtr& scope, std::string& out);
    Flow exec_one(const Stmt& s, const ScopePtr& scope, std::string& out);
    Flow exec_for(const Stmt& s, const ScopePtr& scope, std::string& out);
    void exec_if(const Stmt& s, const ScopePtr& scope, std::string& out, Flow& flow);
    void assign(const Expr& target, const Value& v, const ScopePtr& scope);
    Value make_macro(const Stmt& s, const ScopePtr& scope);
    Value invoke_macro(const Stmt& s, const ScopePtr& defining, CallArgs& args);
    std::string render_body(const Body& body, const ScopePtr& parent);
    void append(std::string& out, std::string_view text) const;

    Value eval(const Expr& e, const ScopePtr& scope);
    Value eval_binary(const Expr& e, const ScopePtr& scope);
    Value eval_compare(const Expr& e, const ScopePtr& scope);
    Value eval_call(const Expr& e, const ScopePtr& scope, const Value* caller);
    Value eval_filter(const Expr& e, const ScopePtr& scope, const Value* subject);
    Value eval_slice(const Expr& e, const ScopePtr& scope);
    CallArgs eval_args(const Expr& e, const ScopePtr& scope, size_t first);
    Value lookup(const std::string& name, const ScopePtr& scope) const;
};

// Python binary operators on values (+ - * / // % **).
Value binary_op(Interp& in, std::string_view op, const Value& a, const Value& b);
// Python's `item in container`.
bool contains(const Value& container, const Value& item);
// The globals every template sees (range, namespace, dict, raise_exception, strftime_now).
void add_globals(Scope& globals);

}  // namespace bitnet::jinja
