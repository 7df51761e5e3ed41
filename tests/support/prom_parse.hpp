// A strict parser of Prometheus text exposition 0.0.4, for tests: it accepts the format's grammar
// (as written by ringflow: single spaces between tokens) and throws std::runtime_error("line N:
// what") at the first violation, so a test can hand it a /metrics body and trust what it returns.
//
// Checked: the text ends with a newline; `# HELP`/`# TYPE` name a valid metric, appear at most once
// each, before the family's samples, and a family's lines are contiguous (a family seen again later
// is a duplicate); the type is counter, gauge, histogram, summary or untyped and a counter's name
// ends in _total; every sample follows its family's TYPE and is named like the family (histograms:
// name_bucket with an `le`, name_sum, name_count); label names are valid and not reserved (`__`),
// given once, values quoted with only \\, \" and \n escapes; values are decimal numbers, NaN, +Inf,
// -Inf (or Inf), an optional timestamp an integer; no series appears twice; each histogram label set
// has buckets in strictly increasing `le` order, cumulative (non-decreasing), ending in le="+Inf"
// equal to its _count, and a _sum. Returned: HELP text and label values unescaped; families by name.
#pragma once

#include <charconv>
#include <cmath>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ringflow::testing {

struct prom_sample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};

struct prom_family {
  std::string name, type, help;
  std::vector<prom_sample> samples;
};

namespace detail {

inline bool alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
inline bool digit(char c) { return c >= '0' && c <= '9'; }

inline bool metric_name_ok(std::string_view n) {
  if (n.empty() || !(alpha(n[0]) || n[0] == '_' || n[0] == ':')) return false;
  for (char c : n)
    if (!(alpha(c) || digit(c) || c == '_' || c == ':')) return false;
  return true;
}

inline bool ends_with(std::string_view s, std::string_view sfx) {
  return s.size() >= sfx.size() && s.substr(s.size() - sfx.size()) == sfx;
}

[[noreturn]] inline void fail(int line, const std::string& what) {
  throw std::runtime_error("line " + std::to_string(line) + ": " + what);
}

// [+-]? (digits [. digits*] | . digits) ([eE] [+-]? digits)?, or NaN, +Inf, -Inf, Inf. Parsed with
// from_chars, not strtod: locale-independent, and no hex or lower-case inf/nan slip through.
inline double parse_number(std::string_view s, int line, const char* what) {
  if (s == "NaN") return NAN;
  if (s == "+Inf" || s == "Inf") return INFINITY;
  if (s == "-Inf") return -INFINITY;
  auto bad = [&]() -> double { fail(line, std::string(what) + " '" + std::string(s) + "' is not a number"); };
  std::size_t i = 0;
  const bool negative = !s.empty() && s[0] == '-';
  if (!s.empty() && (s[0] == '+' || s[0] == '-')) ++i;
  const std::size_t mantissa = i;
  std::size_t digits = 0;
  while (i < s.size() && digit(s[i])) ++i, ++digits;
  if (i < s.size() && s[i] == '.') {
    ++i;
    while (i < s.size() && digit(s[i])) ++i, ++digits;
  }
  if (digits == 0) return bad();
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
    const std::size_t exp = i;
    while (i < s.size() && digit(s[i])) ++i;
    if (i == exp) return bad();
  }
  if (i != s.size()) return bad();
  double v = 0;
  const auto r = std::from_chars(s.data() + mantissa, s.data() + s.size(), v);
  if (r.ec != std::errc{} || r.ptr != s.data() + s.size()) return bad();  // out of range included
  return negative ? -v : v;
}

// `s` starts after `name` on a sample line: `{labels}`? ` value` (` timestamp`)?
inline void parse_sample_rest(std::string_view s, int line, prom_sample& out) {
  std::size_t i = 0;
  if (i < s.size() && s[i] == '{') {
    ++i;
    while (i < s.size() && s[i] != '}') {
      const std::size_t k0 = i;
      if (!(alpha(s[i]) || s[i] == '_')) fail(line, "malformed label name");
      while (i < s.size() && (alpha(s[i]) || digit(s[i]) || s[i] == '_')) ++i;
      const std::string key(s.substr(k0, i - k0));
      if (key.size() >= 2 && key[0] == '_' && key[1] == '_') fail(line, "reserved label name '" + key + "'");
      if (i + 1 >= s.size() || s[i] != '=' || s[i + 1] != '"')
        fail(line, "malformed label '" + key + "': expected =\"");
      i += 2;
      std::string v;
      for (;;) {
        if (i >= s.size()) fail(line, "unterminated value of label '" + key + "'");
        const char c = s[i++];
        if (c == '"') break;
        if (c != '\\') {
          v += c;
          continue;
        }
        if (i >= s.size()) fail(line, "dangling escape in label '" + key + "'");
        const char e = s[i++];
        if (e == 'n') v += '\n';
        else if (e == '\\' || e == '"') v += e;
        else fail(line, std::string("bad escape \\") + e + " in label '" + key + "'");
      }
      if (!out.labels.emplace(key, std::move(v)).second) fail(line, "label '" + key + "' given twice");
      if (i < s.size() && s[i] == ',') ++i;  // the grammar allows a trailing comma
      else if (i >= s.size() || s[i] != '}') fail(line, "expected ',' or '}' after label '" + key + "'");
    }
    if (i >= s.size()) fail(line, "unterminated label set");
    ++i;
  }
  if (i >= s.size() || s[i] != ' ') fail(line, "expected one space before the value");
  std::string_view rest = s.substr(i + 1);
  const std::size_t sp = rest.find(' ');
  out.value = parse_number(rest.substr(0, sp), line, "value");
  if (sp != std::string_view::npos) {
    std::string_view ts = rest.substr(sp + 1);
    if (!ts.empty() && ts[0] == '-') ts.remove_prefix(1);
    if (ts.empty()) fail(line, "empty timestamp");
    for (char c : ts)
      if (!digit(c)) fail(line, "timestamp '" + std::string(rest.substr(sp + 1)) + "' is not an integer");
  }
}

// HELP text: only \\ and \n are escapes.
inline std::string unescape_help(std::string_view s, int line) {
  std::string o;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '\\') {
      o += s[i];
      continue;
    }
    if (++i >= s.size()) fail(line, "dangling escape in HELP");
    if (s[i] == 'n') o += '\n';
    else if (s[i] == '\\') o += '\\';
    else fail(line, std::string("bad escape \\") + s[i] + " in HELP");
  }
  return o;
}

}  // namespace detail

inline std::map<std::string, prom_family> parse_prometheus(const std::string& text) {
  using detail::fail;
  std::map<std::string, prom_family> fams;
  std::map<std::string, int> first_line;          // where a family was opened (HELP or TYPE)
  std::map<std::string, std::vector<int>> lines;  // per family, the line of each sample
  std::set<std::string> helped;
  std::set<std::pair<std::string, std::map<std::string, std::string>>> series;
  std::string current;  // the family whose lines we are in; its lines must be contiguous

  int n = 0;
  std::size_t pos = 0;
  while (pos < text.size()) {
    const std::size_t eol = text.find('\n', pos);
    ++n;
    if (eol == std::string::npos) fail(n, "the exposition does not end with a newline");
    const std::string_view line(text.data() + pos, eol - pos);
    pos = eol + 1;
    if (line.empty()) continue;

    if (line[0] == '#') {
      const bool help = line.substr(0, 7) == "# HELP ", type = line.substr(0, 7) == "# TYPE ";
      if (!help && !type) continue;  // a comment
      const char* kind = help ? "HELP" : "TYPE";
      std::string_view rest = line.substr(7);
      const std::size_t sp = rest.find(' ');
      const std::string name(rest.substr(0, sp));
      rest = sp == std::string_view::npos ? std::string_view{} : rest.substr(sp + 1);
      if (!detail::metric_name_ok(name)) fail(n, std::string(kind) + " with invalid metric name '" + name + "'");
      if (name != current) {
        if (fams.count(name)) fail(n, "family '" + name + "' appears twice (its lines must be contiguous)");
        current = name;
        fams[name].name = name;
        first_line[name] = n;
      }
      prom_family& f = fams[name];
      if (!f.samples.empty()) fail(n, std::string(kind) + " of '" + name + "' after its samples");
      if (help) {
        if (!helped.insert(name).second) fail(n, "second HELP for '" + name + "'");
        f.help = detail::unescape_help(rest, n);
      } else {
        if (!f.type.empty()) fail(n, "second TYPE for '" + name + "'");
        if (rest != "counter" && rest != "gauge" && rest != "histogram" && rest != "summary" && rest != "untyped")
          fail(n, "unknown type '" + std::string(rest) + "'");
        if (rest == "counter" && !detail::ends_with(name, "_total"))
          fail(n, "counter '" + name + "' does not end in _total");
        f.type = rest;
      }
      continue;
    }

    prom_sample s;
    std::size_t i = 0;
    while (i < line.size() &&
           (detail::alpha(line[i]) || line[i] == '_' || line[i] == ':' || (i > 0 && detail::digit(line[i]))))
      ++i;
    s.name = line.substr(0, i);
    if (s.name.empty()) fail(n, "no metric name");
    detail::parse_sample_rest(line.substr(i), n, s);

    if (current.empty() || fams.at(current).type.empty()) fail(n, "sample '" + s.name + "' before its family's TYPE");
    prom_family& f = fams.at(current);
    if (f.type == "histogram") {
      const bool bucket = s.name == current + "_bucket";
      if (!bucket && s.name != current + "_sum" && s.name != current + "_count")
        fail(n, "sample '" + s.name + "' is not a series of histogram '" + current + "'");
      if (bucket != (s.labels.count("le") == 1))
        fail(n, bucket ? "histogram bucket without le" : "le on a histogram's _sum or _count");
    } else if (f.type == "summary") {
      if (s.name != current && s.name != current + "_sum" && s.name != current + "_count")
        fail(n, "sample '" + s.name + "' is not a series of summary '" + current + "'");
    } else if (s.name != current) {
      fail(n, "sample '" + s.name + "' is not named like its family '" + current + "'");
    }
    if (!series.emplace(s.name, s.labels).second) fail(n, "series '" + s.name + "' with these labels appears twice");
    lines[current].push_back(n);
    f.samples.push_back(std::move(s));
  }

  for (const auto& [name, f] : fams) {
    if (f.type.empty()) fail(first_line.at(name), "family '" + name + "' has HELP but no TYPE");
    if (f.type != "histogram") continue;
    // Per label set (without le): the buckets in order of appearance, _count, _sum.
    struct per_set {
      std::vector<std::pair<double, double>> buckets;  // le, cumulative count
      const double* count = nullptr;
      bool sum = false;
      int line = 0;  // the set's last sample, where its errors are reported
    };
    std::map<std::map<std::string, std::string>, per_set> sets;
    for (std::size_t k = 0; k < f.samples.size(); ++k) {
      const prom_sample& s = f.samples[k];
      const int at = lines.at(name)[k];
      auto labels = s.labels;
      double le = 0;
      if (auto it = labels.find("le"); it != labels.end()) {
        le = detail::parse_number(it->second, at, "le");
        labels.erase(it);
      }
      per_set& p = sets[labels];
      p.line = at;
      if (s.name == name + "_bucket") {
        if (!p.buckets.empty() && !(le > p.buckets.back().first))
          fail(at, "histogram '" + name + "': buckets not in increasing le order");
        if (!p.buckets.empty() && s.value < p.buckets.back().second)
          fail(at, "histogram '" + name + "': buckets not cumulative");
        p.buckets.emplace_back(le, s.value);
      } else if (s.name == name + "_count") {
        p.count = &s.value;
      } else {
        p.sum = true;
      }
    }
    for (const auto& [labels, p] : sets) {
      if (p.buckets.empty() || p.buckets.back().first != INFINITY)
        fail(p.line, "histogram '" + name + "': a label set without a le=\"+Inf\" bucket");
      if (!p.count) fail(p.line, "histogram '" + name + "': a label set without _count");
      if (*p.count != p.buckets.back().second)
        fail(p.line, "histogram '" + name + "': _count differs from the le=\"+Inf\" bucket");
      if (!p.sum) fail(p.line, "histogram '" + name + "': a label set without _sum");
    }
  }
  return fams;
}

}  // namespace ringflow::testing
