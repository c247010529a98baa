// Python's arithmetic, `in` and the template globals (range, namespace, dict,
// raise_exception, strftime_now).
#include <cmath>
#include <ctime>

#include "tokenizer/jinja_builtins.h"
#include "tokenizer/jinja_interp.h"
#include "tokenizer/jinja_string.h"

namespace bitnet::jinja {

namespace {

[[noreturn]] void type_error(std::string_view op, const Value& a, const Value& b) {
    throw Error("unsupported operand type(s) for " + std::string(op) + ": '" + type_name(a) +
                "' and '" + type_name(b) + "'");
}

template <typename Op>
int64_t checked(Op op, int64_t x, int64_t y) {
    int64_t r = 0;
    if (op(x, y, &r)) throw NotSupported("integer arithmetic beyond 64 bits");
    return r;
}
bool mul_ovf(int64_t x, int64_t y, int64_t* r) {
    return __builtin_mul_overflow(x, y, r);
}
bool add_ovf(int64_t x, int64_t y, int64_t* r) {
    return __builtin_add_overflow(x, y, r);
}
bool sub_ovf(int64_t x, int64_t y, int64_t* r) {
    return __builtin_sub_overflow(x, y, r);
}

double float_mod(double x, double y) {
    double m = std::fmod(x, y);
    if (m != 0.0 && ((m < 0) != (y < 0))) m += y;
    return m;
}

Value repeat(Interp& in, const Value& seq, int64_t n) {
    if (n < 0) n = 0;
    if (seq.is_string()) {
        in.check_size(seq.s.size() * static_cast<size_t>(n));
        std::string out;
        for (int64_t k = 0; k < n; ++k) out += seq.s;
        return Value::string(std::move(out), seq.flag);
    }
    in.check_size(seq.list->items.size() * static_cast<size_t>(n));
    std::vector<Value> out;
    for (int64_t k = 0; k < n; ++k)
        out.insert(out.end(), seq.list->items.begin(), seq.list->items.end());
    return Value::new_list(std::move(out), seq.list->tuple);
}

Value add(Interp& in, const Value& a, const Value& b) {
    if (a.is_string() && b.is_string()) {
        in.check_size(a.s.size() + b.s.size());
        if (a.flag || b.flag) {
            return Value::string(
                (a.flag ? a.s : html_escape(a.s)) + (b.flag ? b.s : html_escape(b.s)), true);
        }
        return Value::string(a.s + b.s);
    }
    if (a.is_list() && b.is_list() && a.list->tuple == b.list->tuple && a.list->view == nullptr &&
        b.list->view == nullptr) {
        std::vector<Value> out = a.list->items;
        out.insert(out.end(), b.list->items.begin(), b.list->items.end());
        return Value::new_list(std::move(out), a.list->tuple);
    }
    type_error("+", a, b);
}

Value int_pow(int64_t base, int64_t exp) {
    if (exp < 0)
        return Value::number(std::pow(static_cast<double>(base), static_cast<double>(exp)));
    int64_t r = 1;
    for (int64_t k = 0; k < exp; ++k) {
        r = checked(mul_ovf, r, base);
        if (r == 0 || r == 1) break;
    }
    if (base == -1) r = (exp % 2 == 0) ? 1 : -1;
    return Value::integer(r);
}

Value arithmetic(std::string_view op, const Value& a, const Value& b) {
    if (a.is_integral() && b.is_integral()) {
        const int64_t x = a.as_int();
        const int64_t y = b.as_int();
        if (op == "+") return Value::integer(checked(add_ovf, x, y));
        if (op == "-") return Value::integer(checked(sub_ovf, x, y));
        if (op == "*") return Value::integer(checked(mul_ovf, x, y));
        if (op == "**") return int_pow(x, y);
        if (y == 0)
            throw Error(op == "/" ? "division by zero" : "integer division or modulo by zero");
        if (op == "/") return Value::number(static_cast<double>(x) / static_cast<double>(y));
        if (x == INT64_MIN && y == -1) throw NotSupported("integer arithmetic beyond 64 bits");
        int64_t q = x / y;
        int64_t m = x % y;
        if (m != 0 && ((m < 0) != (y < 0))) {
            --q;
            m += y;
        }
        return Value::integer(op == "//" ? q : m);
    }
    const double x = a.as_double();
    const double y = b.as_double();
    if (op == "+") return Value::number(x + y);
    if (op == "-") return Value::number(x - y);
    if (op == "*") return Value::number(x * y);
    if (op == "**") {
        if (x == 0.0 && y < 0) throw Error("0.0 cannot be raised to a negative power");
        return Value::number(std::pow(x, y));
    }
    if (y == 0.0) throw Error("float division by zero");
    if (op == "/") return Value::number(x / y);
    if (op == "//") return Value::number(std::floor(x / y));
    return Value::number(float_mod(x, y));
}

Value range_fn(Interp& in, CallArgs& a) {
    if (!a.kw.empty()) throw Error("range() takes no keyword arguments");
    if (a.pos.empty() || a.pos.size() > 3) throw Error("range expected 1 to 3 arguments");
    for (const auto& v : a.pos) {
        if (!v.is_integral())
            throw Error("'" + type_name(v) + "' object cannot be interpreted as an integer");
    }
    int64_t start = 0;
    int64_t stop = a.pos[0].as_int();
    int64_t step = 1;
    if (a.pos.size() >= 2) {
        start = a.pos[0].as_int();
        stop = a.pos[1].as_int();
    }
    if (a.pos.size() == 3) step = a.pos[2].as_int();
    if (step == 0) throw Error("range() arg 3 must not be zero");
    const long double span =
        step > 0 ? static_cast<long double>(stop) - start : static_cast<long double>(start) - stop;
    const long double count =
        span <= 0 ? 0 : std::ceil(span / std::abs(static_cast<long double>(step)));
    if (count > static_cast<long double>(in.limits().max_range)) {
        throw Error("range() of " + std::to_string(static_cast<int64_t>(count)) +
                    " items exceeds the limit of " + std::to_string(in.limits().max_range));
    }
    std::vector<Value> out;
    for (int64_t k = 0; k < static_cast<int64_t>(count); ++k)
        out.push_back(Value::integer(start + k * step));
    return Value::new_list(std::move(out));
}

Value dict_from_args(CallArgs& a, Value d) {
    if (a.pos.size() > 1) throw Error("dict expected at most 1 argument");
    if (!a.pos.empty()) {
        if (a.pos[0].is_mapping()) {
            for (const auto& [k, v] : a.pos[0].dict->items) d.dict->set(k, v);
        } else {
            for (const Value& pair : iterate(a.pos[0])) {
                const auto kv = iterate(pair);
                if (kv.size() != 2)
                    throw Error("dictionary update sequence element has wrong length");
                d.dict->set(kv[0], kv[1]);
            }
        }
    }
    for (const auto& [k, v] : a.kw) d.dict->set(Value::string(k), v);
    return d;
}

Value strftime_fn(Interp& in, CallArgs& a) {
    check_args(a, "strftime_now", {"format"});
    const Value* f = arg(a, 0, "format");
    if (f == nullptr || !f->is_string()) throw Error("strftime_now() expects a format string");
    const std::time_t t = static_cast<std::time_t>(in.now());
    std::tm tm{};
    gmtime_r(&t, &tm);
    if (f->s.empty()) return Value::string("");
    std::string buf(256 + f->s.size() * 16, '\0');
    const size_t n = std::strftime(buf.data(), buf.size(), f->s.c_str(), &tm);
    if (n == 0) throw NotSupported("strftime_now format '" + f->s + "'");
    buf.resize(n);
    return Value::string(std::move(buf));
}

}  // namespace

Value binary_op(Interp& in, std::string_view op, const Value& a, const Value& b) {
    if (a.is_undefined()) fail_undefined(a);
    if (b.is_undefined()) fail_undefined(b);
    if (op == "+" && !(a.is_number() && b.is_number())) return add(in, a, b);
    if (op == "*") {
        auto seq = [](const Value& v) {
            return v.is_string() || (v.is_list() && v.list->view == nullptr);
        };
        if (seq(a) && b.is_integral()) return repeat(in, a, b.as_int());
        if (seq(b) && a.is_integral()) return repeat(in, b, a.as_int());
    }
    if (op == "%" && a.is_string()) throw NotSupported("printf-style '%' formatting of strings");
    if (!a.is_number() || !b.is_number()) type_error(op, a, b);
    return arithmetic(op, a, b);
}

bool contains(const Value& container, const Value& item) {
    switch (container.kind) {
        case Kind::Undefined:
            return false;
        case Kind::String:
            if (item.is_undefined()) fail_undefined(item);
            if (!item.is_string()) {
                throw Error("'in <string>' requires string as left operand, not " +
                            type_name(item));
            }
            return container.s.find(item.s) != std::string::npos;
        case Kind::List:
            for (const Value& v : iterate(container)) {
                if (equals(v, item)) return true;
            }
            return false;
        case Kind::Dict:
            return container.dict->find(item) != nullptr;
        default:
            throw Error("argument of type '" + type_name(container) + "' is not iterable");
    }
}

void add_globals(Scope& globals) {
    globals.set("range", Value::callable("range", range_fn));
    globals.set("namespace", Value::callable("namespace", [](Interp&, CallArgs& a) {
                    return dict_from_args(a, Value::new_namespace());
                }));
    globals.set("dict", Value::callable("dict", [](Interp&, CallArgs& a) {
                    return dict_from_args(a, Value::new_dict());
                }));
    globals.set("raise_exception",
                Value::callable("raise_exception", [](Interp&, CallArgs& a) -> Value {
                    check_args(a, "raise_exception", {"message"});
                    const Value* m = arg(a, 0, "message");
                    throw TemplateRaise(m != nullptr ? to_str(*m) : std::string());
                }));
    globals.set("strftime_now", Value::callable("strftime_now", strftime_fn));
    for (const char* name : {"lipsum", "cycler", "joiner"}) {
        globals.set(name, Value::callable(name, [name](Interp&, CallArgs&) -> Value {
                        throw NotSupported(std::string("the global '") + name + "'");
                    }));
    }
}

}  // namespace bitnet::jinja
