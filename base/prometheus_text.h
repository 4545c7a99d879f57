// PrometheusText writes the Prometheus text exposition format (version 0.0.4,
// https://prometheus.io/docs/instrumenting/exposition_formats/): one HELP and
// TYPE line per family, then its samples, label values escaped (backslash,
// double quote, newline). It knows nothing of what is measured; the gateway's
// metrics (core/metrics.h) are written with it.
//
//   PrometheusText text;
//   text.Family("pgbastion_statements_total", "counter", "Statements judged.");
//   text.Sample("pgbastion_statements_total", {{"decision", "allow"}}, 42);
//   text.Histogram("pgbastion_backend_connect_seconds", {}, bounds, counts, sum_seconds);
//   std::string body = text.Take();  // Content-Type: kPrometheusContentType
#pragma once

#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>
#include <utility>

namespace pgb {

inline constexpr std::string_view kPrometheusContentType = "text/plain; version=0.0.4";

class PrometheusText {
 public:
  using Labels = std::initializer_list<std::pair<std::string_view, std::string_view>>;

  // `type`: "counter", "gauge", "histogram" or "untyped". Each family once,
  // before its samples.
  void Family(std::string_view name, std::string_view type, std::string_view help);
  void Sample(std::string_view name, Labels labels, uint64_t value);
  void Sample(std::string_view name, Labels labels, double value);
  // A histogram's samples: cumulative `_bucket{le=...}` per bound plus
  // le="+Inf", `_sum` and `_count`. `counts[i]` counts the observations in
  // (bounds[i-1], bounds[i]]; `counts` has one more entry than `bounds` (the
  // observations above the last bound).
  void Histogram(std::string_view name, Labels labels, std::span<const double> bounds,
                 std::span<const uint64_t> counts, double sum);

  std::string Take() { return std::move(out_); }

 private:
  // name{a="x",b="y"} (no braces without labels); `extra` is one more label
  // (a histogram's le), empty name = none.
  void Series(std::string_view name, std::string_view suffix, Labels labels,
              std::pair<std::string_view, std::string_view> extra = {});

  std::string out_;
};

// A number as the format writes it: integers exactly, others in the fewest digits (15 or 17)
// that read back as the same double; +Inf, -Inf, NaN spelled as Prometheus reads them.
std::string PrometheusNumber(double value);

}  // namespace pgb
