// Python str semantics on UTF-8 text, as chat templates use them: lengths, indices and slices
// count code points; case mapping, whitespace and printability follow Unicode through ICU the
// way CPython's str methods do; repr() and float repr() reproduce CPython's output.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace bitnet::jinja {

// Code points of UTF-8 text; an invalid byte becomes U+FFFD (templates and JSON are UTF-8).
std::vector<uint32_t> to_cps(std::string_view s);
std::string from_cps(const std::vector<uint32_t>& cps, size_t begin, size_t end);
inline std::string from_cps(const std::vector<uint32_t>& cps) {
    return from_cps(cps, 0, cps.size());
}
void append_cp(std::string& out, uint32_t cp);
int64_t cp_length(std::string_view s);

bool py_isspace(uint32_t cp);
enum class StripMode : uint8_t { Both, Left, Right };
// str.strip(chars): chars absent strips Python whitespace.
std::string py_strip(std::string_view s, const std::optional<std::string>& chars, StripMode mode);
// str.split(sep, maxsplit) / str.rsplit; sep absent splits on runs of whitespace.
std::vector<std::string> py_split(std::string_view s, const std::optional<std::string>& sep,
                                  int64_t maxsplit, bool from_right);
std::vector<std::string> py_splitlines(std::string_view s);
std::string py_replace(std::string_view s, std::string_view old_text, std::string_view new_text,
                       int64_t count);
// Code point index of the first (last) occurrence, or -1.
int64_t py_find(std::string_view s, std::string_view sub, bool from_right);
int64_t py_count(std::string_view s, std::string_view sub);

std::string py_upper(std::string_view s);
std::string py_lower(std::string_view s);
std::string py_capitalize(std::string_view s);
std::string py_title(std::string_view s);     // str.title()
std::string jinja_title(std::string_view s);  // Jinja2's |title filter
bool py_isupper(std::string_view s);
bool py_islower(std::string_view s);
bool py_isalpha(std::string_view s);
bool py_isdigit(std::string_view s);
bool py_isalnum(std::string_view s);
bool py_isspace_str(std::string_view s);

// repr(str): quotes and escapes as CPython chooses them.
std::string py_repr_str(std::string_view s);
// repr(float): the shortest round-trip digits in CPython's layout (1.0, 1e-05, 1e+16, inf).
std::string py_float_repr(double v);
// markupsafe.escape.
std::string html_escape(std::string_view s);
// Python int(str, 10) / float(str); nullopt when Python raises ValueError.
std::optional<int64_t> py_parse_int(std::string_view s);
std::optional<double> py_parse_float(std::string_view s);

}  // namespace bitnet::jinja
