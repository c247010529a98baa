// Jinja2 3.1's built-in filters (jinja2/filters.py) with the Hugging Face tojson override, and
// its built-in tests (jinja2/tests.py). Filters Jinja2 has but this engine does not implement
// are known names (so parsing agrees with Jinja2) that raise NotSupported when applied.
#include <algorithm>
#include <array>
#include <cmath>

#include "tokenizer/jinja_builtins.h"
#include "tokenizer/jinja_interp.h"
#include "tokenizer/jinja_string.h"

namespace bitnet::jinja {

namespace {

using FilterFn = Value (*)(Interp&, const Value&, CallArgs&);

constexpr std::string_view kFilterNames[] = {
    "abs",       "attr",       "batch",       "capitalize", "center",  "count",
    "d",         "default",    "dictsort",    "e",          "escape",  "filesizeformat",
    "first",     "float",      "forceescape", "format",     "groupby", "indent",
    "int",       "join",       "last",        "length",     "list",    "lower",
    "items",     "map",        "min",         "max",        "pprint",  "random",
    "reject",    "rejectattr", "replace",     "reverse",    "round",   "safe",
    "select",    "selectattr", "slice",       "sort",       "string",  "striptags",
    "sum",       "title",      "trim",        "truncate",   "unique",  "upper",
    "urlencode", "urlize",     "wordcount",   "wordwrap",   "xmlattr", "tojson"};

constexpr std::string_view kTestNames[] = {
    "odd",     "even",   "divisibleby", "defined",  "undefined", "filter", "test",    "none",
    "boolean", "false",  "true",        "integer",  "float",     "lower",  "upper",   "string",
    "mapping", "number", "sequence",    "iterable", "callable",  "sameas", "escaped", "in",
    "==",      "eq",     "equalto",     "!=",       "ne",        ">",      "gt",      "greaterthan",
    "ge",      ">=",     "<",           "lt",       "lessthan",  "<=",     "le"};

bool bool_arg(const CallArgs& a, size_t k, std::string_view name, bool dflt) {
    const Value* v = arg(a, k, name);
    return v == nullptr ? dflt : truthy(*v);
}

// soft_str: Markup stays Markup, everything else becomes str(x).
Value soft_str(const Value& v) {
    return v.is_string() ? v : Value::string(to_str(v));
}

Value fold_case(const Value& v, bool case_sensitive) {
    if (!case_sensitive && v.is_string()) return Value::string(py_lower(v.s));
    return v;
}

// jinja2's make_attrgetter: "a.b.0" walks items; integers index sequences.
Value attr_path(const Value& item, const std::string& path) {
    Value cur = item;
    for (const auto& part : py_split(path, std::string("."), -1, false)) {
        const auto idx = (!part.empty() && std::all_of(part.begin(), part.end(),
                                                       [](char c) { return c >= '0' && c <= '9'; }))
                             ? py_parse_int(part)
                             : std::nullopt;
        cur = get_item(cur, idx ? Value::integer(*idx) : Value::string(part));
    }
    return cur;
}

std::optional<std::string> attribute_arg(const CallArgs& a, size_t k) {
    const Value* v = arg(a, k, "attribute");
    if (v == nullptr || v->is_none()) return std::nullopt;
    if (v->is_integral()) return std::to_string(v->as_int());
    return to_str(*v);
}

Value list_of(std::vector<Value> items) {
    return Value::new_list(std::move(items));
}

Value f_length(Interp&, const Value& v, CallArgs& a) {
    check_args(a, "length", {});
    return Value::integer(length(v));
}

Value f_default(Interp&, const Value& v, CallArgs& a) {
    check_args(a, "default", {"default_value", "boolean"});
    const bool boolean = bool_arg(a, 1, "boolean", false);
    if (v.is_undefined() || (boolean && !truthy(v))) {
        const Value* d = arg(a, 0, "default_value");
        return d != nullptr ? *d : Value::string("");
    }
    return v;
}

Value f_tojson(Interp& in, const Value& v, CallArgs& a) {
    check_args(a, "tojson", {"ensure_ascii", "indent", "separators", "sort_keys"});
    JsonOptions o;
    o.ensure_ascii = bool_arg(a, 0, "ensure_ascii", false);
    o.sort_keys = bool_arg(a, 3, "sort_keys", false);
    if (const Value* ind = arg(a, 1, "indent"); ind != nullptr && !ind->is_none()) {
        if (!ind->is_integral()) throw NotSupported("tojson indent that is not an integer");
        o.indent = static_cast<int>(std::clamp<int64_t>(ind->as_int(), 0, 64));
        o.item_sep = ",";
    }
    if (const Value* sep = arg(a, 2, "separators"); sep != nullptr && !sep->is_none()) {
        const auto parts = iterate(*sep);
        if (parts.size() != 2 || !parts[0].is_string() || !parts[1].is_string()) {
            throw Error("tojson separators must be a pair of strings");
        }
        o.item_sep = parts[0].s;
        o.key_sep = parts[1].s;
    }
    std::string s = to_json(v, o);
    in.check_size(s.size());
    return Value::string(std::move(s));
}

Value f_trim(Interp&, const Value& v, CallArgs& a) {
    check_args(a, "trim", {"chars"});
    const Value s = soft_str(v);
    const Value* chars = arg(a, 0, "chars");
    std::optional<std::string> set;
    if (chars != nullptr && !chars->is_none()) set = to_str(*chars);
    return Value::string(py_strip(s.s, set, StripMode::Both), s.flag);
}

Value f_case(const Value& v, CallArgs& a, std::string (*fn)(std::string_view), const char* name) {
    check_args(a, name, {});
    const Value s = soft_str(v);
    return Value::string(fn(s.s), s.flag);
}
Value f_upper(Interp&, const Value& v, CallArgs& a) {
    return f_case(v, a, py_upper, "upper");
}
Value f_lower(Interp&, const Value& v, CallArgs& a) {
    return f_case(v, a, py_lower, "lower");
}
Value f_capitalize(Interp&, const Value& v, CallArgs& a) {
    return f_case(v, a, py_capitalize, "capitalize");
}
Value f_title(Interp&, const Value& v, CallArgs& a) {
    return f_case(v, a, jinja_title, "title");
}

Value f_string(Interp&, const Value& v, CallArgs& a) {
    check_args(a, "string", {});
    if (v.kind == Kind::Callable || v.kind == Kind::Object)
        throw NotSupported("|string of a " + type_name(v));
    return soft_str(v);
}

Value f_safe(Interp&, const Value& v, CallArgs& a) {
    check_args(a, "safe", {});
    return Value::string(to_str(v), true);
}

Value f_escape(Interp&, const Value& v, CallArgs& a) {
    check_args(a, "escape", {});
    if (v.is_string() && v.flag) return v;
    return Value::string(html_escape(to_str(v)), true);
}

Value f_list(Interp&, const Value& v, CallArgs& a) {
    check_args(a, "list", {});
    if (v.is_none() || v.is_number()) throw Error("'" + type_name(v) + "' object is not iterable");
    return list_of(iterate(v));
}

Value f_first(Interp&, const Value& v, CallArgs& a) {
    check_args(a, "first", {});
    if (v.is_none() || v.is_number()) throw Error("'" + type_name(v) + "' object is not iterable");
    if (v.is_list() && v.list->is_generator()) {
        auto& gen = *v.list;
        if (gen.consumed >= gen.items.size())
            return Value::undefined("No first item, sequence was empty.");
        return gen.items[gen.consumed++];
    }
    auto items = iterate(v);
    return items.empty() ? Value::undefined("No first item, sequence was empty.") : items.front();
}

Value f_last(Interp&, const Value& v, CallArgs& a) {
    check_args(a, "last", {});
    if (!v.is_list() && !v.is_string() && !v.is_mapping())
        throw Error("'" + type_name(v) + "' object is not reversible");
    if (v.is_mapping()) throw NotSupported("|last of a dict");
    if (v.is_list() && v.list->is_generator()) throw Error("'generator' object is not reversible");
    auto items = iterate(v);
    return items.empty() ? Value::undefined("No last item, sequence was empty.") : items.back();
}

Value f_join(Interp& in, const Value& v, CallArgs& a) {
    check_args(a, "join", {"d", "attribute"});
    const Value* d = arg(a, 0, "d");
    const std::string sep = d != nullptr ? to_str(*d) : "";
    const auto attr = attribute_arg(a, 1);
    if (v.is_none() || v.is_number()) throw Error("'" + type_name(v) + "' object is not iterable");
    std::string out;
    bool first = true;
    for (const Value& item : iterate(v)) {
        if (!first) out += sep;
        first = false;
        const Value x = attr ? attr_path(item, *attr) : item;
        if (x.kind == Kind::Callable || x.kind == Kind::Object)
            throw NotSupported("joining a " + type_name(x));
        out += to_str(x);
        in.check_size(out.size());
    }
    return Value::string(std::move(out));
}

Value f_replace(Interp& in, const Value& v, CallArgs& a) {
    check_args(a, "replace", {"old", "new", "count"});
    const Value* o = arg(a, 0, "old");
    const Value* n = arg(a, 1, "new");
    if (o == nullptr || n == nullptr) throw Error("replace() needs old and new");
    const Value* c = arg(a, 2, "count");
    const int64_t count = (c == nullptr || c->is_none()) ? -1 : c->as_int();
    std::string r = py_replace(to_str(v), to_str(*o), to_str(*n), count);
    in.check_size(r.size());
    return Value::string(std::move(r));
}

Value f_items(Interp&, const Value& v, CallArgs& a) {
    check_args(a, "items", {});
    if (v.is_undefined()) return Value::new_generator({});
    if (!v.is_mapping()) throw Error("Can only get item pairs from a mapping.");
    std::vector<Value> out;
    for (const auto& [k, x] : v.dict->items) out.push_back(Value::new_list({k, x}, true));
    return Value::new_generator(std::move(out));
}

void stable_sort_by(std::vector<Value>& items, const std::vector<Value>& keys, bool reverse) {
    std::vector<size_t> order(items.size());
    for (size_t k = 0; k < order.size(); ++k) order[k] = k;
    std::stable_sort(order.begin(), order.end(), [&](size_t x, size_t y) {
        return reverse ? less(keys[y], keys[x]) : less(keys[x], keys[y]);
    });
    std::vector<Value> out;
    out.reserve(items.size());
    for (const size_t k : order) out.push_back(items[k]);
    items = std::move(out);
}

Value f_dictsort(Interp&, const Value& v, CallArgs& a) {
    check_args(a, "dictsort", {"case_sensitive", "by", "reverse"});
    if (v.is_undefined()) fail_undefined(v);
    if (!v.is_mapping())
        throw Error("dictsort: '" + type_name(v) + "' object has no attribute 'items'");
    const bool cs = bool_arg(a, 0, "case_sensitive", false);
    const Value* by = arg(a, 1, "by");
    const std::string by_s = by != nullptr ? to_str(*by) : "key";
    if (by_s != "key" && by_s != "value")
        throw Error("You can only sort by either \"key\" or \"value\"");
    std::vector<Value> items;
    std::vector<Value> keys;
    for (const auto& [k, x] : v.dict->items) {
        items.push_back(Value::new_list({k, x}, true));
        keys.push_back(fold_case(by_s == "key" ? k : x, cs));
    }
    stable_sort_by(items, keys, bool_arg(a, 2, "reverse", false));
    return list_of(std::move(items));
}

Value f_sort(Interp&, const Value& v, CallArgs& a) {
    check_args(a, "sort", {"reverse", "case_sensitive", "attribute"});
    const bool cs = bool_arg(a, 1, "case_sensitive", false);
    const auto attr = attribute_arg(a, 2);
    std::vector<Value> items = iterate(v);
    std::vector<Value> keys;
    keys.reserve(items.size());
    for (const Value& x : items) keys.push_back(fold_case(attr ? attr_path(x, *attr) : x, cs));
    stable_sort_by(items, keys, bool_arg(a, 0, "reverse", false));
    return list_of(std::move(items));
}

Value f_unique(Interp&, const Value& v, CallArgs& a) {
    check_args(a, "unique", {"case_sensitive", "attribute"});
    const bool cs = bool_arg(a, 0, "case_sensitive", false);
    const auto attr = attribute_arg(a, 1);
    std::vector<Value> out;
    std::vector<Value> seen;
    for (const Value& x : iterate(v)) {
        const Value key = fold_case(attr ? attr_path(x, *attr) : x, cs);
        if (std::none_of(seen.begin(), seen.end(),
                         [&](const Value& s) { return equals(s, key); })) {
            seen.push_back(key);
            out.push_back(x);
        }
    }
    return Value::new_generator(std::move(out));
}

Value min_max(const Value& v, CallArgs& a, bool want_max) {
    check_args(a, want_max ? "max" : "min", {"case_sensitive", "attribute"});
    const bool cs = bool_arg(a, 0, "case_sensitive", false);
    const auto attr = attribute_arg(a, 1);
    const auto items = iterate(v);
    if (items.empty()) return Value::undefined("No aggregated item, sequence was empty.");
    size_t best = 0;
    Value best_key = fold_case(attr ? attr_path(items[0], *attr) : items[0], cs);
    for (size_t k = 1; k < items.size(); ++k) {
        Value key = fold_case(attr ? attr_path(items[k], *attr) : items[k], cs);
        if (want_max ? less(best_key, key) : less(key, best_key)) {
            best = k;
            best_key = std::move(key);
        }
    }
    return items[best];
}
Value f_min(Interp&, const Value& v, CallArgs& a) {
    return min_max(v, a, false);
}
Value f_max(Interp&, const Value& v, CallArgs& a) {
    return min_max(v, a, true);
}

// select/reject/selectattr/rejectattr: jinja2's select_or_reject.
Value select_impl(Interp& in, const Value& v, CallArgs& a, bool with_attr, bool keep) {
    size_t k = 0;
    std::optional<std::string> attr;
    if (with_attr) {
        if (a.pos.empty()) throw Error("selectattr/rejectattr need an attribute name");
        attr = to_str(a.pos[0]);
        k = 1;
    }
    std::optional<std::string> test;
    CallArgs test_args;
    if (k < a.pos.size()) {
        test = to_str(a.pos[k]);
        test_args.pos.assign(a.pos.begin() + static_cast<std::ptrdiff_t>(k) + 1, a.pos.end());
        test_args.kw = a.kw;
    } else if (!a.kw.empty()) {
        throw Error("select: keyword arguments without a test name");
    }
    std::vector<Value> out;
    if (!truthy(v)) return Value::new_generator({});
    for (const Value& item : iterate(v)) {
        const Value x = attr ? attr_path(item, *attr) : item;
        CallArgs ta = test_args;
        const bool pass = test ? apply_test(in, *test, x, ta) : truthy(x);
        if (pass == keep) out.push_back(item);
    }
    return Value::new_generator(std::move(out));
}
Value f_select(Interp& in, const Value& v, CallArgs& a) {
    return select_impl(in, v, a, false, true);
}
Value f_reject(Interp& in, const Value& v, CallArgs& a) {
    return select_impl(in, v, a, false, false);
}
Value f_selectattr(Interp& in, const Value& v, CallArgs& a) {
    return select_impl(in, v, a, true, true);
}
Value f_rejectattr(Interp& in, const Value& v, CallArgs& a) {
    return select_impl(in, v, a, true, false);
}

Value f_map(Interp& in, const Value& v, CallArgs& a) {
    std::vector<Value> out;
    const auto items = truthy(v) ? iterate(v) : std::vector<Value>{};
    if (a.pos.empty()) {
        check_args(a, "map", {"attribute", "default"});
        const auto attr = attribute_arg(a, 99);
        if (!attr) throw Error("map requires a filter name or attribute=");
        const Value* dflt = arg(a, 99, "default");
        for (const Value& item : items) {
            Value x = attr_path(item, *attr);
            if (x.is_undefined() && dflt != nullptr) x = *dflt;
            out.push_back(std::move(x));
        }
        return Value::new_generator(std::move(out));
    }
    const std::string name = to_str(a.pos[0]);
    if (!has_filter(name)) throw Error("No filter named '" + name + "'.");
    for (const Value& item : items) {
        CallArgs fa;
        fa.pos.assign(a.pos.begin() + 1, a.pos.end());
        fa.kw = a.kw;
        out.push_back(apply_filter(in, name, item, fa));
    }
    return Value::new_generator(std::move(out));
}

Value f_reverse(Interp&, const Value& v, CallArgs& a) {
    check_args(a, "reverse", {});
    if (v.is_string()) {
        auto cps = to_cps(v.s);
        std::reverse(cps.begin(), cps.end());
        return Value::string(from_cps(cps), v.flag);
    }
    // reversed(x) is an iterator; a generator is not reversible, so Jinja2 makes it a list.
    const bool was_generator = v.is_list() && v.list->is_generator();
    auto items = iterate(v);
    std::reverse(items.begin(), items.end());
    return was_generator ? list_of(std::move(items)) : Value::new_generator(std::move(items));
}

Value f_int(Interp&, const Value& v, CallArgs& a) {
    check_args(a, "int", {"default", "base"});
    const Value* d = arg(a, 0, "default");
    Value dflt = d != nullptr ? *d : Value::integer(0);
    if (const Value* b = arg(a, 1, "base");
        b != nullptr && !(b->is_integral() && b->as_int() == 10)) {
        throw NotSupported("|int with a base other than 10");
    }
    if (v.is_integral()) return Value::integer(v.as_int());
    if (v.kind == Kind::Float) {
        if (!std::isfinite(v.f) || std::fabs(v.f) >= 9.2e18) return dflt;
        return Value::integer(static_cast<int64_t>(v.f));
    }
    if (v.is_string()) {
        if (auto i = py_parse_int(v.s)) return Value::integer(*i);
        if (auto f = py_parse_float(v.s); f && std::isfinite(*f) && std::fabs(*f) < 9.2e18) {
            return Value::integer(static_cast<int64_t>(*f));
        }
    }
    return dflt;
}

Value f_float(Interp&, const Value& v, CallArgs& a) {
    check_args(a, "float", {"default"});
    const Value* d = arg(a, 0, "default");
    Value dflt = d != nullptr ? *d : Value::number(0.0);
    if (v.is_number()) return Value::number(v.as_double());
    if (v.is_string()) {
        if (auto f = py_parse_float(v.s)) return Value::number(*f);
    }
    return dflt;
}

Value f_abs(Interp&, const Value& v, CallArgs& a) {
    check_args(a, "abs", {});
    require_defined(v);
    if (v.kind == Kind::Float) return Value::number(std::fabs(v.f));
    if (!v.is_integral()) throw Error("bad operand type for abs(): '" + type_name(v) + "'");
    if (v.as_int() == INT64_MIN) throw NotSupported("integer beyond 64 bits");
    return Value::integer(std::llabs(v.as_int()));
}

Value f_round(Interp&, const Value& v, CallArgs& a) {
    check_args(a, "round", {"precision", "method"});
    const Value* p = arg(a, 0, "precision");
    const int64_t prec = p != nullptr ? p->as_int() : 0;
    const Value* m = arg(a, 1, "method");
    const std::string method = m != nullptr ? to_str(*m) : "common";
    const double x = v.as_double();
    const double scale = std::pow(10.0, static_cast<double>(std::clamp<int64_t>(prec, -300, 300)));
    if (method == "common") {
        if (prec != 0) throw NotSupported("|round with a precision (Python's decimal rounding)");
        return Value::number(std::nearbyint(x));  // round-half-even, as Python's round()
    }
    if (method == "ceil") return Value::number(std::ceil(x * scale) / scale);
    if (method == "floor") return Value::number(std::floor(x * scale) / scale);
    throw Error("method must be 'common', 'ceil' or 'floor'");
}

Value f_sum(Interp& in, const Value& v, CallArgs& a) {
    check_args(a, "sum", {"attribute", "start"});
    const auto attr = attribute_arg(a, 0);
    const Value* s = arg(a, 1, "start");
    Value total = s != nullptr ? *s : Value::integer(0);
    for (const Value& item : iterate(v))
        total = binary_op(in, "+", total, attr ? attr_path(item, *attr) : item);
    return total;
}

Value f_indent(Interp& in, const Value& v, CallArgs& a) {
    check_args(a, "indent", {"width", "first", "blank"});
    const Value* w = arg(a, 0, "width");
    std::string ind = "    ";
    if (w != nullptr)
        ind = w->is_string()
                  ? w->s
                  : std::string(static_cast<size_t>(std::clamp<int64_t>(w->as_int(), 0, 1 << 16)),
                                ' ');
    const Value s = soft_str(v);
    const std::vector<std::string> lines = py_splitlines(s.s + "\n");
    std::string rv;
    if (bool_arg(a, 2, "blank", false)) {
        for (size_t k = 0; k < lines.size(); ++k) rv += (k > 0 ? "\n" + ind : "") + lines[k];
    } else {
        rv = lines.empty() ? "" : lines[0];
        for (size_t k = 1; k < lines.size(); ++k) {
            rv += "\n";
            if (!lines[k].empty()) rv += ind;
            rv += lines[k];
            in.check_size(rv.size());
        }
    }
    if (bool_arg(a, 1, "first", false)) rv = ind + rv;
    in.check_size(rv.size());
    return Value::string(std::move(rv), s.flag);
}

Value f_batch(Interp&, const Value& v, CallArgs& a) {
    check_args(a, "batch", {"linecount", "fill_with"});
    const Value* n = arg(a, 0, "linecount");
    if (n == nullptr || !n->is_integral() || n->as_int() <= 0)
        throw Error("batch() needs a positive linecount");
    const Value* fill = arg(a, 1, "fill_with");
    const auto items = iterate(v);
    const auto size = static_cast<size_t>(n->as_int());
    std::vector<Value> out;
    for (size_t k = 0; k < items.size(); k += size) {
        std::vector<Value> row(
            items.begin() + static_cast<std::ptrdiff_t>(k),
            items.begin() + static_cast<std::ptrdiff_t>(std::min(items.size(), k + size)));
        if (fill != nullptr && !fill->is_none()) {
            while (row.size() < size) row.push_back(*fill);
        }
        out.push_back(list_of(std::move(row)));
    }
    return Value::new_generator(std::move(out));
}

Value f_wordcount(Interp&, const Value& v, CallArgs& a) {
    check_args(a, "wordcount", {});
    int64_t n = 0;
    bool in_word = false;
    for (const uint32_t cp : to_cps(to_str(v))) {
        std::string one;
        append_cp(one, cp);
        const bool w = cp == '_' || py_isalnum(one);
        if (w && !in_word) ++n;
        in_word = w;
    }
    return Value::integer(n);
}

Value f_attr(Interp&, const Value& v, CallArgs& a) {
    check_args(a, "attr", {"name"});
    const Value* n = arg(a, 0, "name");
    if (n == nullptr) throw Error("attr() needs a name");
    return get_attr(v, to_str(*n));
}

struct FilterEntry {
    std::string_view name;
    FilterFn fn;
};

constexpr FilterEntry kFilters[] = {
    {"length", f_length},
    {"count", f_length},
    {"default", f_default},
    {"d", f_default},
    {"tojson", f_tojson},
    {"trim", f_trim},
    {"upper", f_upper},
    {"lower", f_lower},
    {"capitalize", f_capitalize},
    {"title", f_title},
    {"string", f_string},
    {"safe", f_safe},
    {"e", f_escape},
    {"escape", f_escape},
    {"forceescape", f_escape},
    {"list", f_list},
    {"first", f_first},
    {"last", f_last},
    {"join", f_join},
    {"replace", f_replace},
    {"items", f_items},
    {"dictsort", f_dictsort},
    {"sort", f_sort},
    {"unique", f_unique},
    {"min", f_min},
    {"max", f_max},
    {"select", f_select},
    {"reject", f_reject},
    {"selectattr", f_selectattr},
    {"rejectattr", f_rejectattr},
    {"map", f_map},
    {"reverse", f_reverse},
    {"int", f_int},
    {"float", f_float},
    {"abs", f_abs},
    {"round", f_round},
    {"sum", f_sum},
    {"indent", f_indent},
    {"batch", f_batch},
    {"wordcount", f_wordcount},
    {"attr", f_attr},
};

bool compare_test(std::string_view name, const Value& v, const Value& other, bool& result) {
    if (name == "==" || name == "eq" || name == "equalto") {
        result = equals(v, other);
    } else if (name == "!=" || name == "ne") {
        result = !equals(v, other);
    } else if (name == ">" || name == "gt" || name == "greaterthan") {
        result = less(other, v);
    } else if (name == ">=" || name == "ge") {
        result = !less(v, other);
    } else if (name == "<" || name == "lt" || name == "lessthan") {
        result = less(v, other);
    } else if (name == "<=" || name == "le") {
        result = !less(other, v);
    } else if (name == "in") {
        result = contains(other, v);
    } else {
        return false;
    }
    return true;
}

bool type_test(std::string_view name, const Value& v, bool& result) {
    const Kind k = v.kind;
    if (name == "defined") {
        result = k != Kind::Undefined;
    } else if (name == "undefined") {
        result = k == Kind::Undefined;
    } else if (name == "none") {
        result = k == Kind::None;
    } else if (name == "boolean") {
        result = k == Kind::Bool;
    } else if (name == "true" || name == "false") {
        result = k == Kind::Bool && v.flag == (name == "true");
    } else if (name == "integer") {
        result = k == Kind::Int;
    } else if (name == "float") {
        result = k == Kind::Float;
    } else if (name == "number") {
        result = v.is_number();
    } else if (name == "string") {
        result = k == Kind::String;
    } else if (name == "mapping") {
        result = k == Kind::Dict;
    } else if (name == "sequence") {
        result =
            k == Kind::String || k == Kind::Dict || (k == Kind::List && v.list->view == nullptr);
    } else if (name == "iterable") {
        result = k == Kind::String || k == Kind::List || k == Kind::Dict || k == Kind::Undefined;
    } else if (name == "callable") {
        result = k == Kind::Callable;
    } else if (name == "escaped") {
        result = k == Kind::String && v.flag;
    } else {
        return false;
    }
    return true;
}

}  // namespace

bool has_filter(std::string_view name) {
    return std::find(std::begin(kFilterNames), std::end(kFilterNames), name) !=
           std::end(kFilterNames);
}

bool has_test(std::string_view name) {
    return std::find(std::begin(kTestNames), std::end(kTestNames), name) != std::end(kTestNames);
}

Value apply_filter(Interp& in, std::string_view name, const Value& subject, CallArgs& args) {
    for (const auto& f : kFilters) {
        if (f.name == name) return f.fn(in, subject, args);
    }
    if (has_filter(name)) throw NotSupported("the '" + std::string(name) + "' filter");
    throw Error("no filter named '" + std::string(name) + "'");
}

bool apply_test(Interp&, std::string_view name, const Value& v, CallArgs& args) {
    bool result = false;
    if (type_test(name, v, result)) {
        check_args(args, name, {});
        return result;
    }
    if (name == "lower" || name == "upper") {
        const std::string s = to_str(v);
        return name == "lower" ? py_islower(s) : py_isupper(s);
    }
    if (name == "filter" || name == "test") {
        const std::string s = to_str(v);
        return name == "filter" ? has_filter(s) : has_test(s);
    }
    if (name == "odd" || name == "even" || name == "divisibleby") {
        require_defined(v);
        int64_t div = 2;
        if (name == "divisibleby") {
            const Value* d = arg(args, 0, "num");
            if (d == nullptr || !d->is_integral() || d->as_int() == 0)
                throw Error("divisibleby needs a non-zero integer");
            div = d->as_int();
        }
        if (!v.is_integral())
            throw NotSupported("the '" + std::string(name) + "' test on a " + type_name(v));
        const int64_t m = ((v.as_int() % div) + div) % div;
        return name == "odd" ? m == 1 : m == 0;
    }
    if (name == "sameas") {
        const Value* o = arg(args, 0, "other");
        if (o == nullptr) throw Error("sameas needs an argument");
        if (v.kind == Kind::None || v.kind == Kind::Bool || o->kind == Kind::None ||
            o->kind == Kind::Bool) {
            return v.kind == o->kind && v.flag == o->flag;
        }
        if (v.kind == Kind::Int && o->kind == Kind::Int && v.i >= -5 && v.i <= 256)
            return v.i == o->i;
        throw NotSupported("the 'sameas' test on a " + type_name(v));
    }
    const Value* other = arg(args, 0, "b");
    if (other == nullptr) throw Error("the '" + std::string(name) + "' test needs an argument");
    if (compare_test(name, v, *other, result)) return result;
    throw Error("no test named '" + std::string(name) + "'");
}

}  // namespace bitnet::jinja
