// Prometheus exposition (hand-written, 0.0.4) checked by a strict parser; the histogram and the
// latency recorder behind /metrics and the run summary.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "ringflow/runtime/prometheus.hpp"
#include "support/prom_parse.hpp"

using namespace ringflow::ops;
using ringflow::testing::parse_prometheus;

namespace {

// A histogram family's samples for one label value of `actor`, keyed "name" or "name_bucket<le>".
std::map<std::string, double> series_of(const ringflow::testing::prom_family& f, const std::string& actor) {
  std::map<std::string, double> out;
  for (const auto& s : f.samples)
    if (s.labels.at("actor") == actor) out[s.name + (s.labels.count("le") ? s.labels.at("le") : "")] = s.value;
  return out;
}

// Checks that parse_prometheus refuses `text` and says on which line.
void check_rejected(const std::string& text, int line) {
  INFO(text);
  try {
    parse_prometheus(text);
    FAIL("accepted");
  } catch (const std::runtime_error& e) {
    INFO(e.what());
    CHECK(std::string(e.what()).rfind("line " + std::to_string(line) + ": ", 0) == 0);
  }
}

}  // namespace

TEST_CASE("exposition round-trips counters, gauges and histograms through the strict parser", "[prometheus]") {
  exposition x;
  x.family("rf_msgs_total", "counter", "Messages\nby outcome \\ actor");
  x.sample({{"actor", "a"}, {"outcome", "ok"}}, 12);
  x.sample({{"actor", "a"}, {"outcome", "error"}}, 0.5);
  x.sample({{"actor", "b"}, {"outcome", "ok"}}, 9007199254740993.0);  // 2^53 + 1 is 2^53: not below 2^53, to_chars
  x.family("rf_depth", "gauge", "Depth");
  x.sample({}, 3);
  x.sample({{"ring", "r"}}, -2.25);
  x.family("rf_latency_seconds", "histogram", "Latency");
  histogram h({0.001, 0.01, 0.1});
  for (double v : {0.0005, 0.001, 0.002, 0.05, 3.0}) h.observe(v);
  x.histogram_sample({{"actor", "a"}}, h.snapshot());
  x.histogram_sample({{"actor", "b"}}, histogram({0.001}).snapshot());
  x.family("rf_empty", "gauge", "");  // a family without samples is valid

  const auto f = parse_prometheus(x.text());
  REQUIRE(f.size() == 4);
  CHECK(f.at("rf_msgs_total").type == "counter");
  CHECK(f.at("rf_msgs_total").help == "Messages\nby outcome \\ actor");  // escaped in the text, unescaped here
  CHECK(x.text().find("# HELP rf_msgs_total Messages\\nby outcome \\\\ actor\n") != std::string::npos);
  REQUIRE(f.at("rf_msgs_total").samples.size() == 3);
  CHECK(f.at("rf_msgs_total").samples[0].value == 12);
  CHECK(f.at("rf_msgs_total").samples[1].value == 0.5);
  CHECK(f.at("rf_msgs_total").samples[2].value == 9007199254740992.0);
  CHECK(x.text().find("rf_msgs_total{actor=\"a\",outcome=\"ok\"} 12\n") != std::string::npos);
  CHECK(f.at("rf_depth").type == "gauge");
  REQUIRE(f.at("rf_depth").samples.size() == 2);
  CHECK(f.at("rf_depth").samples[0].labels.empty());
  CHECK(f.at("rf_depth").samples[0].value == 3);
  CHECK(f.at("rf_depth").samples[1].value == -2.25);
  CHECK(f.at("rf_empty").samples.empty());

  const auto& lat = f.at("rf_latency_seconds");
  CHECK(lat.type == "histogram");
  CHECK(lat.samples.size() == (3 + 1 + 2) + (1 + 1 + 2));  // per label set: bounds + 1 buckets, _sum, _count
  const auto a = series_of(lat, "a");
  CHECK(a.at("rf_latency_seconds_bucket0.001") == 2);  // le is inclusive: 0.001 counts in its own bucket
  CHECK(a.at("rf_latency_seconds_bucket0.01") == 3);
  CHECK(a.at("rf_latency_seconds_bucket0.1") == 4);
  CHECK(a.at("rf_latency_seconds_bucket+Inf") == 5);
  CHECK(a.at("rf_latency_seconds_count") == 5);
  CHECK(a.at("rf_latency_seconds_sum") == Approx(3.0535));
  const auto b = series_of(lat, "b");
  CHECK(b.at("rf_latency_seconds_bucket0.001") == 0);
  CHECK(b.at("rf_latency_seconds_bucket+Inf") == 0);
  CHECK(b.at("rf_latency_seconds_count") == 0);
  CHECK(b.at("rf_latency_seconds_sum") == 0);
}

TEST_CASE("label values with quotes, backslashes and newlines survive the round trip", "[prometheus]") {
  const std::vector<std::string> values = {"we\"ird", "back\\slash", "new\nline", "\\\"\n\\n", "", "ünï code {}=,"};
  exposition x;
  x.family("rf_g", "gauge", "");
  for (std::size_t i = 0; i < values.size(); ++i) x.sample({{"v", values[i]}}, static_cast<double>(i));
  x.family("rf_h", "histogram", "");
  x.histogram_sample({{"v", values[3]}}, histogram({1.0}).snapshot());
  CHECK(x.text().find("rf_g{v=\"we\\\"ird\"} 0\n") != std::string::npos);
  CHECK(x.text().find("rf_g{v=\"new\\nline\"} 2\n") != std::string::npos);
  const auto f = parse_prometheus(x.text());
  REQUIRE(f.at("rf_g").samples.size() == values.size());
  for (std::size_t i = 0; i < values.size(); ++i) {
    CHECK(f.at("rf_g").samples[i].labels.at("v") == values[i]);
    CHECK(f.at("rf_g").samples[i].value == static_cast<double>(i));
  }
  for (const auto& s : f.at("rf_h").samples) CHECK(s.labels.at("v") == values[3]);
}

TEST_CASE("exposition formats values and le bounds as documented", "[prometheus]") {
  CHECK(exposition::format_value(3) == "3");
  CHECK(exposition::format_value(-7) == "-7");
  CHECK(exposition::format_value(0) == "0");
  CHECK(exposition::format_value(1e15) == "1000000000000000");
  CHECK(exposition::format_value(0.25) == "0.25");
  CHECK(exposition::format_value(0.1) == "0.1");  // shortest round-trip, not %.17g's 0.10000000000000001
  CHECK(exposition::format_value(1e-05) == "1e-05");
  CHECK(exposition::format_value(1e20) == "1e+20");
  CHECK(exposition::format_value(0.0001) == "0.0001");  // exponent -4: still fixed, as Go's 'g'
  CHECK(exposition::format_value(123456.5) == "123456.5");
  CHECK(exposition::format_value(1234567.5) == "1.2345675e+06");
  CHECK(exposition::format_value(-2.5e-7) == "-2.5e-07");
  CHECK(exposition::format_value(1e300) == "1e+300");
  CHECK(exposition::format_value(5e-324) == "5e-324");
  CHECK(exposition::format_value(HUGE_VAL) == "+Inf");
  CHECK(exposition::format_value(-HUGE_VAL) == "-Inf");
  CHECK(exposition::format_value(NAN) == "NaN");
  // Every value round-trips, through strtod and through the exposition and the parser.
  const std::vector<double> values = {
      0.1, 1.0 / 3, 2.5e-3, 123456.789, 1e-300, 9007199254740993.0, -1.7976931348623157e308, 5e-324, -0.0, 1e15 + 0.5};
  exposition v;
  v.family("rf_v", "gauge", "");
  for (std::size_t i = 0; i < values.size(); ++i) {
    CHECK(std::strtod(exposition::format_value(values[i]).c_str(), nullptr) == values[i]);
    v.sample({{"i", std::to_string(i)}}, values[i]);
  }
  const auto parsed = parse_prometheus(v.text());
  REQUIRE(parsed.at("rf_v").samples.size() == values.size());
  for (std::size_t i = 0; i < values.size(); ++i) CHECK(parsed.at("rf_v").samples[i].value == values[i]);

  exposition x;
  x.family("rf_h", "histogram", "");
  x.histogram_sample({}, histogram().snapshot());
  const auto f = parse_prometheus(x.text());
  std::vector<std::string> les;
  for (const auto& s : f.at("rf_h").samples)
    if (s.labels.count("le")) les.push_back(s.labels.at("le"));
  CHECK(les == std::vector<std::string>{"1e-05",  "2.5e-05", "5e-05", "0.0001", "0.00025", "0.0005", "0.001",
                                        "0.0025", "0.005",   "0.01",  "0.025",  "0.05",    "0.1",    "0.25",
                                        "0.5",    "1",       "2.5",   "5",      "10",      "+Inf"});
  CHECK(x.text().find("rf_h_bucket{le=\"1e-05\"} 0\n") != std::string::npos);
}

TEST_CASE("exposition refuses what would be invalid, and leaves its text as it was", "[prometheus]") {
  exposition x;
  CHECK_THROWS_AS(x.sample({}, 1), std::invalid_argument);  // before any family
  CHECK_THROWS_AS(x.histogram_sample({}, histogram().snapshot()), std::invalid_argument);
  CHECK_THROWS_AS(x.family("9bad", "gauge", ""), std::invalid_argument);
  CHECK_THROWS_AS(x.family("", "gauge", ""), std::invalid_argument);
  CHECK_THROWS_AS(x.family("rf-bad", "gauge", ""), std::invalid_argument);
  CHECK_THROWS_AS(x.family("rf_count", "counter", ""), std::invalid_argument);  // counters end in _total
  CHECK_THROWS_AS(x.family("rf_x", "summary", ""), std::invalid_argument);
  CHECK_THROWS_AS(x.family("rf_x", "Gauge", ""), std::invalid_argument);
  CHECK(x.text().empty());
  CHECK_NOTHROW(x.family("rf:ns_ok_total", "counter", ""));  // colons are valid in metric names
  x.family("rf_g", "gauge", "");
  CHECK_THROWS_AS(x.family("rf_g", "gauge", ""), std::invalid_argument);
  CHECK_THROWS_AS(x.family("rf_g", "histogram", ""), std::invalid_argument);
  const std::string before = x.text();
  CHECK_THROWS_AS(x.sample({{"__reserved", "x"}}, 1), std::invalid_argument);
  CHECK_THROWS_AS(x.sample({{"bad-name", "x"}}, 1), std::invalid_argument);
  CHECK_THROWS_AS(x.sample({{"1abc", "x"}}, 1), std::invalid_argument);
  CHECK_THROWS_AS(x.sample({{"", "x"}}, 1), std::invalid_argument);
  CHECK_THROWS_AS(x.sample({{"a", "1"}, {"a", "2"}}, 1), std::invalid_argument);
  CHECK_THROWS_AS(x.histogram_sample({}, histogram().snapshot()), std::invalid_argument);  // a gauge family
  CHECK(x.text() == before);
  CHECK_NOTHROW(x.sample({{"_ok", "x"}, {"le", "is fine outside histograms"}}, 1));

  x.family("rf_h", "histogram", "");
  CHECK_THROWS_AS(x.sample({}, 1), std::invalid_argument);
  CHECK_THROWS_AS(x.family("rf_h_count", "gauge", ""), std::invalid_argument);  // a histogram's own series
  CHECK_THROWS_AS(x.family("rf_h_bucket", "gauge", ""), std::invalid_argument);
  x.family("rf_m_sum", "gauge", "");
  CHECK_THROWS_AS(x.family("rf_m", "histogram", ""), std::invalid_argument);  // would shadow rf_m_sum
  x.family("rf_h2", "histogram", "");
  const std::string before_h = x.text();
  CHECK_THROWS_AS(x.histogram_sample({{"le", "1"}}, histogram().snapshot()), std::invalid_argument);
  CHECK_THROWS_AS(x.histogram_sample({{"bad name", "1"}}, histogram().snapshot()), std::invalid_argument);
  histogram_snapshot s = histogram({1.0, 2.0}).snapshot();
  s.counts.pop_back();
  CHECK_THROWS_AS(x.histogram_sample({}, s), std::invalid_argument);  // counts must be bounds + 1
  s = histogram({1.0, 2.0}).snapshot();
  s.count = 1;
  CHECK_THROWS_AS(x.histogram_sample({}, s), std::invalid_argument);  // count != sum of the buckets
  s = histogram({1.0, 2.0}).snapshot();
  s.bounds = {2.0, 1.0};
  CHECK_THROWS_AS(x.histogram_sample({}, s), std::invalid_argument);
  CHECK(x.text() == before_h);
  CHECK_NOTHROW(parse_prometheus(x.text()));

  CHECK_THROWS_AS(histogram({1.0, 0.5}), std::invalid_argument);
  CHECK_THROWS_AS(histogram({1.0, 1.0}), std::invalid_argument);
  CHECK_THROWS_AS(histogram({1.0, HUGE_VAL}), std::invalid_argument);
  CHECK_THROWS_AS(histogram({NAN}), std::invalid_argument);
  CHECK_THROWS_AS(histogram(std::vector<double>{}), std::invalid_argument);
  CHECK(std::string(exposition_content_type) == "text/plain; version=0.0.4; charset=utf-8");
}

TEST_CASE("the strict parser rejects malformed expositions, naming the line", "[prometheus]") {
  const std::string g = "# TYPE rf_a gauge\n";
  SECTION("a sample before its family's TYPE") {
    check_rejected("rf_a 1\n# TYPE rf_a gauge\n", 1);
    check_rejected("# HELP rf_a help\nrf_a 1\n# TYPE rf_a gauge\n", 2);
  }
  SECTION("a sample not named like its family") {
    check_rejected(g + "rf_b 1\n", 2);
    check_rejected(g + "rf_a_count 1\n", 2);  // suffixes only for histograms
    check_rejected("# TYPE rf_h histogram\nrf_h 1\n", 2);
    check_rejected("# TYPE rf_h histogram\nrf_h_total 1\n", 2);
    check_rejected(g + "# TYPE rf_b gauge\nrf_a 2\n", 3);  // rf_a's lines are not contiguous
  }
  SECTION("TYPE or HELP after the family's samples") {
    check_rejected(g + "rf_a 1\n# TYPE rf_a gauge\n", 3);
    check_rejected(g + "rf_a 1\n# HELP rf_a late\n", 3);
  }
  SECTION("a duplicate family") {
    check_rejected(g + "# TYPE rf_a gauge\n", 2);
    check_rejected(g + "# TYPE rf_b gauge\n# TYPE rf_a gauge\n", 3);
    check_rejected("# HELP rf_a x\n# HELP rf_a y\n" + g, 2);
    check_rejected(g + "rf_a{x=\"1\"} 1\nrf_a{x=\"1\"} 2\n", 3);  // the same series twice
  }
  SECTION("an unknown type or a bad metric name") {
    check_rejected("# TYPE rf_a gauges\n", 1);
    check_rejected("# TYPE 1rf gauge\n", 1);
    check_rejected("# HELP rf_a only help\n", 1);  // no TYPE at all
  }
  SECTION("malformed label syntax or escapes") {
    check_rejected(g + "rf_a{x=\"1} 1\n", 2);            // unterminated value
    check_rejected(g + "rf_a{x=1} 1\n", 2);              // unquoted value
    check_rejected(g + "rf_a{x=\"\\q\"} 1\n", 2);        // bad escape
    check_rejected(g + "rf_a{x=\"a\\\"} 1\n", 2);        // the escaped quote leaves it unterminated
    check_rejected(g + "rf_a{x=\"1\" y=\"2\"} 1\n", 2);  // no comma
    check_rejected(g + "rf_a{x=\"1\",x=\"2\"} 1\n", 2);  // a label twice
    check_rejected(g + "rf_a{1x=\"1\"} 1\n", 2);
    check_rejected(g + "rf_a{__x=\"1\"} 1\n", 2);
    check_rejected(g + "rf_a{x=\"1\"\n", 2);
    check_rejected(g + "rf_a{,} 1\n", 2);
    check_rejected("# HELP rf_a bad \\t escape\n" + g, 1);
  }
  SECTION("a value or timestamp that is not a number") {
    for (const char* v : {"abc", "", "1x", "0x10", "inf", "nan", "1e", "--1", "1 2.5", "1 ", "1e999"})
      check_rejected(g + "rf_a " + v + "\n", 2);
    check_rejected(g + "rf_a  1\n", 2);  // two spaces
    check_rejected(g + "rf_a\n", 2);
  }
  SECTION("a counter not ending in _total") { check_rejected("# TYPE rf_c counter\nrf_c 1\n", 1); }
  SECTION("a histogram label set without a +Inf bucket") {
    check_rejected("# TYPE rf_h histogram\nrf_h_bucket{le=\"1\"} 1\nrf_h_sum 1\nrf_h_count 1\n", 4);
    check_rejected(
        "# TYPE rf_h histogram\nrf_h_bucket{a=\"x\",le=\"+Inf\"} 1\nrf_h_sum{a=\"x\"} 1\n"
        "rf_h_count{a=\"x\"} 1\nrf_h_sum{a=\"y\"} 0\nrf_h_count{a=\"y\"} 0\n",
        6);                                                       // a="y" has no buckets at all
    check_rejected("# TYPE rf_h histogram\nrf_h_bucket 1\n", 2);  // a bucket without le
    check_rejected("# TYPE rf_h histogram\nrf_h_bucket{le=\"x\"} 1\n", 2);
  }
  SECTION("buckets not cumulative or out of le order") {
    check_rejected(
        "# TYPE rf_h histogram\nrf_h_bucket{le=\"1\"} 2\nrf_h_bucket{le=\"+Inf\"} 1\nrf_h_sum 1\n"
        "rf_h_count 1\n",
        3);
    check_rejected(
        "# TYPE rf_h histogram\nrf_h_bucket{le=\"2\"} 0\nrf_h_bucket{le=\"1\"} 0\n"
        "rf_h_bucket{le=\"+Inf\"} 0\nrf_h_sum 0\nrf_h_count 0\n",
        3);
    check_rejected(
        "# TYPE rf_h histogram\nrf_h_bucket{le=\"1\"} 0\nrf_h_bucket{le=\"1.0\"} 0\n"
        "rf_h_bucket{le=\"+Inf\"} 0\nrf_h_sum 0\nrf_h_count 0\n",
        3);
  }
  SECTION("the +Inf bucket differs from _count, or _count or _sum is missing") {
    check_rejected("# TYPE rf_h histogram\nrf_h_bucket{le=\"+Inf\"} 2\nrf_h_sum 1\nrf_h_count 1\n", 4);
    check_rejected("# TYPE rf_h histogram\nrf_h_bucket{le=\"+Inf\"} 2\nrf_h_sum 1\n", 3);
    check_rejected("# TYPE rf_h histogram\nrf_h_bucket{le=\"+Inf\"} 2\nrf_h_count 2\n", 3);
    check_rejected("# TYPE rf_h histogram\nrf_h_bucket{le=\"+Inf\"} 1\nrf_h_sum{le=\"1\"} 1\nrf_h_count 1\n", 3);
  }
  SECTION("a missing trailing newline") {
    check_rejected(g + "rf_a 1", 2);
    check_rejected("# TYPE rf_a gauge", 1);
  }
  SECTION("while accepting what the grammar allows") {
    const auto f = parse_prometheus("# a comment\n\n# HELP rf_a x\n" + g +
                                    "rf_a{x=\"1\",} 1.5e3 1700000000000\nrf_a{} -Inf\nrf_a{y=\"\"} NaN\n" +
                                    "# TYPE rf_h histogram\nrf_h_bucket{le=\"+Inf\"} 0\nrf_h_sum 0\nrf_h_count 0\n");
    REQUIRE(f.at("rf_a").samples.size() == 3);
    CHECK(f.at("rf_a").samples[0].value == 1500);
    CHECK(std::isinf(f.at("rf_a").samples[1].value));
    CHECK(std::isnan(f.at("rf_a").samples[2].value));
    CHECK(parse_prometheus("").empty());
  }
}

TEST_CASE("histogram places values in inclusive buckets and keeps sum and count", "[prometheus]") {
  histogram h({1e-3, 2e-3, 5e-3});
  h.observe(1e-3);      // equal to a bound: that bound's bucket
  h.observe(1.5e-3);    // 2 ms
  h.observe(2e-3);      // 2 ms
  h.observe(5e-3);      // 5 ms
  h.observe(5.001e-3);  // above every bound
  h.observe(0);         // first bucket
  h.observe(-1);        // a negative (clock hiccup) counts as 0
  h.observe(NAN);       // so does NaN
  const histogram_snapshot s = h.snapshot();
  CHECK(s.bounds == std::vector<double>{1e-3, 2e-3, 5e-3});
  CHECK(s.counts == std::vector<std::uint64_t>{4, 2, 1, 1});  // per bucket, not cumulative
  CHECK(s.count == 8);
  CHECK(s.sum == Approx(1e-3 + 1.5e-3 + 2e-3 + 5e-3 + 5.001e-3).epsilon(1e-9));
  CHECK(histogram().snapshot().bounds == default_latency_buckets());
  CHECK(default_latency_buckets().size() == 19);
  CHECK(default_latency_buckets().front() == 10e-6);
  CHECK(default_latency_buckets().back() == 10.0);
}

TEST_CASE("latency_recorder quantiles are within 1/64 above the truth", "[prometheus]") {
  latency_recorder r;
  CHECK(r.quantile_us(0.5) == 0);
  CHECK(r.count() == 0);
  CHECK(r.max_ns() == 0);
  for (std::uint64_t us = 1; us <= 100000; ++us) r.record(us * 1000);  // 1 .. 100000 us, uniform
  CHECK(r.count() == 100000);
  for (double q : {0.001, 0.25, 0.5, 0.9, 0.99, 0.999}) {
    const double truth = std::ceil(q * 100000);  // the ceil(q * n)-th smallest, in us
    INFO(q);
    CHECK(r.quantile_us(q) >= truth);
    CHECK(r.quantile_us(q) <= truth * (1 + 1.0 / 64));
  }
  CHECK(r.quantile_us(0.5) == Approx(50000).epsilon(1.0 / 64));
  CHECK(r.quantile_us(0.99) == Approx(99000).epsilon(1.0 / 64));
  CHECK(r.quantile_us(0.0) == Approx(1).epsilon(1.0 / 64));  // the smallest value
  CHECK(r.quantile_us(1.0) == 100000);                       // capped at the exact max
  CHECK(r.quantile_us(2.0) == 100000);                       // q is clamped
  CHECK(r.max_ns() == 100000000);

  latency_recorder small;  // exact below 64 ns
  for (std::uint64_t ns = 0; ns < 64; ++ns) small.record(ns);
  CHECK(small.quantile_us(0.5) == Approx(0.031));
  CHECK(small.quantile_us(1.0) == Approx(0.063));

  latency_recorder two;  // a bimodal distribution: 99 % at 20 us, 1 % at 5 ms
  for (int i = 0; i < 9900; ++i) two.record(20000);
  for (int i = 0; i < 100; ++i) two.record(5000000);
  CHECK(two.quantile_us(0.5) >= 20);
  CHECK(two.quantile_us(0.5) <= 20 * (1 + 1.0 / 64));
  CHECK(two.quantile_us(0.99) <= 20 * (1 + 1.0 / 64));
  CHECK(two.quantile_us(0.999) == 5000);

  latency_recorder huge;  // past 2^40 ns everything shares the last bucket: its quantile is the exact max
  huge.record(std::uint64_t{1} << 50);
  CHECK(huge.quantile_us(0.5) == static_cast<double>(std::uint64_t{1} << 50) / 1000.0);
}

TEST_CASE("histogram and latency_recorder count every observation under contention", "[prometheus][tsan]") {
  histogram h;
  latency_recorder r;
  constexpr int threads = 4, per_thread = 200000;
  std::vector<std::uint64_t> done(threads, 0);  // each thread's own count, read after join
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t)
    ts.emplace_back([&, t] {
      for (int i = 0; i < per_thread; ++i) {
        h.observe(1e-6 * ((i + t) % 5000));
        r.record(static_cast<std::uint64_t>(i % 100000) * 100);
        ++done[t];
      }
    });
  for (auto& t : ts) t.join();
  std::uint64_t expected = 0;
  for (auto d : done) expected += d;
  CHECK(expected == 800000);
  const histogram_snapshot s = h.snapshot();
  CHECK(s.count == expected);
  std::uint64_t sum = 0;
  for (auto c : s.counts) sum += c;
  CHECK(sum == expected);
  // Every observation is a whole number of microseconds: the nanosecond sum is exact.
  std::uint64_t us = 0;
  for (int t = 0; t < threads; ++t)
    for (int i = 0; i < per_thread; ++i) us += static_cast<std::uint64_t>((i + t) % 5000);
  CHECK(s.sum == Approx(static_cast<double>(us) * 1e-6).epsilon(1e-12));
  CHECK(r.count() == expected);
  CHECK(r.max_ns() == 99999 * 100);
}
