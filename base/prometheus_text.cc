#include "base/prometheus_text.h"

#include <cmath>
#include <cstdlib>

#include "absl/strings/str_format.h"
#include "base/str_cat.h"

namespace pgb {
namespace {

// HELP text escapes backslash and newline; label values also the double quote.
void AppendEscaped(std::string& out, std::string_view text, bool quote) {
  for (char c : text) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '"' && quote) {
      out += "\\\"";
    } else {
      out += c;
    }
  }
}

}  // namespace

std::string PrometheusNumber(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  if (value == std::floor(value) && std::fabs(value) < 1e15) {
    return Cat(static_cast<int64_t>(value));
  }
  // The shortest of 15 or 17 digits that reads back as the same double.
  std::string text = absl::StrFormat("%.15g", value);
  if (std::strtod(text.c_str(), nullptr) != value) text = absl::StrFormat("%.17g", value);
  return text;
}

void PrometheusText::Family(std::string_view name, std::string_view type, std::string_view help) {
  Append(out_, "# HELP ", name, " ");
  AppendEscaped(out_, help, false);
  Append(out_, "\n# TYPE ", name, " ", type, "\n");
}

void PrometheusText::Series(std::string_view name, std::string_view suffix, Labels labels,
                            std::pair<std::string_view, std::string_view> extra) {
  Append(out_, name, suffix);
  if (labels.size() == 0 && extra.first.empty()) return;
  out_ += '{';
  bool first = true;
  const auto label = [&](std::string_view key, std::string_view value) {
    if (!first) out_ += ',';
    first = false;
    Append(out_, key, "=\"");
    AppendEscaped(out_, value, true);
    out_ += '"';
  };
  for (const auto& [key, value] : labels) label(key, value);
  if (!extra.first.empty()) label(extra.first, extra.second);
  out_ += '}';
}

void PrometheusText::Sample(std::string_view name, Labels labels, uint64_t value) {
  Series(name, "", labels);
  Append(out_, " ", value, "\n");
}

void PrometheusText::Sample(std::string_view name, Labels labels, double value) {
  Series(name, "", labels);
  Append(out_, " ", PrometheusNumber(value), "\n");
}

void PrometheusText::Histogram(std::string_view name, Labels labels, std::span<const double> bounds,
                               std::span<const uint64_t> counts, double sum) {
  uint64_t cumulative = 0;
  for (size_t i = 0; i <= bounds.size(); ++i) {
    cumulative += i < counts.size() ? counts[i] : 0;
    const std::string le = i < bounds.size() ? PrometheusNumber(bounds[i]) : "+Inf";
    Series(name, "_bucket", labels, {"le", le});
    Append(out_, " ", cumulative, "\n");
  }
  Series(name, "_sum", labels);
  Append(out_, " ", PrometheusNumber(sum), "\n");
  Series(name, "_count", labels);
  Append(out_, " ", cumulative, "\n");
}

}  // namespace pgb
