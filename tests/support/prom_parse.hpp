// A strict parser of Prometheus text exposition 0.0.4, for tests: it accepts what Prometheus
// accepts from ringflow and throws std::runtime_error("line N: what") at the first violation.
// Checked: every sample belongs to the family whose TYPE came before it (histograms: name_bucket,
// name_sum, name_count); a family's HELP/TYPE appear once and before its samples; label syntax
// and escapes; values are numbers (or NaN, +Inf, -Inf); counters end in _total; each histogram
// label set has cumulative buckets in increasing `le` order ending in le="+Inf" equal to _count,
// and a _sum; the text ends with a newline.
#pragma once

#include <cmath>
#include <cstdlib>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
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

inline bool name_char(char c, bool first) {
  return std::isalpha(static_cast<unsigned char>(c)) || c == '_' || c == ':' ||
         (!first && std::isdigit(static_cast<unsigned char>(c)));
}

inline double parse_value(const std::string& s, const std::string& where) {
  if (s == "NaN") return NAN;
  if (s == "+Inf" || s == "Inf") return INFINITY;
  if (s == "-Inf") return -INFINITY;
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (s.empty() || end != s.c_str() + s.size()) throw std::runtime_error(where + ": value '" + s + "' is not a number");
  return v;
}

}  // namespace detail

inline std::map<std::string, prom_family> parse_prometheus(const std::string& text) {
  std::map<std::string, prom_family> fams;
  std::set<std::string> with_samples;
  if (!text.empty() && text.back() != '\n') throw std::runtime_error("the exposition does not end with a newline");
  std::istringstream in(text);
  std::string line;
  int n = 0;
  auto family_of = [&](const std::string& sample, const std::string& where) -> prom_family& {
    for (const char* suffix : {"", "_bucket", "_sum", "_count"}) {
      const std::string sfx = suffix;
      if (sample.size() <= sfx.size() && !sfx.empty()) continue;
      if (sample.compare(sample.size() - sfx.size(), sfx.size(), sfx) != 0) continue;
      auto it = fams.find(sample.substr(0, sample.size() - sfx.size()));
      if (it == fams.end() || it->second.type.empty()) continue;
      if (!sfx.empty() && it->second.type != "histogram") continue;
      if (sfx.empty() && it->second.type == "histogram") continue;
      return it->second;
    }
    throw std::runtime_error(where + ": sample '" + sample + "' has no TYPE line before it");
  };
  while (std::getline(in, line)) {
    ++n;
    const std::string where = "line " + std::to_string(n);
    if (line.empty()) continue;
    if (line[0] == '#') {
      std::istringstream ls(line);
      std::string hash, kind, name;
      ls >> hash >> kind >> name;
      if (kind != "HELP" && kind != "TYPE") continue;  // a comment
      if (name.empty()) throw std::runtime_error(where + ": " + kind + " without a metric name");
      prom_family& f = fams[name];
      f.name = name;
      if (with_samples.count(name)) throw std::runtime_error(where + ": " + kind + " of '" + name + "' after its samples");
      std::string rest;
      std::getline(ls, rest);
      if (!rest.empty() && rest[0] == ' ') rest.erase(0, 1);
      if (kind == "TYPE") {
        if (!f.type.empty()) throw std::runtime_error(where + ": second TYPE for '" + name + "'");
        if (rest != "counter" && rest != "gauge" && rest != "histogram" && rest != "summary" && rest != "untyped")
          throw std::runtime_error(where + ": unknown type '" + rest + "'");
        if (rest == "counter" && (name.size() < 6 || name.substr(name.size() - 6) != "_total"))
          throw std::runtime_error(where + ": counter '" + name + "' does not end in _total");
        f.type = rest;
      } else {
        if (!f.help.empty()) throw std::runtime_error(where + ": second HELP for '" + name + "'");
        f.help = rest.empty() ? " " : rest;
      }
      continue;
    }
    prom_sample s;
    std::size_t i = 0;
    while (i < line.size() && detail::name_char(line[i], i == 0)) ++i;
    s.name = line.substr(0, i);
    if (s.name.empty()) throw std::runtime_error(where + ": no metric name");
    if (i < line.size() && line[i] == '{') {
      ++i;
      while (i < line.size() && line[i] != '}') {
        std::size_t k = i;
        while (k < line.size() && (std::isalnum(static_cast<unsigned char>(line[k])) || line[k] == '_')) ++k;
        const std::string key = line.substr(i, k - i);
        if (key.empty() || k + 1 >= line.size() || line[k] != '=' || line[k + 1] != '"')
          throw std::runtime_error(where + ": malformed label");
        i = k + 2;
        std::string v;
        for (;;) {
          if (i >= line.size()) throw std::runtime_error(where + ": unterminated label value");
          const char c = line[i++];
          if (c == '"') break;
          if (c == '\\') {
            if (i >= line.size()) throw std::runtime_error(where + ": dangling escape");
            const char e = line[i++];
            if (e == 'n') v += '\n';
            else if (e == '\\' || e == '"') v += e;
            else throw std::runtime_error(where + ": bad escape \\" + std::string(1, e));
          } else if (c == '\n') {
            throw std::runtime_error(where + ": raw newline in a label value");
          } else {
            v += c;
          }
        }
        if (!s.labels.emplace(key, v).second) throw std::runtime_error(where + ": label '" + key + "' twice");
        if (i < line.size() && line[i] == ',') ++i;
        else if (i < line.size() && line[i] != '}') throw std::runtime_error(where + ": expected ',' or '}'");
      }
      if (i >= line.size()) throw std::runtime_error(where + ": unterminated label set");
      ++i;
    }
    if (i >= line.size() || line[i] != ' ') throw std::runtime_error(where + ": expected a space before the value");
    std::string value = line.substr(i + 1);
    const std::size_t sp = value.find(' ');  // an optional timestamp follows
    if (sp != std::string::npos) value = value.substr(0, sp);
    s.value = detail::parse_value(value, where);
    prom_family& f = family_of(s.name, where);
    with_samples.insert(f.name);
    f.samples.push_back(std::move(s));
  }
  // Histograms: per label set (without le), cumulative buckets ending in +Inf == _count, and a _sum.
  for (auto& [name, f] : fams) {
    if (f.type.empty()) throw std::runtime_error("family '" + name + "' has HELP but no TYPE");
    if (f.type != "histogram") continue;
    std::map<std::map<std::string, std::string>, std::vector<std::pair<double, double>>> buckets;
    std::map<std::map<std::string, std::string>, double> counts, sums;
    for (const auto& s : f.samples) {
      auto labels = s.labels;
      if (s.name == name + "_bucket") {
        auto le = labels.find("le");
        if (le == labels.end()) throw std::runtime_error("histogram '" + name + "': a bucket without le");
        const double bound = detail::parse_value(le->second, "histogram '" + name + "' le");
        labels.erase(le);
        buckets[labels].push_back({bound, s.value});
      } else if (s.name == name + "_count") {
        counts[labels] = s.value;
      } else {
        sums[labels] = s.value;
      }
    }
    for (const auto& [labels, b] : buckets) {
      for (std::size_t i = 1; i < b.size(); ++i)
        if (!(b[i].first > b[i - 1].first) || b[i].second < b[i - 1].second)
          throw std::runtime_error("histogram '" + name + "': buckets not in increasing le order or not cumulative");
      if (b.empty() || !std::isinf(b.back().first))
        throw std::runtime_error("histogram '" + name + "': no le=\"+Inf\" bucket");
      if (!counts.count(labels) || counts[labels] != b.back().second)
        throw std::runtime_error("histogram '" + name + "': _count differs from the +Inf bucket");
      if (!sums.count(labels)) throw std::runtime_error("histogram '" + name + "': no _sum");
    }
  }
  return fams;
}

}  // namespace ringflow::testing
