// Text as a JSON string literal (quotes included), for the commands' --json
// output: quotes, backslashes and control characters escaped; other bytes
// (UTF-8 included) are passed through.
//
//   std::string out = "{\"ok\":false,\"error\":" + JsonString(message) + "}";
#pragma once

#include <string>
#include <string_view>

namespace pgb {

std::string JsonString(std::string_view text);

}  // namespace pgb
