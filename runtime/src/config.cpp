// Program config: see ringflow/runtime/config.hpp.
#include "ringflow/runtime/config.hpp"

#include "ringflow/runtime/topology.hpp"
#include "ringflow/runtime/utf8.hpp"

#include <unistd.h>  // environ

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>
#include <type_traits>
#include <variant>

namespace ringflow::ops {

std::string config_error::str() const { return valid_utf8(where.empty() ? what : where + ": " + what); }

namespace {

// ---------------------------------------------------------------------------------------------
// The key table: one row per key. Everything else (YAML, env, flags, to_json, diff, validate,
// reload) walks it, so a key exists in all of them or in none.

enum class kind { integer, number, choice, listen, string, cpus };
const char* kind_name(kind k) {
  switch (k) {
    case kind::integer: return "integer";
    case kind::number: return "number";
    case kind::choice: return "choice";
    case kind::listen: return "listen";
    case kind::string: return "string";
    case kind::cpus: return "cpus";
  }
  return "?";
}

using value = std::variant<std::int64_t, double, std::string>;

struct key_def {
  std::string_view section;
  std::string_view key;
  kind type = kind::string;
  std::int64_t int_lo = 0, int_hi = 0;  // integer: inclusive range
  double num_lo = 0, num_hi = 0;        // number: inclusive range (num_hi may be +inf)
  std::string_view choices;             // choice: "a|b|c"
  bool reloadable = false;
  std::string_view help;
  value (*get)(const program_config&) = nullptr;
  void (*put)(program_config&, const value&) = nullptr;

  std::string dotted() const { return std::string(section) + "." + std::string(key); }
};

// Accessors for a field `(cfg.*S).*M`, instantiated per row so the table holds plain function
// pointers (no per-key hand-written code).
template <auto S, auto M>
using field_t = std::remove_cvref_t<decltype(std::declval<program_config&>().*S.*M)>;

template <auto S, auto M>
value get_field(const program_config& c) {
  return value{(c.*S).*M};
}
template <auto S, auto M>
void put_field(program_config& c, const value& v) {
  (c.*S).*M = std::get<field_t<S, M>>(v);
}

template <auto S, auto M>
key_def row(std::string_view section, std::string_view key, kind type, bool reloadable, std::string_view help) {
  key_def d;
  d.section = section;
  d.key = key;
  d.type = type;
  d.reloadable = reloadable;
  d.help = help;
  d.get = &get_field<S, M>;
  d.put = &put_field<S, M>;
  return d;
}

template <auto S, auto M>
key_def integer(std::string_view section, std::string_view key, std::int64_t lo, std::int64_t hi, bool reloadable,
                std::string_view help) {
  static_assert(std::is_same_v<field_t<S, M>, std::int64_t>);
  key_def d = row<S, M>(section, key, kind::integer, reloadable, help);
  d.int_lo = lo;
  d.int_hi = hi;
  return d;
}
template <auto S, auto M>
key_def number(std::string_view section, std::string_view key, double lo, double hi, bool reloadable,
               std::string_view help) {
  static_assert(std::is_same_v<field_t<S, M>, double>);
  key_def d = row<S, M>(section, key, kind::number, reloadable, help);
  d.num_lo = lo;
  d.num_hi = hi;
  return d;
}
template <auto S, auto M>
key_def choice(std::string_view section, std::string_view key, std::string_view choices, bool reloadable,
               std::string_view help) {
  static_assert(std::is_same_v<field_t<S, M>, std::string>);
  key_def d = row<S, M>(section, key, kind::choice, reloadable, help);
  d.choices = choices;
  return d;
}
template <auto S, auto M>
key_def text(std::string_view section, std::string_view key, kind type, bool reloadable, std::string_view help) {
  static_assert(std::is_same_v<field_t<S, M>, std::string>);
  return row<S, M>(section, key, type, reloadable, help);
}

using pc = program_config;
constexpr bool reload = true;
constexpr bool restart = false;
// Upper bounds keep products (cool-down x backoff, back-off doubling) far from overflow; a day
// is longer than any sensible timeout.
constexpr std::int64_t day_ms = 86'400'000;
constexpr std::int64_t day_us = day_ms * 1000;
constexpr std::int64_t million = 1'000'000;

static_assert(program_config::limits_section{}.max_nodes == topology_limits::default_max_nodes);
static_assert(program_config::limits_section{}.max_edges == topology_limits::default_max_edges);
static_assert(program_config::limits_section{}.max_supervisor_depth == topology_limits::default_max_supervisor_depth);

const std::vector<key_def>& table() {
  static const std::vector<key_def> t = {
      text<&pc::http, &pc::http_section::listen>("http", "listen", kind::listen, restart,
                                                 "HTTP endpoints (/metrics, /health/*, /topology): HOST:PORT or off"),
      integer<&pc::http, &pc::http_section::max_connections>(
          "http", "max_connections", 1, 65536, restart,
          "open HTTP connections; at the limit the one idle or reading longest is evicted"),
      integer<&pc::http, &pc::http_section::max_connections_per_peer>(
          "http", "max_connections_per_peer", 1, 65536, restart,
          "open HTTP connections from one peer address; the next one gets 429"),
      integer<&pc::http, &pc::http_section::header_timeout_ms>(
          "http", "header_timeout_ms", 1, day_ms, restart,
          "a request's whole header must arrive within this, from its first byte (else 408)"),
      integer<&pc::http, &pc::http_section::idle_timeout_ms>(
          "http", "idle_timeout_ms", 1, day_ms, restart,
          "an idle keep-alive connection, or a client taking none of its answer, is closed after this"),
      integer<&pc::http, &pc::http_section::max_header_bytes>("http", "max_header_bytes", 256, 1 << 20, restart,
                                                              "request line + header fields (else 431)"),
      choice<&pc::log, &pc::log_section::level>("log", "level", "trace|debug|info|warn|error|off", reload,
                                                "least severe record logged"),
      choice<&pc::log, &pc::log_section::format>("log", "format", "json|text", restart,
                                                 "json: one object per line; text: human-readable"),
      text<&pc::log, &pc::log_section::file>("log", "file", kind::string, restart, "log file; empty = stderr"),
      integer<&pc::runtime, &pc::runtime_section::scheduler_threads>("runtime", "scheduler_threads", 1, 64, restart,
                                                                     "actor scheduler worker threads"),
      choice<&pc::runtime, &pc::runtime_section::wait>(
          "runtime", "wait", "park|adaptive|spin", restart,
          "how idle threads wait: park (never spin), adaptive (spin only on spare cores), spin (dedicated cores)"),
      text<&pc::runtime, &pc::runtime_section::cpus_scheduler>("runtime", "cpus.scheduler", kind::cpus, restart,
                                                               "CPUs of the actor scheduler's threads (rf-caf-<n>)"),
      text<&pc::runtime, &pc::runtime_section::cpus_poller>("runtime", "cpus.poller", kind::cpus, restart,
                                                            "CPUs of the completion poller thread (rf-poll)"),
      integer<&pc::runtime, &pc::runtime_section::kernel_threads>(
          "runtime", "kernel_threads", -1, 1024, restart,
          "CPU kernel threads shared by the ring actors: -1 = one per allowed CPU, 0 = a thread per ring actor"),
      integer<&pc::runtime, &pc::runtime_section::shutdown_timeout_ms>("runtime", "shutdown_timeout_ms", 1, day_ms,
                                                                       restart, "bound of the whole graceful shutdown"),
      integer<&pc::runtime, &pc::runtime_section::drain_timeout_ms>("runtime", "drain_timeout_ms", 1, day_ms, restart,
                                                                    "bound of draining in-flight messages at shutdown"),
      integer<&pc::breaker, &pc::breaker_section::failure_threshold>("breaker", "failure_threshold", 1, million, reload,
                                                                     "failures within window_ms that open it"),
      integer<&pc::breaker, &pc::breaker_section::window_ms>("breaker", "window_ms", 1, day_ms, reload,
                                                             "sliding window of counted failures"),
      integer<&pc::breaker, &pc::breaker_section::cooldown_ms>("breaker", "cooldown_ms", 1, day_ms, reload,
                                                               "open time before the first probe"),
      integer<&pc::breaker, &pc::breaker_section::cooldown_max_ms>("breaker", "cooldown_max_ms", 1, day_ms, reload,
                                                                   "cap of the growing cool-down (>= cooldown_ms)"),
      number<&pc::breaker, &pc::breaker_section::backoff>("breaker", "backoff", 1.0, 100.0, reload,
                                                          "cool-down multiplier after a failed probe"),
      integer<&pc::ladder, &pc::ladder_section::hang_timeout_ms>("ladder", "hang_timeout_ms", 1, day_ms, restart,
                                                                 "no heartbeat this long with work waiting = hang"),
      integer<&pc::ladder, &pc::ladder_section::restarts_before_reinit>(
          "ladder", "restarts_before_reinit", 1, million, restart, "transient faults within the window before reinit"),
      integer<&pc::ladder, &pc::ladder_section::restart_window_ms>("ladder", "restart_window_ms", 1, day_ms, restart,
                                                                   "window of restarts_before_reinit"),
      integer<&pc::ladder, &pc::ladder_section::probe_window_ms>("ladder", "probe_window_ms", 1, day_ms, restart,
                                                                 "a fail-back probe must stay healthy this long"),
      integer<&pc::ladder, &pc::ladder_section::backoff_initial_us>("ladder", "backoff_initial_us", 1, day_us, restart,
                                                                    "delay before the second restart in a row"),
      integer<&pc::ladder, &pc::ladder_section::backoff_max_ms>("ladder", "backoff_max_ms", 1, day_ms, restart,
                                                                "cap of the restart back-off"),
      integer<&pc::ladder, &pc::ladder_section::stop_timeout_ms>("ladder", "stop_timeout_ms", 1, day_ms, restart,
                                                                 "drain of a healthy kernel moved by the ladder"),
      number<&pc::limits, &pc::limits_section::ingress_rate_per_s>(
          "limits", "ingress_rate_per_s", 0.0, 1e9, reload, "messages/s admitted: 0 = no limit, else 0.001 .. 1e9"),
      integer<&pc::limits, &pc::limits_section::node_window>("limits", "node_window", 1, 1'048'576, restart,
                                                             "messages a topology node admits at once"),
      integer<&pc::limits, &pc::limits_section::max_payload_bytes>("limits", "max_payload_bytes", 64, 1LL << 30, reload,
                                                                   "largest payload admitted"),
      integer<&pc::limits, &pc::limits_section::max_nodes>("limits", "max_nodes", 1, 10'000'000, restart,
                                                           "nodes (and supervisors) a topology file may hold"),
      integer<&pc::limits, &pc::limits_section::max_edges>("limits", "max_edges", 1, 100'000'000, restart,
                                                           "edges a topology file may hold"),
      integer<&pc::limits, &pc::limits_section::max_supervisor_depth>(
          "limits", "max_supervisor_depth", 1, 1024, restart, "supervisors nested under one another (root excluded)"),
      text<&pc::trace, &pc::trace_section::file>("trace", "file", kind::string, restart,
                                                 "trace file (JSON lines); empty = no tracing"),
      number<&pc::trace, &pc::trace_section::sample_ratio>("trace", "sample_ratio", 0.0, 1.0, reload,
                                                           "fraction of messages traced"),
      integer<&pc::workers, &pc::workers_section::heartbeat_timeout_ms>(
          "workers", "heartbeat_timeout_ms", 30, day_ms, restart,
          "kernel-host worker silent this long = dead (killed, restarted)"),
      integer<&pc::workers, &pc::workers_section::start_timeout_ms>("workers", "start_timeout_ms", 1, day_ms, restart,
                                                                    "kernel-host worker start -> kernel running"),
      choice<&pc::workers, &pc::workers_section::standby>("workers", "standby", "on|off", restart,
                                                          "keep a pre-started standby worker per ring actor"),
  };
  return t;
}

const key_def* find_key(std::string_view section, std::string_view key) {
  for (const auto& d : table())
    if (d.section == section && d.key == key) return &d;
  return nullptr;
}

const key_def* find_dotted(std::string_view dotted) {
  const auto dot = dotted.find('.');
  if (dot == std::string_view::npos) return nullptr;
  return find_key(dotted.substr(0, dot), dotted.substr(dot + 1));
}

std::vector<std::string_view> sections() {
  std::vector<std::string_view> out;
  for (const auto& d : table())
    if (std::find(out.begin(), out.end(), d.section) == out.end()) out.push_back(d.section);
  return out;
}

bool known_section(std::string_view s) {
  const auto all = sections();
  return std::find(all.begin(), all.end(), s) != all.end();
}

std::string upper(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

template <class Range, class F>
std::string join(const Range& r, F&& f, const char* sep = ", ") {
  std::string s;
  for (const auto& x : r) s += (s.empty() ? "" : sep) + f(x);
  return s;
}

std::string section_list() {
  return join(sections(), [](std::string_view s) { return std::string(s); });
}

std::string keys_of(std::string_view section, bool env) {
  std::vector<const key_def*> ks;
  for (const auto& d : table())
    if (d.section == section) ks.push_back(&d);
  return join(ks, [&](const key_def* d) { return env ? to_env_name(d->dotted()) : std::string(d->key); });
}

// "unknown key 'x.y'": points at the section's keys when the section exists, else at the sections.
std::string unknown_dotted(const std::string& dotted) {
  const auto dot = dotted.find('.');
  const std::string sec = dot == std::string::npos ? dotted : dotted.substr(0, dot);
  if (dot != std::string::npos && known_section(sec))
    return "unknown key '" + dotted + "' (section '" + sec + "' has: " + keys_of(sec, false) + ")";
  return "unknown key '" + dotted + "': keys are section.key with section one of " + section_list();
}

// ---------------------------------------------------------------------------------------------
// Text form of values (the one form every layer parses).

std::string number_text(double d) {
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, d);
  return std::string(buf, r.ptr);
}

std::string value_text(const value& v) {
  if (const auto* i = std::get_if<std::int64_t>(&v)) return std::to_string(*i);
  if (const auto* d = std::get_if<double>(&v)) return number_text(*d);
  return std::get<std::string>(v);
}

std::string allowed_text(const key_def& d) {
  switch (d.type) {
    case kind::integer: return std::to_string(d.int_lo) + " .. " + std::to_string(d.int_hi);
    case kind::number:
      if (std::isinf(d.num_hi)) return ">= " + number_text(d.num_lo);
      return number_text(d.num_lo) + " .. " + number_text(d.num_hi);
    case kind::choice: return std::string(d.choices);
    case kind::listen: return "off or HOST:PORT (port 0 .. 65535)";
    case kind::string: return "";
    case kind::cpus: return "CPU list, e.g. 0,2-3 (YAML: a list or that text); empty = not pinned";
  }
  return "";
}

// What a bad value is told: the key, what it must be, what it got.
std::string must_be(const key_def& d, const std::string& got) {
  std::string want;
  switch (d.type) {
    case kind::integer: want = "an integer in " + allowed_text(d); break;
    case kind::number:
      want = std::isinf(d.num_hi) ? "a number " + allowed_text(d) : "a number in " + allowed_text(d);
      break;
    case kind::choice: want = "one of " + allowed_text(d); break;
    case kind::listen:
      want = "\"off\" or HOST:PORT with a port in 0 .. 65535 (IPv6 host in brackets: [::1]:9750)";
      break;
    case kind::string: want = "a string"; break;
    case kind::cpus: want = "a CPU list (CPU numbers 0 .. 1023 and ranges, e.g. 0,2-3)"; break;
  }
  return "'" + d.dotted() + "' must be " + want + ", got '" + got + "'";
}

bool has_choice(std::string_view choices, std::string_view s) {
  while (true) {
    const auto bar = choices.find('|');
    if (choices.substr(0, bar) == s) return true;
    if (bar == std::string_view::npos) return false;
    choices.remove_prefix(bar + 1);
  }
}

// The value's own check (range, choice, address), shared by the loaders and validate().
bool in_range(const key_def& d, const value& v) {
  switch (d.type) {
    case kind::integer: {
      const auto x = std::get<std::int64_t>(v);
      return x >= d.int_lo && x <= d.int_hi;
    }
    case kind::number: {
      const auto x = std::get<double>(v);
      return std::isfinite(x) && x >= d.num_lo && x <= d.num_hi;
    }
    case kind::choice: return has_choice(d.choices, std::get<std::string>(v));
    case kind::listen: {
      const auto& s = std::get<std::string>(v);
      return s == "off" || parse_listen(s).has_value();
    }
    case kind::string: return true;
    case kind::cpus: return parse_cpu_list(std::get<std::string>(v)).has_value();
  }
  return false;
}

// Text -> value of the key's type, parsed completely and range-checked; nullopt (why set) if not.
std::optional<value> parse_value(const key_def& d, const std::string& s, std::string& why) {
  std::optional<value> v;
  const char* first = s.data();
  const char* last = s.data() + s.size();
  if (d.type == kind::integer) {
    std::int64_t x = 0;
    const auto [p, ec] = std::from_chars(first, last, x);
    if (!s.empty() && ec == std::errc() && p == last) v = x;
  } else if (d.type == kind::number) {
    double x = 0;
    const auto [p, ec] = std::from_chars(first, last, x, std::chars_format::general);
    if (!s.empty() && ec == std::errc() && p == last) v = x;
  } else {
    v = s;
  }
  if (!v || !in_range(d, *v)) {
    why = must_be(d, s);
    return std::nullopt;
  }
  return v;
}

// Parses and stores one key; a bad value leaves the key as it was.
void assign(program_config& cfg, const key_def& d, const std::string& text, const std::string& where,
            std::vector<config_error>& errors) {
  std::string why;
  if (auto v = parse_value(d, text, why)) d.put(cfg, *v);
  else errors.push_back(config_error{where, why});
}

// ---------------------------------------------------------------------------------------------
// YAML

std::string where_of(const std::string& source, const YAML::Node& n) {
  if (!n.IsDefined()) return source;
  const YAML::Mark m = n.Mark();
  if (m.line < 0) return source;  // a node built in code has no position
  return source + ":" + std::to_string(m.line + 1) + ":" + std::to_string(m.column + 1);
}

std::string key_name(const YAML::Node& k) { return k.IsScalar() ? k.Scalar() : std::string("?"); }

// One key's YAML value: a scalar, or (a CPU list) a list of CPU numbers.
void apply_value(program_config& cfg, const key_def& d, const YAML::Node& v, const std::string& source,
                 std::vector<config_error>& errors) {
  if (v.IsSequence() && d.type == kind::cpus) {
    std::string text;
    for (const auto& x : v) text += (text.empty() ? "" : ",") + (x.IsScalar() ? x.Scalar() : std::string("?"));
    assign(cfg, d, text, where_of(source, v), errors);
    return;
  }
  if (v.IsMap() || v.IsSequence()) {
    errors.push_back({where_of(source, v), must_be(d, v.IsMap() ? "a mapping" : "a list")});
    return;
  }
  assign(cfg, d, v.IsScalar() ? v.Scalar() : std::string(), where_of(source, v), errors);
}

// Keys of `section` named "<group>.<sub>" (runtime.cpus.scheduler): the YAML nests them.
bool has_subkeys(std::string_view section, const std::string& group) {
  for (const auto& d : table())
    if (d.section == section && d.key.size() > group.size() + 1 && d.key.substr(0, group.size()) == group &&
        d.key[group.size()] == '.')
      return true;
  return false;
}

// The keys of `body` (a section, or under `prefix` a nested group such as runtime.cpus).
void apply_keys(program_config& cfg, const std::string& section, const std::string& prefix, const YAML::Node& body,
                const std::string& source, std::vector<config_error>& errors, std::set<std::string>& seen) {
  // Range-for keeps each (key, value) pair alive for the body: yaml-cpp's `it->second` is a member
  // of a temporary proxy, and a reference to it dangles after its statement.
  for (const auto& kv : body) {
    const std::string key = prefix.empty() ? key_name(kv.first) : prefix + "." + key_name(kv.first);
    const key_def* d = find_key(section, key);
    if (!d && prefix.empty() && kv.second.IsMap() && has_subkeys(section, key)) {  // `cpus: {scheduler: ...}`
      apply_keys(cfg, section, key, kv.second, source, errors, seen);
      continue;
    }
    if (!d) {
      errors.push_back({where_of(source, kv.first), "unknown key '" + key + "' in section '" + section +
                                                        "' (keys: " + keys_of(section, false) + ")"});
      continue;
    }
    if (!seen.insert(key).second) {
      errors.push_back({where_of(source, kv.first), "key '" + d->dotted() + "' is given twice"});
      continue;
    }
    apply_value(cfg, *d, kv.second, source, errors);
  }
}

void apply_section(program_config& cfg, const std::string& section, const YAML::Node& body, const std::string& source,
                   std::vector<config_error>& errors) {
  if (body.IsNull()) return;  // `log:` with nothing under it changes nothing
  if (!body.IsMap()) {
    errors.push_back({where_of(source, body), "section '" + section + "' must be a mapping (key: value); its keys: " +
                                                  keys_of(section, false)});
    return;
  }
  std::set<std::string> seen;
  apply_keys(cfg, section, "", body, source, errors, seen);
}

}  // namespace

// -----------------------------------------------------------------------------------------------

void apply_yaml(program_config& cfg, const YAML::Node& root, const std::string& source,
                std::vector<config_error>& errors) {
  if (!root.IsDefined() || root.IsNull()) return;  // an empty file: all defaults
  if (!root.IsMap()) {
    errors.push_back({where_of(source, root), "the config must be a mapping of sections (" + section_list() + ")"});
    return;
  }
  std::set<std::string> seen;
  for (const auto& kv : root) {
    const std::string section = key_name(kv.first);
    if (!known_section(section)) {
      errors.push_back(
          {where_of(source, kv.first), "unknown section '" + section + "' (sections: " + section_list() + ")"});
      continue;
    }
    if (!seen.insert(section).second) {
      errors.push_back({where_of(source, kv.first), "section '" + section + "' is given twice"});
      continue;
    }
    apply_section(cfg, section, kv.second, source, errors);
  }
}

void load_file(program_config& cfg, const std::string& path, std::vector<config_error>& errors) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    errors.push_back({path, "cannot read the config file: it is a directory"});
    return;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    errors.push_back({path, std::string("cannot read the config file: ") + std::strerror(errno)});
    return;
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) {
    errors.push_back({path, "cannot read the config file: read error"});
    return;
  }
  load_text(cfg, text.str(), path, errors);
}

void load_text(program_config& cfg, const std::string& text, const std::string& source,
               std::vector<config_error>& errors) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    std::string where = source;
    if (e.mark.line >= 0) where += ":" + std::to_string(e.mark.line + 1) + ":" + std::to_string(e.mark.column + 1);
    errors.push_back({where, "YAML syntax error: " + valid_utf8(e.msg)});
    return;
  }
  apply_yaml(cfg, root, source, errors);
}

void apply_env(program_config& cfg, const std::vector<std::pair<std::string, std::string>>& env,
               std::vector<config_error>& errors) {
  static constexpr std::string_view prefix = "RINGFLOW_";
  for (const auto& [name, val] : env) {
    if (name.compare(0, prefix.size(), prefix) != 0) continue;
    const std::string rest = name.substr(prefix.size());
    const auto us = rest.find('_');
    const std::string token = rest.substr(0, us);
    // Only RINGFLOW_<SECTION>... is config; the rest of the RINGFLOW_ namespace belongs to tests and tools.
    const auto secs = sections();
    const auto sec = std::find_if(secs.begin(), secs.end(), [&](std::string_view s) { return upper(s) == token; });
    if (sec == secs.end()) continue;
    const std::string where = "env " + name;
    const std::string key = us == std::string::npos ? std::string() : rest.substr(us + 1);
    // Exact upper-case match: RINGFLOW_HTTP_Listen is a typo, not an alias.
    const key_def* d = nullptr;
    for (const auto& k : table())
      if (k.section == *sec && to_env_name(k.dotted()) == name) d = &k;  // cpus.scheduler -> CPUS_SCHEDULER
    if (!d) {
      errors.push_back(
          {where, "unknown config variable; section '" + std::string(*sec) + "' has: " + keys_of(*sec, true)});
      continue;
    }
    assign(cfg, *d, val, where, errors);
  }
}

std::vector<std::pair<std::string, std::string>> process_environment() {
  std::vector<std::pair<std::string, std::string>> out;
  for (char** e = environ; e && *e; ++e) {
    const std::string_view kv(*e);
    const auto eq = kv.find('=');
    if (eq == std::string_view::npos) continue;
    out.emplace_back(std::string(kv.substr(0, eq)), std::string(kv.substr(eq + 1)));
  }
  return out;
}

void set_value(program_config& cfg, const std::string& dotted_key, const std::string& value, const std::string& where,
               std::vector<config_error>& errors) {
  const key_def* d = find_dotted(dotted_key);
  if (!d) {
    errors.push_back({where, unknown_dotted(dotted_key)});
    return;
  }
  assign(cfg, *d, value, where, errors);
}

void validate(const program_config& cfg, std::vector<config_error>& errors) {
  for (const auto& d : table()) {
    const value v = d.get(cfg);
    if (!in_range(d, v)) errors.push_back({d.dotted(), must_be(d, value_text(v))});
  }
  // A positive rate below 0.001/s is a typo for 0 (no limit) or a stalled intake: refused.
  if (cfg.limits.ingress_rate_per_s > 0 && cfg.limits.ingress_rate_per_s < 0.001)
    errors.push_back(
        {"limits.ingress_rate_per_s", "'limits.ingress_rate_per_s' must be 0 (no limit) or 0.001 .. 1e9, got '" +
                                          value_text(value{cfg.limits.ingress_rate_per_s}) + "'"});
  // A cap below the start would make the breaker's cool-down shrink after a failed probe.
  if (cfg.breaker.cooldown_max_ms < cfg.breaker.cooldown_ms)
    errors.push_back({"breaker.cooldown_max_ms", "'breaker.cooldown_max_ms' must be >= 'breaker.cooldown_ms' (" +
                                                     std::to_string(cfg.breaker.cooldown_ms) + "), got '" +
                                                     std::to_string(cfg.breaker.cooldown_max_ms) + "'"});
}

nlohmann::json to_json(const program_config& cfg) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& d : table()) {
    auto& slot = j[std::string(d.section)][std::string(d.key)];
    std::visit([&](const auto& x) { slot = x; }, d.get(cfg));
  }
  return j;
}

std::optional<std::string> get_value(const program_config& cfg, const std::string& dotted_key) {
  const key_def* d = find_dotted(dotted_key);
  if (!d) return std::nullopt;
  return value_text(d->get(cfg));
}

std::vector<config_change> diff(const program_config& before, const program_config& after) {
  std::vector<config_change> out;
  for (const auto& d : table()) {
    const value a = d.get(before), b = d.get(after);
    if (a != b) out.push_back({d.dotted(), value_text(a), value_text(b), d.reloadable});
  }
  return out;
}

std::vector<config_change> apply_reloadable(program_config& running, const program_config& reloaded) {
  auto changes = diff(running, reloaded);
  for (const auto& d : table())
    if (d.reloadable) d.put(running, d.get(reloaded));
  return changes;
}

bool is_reloadable(const std::string& dotted_key) {
  const key_def* d = find_dotted(dotted_key);
  return d && d->reloadable;
}

std::optional<std::vector<int>> parse_cpu_list(std::string_view text) {
  std::vector<int> out;
  auto number = [](std::string_view t, int& x) {
    while (!t.empty() && t.front() == ' ') t.remove_prefix(1);
    while (!t.empty() && t.back() == ' ') t.remove_suffix(1);
    const auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), x);
    return !t.empty() && ec == std::errc() && p == t.data() + t.size() && x >= 0 && x <= 1023;
  };
  std::string_view rest = text;
  while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
  if (rest.empty()) return out;
  while (true) {
    const auto comma = rest.find(',');
    const std::string_view item = rest.substr(0, comma);
    const auto dash = item.find('-');
    int lo = 0, hi = 0;
    if (dash == std::string_view::npos) {
      if (!number(item, lo)) return std::nullopt;
      hi = lo;
    } else if (!number(item.substr(0, dash), lo) || !number(item.substr(dash + 1), hi) || hi < lo) {
      return std::nullopt;
    }
    for (int c = lo; c <= hi; ++c) out.push_back(c);
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

std::vector<std::string> all_keys() {
  std::vector<std::string> out;
  for (const auto& d : table()) out.push_back(d.dotted());
  return out;
}

std::string to_env_name(const std::string& dotted_key) {
  std::string s = "RINGFLOW_" + upper(dotted_key);
  std::replace(s.begin(), s.end(), '.', '_');
  return s;
}

std::vector<key_info> describe_keys() {
  const program_config defaults;
  std::vector<key_info> out;
  for (const auto& d : table())
    out.push_back({d.dotted(), to_env_name(d.dotted()), kind_name(d.type), allowed_text(d), value_text(d.get(defaults)),
                   d.reloadable, std::string(d.help)});
  return out;
}

std::optional<listen_address> parse_listen(std::string_view text) {
  const auto colon = text.rfind(':');
  if (colon == std::string_view::npos) return std::nullopt;
  std::string_view host = text.substr(0, colon);
  const std::string_view port = text.substr(colon + 1);
  if (!host.empty() && host.front() == '[') {
    if (host.size() < 3 || host.back() != ']') return std::nullopt;
    host = host.substr(1, host.size() - 2);
  } else if (host.find(':') != std::string_view::npos) {
    return std::nullopt;  // an IPv6 host without brackets: where would its port start?
  }
  if (host.empty()) return std::nullopt;
  // A host name (letters, digits, '-', '.', '_') or an IP literal: bytes a resolver would refuse
  // (spaces, '@', non-ASCII, ...) are a config error now, not a failed bind at start.
  const bool v6 = text.front() == '[';
  const auto ok = [v6](char c) {
    const auto u = static_cast<unsigned char>(c);
    return std::isalnum(u) || c == '.' || c == '-' || (!v6 && c == '_') || (v6 && (c == ':' || c == '%'));
  };
  if (!std::all_of(host.begin(), host.end(), ok)) return std::nullopt;
  unsigned p = 0;
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
  if (port.empty() || ec != std::errc() || end != port.data() + port.size() || p > 65535) return std::nullopt;
  return listen_address{std::string(host), static_cast<std::uint16_t>(p)};
}

}  // namespace ringflow::ops
