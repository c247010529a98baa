// The values a chat template computes with: Python's object model as far as Jinja2 templates
// see it (None, bool, int, float, str, list, tuple, dict with insertion order), plus Jinja2's
// Undefined, markupsafe's Markup (a str flagged `safe`), namespace() objects and callables.
// Lists and dicts are shared by reference like Python objects; the sandbox never mutates them.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "bitnet/error.h"

namespace bitnet::jinja {

class Interp;
struct Value;

enum class Kind : uint8_t {
    Undefined,
    None,
    Bool,
    Int,
    Float,
    String,
    List,       // list or tuple (ListData::tuple)
    Dict,       // dict, keys in insertion order
    Namespace,  // namespace(): attributes assignable with {% set ns.x = ... %}
    Object,     // read-only attribute bag (the loop variable)
    Callable,   // macros, builtin functions, bound methods
};

struct ListData {
    std::vector<Value> items;
    bool tuple = false;
    // dict.keys()/values()/items() views print as "dict_keys([...])" and are not JSON;
    // kGenerator marks the one-shot iterators Jinja2's map/select/unique/items filters return
    // (always truthy, no len(), not printable, iterating consumes them).
    const char* view = nullptr;
    size_t consumed = 0;
    bool is_generator() const;
};
inline constexpr const char* kGenerator = "generator";

struct DictData {
    std::vector<std::pair<Value, Value>> items;
    const Value* find(const Value& key) const;
    const Value* find(std::string_view key) const;
    void set(const Value& key, Value v);
};

struct CallArgs {
    std::vector<Value> pos;
    std::vector<std::pair<std::string, Value>> kw;
};

using NativeFn = std::function<Value(Interp&, CallArgs&)>;

struct CallableData {
    std::string name;
    NativeFn fn;
};

struct Value {
    Kind kind = Kind::Undefined;
    bool flag = false;  // Bool: the value; String: Markup (safe)
    int64_t i = 0;
    double f = 0.0;
    std::string s;  // String: text; Undefined: the error raised when it is used
    std::shared_ptr<ListData> list;
    std::shared_ptr<DictData> dict;  // Dict, Namespace, Object
    std::shared_ptr<CallableData> fn;

    static Value undefined(std::string error_message);
    static Value none();
    static Value boolean(bool b);
    static Value integer(int64_t v);
    static Value number(double v);
    static Value string(std::string v, bool safe = false);
    static Value new_list(std::vector<Value> items = {}, bool tuple = false);
    static Value new_generator(std::vector<Value> items);
    static Value new_dict();
    static Value new_namespace();
    static Value new_object();
    static Value callable(std::string name, NativeFn fn);

    bool is_undefined() const { return kind == Kind::Undefined; }
    bool is_none() const { return kind == Kind::None; }
    bool is_string() const { return kind == Kind::String; }
    bool is_number() const {
        return kind == Kind::Int || kind == Kind::Float || kind == Kind::Bool;
    }
    bool is_mapping() const { return kind == Kind::Dict; }
    bool is_list() const { return kind == Kind::List; }
    // Int or Bool (Python's bool is an int).
    bool is_integral() const { return kind == Kind::Int || kind == Kind::Bool; }
    double as_double() const;
    int64_t as_int() const { return kind == Kind::Bool ? (flag ? 1 : 0) : i; }
};

// Python's bool(x); Undefined is false.
bool truthy(const Value& v);
// Python's type(x).__name__ as Jinja2's messages use it ("str", "dict", "list", ...).
std::string type_name(const Value& v);
// Python's str(x) (Undefined prints as ""); repr(x) for container elements.
std::string to_str(const Value& v);
std::string repr(const Value& v);
// Python's ==; numbers compare across int/float/bool.
bool equals(const Value& a, const Value& b);
// Python's <; throws Error for unorderable types.
bool less(const Value& a, const Value& b);
// Python's len(); throws for types without a length.
int64_t length(const Value& v);
// The items iterating x yields (dict: keys; str: characters; Undefined: nothing).
std::vector<Value> iterate(const Value& v);

// Throws the error an Undefined carries (jinja2's UndefinedError).
[[noreturn]] void fail_undefined(const Value& v);
// Throws Error("<what>") when a value used as a number / string is Undefined.
void require_defined(const Value& v);

Value from_json(const nlohmann::ordered_json& j, int depth = 0);
struct JsonOptions {
    int indent = -1;  // < 0: single line
    bool ensure_ascii = false;
    bool sort_keys = false;
    std::string item_sep = ", ";
    std::string key_sep = ": ";
};
// Python's json.dumps(x, ...) for values JSON can represent; throws Error otherwise.
std::string to_json(const Value& v, const JsonOptions& opts);

// Nesting limit for printing, comparing and serializing values built by a template.
constexpr int kMaxValueDepth = 512;

}  // namespace bitnet::jinja
