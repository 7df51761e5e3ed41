// Prometheus exposition (hand-written, 0.0.4) checked by a strict parser; the histogram and the
// latency recorder behind /metrics and the run summary.
#include <catch2/catch.hpp>

#include <atomic>
#include <thread>
#include <vector>

#include "ringflow/runtime/prometheus.hpp"
#include "support/prom_parse.hpp"

using namespace ringflow::ops;
using ringflow::testing::parse_prometheus;

TEST_CASE("exposition round-trips counters, gauges and histograms through the strict parser", "[prometheus]") {
  exposition x;
  x.family("rf_msgs_total", "counter", "Messages\nby outcome \\ actor");
  x.sample({{"actor", "a"}, {"outcome", "ok"}}, 12);
  x.sample({{"actor", "we\"ird\\name\nx"}, {"outcome", "error"}}, 0.5);
  x.family("rf_depth", "gauge", "Depth");
  x.sample({}, 3);
  x.family("rf_latency_seconds", "histogram", "Latency");
  histogram h({0.001, 0.01, 0.1});
  for (double v : {0.0005, 0.001, 0.002, 0.05, 3.0}) h.observe(v);
  x.histogram_sample({{"actor", "a"}}, h.snapshot());
  x.histogram_sample({{"actor", "b"}}, histogram({0.001}).snapshot());
  const auto f = parse_prometheus(x.text());
  REQUIRE(f.size() == 3);
  CHECK(f.at("rf_msgs_total").type == "counter");
  CHECK(f.at("rf_msgs_total").help == "Messages\\nby outcome \\\\ actor");  // escaped in HELP
  REQUIRE(f.at("rf_msgs_total").samples.size() == 2);
  CHECK(f.at("rf_msgs_total").samples[1].labels.at("actor") == "we\"ird\\name\nx");
  CHECK(f.at("rf_msgs_total").samples[1].value == 0.5);
  CHECK(f.at("rf_depth").samples.at(0).value == 3);
  std::map<std::string, double> a;
  for (const auto& s : f.at("rf_latency_seconds").samples)
    if (s.labels.at("actor") == "a") a[s.name + (s.labels.count("le") ? s.labels.at("le") : "")] = s.value;
  CHECK(a.at("rf_latency_seconds_bucket0.001") == 2);  // le is inclusive: 0.001 counts in its own bucket
  CHECK(a.at("rf_latency_seconds_bucket0.01") == 3);
  CHECK(a.at("rf_latency_seconds_bucket0.1") == 4);
  CHECK(a.at("rf_latency_seconds_bucket+Inf") == 5);
  CHECK(a.at("rf_latency_seconds_count") == 5);
  CHECK(a.at("rf_latency_seconds_sum") == Approx(3.0535));
}

TEST_CASE("exposition refuses what would be invalid", "[prometheus]") {
  exposition x;
  CHECK_THROWS_AS(x.sample({}, 1), std::invalid_argument);  // before any family
  CHECK_THROWS_AS(x.family("9bad", "gauge", ""), std::invalid_argument);
  CHECK_THROWS_AS(x.family("rf_count", "counter", ""), std::invalid_argument);  // counters end in _total
  CHECK_THROWS_AS(x.family("rf_x", "summary", ""), std::invalid_argument);
  x.family("rf_g", "gauge", "");
  CHECK_THROWS_AS(x.family("rf_g", "gauge", ""), std::invalid_argument);
  CHECK_THROWS_AS(x.sample({{"__reserved", "x"}}, 1), std::invalid_argument);
  CHECK_THROWS_AS(x.sample({{"bad-name", "x"}}, 1), std::invalid_argument);
  CHECK_THROWS_AS(x.histogram_sample({}, histogram().snapshot()), std::invalid_argument);
  x.family("rf_h", "histogram", "");
  CHECK_THROWS_AS(x.sample({}, 1), std::invalid_argument);
  CHECK_THROWS_AS(x.histogram_sample({{"le", "1"}}, histogram().snapshot()), std::invalid_argument);
  CHECK_THROWS_AS(histogram({1.0, 0.5}), std::invalid_argument);
  CHECK_THROWS_AS(histogram(std::vector<double>{}), std::invalid_argument);
  CHECK(exposition::format_value(3) == "3");
  CHECK(exposition::format_value(0.25) == "0.25");
  CHECK(exposition::format_value(1.0 / 0.0) == "+Inf");
  CHECK(exposition::format_value(-1.0 / 0.0) == "-Inf");
  CHECK(exposition::format_value(0.0 / 0.0) == "NaN");
}

TEST_CASE("the strict parser rejects malformed expositions", "[prometheus]") {
  const char* bad[] = {
      "rf_a 1\n",                                                   // no TYPE before the sample
      "# TYPE rf_a gauge\nrf_a 1",                                  // no trailing newline
      "# TYPE rf_a gauge\nrf_a 1\n# TYPE rf_a gauge\n",             // TYPE after samples / twice
      "# TYPE rf_c counter\nrf_c 1\n",                              // counter without _total
      "# TYPE rf_a gauge\nrf_a{x=\"1} 1\n",                         // unterminated label value
      "# TYPE rf_a gauge\nrf_a{x=1} 1\n",                           // unquoted label value
      "# TYPE rf_a gauge\nrf_a{x=\"\\q\"} 1\n",                     // bad escape
      "# TYPE rf_a gauge\nrf_a abc\n",                              // not a number
      "# TYPE rf_a gauge\nrf_b 1\n",                                // sample of another family
      "# TYPE rf_h histogram\nrf_h_bucket{le=\"1\"} 1\nrf_h_sum 1\nrf_h_count 1\n",  // no +Inf bucket
      "# TYPE rf_h histogram\nrf_h_bucket{le=\"1\"} 2\nrf_h_bucket{le=\"+Inf\"} 1\nrf_h_sum 1\nrf_h_count 1\n",  // not cumulative
      "# TYPE rf_h histogram\nrf_h_bucket{le=\"+Inf\"} 2\nrf_h_sum 1\nrf_h_count 1\n",  // +Inf != count
      "# TYPE rf_h histogram\nrf_h 1\n",                            // a bare histogram sample
  };
  for (const char* t : bad) {
    INFO(t);
    CHECK_THROWS_AS(parse_prometheus(t), std::runtime_error);
  }
}

TEST_CASE("latency_recorder quantiles are within 1/64 above the truth", "[prometheus]") {
  latency_recorder r;
  CHECK(r.quantile_us(0.5) == 0);
  for (std::uint64_t us = 1; us <= 100000; ++us) r.record(us * 1000);
  CHECK(r.count() == 100000);
  for (double q : {0.5, 0.9, 0.99, 0.999}) {
    const double truth = q * 100000;
    INFO(q);
    CHECK(r.quantile_us(q) >= truth * 0.999);
    CHECK(r.quantile_us(q) <= truth * (1 + 1.0 / 64) + 1);
  }
  CHECK(r.quantile_us(1.0) == 100000);  // capped at the exact max
  CHECK(r.max_ns() == 100000000);
}

TEST_CASE("histogram and latency_recorder count every observation under contention", "[prometheus][tsan]") {
  histogram h;
  latency_recorder r;
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t)
    ts.emplace_back([&, t] {
      for (int i = 0; i < 200000; ++i) {
        h.observe(1e-6 * ((i + t) % 5000));
        r.record(static_cast<std::uint64_t>(i % 100000) * 100);
      }
    });
  for (auto& t : ts) t.join();
  const histogram_snapshot s = h.snapshot();
  CHECK(s.count == 800000);
  std::uint64_t sum = 0;
  for (auto c : s.counts) sum += c;
  CHECK(sum == 800000);
  CHECK(r.count() == 800000);
}
