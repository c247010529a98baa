// The chat page `bitnet serve` shows at / (self-contained: no build step, no external
// resources). Its source is webui.html, embedded at build time.
#pragma once

#include <string_view>

namespace bitnet::server {

std::string_view webui_html();

}  // namespace bitnet::server
