#include "policy/issuer_config.h"

#include <algorithm>

namespace pgb::policy {

bool IssuerConfig::AllowsAlgorithm(JwsAlgorithm alg) const {
  return std::find(algorithms.begin(), algorithms.end(), alg) != algorithms.end();
}

bool IsAllowedProviderUrl(std::string_view url) {
  constexpr std::string_view kHttps = "https://";
  constexpr std::string_view kHttp = "http://";
  if (url.starts_with(kHttps)) return url.size() > kHttps.size();
  if (!url.starts_with(kHttp)) return false;
  std::string_view rest = url.substr(kHttp.size());
  const std::string_view authority = rest.substr(0, rest.find('/'));
  std::string_view host = authority;
  if (host.starts_with('[')) {
    host = host.substr(0, host.find(']') + 1);
  } else {
    host = host.substr(0, host.find(':'));
  }
  return host == "127.0.0.1" || host == "[::1]" || host == "localhost";
}

}  // namespace pgb::policy
