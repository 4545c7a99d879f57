#include "policy/issuer_config.h"

#include <algorithm>

namespace pgb::policy {

bool IssuerConfig::AllowsAlgorithm(JwsAlgorithm alg) const {
  return std::find(algorithms.begin(), algorithms.end(), alg) != algorithms.end();
}

}  // namespace pgb::policy
