#include "tokenizer/jinja_value.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "tokenizer/jinja_string.h"

namespace bitnet::jinja {

namespace {

void check_depth(int depth) {
    if (depth > kMaxValueDepth) {
        throw Error("chat template: value nested deeper than " + std::to_string(kMaxValueDepth));
    }
}

std::string repr_at(const Value& v, int depth);

std::string str_at(const Value& v, int depth) {
    switch (v.kind) {
        case Kind::Undefined:
            return "";
        case Kind::String:
            return v.s;
        default:
            return repr_at(v, depth);
    }
}

std::string repr_at(const Value& v, int depth) {
    check_depth(depth);
    switch (v.kind) {
        case Kind::Undefined:
            return "";
        case Kind::None:
            return "None";
        case Kind::Bool:
            return v.flag ? "True" : "False";
        case Kind::Int:
            return std::to_string(v.i);
        case Kind::Float:
            return py_float_repr(v.f);
        case Kind::String: {
            const std::string r = py_repr_str(v.s);
            return v.flag ? "Markup(" + r + ")" : r;
        }
        case Kind::List: {
            if (v.list->is_generator()) throw NotSupported("chat template: printing a generator");
            const bool tup = v.list->tuple;
            std::string out = tup ? "(" : "[";
            for (size_t k = 0; k < v.list->items.size(); ++k) {
                if (k > 0) out += ", ";
                out += repr_at(v.list->items[k], depth + 1);
            }
            if (tup && v.list->items.size() == 1) out += ",";
            out += tup ? ")" : "]";
            return v.list->view != nullptr ? std::string(v.list->view) + "(" + out + ")" : out;
        }
        case Kind::Dict: {
            std::string out = "{";
            bool first = true;
            for (const auto& [k, val] : v.dict->items) {
                if (!first) out += ", ";
                first = false;
                out += repr_at(k, depth + 1) + ": " + repr_at(val, depth + 1);
            }
            return out + "}";
        }
        case Kind::Namespace: {
            std::string out = "<Namespace {";
            bool first = true;
            for (const auto& [k, val] : v.dict->items) {
                if (!first) out += ", ";
                first = false;
                out += repr_at(k, depth + 1) + ": " + repr_at(val, depth + 1);
            }
            return out + "}>";
        }
        case Kind::Object:
        case Kind::Callable:
            break;
    }
    throw NotSupported("chat template: printing a " + type_name(v) + " object");
}

bool equals_at(const Value& a, const Value& b, int depth) {
    check_depth(depth);
    if (a.is_number() && b.is_number()) {
        if (a.is_integral() && b.is_integral()) return a.as_int() == b.as_int();
        return a.as_double() == b.as_double();
    }
    if (a.kind != b.kind) return false;
    switch (a.kind) {
        case Kind::Undefined:
        case Kind::None:
            return true;
        case Kind::String:
            return a.s == b.s;
        case Kind::List: {
            if (a.list->is_generator() || b.list->is_generator()) return a.list == b.list;
            if (a.list->tuple != b.list->tuple) return false;
            const auto& x = a.list->items;
            const auto& y = b.list->items;
            if (x.size() != y.size()) return false;
            for (size_t k = 0; k < x.size(); ++k) {
                if (!equals_at(x[k], y[k], depth + 1)) return false;
            }
            return true;
        }
        case Kind::Dict: {
            if (a.dict->items.size() != b.dict->items.size()) return false;
            for (const auto& [k, val] : a.dict->items) {
                const Value* other = b.dict->find(k);
                if (other == nullptr || !equals_at(val, *other, depth + 1)) return false;
            }
            return true;
        }
        default:
            return a.dict == b.dict && a.fn == b.fn;
    }
}

void json_string(std::string& out, std::string_view s, bool ensure_ascii) {
    out.push_back('"');
    char buf[16];
    for (const uint32_t cp : to_cps(s)) {
        switch (cp) {
            case '"':
                out += "\\\"";
                continue;
            case '\\':
                out += "\\\\";
                continue;
            case '\n':
                out += "\\n";
                continue;
            case '\r':
                out += "\\r";
                continue;
            case '\t':
                out += "\\t";
                continue;
            case '\b':
                out += "\\b";
                continue;
            case '\f':
                out += "\\f";
                continue;
            default:
                break;
        }
        if (cp < 0x20 || (ensure_ascii && cp >= 0x7F)) {
            if (cp >= 0x10000) {
                const uint32_t v = cp - 0x10000;
                std::snprintf(buf, sizeof buf, "\\u%04x\\u%04x", 0xD800 + (v >> 10),
                              0xDC00 + (v & 0x3FF));
            } else {
                std::snprintf(buf, sizeof buf, "\\u%04x", cp);
            }
            out += buf;
        } else {
            append_cp(out, cp);
        }
    }
    out.push_back('"');
}

std::string json_float(double v) {
    if (std::isnan(v)) return "NaN";
    if (std::isinf(v)) return v < 0 ? "-Infinity" : "Infinity";
    return py_float_repr(v);
}

// A dict key as json.dumps converts it (str, int, float, bool, None are allowed).
std::string json_key(const Value& k) {
    switch (k.kind) {
        case Kind::String:
            return k.s;
        case Kind::Int:
            return std::to_string(k.i);
        case Kind::Float:
            return json_float(k.f);
        case Kind::Bool:
            return k.flag ? "true" : "false";
        case Kind::None:
            return "null";
        default:
            throw Error("tojson: keys must be str, int, float, bool or None, not " + type_name(k));
    }
}

void newline_indent(std::string& out, const JsonOptions& o, int level) {
    out.push_back('\n');
    out.append(static_cast<size_t>(o.indent) * static_cast<size_t>(level), ' ');
}

void json_at(std::string& out, const Value& v, const JsonOptions& o, int depth) {
    check_depth(depth);
    switch (v.kind) {
        case Kind::None:
            out += "null";
            return;
        case Kind::Bool:
            out += v.flag ? "true" : "false";
            return;
        case Kind::Int:
            out += std::to_string(v.i);
            return;
        case Kind::Float:
            out += json_float(v.f);
            return;
        case Kind::String:
            json_string(out, v.s, o.ensure_ascii);
            return;
        case Kind::List: {
            if (v.list->view != nullptr) {
                throw Error(std::string("tojson: Object of type ") + v.list->view +
                            " is not JSON serializable");
            }
            const auto& items = v.list->items;
            if (items.empty()) {
                out += "[]";
                return;
            }
            out.push_back('[');
            for (size_t k = 0; k < items.size(); ++k) {
                if (k > 0) out += o.item_sep;
                if (o.indent >= 0) newline_indent(out, o, depth + 1);
                json_at(out, items[k], o, depth + 1);
            }
            if (o.indent >= 0) newline_indent(out, o, depth);
            out.push_back(']');
            return;
        }
        case Kind::Dict: {
            if (v.dict->items.empty()) {
                out += "{}";
                return;
            }
            std::vector<std::pair<std::string, const Value*>> items;
            for (const auto& [k, val] : v.dict->items) items.emplace_back(json_key(k), &val);
            if (o.sort_keys) {
                std::stable_sort(items.begin(), items.end(),
                                 [](const auto& x, const auto& y) { return x.first < y.first; });
            }
            out.push_back('{');
            for (size_t k = 0; k < items.size(); ++k) {
                if (k > 0) out += o.item_sep;
                if (o.indent >= 0) newline_indent(out, o, depth + 1);
                json_string(out, items[k].first, o.ensure_ascii);
                out += o.key_sep;
                json_at(out, *items[k].second, o, depth + 1);
            }
            if (o.indent >= 0) newline_indent(out, o, depth);
            out.push_back('}');
            return;
        }
        default:
            throw Error("tojson: Object of type " + type_name(v) + " is not JSON serializable");
    }
}

}  // namespace

bool ListData::is_generator() const {
    return view == kGenerator;
}

const Value* DictData::find(const Value& key) const {
    for (const auto& kv : items) {
        if (equals(kv.first, key)) return &kv.second;
    }
    return nullptr;
}

const Value* DictData::find(std::string_view key) const {
    for (const auto& kv : items) {
        if (kv.first.kind == Kind::String && kv.first.s == key) return &kv.second;
    }
    return nullptr;
}

void DictData::set(const Value& key, Value v) {
    for (auto& kv : items) {
        if (equals(kv.first, key)) {
            kv.second = std::move(v);
            return;
        }
    }
    items.emplace_back(key, std::move(v));
}

Value Value::undefined(std::string error_message) {
    Value v;
    v.s = std::move(error_message);
    return v;
}
Value Value::none() {
    Value v;
    v.kind = Kind::None;
    return v;
}
Value Value::boolean(bool b) {
    Value v;
    v.kind = Kind::Bool;
    v.flag = b;
    return v;
}
Value Value::integer(int64_t x) {
    Value v;
    v.kind = Kind::Int;
    v.i = x;
    return v;
}
Value Value::number(double x) {
    Value v;
    v.kind = Kind::Float;
    v.f = x;
    return v;
}
Value Value::string(std::string x, bool safe) {
    Value v;
    v.kind = Kind::String;
    v.s = std::move(x);
    v.flag = safe;
    return v;
}
Value Value::new_list(std::vector<Value> items, bool tuple) {
    Value v;
    v.kind = Kind::List;
    v.list = std::make_shared<ListData>();
    v.list->items = std::move(items);
    v.list->tuple = tuple;
    return v;
}
Value Value::new_generator(std::vector<Value> items) {
    Value v = new_list(std::move(items));
    v.list->view = kGenerator;
    return v;
}
Value Value::new_dict() {
    Value v;
    v.kind = Kind::Dict;
    v.dict = std::make_shared<DictData>();
    return v;
}
Value Value::new_namespace() {
    Value v = new_dict();
    v.kind = Kind::Namespace;
    return v;
}
Value Value::new_object() {
    Value v = new_dict();
    v.kind = Kind::Object;
    return v;
}
Value Value::callable(std::string name, NativeFn fn) {
    Value v;
    v.kind = Kind::Callable;
    v.fn = std::make_shared<CallableData>(CallableData{std::move(name), std::move(fn)});
    return v;
}

double Value::as_double() const {
    switch (kind) {
        case Kind::Float:
            return f;
        case Kind::Int:
            return static_cast<double>(i);
        case Kind::Bool:
            return flag ? 1.0 : 0.0;
        default:
            throw Error("expected a number, got " + type_name(*this));
    }
}

bool truthy(const Value& v) {
    switch (v.kind) {
        case Kind::Undefined:
        case Kind::None:
            return false;
        case Kind::Bool:
            return v.flag;
        case Kind::Int:
            return v.i != 0;
        case Kind::Float:
            return v.f != 0.0;
        case Kind::String:
            return !v.s.empty();
        case Kind::List:
            return !v.list->items.empty();
        case Kind::Dict:
            return !v.dict->items.empty();
        default:
            return true;
    }
}

std::string type_name(const Value& v) {
    switch (v.kind) {
        case Kind::Undefined:
            return "Undefined";
        case Kind::None:
            return "NoneType";
        case Kind::Bool:
            return "bool";
        case Kind::Int:
            return "int";
        case Kind::Float:
            return "float";
        case Kind::String:
            return v.flag ? "Markup" : "str";
        case Kind::List:
            return v.list->tuple ? "tuple" : "list";
        case Kind::Dict:
            return "dict";
        case Kind::Namespace:
            return "Namespace";
        case Kind::Object:
            return "LoopContext";
        case Kind::Callable:
            return "function";
    }
    return "object";
}

std::string to_str(const Value& v) {
    return str_at(v, 0);
}
std::string repr(const Value& v) {
    return repr_at(v, 0);
}
bool equals(const Value& a, const Value& b) {
    return equals_at(a, b, 0);
}

bool less(const Value& a, const Value& b) {
    if (a.is_undefined()) fail_undefined(a);
    if (b.is_undefined()) fail_undefined(b);
    if (a.is_number() && b.is_number()) {
        if (a.is_integral() && b.is_integral()) return a.as_int() < b.as_int();
        return a.as_double() < b.as_double();
    }
    if (a.is_string() && b.is_string()) return to_cps(a.s) < to_cps(b.s);
    if (a.is_list() && b.is_list() && a.list->tuple == b.list->tuple) {
        const auto& x = a.list->items;
        const auto& y = b.list->items;
        for (size_t k = 0; k < x.size() && k < y.size(); ++k) {
            if (!equals(x[k], y[k])) return less(x[k], y[k]);
        }
        return x.size() < y.size();
    }
    throw Error("'<' not supported between instances of '" + type_name(a) + "' and '" +
                type_name(b) + "'");
}

int64_t length(const Value& v) {
    switch (v.kind) {
        case Kind::Undefined:
            return 0;
        case Kind::String:
            return cp_length(v.s);
        case Kind::List:
            return static_cast<int64_t>(v.list->items.size());
        case Kind::Dict:
            return static_cast<int64_t>(v.dict->items.size());
        default:
            throw Error("object of type '" + type_name(v) + "' has no len()");
    }
}

std::vector<Value> iterate(const Value& v) {
    switch (v.kind) {
        case Kind::Undefined:
            return {};
        case Kind::List:
            return v.list->items;
        case Kind::Dict: {
            std::vector<Value> keys;
            keys.reserve(v.dict->items.size());
            for (const auto& kv : v.dict->items) keys.push_back(kv.first);
            return keys;
        }
        case Kind::String: {
            std::vector<Value> out;
            for (const uint32_t cp : to_cps(v.s)) {
                std::string one;
                append_cp(one, cp);
                out.push_back(Value::string(std::move(one), v.flag));
            }
            return out;
        }
        default:
            throw Error("'" + type_name(v) + "' object is not iterable");
    }
}

void fail_undefined(const Value& v) {
    throw Error(v.s.empty() ? "value is undefined" : v.s);
}

void require_defined(const Value& v) {
    if (v.is_undefined()) fail_undefined(v);
}

Value from_json(const nlohmann::ordered_json& j, int depth) {
    check_depth(depth);
    switch (j.type()) {
        case nlohmann::ordered_json::value_t::null:
            return Value::none();
        case nlohmann::ordered_json::value_t::boolean:
            return Value::boolean(j.get<bool>());
        case nlohmann::ordered_json::value_t::number_integer:
            return Value::integer(j.get<int64_t>());
        case nlohmann::ordered_json::value_t::number_unsigned: {
            const auto u = j.get<uint64_t>();
            if (u > static_cast<uint64_t>(INT64_MAX))
                throw NotSupported("integer above 2^63 in context");
            return Value::integer(static_cast<int64_t>(u));
        }
        case nlohmann::ordered_json::value_t::number_float:
            return Value::number(j.get<double>());
        case nlohmann::ordered_json::value_t::string:
            return Value::string(j.get<std::string>());
        case nlohmann::ordered_json::value_t::array: {
            std::vector<Value> items;
            items.reserve(j.size());
            for (const auto& e : j) items.push_back(from_json(e, depth + 1));
            return Value::new_list(std::move(items));
        }
        case nlohmann::ordered_json::value_t::object: {
            Value d = Value::new_dict();
            for (const auto& [k, e] : j.items()) {
                d.dict->items.emplace_back(Value::string(k), from_json(e, depth + 1));
            }
            return d;
        }
        default:
            throw NotSupported("chat template context: binary JSON values");
    }
}

std::string to_json(const Value& v, const JsonOptions& opts) {
    std::string out;
    json_at(out, v, opts, 0);
    return out;
}

}  // namespace bitnet::jinja
