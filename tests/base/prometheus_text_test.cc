#include "base/prometheus_text.h"

#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace pgb {
namespace {

TEST(PrometheusTextTest, FamilyAndSamples) {
  PrometheusText text;
  text.Family("pgbastion_statements_total", "counter", "Statements judged.");
  text.Sample("pgbastion_statements_total", {{"decision", "allow"}, {"class", "read"}},
              uint64_t{42});
  text.Sample("pgbastion_statements_total", {}, uint64_t{7});
  EXPECT_EQ(text.Take(),
            "# HELP pgbastion_statements_total Statements judged.\n"
            "# TYPE pgbastion_statements_total counter\n"
            "pgbastion_statements_total{decision=\"allow\",class=\"read\"} 42\n"
            "pgbastion_statements_total 7\n");
}

TEST(PrometheusTextTest, EscapesLabelValuesAndHelp) {
  PrometheusText text;
  text.Family("m", "gauge", "a \\ b\nc \"q\"");
  text.Sample("m", {{"rule", "a\"b\\c\nd"}}, uint64_t{1});
  EXPECT_EQ(text.Take(),
            "# HELP m a \\\\ b\\nc \"q\"\n"
            "# TYPE m gauge\n"
            "m{rule=\"a\\\"b\\\\c\\nd\"} 1\n");
}

TEST(PrometheusTextTest, HistogramIsCumulative) {
  PrometheusText text;
  const std::vector<double> bounds = {0.001, 0.01};
  const std::vector<uint64_t> counts = {2, 3, 1};
  text.Histogram("h_seconds", {{"target", "app"}}, bounds, counts, 0.0415);
  EXPECT_EQ(text.Take(),
            "h_seconds_bucket{target=\"app\",le=\"0.001\"} 2\n"
            "h_seconds_bucket{target=\"app\",le=\"0.01\"} 5\n"
            "h_seconds_bucket{target=\"app\",le=\"+Inf\"} 6\n"
            "h_seconds_sum{target=\"app\"} 0.0415\n"
            "h_seconds_count{target=\"app\"} 6\n");
}

TEST(PrometheusTextTest, Numbers) {
  EXPECT_EQ(PrometheusNumber(3), "3");
  EXPECT_EQ(PrometheusNumber(0.25), "0.25");
  EXPECT_EQ(PrometheusNumber(1.0 / 0.0), "+Inf");
  EXPECT_EQ(PrometheusNumber(-1.0 / 0.0), "-Inf");
  EXPECT_EQ(PrometheusNumber(0.0 / 0.0), "NaN");
  PrometheusText text;
  text.Sample("g", {}, 1.5);
  EXPECT_EQ(text.Take(), "g 1.5\n");
}

}  // namespace
}  // namespace pgb
