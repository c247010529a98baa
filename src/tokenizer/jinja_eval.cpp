#include "tokenizer/jinja_interp.h"

#include <algorithm>

#include "tokenizer/jinja_builtins.h"
#include "tokenizer/jinja_lexer.h"
#include "tokenizer/jinja_string.h"

namespace bitnet::jinja {

namespace {

struct LocatedError : Error {
    using Error::Error;
};
struct LocatedNotSupported : NotSupported {
    using NotSupported::NotSupported;
};

// Python slice indices for a sequence of n items.
std::vector<int64_t> slice_indices(int64_t n, const Value* start, const Value* stop,
                                   const Value* step) {
    auto get = [](const Value* v) -> std::optional<int64_t> {
        if (v == nullptr || v->is_none() || v->is_undefined()) return std::nullopt;
        if (!v->is_integral()) throw Error("slice indices must be integers or None");
        return v->as_int();
    };
    const int64_t st = get(step).value_or(1);
    if (st == 0) throw Error("slice step cannot be zero");
    auto norm = [&](std::optional<int64_t> v, int64_t dflt, int64_t lo, int64_t hi) {
        if (!v) return dflt;
        int64_t x = *v;
        if (x < 0) x += n;
        return std::clamp(x, lo, hi);
    };
    std::vector<int64_t> out;
    if (st > 0) {
        const int64_t b = norm(get(start), 0, 0, n);
        const int64_t e = norm(get(stop), n, 0, n);
        for (int64_t k = b; k < e; k += st) out.push_back(k);
    } else {
        const int64_t b = norm(get(start), n - 1, -1, n - 1);
        const int64_t e = norm(get(stop), -1, -1, n - 1);
        for (int64_t k = b; k > e; k += st) out.push_back(k);
    }
    return out;
}

}  // namespace

const Value* Scope::find(std::string_view name) const {
    for (const Scope* s = this; s != nullptr; s = s->parent.get()) {
        for (const auto& [k, v] : s->vars) {
            if (k == name) return &v;
        }
    }
    return nullptr;
}

void Scope::set(const std::string& name, Value v) {
    for (auto& [k, old] : vars) {
        if (k == name) {
            old = std::move(v);
            return;
        }
    }
    vars.emplace_back(name, std::move(v));
}

Interp::Interp(const TemplateLimits& limits, int64_t now) : limits_(limits), now_(now) {}

void Interp::check_size(size_t n) const {
    if (n > limits_.max_output_bytes) {
        throw Error("chat template output exceeds " + std::to_string(limits_.max_output_bytes) +
                    " bytes");
    }
}

void Interp::count_work() {
    if (++work_ > limits_.max_loop_iterations) {
        throw Error("chat template exceeds " + std::to_string(limits_.max_loop_iterations) +
                    " loop iterations and calls");
    }
}

void Interp::append(std::string& out, std::string_view text) const {
    check_size(out.size() + text.size());
    out.append(text);
}

std::string Interp::render(const Program& program, const Value& context) {
    auto globals = std::make_shared<Scope>();
    add_globals(*globals);
    auto ctx = std::make_shared<Scope>();
    ctx->parent = globals;
    if (context.is_mapping()) {
        for (const auto& [k, v] : context.dict->items) ctx->set(k.s, v);
    }
    auto root = std::make_shared<Scope>();
    root->parent = ctx;
    struct BreakCycles {  // also when the render throws
        std::vector<std::weak_ptr<DictData>>& assigned;
        ~BreakCycles() {
            for (const auto& w : assigned) {
                if (const auto d = w.lock()) d->items.clear();
            }
            assigned.clear();
        }
    } break_cycles{assigned_};
    std::string out;
    exec(program.body, root, out);
    return out;
}

Flow Interp::exec(const Body& body, const ScopePtr& scope, std::string& out) {
    for (const auto& s : body) {
        const Flow f = exec_one(*s, scope, out);
        if (f != Flow::Normal) return f;
    }
    return Flow::Normal;
}

std::string Interp::render_body(const Body& body, const ScopePtr& parent) {
    auto scope = std::make_shared<Scope>();
    scope->parent = parent;
    std::string out;
    exec(body, scope, out);
    return out;
}

Flow Interp::exec_one(const Stmt& s, const ScopePtr& scope, std::string& out) {
    try {
        switch (s.kind) {
            case StmtKind::Data:
                append(out, s.text);
                return Flow::Normal;
            case StmtKind::Print: {
                const Value v = eval(*s.expr, scope);
                if (v.kind == Kind::Callable || v.kind == Kind::Object) {
                    throw NotSupported("printing a " + type_name(v));
                }
                append(out, to_str(v));
                return Flow::Normal;
            }
            case StmtKind::If: {
                Flow flow = Flow::Normal;
                exec_if(s, scope, out, flow);
                return flow;
            }
            case StmtKind::For:
                return exec_for(s, scope, out);
            case StmtKind::Set:
                assign(*s.target, eval(*s.expr, scope), scope);
                return Flow::Normal;
            case StmtKind::SetBlock: {
                Value v = Value::string(render_body(s.body, scope));
                if (s.expr) v = eval_filter(*s.expr, scope, &v);
                assign(*s.target, v, scope);
                return Flow::Normal;
            }
            case StmtKind::Macro:
                scope->set(s.name, make_macro(s, scope));
                return Flow::Normal;
            case StmtKind::CallBlock: {
                const Value caller = make_macro(s, scope);
                append(out, to_str(eval_call(*s.expr, scope, &caller)));
                return Flow::Normal;
            }
            case StmtKind::FilterBlock: {
                const Value body = Value::string(render_body(s.body, scope));
                append(out, to_str(eval_filter(*s.expr, scope, &body)));
                return Flow::Normal;
            }
            case StmtKind::With: {
                auto inner = std::make_shared<Scope>();
                inner->parent = scope;
                for (const auto& [target, value] : s.assigns)
                    assign(*target, eval(*value, scope), inner);
                return exec(s.body, inner, out);
            }
            case StmtKind::Generation:
                append(out, render_body(s.body, scope));
                return Flow::Normal;
            case StmtKind::Break:
                return Flow::Break;
            case StmtKind::Continue:
                return Flow::Continue;
        }
    } catch (const TemplateRaise&) {
        throw;
    } catch (const LocatedError&) {
        throw;
    } catch (const LocatedNotSupported&) {
        throw;
    } catch (const NotSupported& e) {
        std::string msg = e.what();
        msg.erase(0, std::string("not supported: ").size());
        throw LocatedNotSupported(msg + " (template " + where(s.line, s.col) + ")");
    } catch (const Error& e) {
        throw LocatedError(std::string("chat template error: ") + e.what() + " (template " +
                           where(s.line, s.col) + ")");
    }
    return Flow::Normal;
}

void Interp::exec_if(const Stmt& s, const ScopePtr& scope, std::string& out, Flow& flow) {
    for (const auto& [cond, body] : s.branches) {
        if (!cond || truthy(eval(*cond, scope))) {
            flow = exec(body, scope, out);
            return;
        }
    }
}

Flow Interp::exec_for(const Stmt& s, const ScopePtr& scope, std::string& out) {
    const Value iterable = eval(*s.expr, scope);
    if (iterable.is_none() || iterable.is_number()) {
        throw Error("'" + type_name(iterable) + "' object is not iterable");
    }
    std::vector<Value> items = iterate(iterable);
    if (s.condition) {
        std::vector<Value> kept;
        for (auto& item : items) {
            count_work();
            auto probe = std::make_shared<Scope>();
            probe->parent = scope;
            assign(*s.target, item, probe);
            if (truthy(eval(*s.condition, probe))) kept.push_back(std::move(item));
        }
        items = std::move(kept);
    }
    if (items.empty()) {
        if (!s.else_body.empty()) append(out, render_body(s.else_body, scope));
        return Flow::Normal;
    }
    const auto n = static_cast<int64_t>(items.size());
    for (int64_t k = 0; k < n; ++k) {
        count_work();
        auto iter = std::make_shared<Scope>();
        iter->parent = scope;
        Value loop = Value::new_object();
        auto& lv = loop.dict->items;
        lv.emplace_back(Value::string("index"), Value::integer(k + 1));
        lv.emplace_back(Value::string("index0"), Value::integer(k));
        lv.emplace_back(Value::string("revindex"), Value::integer(n - k));
        lv.emplace_back(Value::string("revindex0"), Value::integer(n - k - 1));
        lv.emplace_back(Value::string("first"), Value::boolean(k == 0));
        lv.emplace_back(Value::string("last"), Value::boolean(k == n - 1));
        lv.emplace_back(Value::string("length"), Value::integer(n));
        lv.emplace_back(Value::string("depth"), Value::integer(1));
        lv.emplace_back(Value::string("depth0"), Value::integer(0));
        lv.emplace_back(Value::string("previtem"),
                        k > 0 ? items[static_cast<size_t>(k - 1)]
                              : Value::undefined("there is no previous item"));
        lv.emplace_back(Value::string("nextitem"), k + 1 < n
                                                       ? items[static_cast<size_t>(k + 1)]
                                                       : Value::undefined("there is no next item"));
        lv.emplace_back(Value::string("cycle"),
                        Value::callable("loop.cycle", [k](Interp&, CallArgs& a) {
                            if (a.pos.empty()) throw Error("no items for cycling given");
                            return a.pos[static_cast<size_t>(k) % a.pos.size()];
                        }));
        iter->set("loop", loop);
        assign(*s.target, items[static_cast<size_t>(k)], iter);
        if (exec(s.body, iter, out) == Flow::Break) break;
    }
    return Flow::Normal;
}

void Interp::assign(const Expr& target, const Value& v, const ScopePtr& scope) {
    if (target.kind == ExprKind::Name) {
        scope->set(target.name, v);
        return;
    }
    if (target.kind == ExprKind::GetAttr) {
        const Value ns = lookup(target.children[0]->name, scope);
        if (ns.kind != Kind::Namespace)
            throw Error("cannot assign attribute on non-namespace object");
        ns.dict->set(Value::string(target.name), v);
        assigned_.push_back(ns.dict);
        return;
    }
    // Tuple unpacking.
    if (v.is_undefined()) fail_undefined(v);
    const std::vector<Value> items = iterate(v);
    if (items.size() != target.children.size()) {
        throw Error(items.size() > target.children.size()
                        ? "too many values to unpack (expected " +
                              std::to_string(target.children.size()) + ")"
                        : "not enough values to unpack (expected " +
                              std::to_string(target.children.size()) + ", got " +
                              std::to_string(items.size()) + ")");
    }
    for (size_t k = 0; k < items.size(); ++k) assign(*target.children[k], items[k], scope);
}

Value Interp::make_macro(const Stmt& s, const ScopePtr& scope) {
    std::weak_ptr<Scope> defining = scope;
    const Stmt* stmt = &s;
    return Value::callable(s.name.empty() ? "caller" : s.name,
                           [stmt, defining](Interp& in, CallArgs& args) {
                               const ScopePtr scope_now = defining.lock();
                               if (!scope_now)
                                   throw NotSupported("calling macro '" + stmt->name +
                                                      "' outside the scope that defined it");
                               return in.invoke_macro(*stmt, scope_now, args);
                           });
}

Value Interp::invoke_macro(const Stmt& s, const ScopePtr& defining, CallArgs& args) {
    const std::string name = s.name.empty() ? "caller" : s.name;
    auto scope = std::make_shared<Scope>();
    scope->parent = defining;
    if (args.pos.size() > s.params.size() && !s.uses_varargs) {
        throw Error("macro '" + name + "' takes not more than " + std::to_string(s.params.size()) +
                    " argument(s)");
    }
    std::vector<bool> bound(s.params.size(), false);
    for (size_t k = 0; k < args.pos.size() && k < s.params.size(); ++k) {
        scope->set(s.params[k].name, args.pos[k]);
        bound[k] = true;
    }
    Value kwargs = Value::new_dict();
    for (auto& [key, value] : args.kw) {
        size_t k = 0;
        while (k < s.params.size() && s.params[k].name != key) ++k;
        if (k < s.params.size()) {
            if (bound[k])
                throw Error(std::string("macro '")
                                .append(name)
                                .append("' got multiple values for argument '")
                                .append(key)
                                .append("'"));
            scope->set(key, value);
            bound[k] = true;
        } else if (key == "caller") {
            scope->set("caller", value);
        } else if (s.uses_kwargs) {
            kwargs.dict->set(Value::string(key), value);
        } else {
            throw Error(std::string("macro '")
                            .append(name)
                            .append("' takes no keyword argument '")
                            .append(key)
                            .append("'"));
        }
    }
    for (size_t k = 0; k < s.params.size(); ++k) {
        if (bound[k]) continue;
        const Param& p = s.params[k];
        scope->set(p.name, p.default_value
                               ? eval(*p.default_value, scope)
                               : Value::undefined("parameter '" + p.name + "' was not provided"));
    }
    std::vector<Value> extra;
    for (size_t k = s.params.size(); k < args.pos.size(); ++k) extra.push_back(args.pos[k]);
    scope->set("varargs", Value::new_list(std::move(extra), true));
    scope->set("kwargs", kwargs);
    std::string out;
    exec(s.body, scope, out);
    return Value::string(std::move(out));
}

Value Interp::call(const Value& fn, CallArgs& args) {
    if (fn.is_undefined()) fail_undefined(fn);
    if (fn.kind != Kind::Callable) throw Error("'" + type_name(fn) + "' object is not callable");
    count_work();
    if (++depth_ > limits_.max_depth) {
        --depth_;
        throw Error("chat template calls nested deeper than " + std::to_string(limits_.max_depth));
    }
    try {
        Value r = fn.fn->fn(*this, args);
        --depth_;
        return r;
    } catch (...) {
        --depth_;
        throw;
    }
}

Value Interp::lookup(const std::string& name, const ScopePtr& scope) const {
    if (const Value* v = scope->find(name)) return *v;
    return Value::undefined("'" + name + "' is undefined");
}

CallArgs Interp::eval_args(const Expr& e, const ScopePtr& scope, size_t first) {
    CallArgs args;
    for (size_t k = first; k < e.children.size(); ++k)
        args.pos.push_back(eval(*e.children[k], scope));
    for (const auto& [key, value] : e.kwargs) args.kw.emplace_back(key, eval(*value, scope));
    return args;
}

Value Interp::eval_call(const Expr& e, const ScopePtr& scope, const Value* caller) {
    const Value fn = eval(*e.children[0], scope);
    CallArgs args = eval_args(e, scope, 1);
    if (caller != nullptr) args.kw.emplace_back("caller", *caller);
    return call(fn, args);
}

Value Interp::eval_filter(const Expr& e, const ScopePtr& scope, const Value* subject) {
    // In {% filter %} and {% set x | f %} the chain bottoms out in a null subject node.
    Value input;
    if (!e.children[0]) {
        input = subject != nullptr ? *subject : Value();
    } else if (subject != nullptr) {
        input = eval_filter(*e.children[0], scope, subject);
    } else {
        input = eval(*e.children[0], scope);
    }
    CallArgs args = eval_args(e, scope, 1);
    return apply_filter(*this, e.name, input, args);
}

Value Interp::eval_slice(const Expr& e, const ScopePtr& scope) {
    const Value obj = eval(*e.children[0], scope);
    Value parts[3];
    for (int k = 0; k < 3; ++k) {
        if (e.children[static_cast<size_t>(k) + 1])
            parts[k] = eval(*e.children[static_cast<size_t>(k) + 1], scope);
    }
    auto p = [&](int k) { return e.children[static_cast<size_t>(k) + 1] ? &parts[k] : nullptr; };
    if (obj.is_undefined()) fail_undefined(obj);
    if (obj.is_string()) {
        const auto cps = to_cps(obj.s);
        std::string out;
        for (const int64_t k : slice_indices(static_cast<int64_t>(cps.size()), p(0), p(1), p(2))) {
            append_cp(out, cps[static_cast<size_t>(k)]);
        }
        return Value::string(std::move(out), obj.flag);
    }
    if (obj.is_list() && obj.list->view == nullptr) {
        std::vector<Value> out;
        const auto& items = obj.list->items;
        for (const int64_t k :
             slice_indices(static_cast<int64_t>(items.size()), p(0), p(1), p(2))) {
            out.push_back(items[static_cast<size_t>(k)]);
        }
        return Value::new_list(std::move(out), obj.list->tuple);
    }
    throw Error("'" + type_name(obj) + "' object is not subscriptable");
}

Value Interp::eval_compare(const Expr& e, const ScopePtr& scope) {
    Value left = eval(*e.children[0], scope);
    for (size_t k = 0; k < e.ops.size(); ++k) {
        Value right = eval(*e.children[k + 1], scope);
        const std::string& op = e.ops[k];
        bool r = false;
        if (op == "==") {
            r = equals(left, right);
        } else if (op == "!=") {
            r = !equals(left, right);
        } else if (op == "<") {
            r = less(left, right);
        } else if (op == ">") {
            r = less(right, left);
        } else if (op == "<=") {
            r = less(left, right) || equals(left, right);
        } else if (op == ">=") {
            r = less(right, left) || equals(left, right);
        } else if (op == "in") {
            r = contains(right, left);
        } else {
            r = !contains(right, left);
        }
        if (!r) return Value::boolean(false);
        left = std::move(right);
    }
    return Value::boolean(true);
}

Value Interp::eval(const Expr& e, const ScopePtr& scope) {
    switch (e.kind) {
        case ExprKind::Const:
            return e.value;
        case ExprKind::Name:
            return lookup(e.name, scope);
        case ExprKind::List:
        case ExprKind::Tuple: {
            std::vector<Value> items;
            for (const auto& c : e.children) items.push_back(eval(*c, scope));
            return Value::new_list(std::move(items), e.kind == ExprKind::Tuple);
        }
        case ExprKind::Dict: {
            Value d = Value::new_dict();
            for (size_t k = 0; k + 1 < e.children.size(); k += 2) {
                Value key = eval(*e.children[k], scope);
                if (key.kind == Kind::List && !key.list->tuple)
                    throw Error("unhashable type: 'list'");
                if (key.kind == Kind::Dict) throw Error("unhashable type: 'dict'");
                d.dict->set(key, eval(*e.children[k + 1], scope));
            }
            return d;
        }
        case ExprKind::GetAttr:
            return get_attr(eval(*e.children[0], scope), e.name);
        case ExprKind::GetItem:
            return get_item(eval(*e.children[0], scope), eval(*e.children[1], scope));
        case ExprKind::Slice:
            return eval_slice(e, scope);
        case ExprKind::Neg:
        case ExprKind::Pos: {
            const Value v = eval(*e.children[0], scope);
            if (v.is_undefined()) fail_undefined(v);
            if (!v.is_number()) throw Error("bad operand type for unary -: '" + type_name(v) + "'");
            if (e.kind == ExprKind::Pos)
                return v.kind == Kind::Float ? v : Value::integer(v.as_int());
            if (v.kind == Kind::Float) return Value::number(-v.f);
            if (v.as_int() == INT64_MIN) throw NotSupported("integer beyond 64 bits");
            return Value::integer(-v.as_int());
        }
        case ExprKind::Not:
            return Value::boolean(!truthy(eval(*e.children[0], scope)));
        case ExprKind::And: {
            Value l = eval(*e.children[0], scope);
            return truthy(l) ? eval(*e.children[1], scope) : l;
        }
        case ExprKind::Or: {
            Value l = eval(*e.children[0], scope);
            return truthy(l) ? l : eval(*e.children[1], scope);
        }
        case ExprKind::Binary:
            return binary_op(*this, e.name, eval(*e.children[0], scope),
                             eval(*e.children[1], scope));
        case ExprKind::Compare:
            return eval_compare(e, scope);
        case ExprKind::Concat: {
            std::string out;
            for (const auto& c : e.children) {
                const Value v = eval(*c, scope);
                if (v.kind == Kind::Callable || v.kind == Kind::Object)
                    throw NotSupported("converting a " + type_name(v) + " to a string");
                out += to_str(v);
                check_size(out.size());
            }
            return Value::string(std::move(out));
        }
        case ExprKind::CondExpr: {
            if (truthy(eval(*e.children[0], scope))) return eval(*e.children[1], scope);
            if (e.children[2]) return eval(*e.children[2], scope);
            return Value::undefined("the inline if-expression on " + where(e.line, e.col) +
                                    " evaluated to false and no else section was defined.");
        }
        case ExprKind::Call:
            return eval_call(e, scope, nullptr);
        case ExprKind::Filter:
            return eval_filter(e, scope, nullptr);
        case ExprKind::Test: {
            const Value subject = eval(*e.children[0], scope);
            CallArgs args = eval_args(e, scope, 1);
            return Value::boolean(apply_test(*this, e.name, subject, args) != e.negated);
        }
    }
    throw Error("unknown expression");
}

}  // namespace bitnet::jinja
