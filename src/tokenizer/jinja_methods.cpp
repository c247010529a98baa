// Attribute and item access as Jinja2's ImmutableSandboxedEnvironment resolves them, and the
// Python methods of str, dict and list that templates call.
#include <algorithm>
#include <array>

#include "tokenizer/jinja_builtins.h"
#include "tokenizer/jinja_interp.h"
#include "tokenizer/jinja_string.h"

namespace bitnet::jinja {

namespace {

constexpr std::array<std::string_view, 47> kStrMethods = {
    "capitalize",   "casefold",    "center",    "count",      "encode",       "endswith",
    "expandtabs",   "find",        "format",    "format_map", "index",        "isalnum",
    "isalpha",      "isascii",     "isdecimal", "isdigit",    "isidentifier", "islower",
    "isnumeric",    "isprintable", "isspace",   "istitle",    "isupper",      "join",
    "ljust",        "lower",       "lstrip",    "maketrans",  "partition",    "removeprefix",
    "removesuffix", "replace",     "rfind",     "rindex",     "rjust",        "rpartition",
    "rsplit",       "rstrip",      "split",     "splitlines", "startswith",   "strip",
    "swapcase",     "title",       "translate", "upper",      "zfill"};
constexpr std::array<std::string_view, 11> kListMethods = {"append", "clear",   "copy",   "count",
                                                           "extend", "index",   "insert", "pop",
                                                           "remove", "reverse", "sort"};
constexpr std::array<std::string_view, 8> kListMutators = {"append", "clear",  "extend",  "insert",
                                                           "pop",    "remove", "reverse", "sort"};
constexpr std::array<std::string_view, 11> kDictMethods = {
    "clear", "copy",    "fromkeys",   "get",    "items", "keys",
    "pop",   "popitem", "setdefault", "update", "values"};
constexpr std::array<std::string_view, 5> kDictMutators = {"clear", "pop", "popitem", "setdefault",
                                                           "update"};

template <size_t N>
bool in(const std::array<std::string_view, N>& set, std::string_view name) {
    return std::find(set.begin(), set.end(), name) != set.end();
}

std::string object_repr(const Value& v) {
    if (v.is_none()) return "None";
    return "'" + type_name(v) + " object'";
}

Value missing_attr(const Value& obj, const std::string& name) {
    return Value::undefined(object_repr(obj) + " has no attribute '" + name + "'");
}

Value unsafe(const Value& obj, const std::string& name) {
    return Value::undefined("access to attribute '" + name + "' of '" + type_name(obj) +
                            "' object is unsafe.");
}

std::string str_arg(const CallArgs& a, size_t k, std::string_view name, std::string_view func) {
    const Value* v = arg(a, k, name);
    if (v == nullptr)
        throw Error(std::string(func) + "() missing argument '" + std::string(name) + "'");
    if (!v->is_string()) {
        throw Error(std::string(func) + "() argument must be str, not " + type_name(*v));
    }
    return v->s;
}

std::optional<std::string> opt_str(const CallArgs& a, size_t k, std::string_view name,
                                   std::string_view func) {
    const Value* v = arg(a, k, name);
    if (v == nullptr || v->is_none()) return std::nullopt;
    if (!v->is_string()) throw Error(std::string(func) + "() argument must be str or None");
    return v->s;
}

int64_t int_arg(const CallArgs& a, size_t k, std::string_view name, int64_t dflt) {
    const Value* v = arg(a, k, name);
    if (v == nullptr) return dflt;
    if (!v->is_integral())
        throw Error("'" + type_name(*v) + "' object cannot be interpreted as an integer");
    return v->as_int();
}

Value str_list(const std::vector<std::string>& parts, bool safe) {
    std::vector<Value> out;
    out.reserve(parts.size());
    for (const auto& p : parts) out.push_back(Value::string(p, safe));
    return Value::new_list(std::move(out));
}

bool affix_match(const std::string& s, const Value& affix, bool start) {
    auto one = [&](const Value& v) {
        if (!v.is_string())
            throw Error("startswith/endswith first arg must be str or a tuple of str");
        if (v.s.size() > s.size()) return false;
        return start ? s.compare(0, v.s.size(), v.s) == 0
                     : s.compare(s.size() - v.s.size(), v.s.size(), v.s) == 0;
    };
    if (affix.kind == Kind::List && affix.list->tuple) {
        return std::any_of(affix.list->items.begin(), affix.list->items.end(), one);
    }
    return one(affix);
}

// str.format with automatic, numbered and named fields; conversions and format specs other
// than !s/!r are not supported.
std::string py_format(const std::string& fmt, const CallArgs& a) {
    std::string out;
    size_t auto_index = 0;
    for (size_t k = 0; k < fmt.size(); ++k) {
        const char c = fmt[k];
        if (c == '}') {
            if (k + 1 < fmt.size() && fmt[k + 1] == '}') {
                out.push_back('}');
                ++k;
                continue;
            }
            throw Error("str.format: single '}' encountered in format string");
        }
        if (c != '{') {
            out.push_back(c);
            continue;
        }
        if (k + 1 < fmt.size() && fmt[k + 1] == '{') {
            out.push_back('{');
            ++k;
            continue;
        }
        const size_t close = fmt.find('}', k);
        if (close == std::string::npos)
            throw Error("str.format: single '{' encountered in format string");
        std::string field = fmt.substr(k + 1, close - k - 1);
        k = close;
        bool use_repr = false;
        if (field.size() >= 2 && field[field.size() - 2] == '!') {
            if (field.back() != 's' && field.back() != 'r')
                throw NotSupported("str.format conversion !" + field.substr(field.size() - 1));
            use_repr = field.back() == 'r';
            field.resize(field.size() - 2);
        }
        if (field.find_first_of(":[.!{") != std::string::npos)
            throw NotSupported("str.format field '{" + field + "}'");
        const Value* v = nullptr;
        if (field.empty() ||
            std::all_of(field.begin(), field.end(), [](char d) { return d >= '0' && d <= '9'; })) {
            const size_t idx = field.empty() ? auto_index++ : std::stoul(field);
            if (idx >= a.pos.size())
                throw Error("str.format: replacement index " + std::to_string(idx) +
                            " out of range");
            v = &a.pos[idx];
        } else {
            for (const auto& [key, val] : a.kw) {
                if (key == field) v = &val;
            }
            if (v == nullptr) throw Error("str.format: KeyError '" + field + "'");
        }
        out += use_repr ? repr(*v) : to_str(*v);
    }
    return out;
}

Value partition(const std::string& s, const std::string& sep, bool right) {
    if (sep.empty()) throw Error("empty separator");
    const size_t at = right ? s.rfind(sep) : s.find(sep);
    std::vector<Value> parts;
    if (at == std::string::npos) {
        parts = right ? std::vector<Value>{Value::string(""), Value::string(""), Value::string(s)}
                      : std::vector<Value>{Value::string(s), Value::string(""), Value::string("")};
    } else {
        parts = {Value::string(s.substr(0, at)), Value::string(sep),
                 Value::string(s.substr(at + sep.size()))};
    }
    return Value::new_list(std::move(parts), true);
}

Value str_method_case(const Value& self, const std::string& name, CallArgs& a) {
    const std::string& s = self.s;
    const bool safe = self.flag;
    if (name == "upper") return Value::string(py_upper(s), safe);
    if (name == "lower") return Value::string(py_lower(s), safe);
    if (name == "title") return Value::string(py_title(s), safe);
    if (name == "capitalize") return Value::string(py_capitalize(s), safe);
    if (name == "strip" || name == "lstrip" || name == "rstrip") {
        check_args(a, name, {"chars"});
        const StripMode mode = name == "strip"    ? StripMode::Both
                               : name == "lstrip" ? StripMode::Left
                                                  : StripMode::Right;
        return Value::string(py_strip(s, opt_str(a, 0, "chars", name), mode), safe);
    }
    if (name == "isdigit") return Value::boolean(py_isdigit(s));
    if (name == "isalpha") return Value::boolean(py_isalpha(s));
    if (name == "isalnum") return Value::boolean(py_isalnum(s));
    if (name == "isspace") return Value::boolean(py_isspace_str(s));
    if (name == "isupper") return Value::boolean(py_isupper(s));
    if (name == "islower") return Value::boolean(py_islower(s));
    return Value();
}

Value str_method(Interp& in, const Value& self, const std::string& name, CallArgs& a) {
    const std::string& s = self.s;
    const bool safe = self.flag;
    if (Value r = str_method_case(self, name, a); !r.is_undefined()) return r;
    if (name == "startswith" || name == "endswith") {
        check_args(a, name, {"prefix"});
        const Value* p = arg(a, 0, "prefix");
        if (p == nullptr) throw Error(name + "() takes at least 1 argument");
        return Value::boolean(affix_match(s, *p, name == "startswith"));
    }
    if (name == "split" || name == "rsplit") {
        check_args(a, name, {"sep", "maxsplit"});
        return str_list(py_split(s, opt_str(a, 0, "sep", name), int_arg(a, 1, "maxsplit", -1),
                                 name == "rsplit"),
                        safe);
    }
    if (name == "splitlines") return str_list(py_splitlines(s), safe);
    if (name == "replace") {
        check_args(a, name, {"old", "new", "count"});
        std::string old_text = str_arg(a, 0, "old", name);
        std::string new_text = str_arg(a, 1, "new", name);
        if (safe) {
            old_text = html_escape(old_text);
            new_text = html_escape(new_text);
        }
        std::string r = py_replace(s, old_text, new_text, int_arg(a, 2, "count", -1));
        in.check_size(r.size());
        return Value::string(std::move(r), safe);
    }
    if (name == "find" || name == "rfind" || name == "index" || name == "rindex") {
        check_args(a, name, {"sub"});
        const int64_t at = py_find(s, str_arg(a, 0, "sub", name), name[0] == 'r');
        if (at < 0 && (name == "index" || name == "rindex")) throw Error("substring not found");
        return Value::integer(at);
    }
    if (name == "count") {
        check_args(a, name, {"sub"});
        return Value::integer(py_count(s, str_arg(a, 0, "sub", name)));
    }
    if (name == "removeprefix" || name == "removesuffix") {
        const std::string affix = str_arg(a, 0, "affix", name);
        const bool pre = name == "removeprefix";
        if (affix_match(s, Value::string(affix), pre)) {
            return Value::string(
                pre ? s.substr(affix.size()) : s.substr(0, s.size() - affix.size()), safe);
        }
        return self;
    }
    if (name == "partition" || name == "rpartition")
        return partition(s, str_arg(a, 0, "sep", name), name[0] == 'r');
    if (safe) throw NotSupported("Markup." + name + "()");
    if (name == "format") {
        std::string r = py_format(s, a);
        in.check_size(r.size());
        return Value::string(std::move(r));
    }
    if (name == "join") {
        check_args(a, name, {"iterable"});
        const Value* it = arg(a, 0, "iterable");
        if (it == nullptr) throw Error("join() takes exactly one argument");
        std::string r;
        bool first = true;
        for (const Value& v : iterate(*it)) {
            if (!v.is_string())
                throw Error("sequence item: expected str instance, " + type_name(v) + " found");
            if (!first) r += s;
            first = false;
            r += v.s;
            in.check_size(r.size());
        }
        return Value::string(std::move(r));
    }
    throw NotSupported("str." + name + "()");
}

Value dict_method(const Value& self, const std::string& name, CallArgs& a) {
    if (name == "get") {
        check_args(a, name, {"key", "default"});
        const Value* key = arg(a, 0, "key");
        if (key == nullptr) throw Error("get expected at least 1 argument, got 0");
        if (const Value* v = self.dict->find(*key)) return *v;
        const Value* d = arg(a, 1, "default");
        return d != nullptr ? *d : Value::none();
    }
    check_args(a, name, {});
    if (name == "items" || name == "keys" || name == "values") {
        std::vector<Value> out;
        for (const auto& [k, v] : self.dict->items) {
            if (name == "items") {
                out.push_back(Value::new_list({k, v}, true));
            } else {
                out.push_back(name == "keys" ? k : v);
            }
        }
        Value r = Value::new_list(std::move(out));
        r.list->view = name == "items"  ? "dict_items"
                       : name == "keys" ? "dict_keys"
                                        : "dict_values";
        return r;
    }
    if (name == "copy") {
        Value d = Value::new_dict();
        d.dict->items = self.dict->items;
        return d;
    }
    throw NotSupported("dict." + name + "()");
}

Value list_method(const Value& self, const std::string& name, CallArgs& a) {
    const auto& items = self.list->items;
    if (name == "copy") return Value::new_list(items, self.list->tuple);
    check_args(a, name, {"value"});
    const Value* x = arg(a, 0, "value");
    if (x == nullptr) throw Error(name + "() takes exactly one argument");
    if (name == "count") {
        return Value::integer(std::count_if(items.begin(), items.end(),
                                            [&](const Value& v) { return equals(v, *x); }));
    }
    if (name == "index") {
        for (size_t k = 0; k < items.size(); ++k) {
            if (equals(items[k], *x)) return Value::integer(static_cast<int64_t>(k));
        }
        throw Error(repr(*x) + " is not in list");
    }
    throw NotSupported("list." + name + "()");
}

Value bound(const Value& self, const std::string& name) {
    return Value::callable(type_name(self) + "." + name, [self, name](Interp& in, CallArgs& a) {
        switch (self.kind) {
            case Kind::String:
                return str_method(in, self, name, a);
            case Kind::Dict:
                return dict_method(self, name, a);
            default:
                return list_method(self, name, a);
        }
    });
}

}  // namespace

const Value* arg(const CallArgs& args, size_t index, std::string_view name) {
    if (index < args.pos.size()) return &args.pos[index];
    for (const auto& [k, v] : args.kw) {
        if (k == name) return &v;
    }
    return nullptr;
}

void check_args(const CallArgs& args, std::string_view func,
                std::initializer_list<std::string_view> names) {
    if (args.pos.size() > names.size()) {
        throw Error(std::string(func) + "() takes at most " + std::to_string(names.size()) +
                    " arguments (" + std::to_string(args.pos.size()) + " given)");
    }
    for (const auto& [k, v] : args.kw) {
        if (std::find(names.begin(), names.end(), k) == names.end()) {
            throw Error(std::string(func) + "() got an unexpected keyword argument '" + k + "'");
        }
    }
}

Value get_attr(const Value& obj, const std::string& name) {
    if (obj.is_undefined()) fail_undefined(obj);
    if (!name.empty() && name[0] == '_') {
        if (obj.kind == Kind::Dict) {
            if (const Value* v = obj.dict->find(name)) return *v;
        }
        return unsafe(obj, name);
    }
    switch (obj.kind) {
        case Kind::String:
            return in(kStrMethods, name) ? bound(obj, name) : missing_attr(obj, name);
        case Kind::List:
            if (obj.list->is_generator() || obj.list->view != nullptr) {
                if (name == "send" || name == "throw" || name == "close" || name == "mapping" ||
                    name == "isdisjoint") {
                    throw NotSupported(std::string(obj.list->view) + "." + name);
                }
                return missing_attr(obj, name);
            }
            if (in(kListMutators, name)) return unsafe(obj, name);
            return in(kListMethods, name) ? bound(obj, name) : missing_attr(obj, name);
        case Kind::Dict:
            if (in(kDictMutators, name)) return unsafe(obj, name);
            if (in(kDictMethods, name)) return bound(obj, name);
            if (const Value* v = obj.dict->find(name)) return *v;
            return missing_attr(obj, name);
        case Kind::Namespace:
        case Kind::Object:
            if (const Value* v = obj.dict->find(name)) return *v;
            if (obj.kind == Kind::Object && name == "changed") throw NotSupported("loop.changed");
            return missing_attr(obj, name);
        case Kind::Int:
        case Kind::Float:
        case Kind::Bool:
            if (name == "real" || name == "imag" || name == "numerator" || name == "denominator" ||
                name == "conjugate" || name == "bit_length" || name == "is_integer" ||
                name == "hex") {
                throw NotSupported("number attribute '" + name + "'");
            }
            return missing_attr(obj, name);
        default:
            return missing_attr(obj, name);
    }
}

Value get_item(const Value& obj, const Value& key) {
    if (obj.is_undefined()) fail_undefined(obj);
    if (key.is_undefined() && obj.kind != Kind::Dict) fail_undefined(key);
    switch (obj.kind) {
        case Kind::List:
        case Kind::String: {
            if (!key.is_integral() || (obj.is_list() && obj.list->view != nullptr)) break;
            const int64_t n =
                obj.is_list() ? static_cast<int64_t>(obj.list->items.size()) : cp_length(obj.s);
            int64_t k = key.as_int();
            if (k < 0) k += n;
            if (k < 0 || k >= n) {
                return Value::undefined(object_repr(obj) + " has no element " +
                                        std::to_string(key.as_int()));
            }
            if (obj.is_list()) return obj.list->items[static_cast<size_t>(k)];
            std::string one;
            append_cp(one, to_cps(obj.s)[static_cast<size_t>(k)]);
            return Value::string(std::move(one), obj.flag);
        }
        case Kind::Dict: {
            if (key.is_undefined()) throw Error("unhashable key: Undefined");
            if (const Value* v = obj.dict->find(key)) return *v;
            if (key.is_string()) return get_attr(obj, key.s);
            return Value::undefined(object_repr(obj) + " has no element " + repr(key));
        }
        default:
            break;
    }
    if (key.is_string()) return get_attr(obj, key.s);
    return Value::undefined(object_repr(obj) + " has no element " + repr(key));
}

}  // namespace bitnet::jinja
