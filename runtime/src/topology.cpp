// Topology files: see ringflow/runtime/topology.hpp.
#include "ringflow/runtime/topology.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <sstream>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

#include "ringflow/runtime/catalog_names.hpp"
#include "ringflow/runtime/utf8.hpp"
#include "ringflow/sim/fault_injector.hpp"
#include "yaml_doc.hpp"

namespace ringflow::ops {

std::string topology_error::str() const {
  std::string s = file;
  if (pos.line > 0) s += ":" + std::to_string(pos.line) + ":" + std::to_string(pos.column);
  return valid_utf8(s + ": " + what);  // a path or a value may hold any byte
}

const node_spec* topology::node(const std::string& n) const {
  if (index_.size() == nodes.size()) {
    const auto it = index_.find(n);
    if (it == index_.end()) return nullptr;
    if (it->second < nodes.size() && nodes[it->second].name == n) return &nodes[it->second];
  }
  for (const auto& x : nodes)  // the index is stale: `nodes` changed after reindex()
    if (x.name == n) return &x;
  return nullptr;
}

void topology::reindex() {
  index_.clear();
  index_.reserve(nodes.size());
  for (std::size_t i = 0; i < nodes.size(); ++i)
    if (!index_.emplace(nodes[i].name, i).second)
      index_.emplace("\x01dup" + std::to_string(i), i);  // keeps sizes equal
}

bool member_spec::shares_folder(const std::string& path) const {
  std::error_code ec;
  const std::filesystem::path p = std::filesystem::absolute(path, ec).lexically_normal();
  for (const std::string& f : shares) {
    const std::filesystem::path share = std::filesystem::path(f).lexically_normal();
    auto a = share.begin(), b = p.begin();
    for (; a != share.end() && b != p.end() && *a == *b; ++a, ++b) {}
    if (a == share.end() || (std::next(a) == share.end() && a->empty())) return true;  // "dir/" ends in ""
  }
  return false;
}

const member_spec* cluster_spec::member(const std::string& n) const {
  for (const member_spec& m : members)
    if (m.name == n) return &m;
  return nullptr;
}

std::vector<std::string> topology::driving_members() const {
  std::vector<std::string> out;
  for (const load_spec& l : load)
    if (!l.at.empty() && std::find(out.begin(), out.end(), l.at) == out.end()) out.push_back(l.at);
  return out;
}

std::vector<std::string> topology::entries() const {
  std::unordered_set<std::string_view> fed;
  fed.reserve(edges.size());
  for (const auto& e : edges) fed.insert(e.to);
  std::vector<std::string> out;
  for (const auto& n : nodes)
    if (!fed.count(n.name)) out.push_back(n.name);
  return out;
}

catalog_view catalog_view::builtin() {
  catalog_view c;
  for (const auto& k : names::kernels) c.kernels.push_back({k.name, k.request, k.reply, k.stateful});
  for (const char* m : names::messages) c.messages.emplace_back(m);
  c.loadable = c.messages;  // every built-in type has a load generator
  for (const char* f : names::functions) c.functions.emplace_back(f);
  return c;
}
const catalog_view::kernel* catalog_view::find_kernel(const std::string& n) const {
  for (const auto& k : kernels)
    if (k.name == n) return &k;
  return nullptr;
}
bool catalog_view::has_message(const std::string& n) const {
  return std::find(messages.begin(), messages.end(), n) != messages.end();
}
bool catalog_view::is_loadable(const std::string& n) const {
  return std::find(loadable.begin(), loadable.end(), n) != loadable.end();
}
bool catalog_view::has_function(const std::string& n) const {
  return std::find(functions.begin(), functions.end(), n) != functions.end();
}

namespace {

std::string join_names(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}
std::string kernel_names(const catalog_view& c) {
  std::vector<std::string> v;
  for (const auto& k : c.kernels) v.push_back(k.name);
  return join_names(v);
}

source_pos pos_of(const yaml::node& n) {
  if (!n.IsDefined()) return {};  // a missing key
  const yaml::mark m = n.Mark();
  if (m.line < 0) return {};
  return {m.line + 1, m.column + 1};
}

std::string join(const std::vector<std::string>& v, const char* sep = ", ") {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : sep) + x;
  return s;
}

bool valid_name(const std::string& s) {
  if (s.empty() || s.size() > 64 || !std::isalpha(static_cast<unsigned char>(s[0]))) return false;
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-'; });
}

// Reads values out of YAML maps, recording every problem with its position.
class reader {
  inline static const std::string unknown_key = "?";

 public:
  reader(std::string file, std::vector<topology_error>& errors) : file_(std::move(file)), errors_(errors) {}
  catalog_view cat = catalog_view::builtin();  // what the file may name (+ its plugins)

  void error(source_pos p, std::string what) { errors_.push_back(topology_error{file_, p, std::move(what)}); }
  void error(const yaml::node& at, std::string what) { error(pos_of(at), std::move(what)); }

  /// `n` must be a map whose keys are all in `allowed`; false (reported) otherwise.
  bool map(const yaml::node& n, const std::string& what, std::initializer_list<std::string_view> allowed) {
    if (!n.IsMap()) {
      error(n, what + " must be a mapping (key: value)");
      return false;
    }
    std::uint64_t given = 0;  // bit i: allowed key i seen (allowed lists are short)
    for (auto it = n.begin(); it != n.end(); ++it) {
      const std::string& key = it->first.IsScalar() ? it->first.Scalar() : unknown_key;
      const auto at = std::find(allowed.begin(), allowed.end(), key);
      if (at == allowed.end()) {
        std::vector<std::string> names(allowed.begin(), allowed.end());
        error(it->first, "unknown key '" + key + "' in " + what + " (allowed: " + join(names) + ")");
        continue;
      }
      const std::uint64_t bit = std::uint64_t{1} << (at - allowed.begin());
      if (given & bit) error(it->first, "key '" + key + "' is given twice in " + what + " (YAML keys are unique)");
      given |= bit;
    }
    return true;
  }

  /// `key` as true / false (absent: nullopt); anything else is reported.
  std::optional<bool> flag(const yaml::node& m, const char* key, const std::string& what) {
    const yaml::node v = m[key];
    if (!v) return std::nullopt;
    const std::string s = v.IsScalar() ? v.Scalar() : std::string();
    if (s == "true") return true;
    if (s == "false") return false;
    error(v, what + ": '" + key + "' must be true or false");
    return std::nullopt;
  }

  std::optional<std::string> str(const yaml::node& m, const char* key, const std::string& what, bool required) {
    const yaml::node v = m[key];
    if (!v) {
      if (required) error(m, what + ": missing '" + key + "'");
      return std::nullopt;
    }
    if (!v.IsScalar() || v.Scalar().empty()) {
      error(v, what + ": '" + key + "' must be a non-empty string");
      return std::nullopt;
    }
    return v.Scalar();
  }

  template <class T>
  std::optional<T> num(const yaml::node& m, const char* key, const std::string& what, T lo, T hi,
                       bool required = false) {
    const yaml::node v = m[key];
    if (!v) {
      if (required) error(m, what + ": missing '" + key + "'");
      return std::nullopt;
    }
    const std::string s = v.IsScalar() ? v.Scalar() : std::string();
    T x{};
    const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), x);
    const bool whole = v.IsScalar() && !s.empty() && ec == std::errc() && p == s.data() + s.size();
    bool finite = true;
    if constexpr (std::is_floating_point_v<T>) finite = std::isfinite(x);
    if (!whole || !finite || x < lo || x > hi) {
      std::ostringstream range;
      range << lo << " .. " << hi;
      error(v, what + ": '" + key + "' must be " + (std::is_integral_v<T> ? "an integer" : "a number") + " in " +
                   range.str() + ", got '" + s + "'");
      return std::nullopt;
    }
    return x;
  }

  std::vector<std::string> names(const yaml::node& m, const char* key, const std::string& what) {
    std::vector<std::string> out;
    const yaml::node v = m[key];
    if (!v) return out;
    if (!v.IsSequence()) {
      error(v, what + ": '" + key + "' must be a list of names");
      return out;
    }
    for (const auto& x : v) {
      if (!x.IsScalar()) error(x, what + ": '" + key + "' must hold names");
      else out.push_back(x.Scalar());
    }
    return out;
  }

  /// An optional top-level section: absent (false), or a list (true); anything else is reported.
  bool optional_list(const yaml::node& list, const char* section) {
    if (!list) return false;
    if (list.IsSequence()) return true;
    error(list, std::string("'") + section + "' must be a list");
    return false;
  }

  const std::string& file() const { return file_; }

 private:
  std::string file_;
  std::vector<topology_error>& errors_;
};

const std::vector<std::string> backends = {"auto", "cpu", "sim", "cuda", "hip"};
// ringflow::wait_mode's names (wait_policy.hpp; this parser is also built alone for the fuzzer).
const std::vector<std::string> wait_modes = {"park", "adaptive", "spin"};
const std::vector<std::string> strategies = {"one_for_one", "one_for_all", "rest_for_one"};

// A ring node's `state:` block and the rules of a stateful kernel's node: one replica (`auto`
// means cpu).
void read_state(reader& r, const yaml::node& n, const std::string& what, node_spec& s) {
  if (const yaml::node st = n["state"]) {
    if (!s.stateful && !s.in_type.empty()) {
      r.error(st, what + ": kernel '" + s.kernel + "' keeps no state ('state' is for stateful kernels)");
    } else if (r.map(st, what + " state", {"snapshot_every", "snapshot_ms", "journal_max", "verify"})) {
      const std::string w = what + " state";
      s.state_verify = r.flag(st, "verify", w).value_or(false);
      s.snapshot_every = r.num<std::uint32_t>(st, "snapshot_every", w, 1, 1u << 24).value_or(1000);
      s.snapshot_ms = r.num<std::uint32_t>(st, "snapshot_ms", w, 0, 3600000).value_or(1000);
      s.journal_max = r.num<std::uint32_t>(st, "journal_max", w, 1, 1u << 26).value_or(16384);
    }
  }
  if (const yaml::node ck = n["checkpoint"]) {
    if (!s.stateful && !s.in_type.empty()) {
      r.error(ck, what + ": kernel '" + s.kernel + "' keeps no state ('checkpoint' is for stateful kernels)");
    } else if (r.map(ck, what + " checkpoint", {"dir", "every_ms", "durability"})) {
      const std::string w = what + " checkpoint";
      s.checkpoint = true;
      s.checkpoint_dir = r.str(ck, "dir", w, true).value_or("");
      if (!s.checkpoint_dir.empty()) {
        std::filesystem::path d(s.checkpoint_dir);
        if (d.is_relative()) d = std::filesystem::path(r.file()).parent_path() / d;
        s.checkpoint_path = d.lexically_normal().string();
        if (s.checkpoint_path.empty()) s.checkpoint_path = ".";
      } else if (ck["dir"]) {
        r.error(ck["dir"], w + ": 'dir' must name a folder");
      }
      s.checkpoint_every_ms = r.num<std::uint32_t>(ck, "every_ms", w, 1, 3600000).value_or(1000);
      if (auto d = r.str(ck, "durability", w, false)) {
        s.durability = *d;
        if (s.durability != "checkpoint" && s.durability != "reply")
          r.error(ck["durability"], w + ": unknown durability '" + s.durability + "' (known: checkpoint, reply)");
      }
    }
  }
  if (!s.stateful) return;
  if (static_cast<std::uint64_t>(s.journal_max) < static_cast<std::uint64_t>(s.snapshot_every) + s.window)
    r.error(n["state"] ? n["state"] : n, what + ": state.journal_max (" + std::to_string(s.journal_max) +
                                             ") must be at least snapshot_every + window (" +
                                             std::to_string(s.snapshot_every + s.window) + ")");
  if (s.replicas != 1)
    r.error(n["replicas"], what + ": a stateful kernel's node has replicas: 1 (its requests are applied in order)");
  // `auto` means cpu for a stateful node: a GPU incarnation's state works on the emulator but has
  // not run on a GPU yet, so it is asked for by name (backend: cuda | hip; KERNELS.md).
  if (s.backend == "auto") s.backend = "cpu";
}

// "HOST:PORT" (a host name or an IPv4 literal; port 0 .. 65535).
bool split_listen(const std::string& text, std::string& host, std::uint16_t& port) {
  const auto colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0) return false;
  host = text.substr(0, colon);
  const auto ok = [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_';
  };
  if (!std::all_of(host.begin(), host.end(), ok)) return false;
  unsigned p = 0;
  const char* b = text.data() + colon + 1;
  const char* e = text.data() + text.size();
  const auto [end, ec] = std::from_chars(b, e, p);
  if (b == e || ec != std::errc() || end != e || p > 65535) return false;
  port = static_cast<std::uint16_t>(p);
  return true;
}

std::string resolve_path(const topology& t, const std::string& given) {
  const std::filesystem::path g(given);
  if (g.is_absolute()) return g.lexically_normal().string();
  std::error_code ec;
  const std::filesystem::path full = std::filesystem::absolute(std::filesystem::path(t.file).parent_path() / g, ec);
  return (ec ? g : full).lexically_normal().string();
}

// The `cluster:` section (read before the nodes: their `at:` names its members).
void read_cluster(reader& r, const yaml::node& c, topology& t) {
  if (!c) return;
  if (!r.map(c, "'cluster'", {"members", "tls", "heartbeat_ms", "timeout_ms", "start_timeout_ms"})) return;
  cluster_spec& cs = t.cluster;
  cs.pos = pos_of(c);
  const yaml::node list = c["members"];
  if (!list || !list.IsSequence() || list.size() == 0) {
    r.error(list ? list : c, "'cluster': 'members' must be a non-empty list of {name, listen}");
    return;
  }
  std::set<std::string> names, addresses;
  for (const auto& m : list) {
    if (!r.map(m, "cluster member", {"name", "listen", "shares"})) continue;
    member_spec ms;
    ms.pos = pos_of(m);
    ms.name = r.str(m, "name", "cluster member", true).value_or("");
    const std::string what = "cluster member '" + ms.name + "'";
    if (!ms.name.empty() && !valid_name(ms.name))
      r.error(m["name"], what + ": a name is a letter then letters, digits, '_' or '-' (at most 64)");
    if (ms.name == "local_cpu") r.error(m["name"], what + ": 'local_cpu' is a fallback's keyword, not a member name");
    if (!ms.name.empty() && !names.insert(ms.name).second) r.error(m["name"], what + " is defined twice");
    ms.listen = r.str(m, "listen", what, true).value_or("");
    if (!ms.listen.empty()) {
      if (!split_listen(ms.listen, ms.host, ms.port))
        r.error(m["listen"], what + ": 'listen' must be HOST:PORT (port 0 .. 65535; 0 = assigned at start), got '" +
                                 ms.listen + "'");
      else if (ms.port != 0 && !addresses.insert(ms.host + ":" + std::to_string(ms.port)).second)
        r.error(m["listen"], what + ": address " + ms.listen + " is another member's too");
    }
    if (const yaml::node sh = m["shares"]) {
      if (!sh.IsSequence()) r.error(sh, what + ": 'shares' must be a list of folders");
      else
        for (const auto& f : sh) {
          if (!f.IsScalar() || f.Scalar().empty()) r.error(f, what + ": 'shares' must be a list of folders");
          else ms.shares.push_back(resolve_path(t, f.Scalar()));
        }
    }
    cs.members.push_back(std::move(ms));
  }
  if (const yaml::node tls = c["tls"]) {
    if (r.map(tls, "'cluster.tls'", {"ca", "cert", "key"})) {
      cs.tls = true;
      cs.tls_ca = resolve_path(t, r.str(tls, "ca", "'cluster.tls'", true).value_or(""));
      cs.tls_cert = resolve_path(t, r.str(tls, "cert", "'cluster.tls'", true).value_or(""));
      cs.tls_key = resolve_path(t, r.str(tls, "key", "'cluster.tls'", true).value_or(""));
    }
  }
  cs.heartbeat_ms = r.num<std::uint32_t>(c, "heartbeat_ms", "'cluster'", 1, 600000).value_or(100);
  cs.timeout_ms = r.num<std::uint32_t>(c, "timeout_ms", "'cluster'", 1, 3600000).value_or(1000);
  cs.start_timeout_ms = r.num<std::uint32_t>(c, "start_timeout_ms", "'cluster'", 1, 3600000).value_or(15000);
  if (cs.timeout_ms < cs.heartbeat_ms)
    r.error(c["timeout_ms"] ? c["timeout_ms"] : c, "'cluster': 'timeout_ms' (" + std::to_string(cs.timeout_ms) +
                                                       ") must be at least 'heartbeat_ms' (" +
                                                       std::to_string(cs.heartbeat_ms) + ")");
}

// `at:` of a node or load generator: a member of the cluster (default: the first one).
std::string read_at(reader& r, const yaml::node& n, const topology& t, const std::string& what) {
  const std::optional<std::string> at = r.str(n, "at", what, false);
  if (!t.cluster.enabled()) {
    if (at) r.error(n["at"], what + ": 'at' places it on a cluster member, and this topology has no 'cluster:'");
    return "";
  }
  if (!at) return t.cluster.members.front().name;
  if (!t.cluster.member(*at)) {
    std::vector<std::string> known;
    for (const member_spec& m : t.cluster.members) known.push_back(m.name);
    r.error(n["at"], what + ": unknown member '" + *at + "' in 'at' (members: " + join(known) + ")");
  }
  return *at;
}

// A node's `fallback:` (where its callers send it when its member is lost).
void read_fallback(reader& r, const yaml::node& n, const topology& t, const std::string& what, node_spec& s) {
  const std::optional<std::string> fb = r.str(n, "fallback", what, false);
  if (!fb) return;
  if (!t.cluster.enabled()) {
    r.error(n["fallback"], what + ": 'fallback' is for nodes of a cluster topology (this one has no 'cluster:')");
    return;
  }
  s.fallback = *fb;
  if (s.fallback == "local_cpu") {
    if (s.kind == node_kind::ring && s.backend != "auto" && s.backend != "cpu" && s.backend != "sim" &&
        s.backend != "cuda" && s.backend != "hip")
      r.error(n["fallback"], what + ": 'local_cpu' runs the kernel on the CPU");
  } else if (!t.cluster.member(s.fallback)) {
    r.error(n["fallback"], what + ": unknown fallback '" + s.fallback + "' (local_cpu or a member)");
  } else if (s.fallback == s.at) {
    r.error(n["fallback"], what + ": its fallback is the member it runs on ('" + s.at + "')");
  }
  if (!s.stateful) return;
  // A stateful node: one state, so one member at a time may hold it — the one that owns its
  // checkpoint folder (checkpoint_owner); docs/OPERATIONS.md "Clusters", "Stateful nodes".
  if (s.fallback == "local_cpu") {
    r.error(n["fallback"], what +
                               ": a stateful node cannot fall back to local_cpu (every calling member would run "
                               "a state of its own); name a member that shares its checkpoint folder");
    return;
  }
  if (!s.checkpoint || s.durability != "reply") {
    r.error(n["fallback"], what +
                               ": a stateful node fails over to another member only with 'checkpoint: {dir: ..., "
                               "durability: reply}' (every answered effect on disk for the member taking over)");
    return;
  }
  for (const std::string& m : {s.at, s.fallback})
    if (const member_spec* ms = t.cluster.member(m); ms && !ms->shares_folder(s.checkpoint_path))
      r.error(n["fallback"], what + ": member '" + m + "' does not share its checkpoint folder " + s.checkpoint_path +
                                 " (list it, or a folder above it, in the member's 'shares')");
}

void read_nodes(reader& r, const yaml::node& list, topology& t) {
  if (!list || !list.IsSequence() || list.size() == 0) {
    r.error(list ? list : yaml::node(), "'nodes' must be a non-empty list");
    return;
  }
  std::set<std::string> seen;
  for (const auto& n : list) {
    if (!r.map(n, "node",
               {"name", "kernel", "backend", "host", "replicas", "window", "arena_bytes", "ring_slots", "wait", "cpus",
                "state", "checkpoint", "function", "type", "at", "fallback"}))
      continue;
    node_spec s;
    s.pos = pos_of(n);
    s.name = r.str(n, "name", "node", true).value_or("");
    const std::string what = "node '" + s.name + "'";
    if (!s.name.empty() && !valid_name(s.name))
      r.error(n["name"], what + ": a name is a letter then letters, digits, '_' or '-' (at most 64)");
    if (!s.name.empty() && !seen.insert(s.name).second) r.error(n["name"], what + " is defined twice");
    const bool ring = static_cast<bool>(n["kernel"]);
    const bool cpu = static_cast<bool>(n["function"]);
    if (ring == cpu) {
      r.error(n, what + ": give either 'kernel' (a ring node) or 'function' (a CPU node)");
      continue;
    }
    if (ring) {
      s.kind = node_kind::ring;
      for (const char* k : {"type"})
        if (n[k]) r.error(n[k], what + ": '" + k + "' is for CPU nodes (a ring node's types are its kernel's)");
      s.kernel = r.str(n, "kernel", what, true).value_or("");
      if (const catalog_view::kernel* k = r.cat.find_kernel(s.kernel)) {
        s.in_type = k->request;
        s.out_type = k->reply;
        s.stateful = k->stateful;
      } else if (!s.kernel.empty()) {
        r.error(n["kernel"], what + ": unknown kernel '" + s.kernel + "' (known: " + kernel_names(r.cat) + ")");
      }
      if (auto b = r.str(n, "backend", what, false)) {
        s.backend = *b;
        if (std::find(backends.begin(), backends.end(), s.backend) == backends.end())
          r.error(n["backend"], what + ": unknown backend '" + s.backend + "' (known: " + join(backends) + ")");
      }
      if (auto h = r.str(n, "host", what, false)) {
        s.host = *h;
        if (s.host != "in-process" && s.host != "process")
          r.error(n["host"], what + ": unknown host '" + s.host + "' (known: in-process, process)");
      }
      s.replicas = r.num<std::uint32_t>(n, "replicas", what, 1, 64).value_or(1);
      s.window = r.num<std::uint32_t>(n, "window", what, 1, 1u << 20).value_or(256);
      s.arena_bytes = r.num<std::uint32_t>(n, "arena_bytes", what, 0, 1u << 28).value_or(1u << 20);
      if (s.arena_bytes % 64) r.error(n["arena_bytes"], what + ": 'arena_bytes' must be a multiple of 64");
      s.ring_slots = r.num<std::uint32_t>(n, "ring_slots", what, 2, 1u << 16).value_or(0);
      if (s.ring_slots & (s.ring_slots - 1))
        r.error(n["ring_slots"], what + ": 'ring_slots' must be a power of two (2..65536)");
      if (auto w = r.str(n, "wait", what, false)) {
        s.wait = *w;
        if (std::find(wait_modes.begin(), wait_modes.end(), s.wait) == wait_modes.end())
          r.error(n["wait"], what + ": unknown wait '" + s.wait + "' (known: " + join(wait_modes) + ")");
      }
      read_state(r, n, what, s);
      if (const yaml::node c = n["cpus"]) {
        if (!c.IsSequence() || c.size() == 0) {
          r.error(c, what + ": 'cpus' must be a non-empty list of CPU numbers (e.g. [2, 3])");
        } else {
          for (const auto& x : c) {
            int cpu = -1;
            if (x.IsScalar()) {
              const std::string& t = x.Scalar();
              const auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), cpu);
              if (ec != std::errc() || p != t.data() + t.size()) cpu = -1;
            }
            if (cpu < 0 || cpu > 1023)
              r.error(x, what + ": 'cpus' holds CPU numbers 0 .. 1023, got '" +
                             (x.IsScalar() ? x.Scalar() : std::string("?")) + "'");
            else s.cpus.push_back(cpu);
          }
        }
      }
    } else {
      s.kind = node_kind::cpu;
      for (const char* k : {"backend", "host", "replicas", "window", "arena_bytes", "ring_slots", "wait", "cpus",
                            "state", "checkpoint"})
        if (n[k]) r.error(n[k], what + ": '" + k + "' is for ring nodes");
      s.function = r.str(n, "function", what, true).value_or("");
      if (!s.function.empty() && !r.cat.has_function(s.function))
        r.error(n["function"],
                what + ": unknown function '" + s.function + "' (known: " + join_names(r.cat.functions) + ")");
      const std::string type = r.str(n, "type", what, true).value_or("");
      if (!type.empty() && !r.cat.has_message(type))
        r.error(n["type"], what + ": unknown message type '" + type + "' (known: " + join_names(r.cat.messages) + ")");
      else s.in_type = s.out_type = type;
    }
    s.at = read_at(r, n, t, what);
    read_fallback(r, n, t, what, s);
    t.nodes.push_back(std::move(s));
  }
}

void read_edges(reader& r, const yaml::node& list, topology& t) {
  if (!r.optional_list(list, "edges")) return;
  std::unordered_set<std::string> seen;  // "from\0to" (names hold no NUL)
  seen.reserve(list.size());
  for (const auto& e : list) {
    if (!r.map(e, "edge", {"from", "to"})) continue;
    edge_spec s;
    s.pos = pos_of(e);
    s.from = r.str(e, "from", "edge", true).value_or("");
    s.to = r.str(e, "to", "edge", true).value_or("");
    if (s.from.empty() || s.to.empty()) continue;
    const node_spec* a = t.node(s.from);
    const node_spec* b = t.node(s.to);
    bool ok = true;
    if (!a) r.error(e["from"], "edge " + s.from + " -> " + s.to + ": no node named '" + s.from + "'"), ok = false;
    if (!b) r.error(e["to"], "edge " + s.from + " -> " + s.to + ": no node named '" + s.to + "'"), ok = false;
    if (!ok) continue;
    if (s.from == s.to) {
      r.error(e, "edge " + s.from + " -> " + s.to + ": a node cannot feed itself");
      continue;
    }
    if (!seen.insert(s.from + '\0' + s.to).second) {
      r.error(e, "edge " + s.from + " -> " + s.to + " is given twice");
      continue;
    }
    if (!a->out_type.empty() && !b->in_type.empty() && a->out_type != b->in_type)
      r.error(e, "edge " + s.from + " -> " + s.to + ": type mismatch: '" + s.from + "' sends " + a->out_type +
                     " but '" + s.to + "' takes " + b->in_type);
    t.edges.push_back(std::move(s));
  }
  // Cycles: an iterative depth-first search (no recursion: a 100,000-node chain is a legal file),
  // linear in nodes + edges; each cycle is reported once, at the edge that closes it.
  std::unordered_map<std::string_view, std::size_t> id;
  id.reserve(t.nodes.size());
  for (std::size_t i = 0; i < t.nodes.size(); ++i) id.emplace(t.nodes[i].name, i);
  std::vector<std::vector<const edge_spec*>> out(t.nodes.size());
  for (const auto& e : t.edges) out[id.at(e.from)].push_back(&e);
  std::vector<char> color(t.nodes.size(), 0);  // 0 new, 1 on the path, 2 done
  struct frame {
    std::size_t node, next_edge;
  };
  std::vector<frame> path;
  for (std::size_t root = 0; root < t.nodes.size(); ++root) {
    if (color[root]) continue;
    color[root] = 1;
    path.push_back({root, 0});
    while (!path.empty()) {
      frame& f = path.back();
      if (f.next_edge == out[f.node].size()) {
        color[f.node] = 2;
        path.pop_back();
        continue;
      }
      const edge_spec* e = out[f.node][f.next_edge++];
      const std::size_t to = id.at(e->to);
      if (color[to] == 0) {
        color[to] = 1;
        path.push_back({to, 0});
      } else if (color[to] == 1) {
        std::size_t from = path.size();
        while (from > 0 && path[from - 1].node != to) --from;
        std::vector<std::string> cyc;
        const std::size_t start = from - 1, len = path.size() - start;
        for (std::size_t k = start; k < path.size(); ++k) {
          if (len > 12 && k == start + 5) {  // a long cycle: its ends and how many between
            cyc.push_back("... (" + std::to_string(len - 10) + " more)");
            k = path.size() - 5;
          }
          cyc.push_back(t.nodes[path[k].node].name);
        }
        cyc.push_back(e->to);
        r.error(e->pos, "edges form a cycle (" + join(cyc, " -> ") + "); a topology is a directed acyclic graph");
      }
    }
  }
}

void read_supervisors(reader& r, const yaml::node& list, topology& t, std::int64_t max_depth) {
  if (!r.optional_list(list, "supervisors")) return;
  std::map<std::string, std::string> owner;  // ring node -> supervisor
  std::set<std::string> seen = {"root"};
  for (const auto& n : list) {
    if (!r.map(n, "supervisor", {"name", "strategy", "intensity", "period_ms", "children", "parent"})) continue;
    supervisor_entry s;
    s.pos = pos_of(n);
    s.name = r.str(n, "name", "supervisor", true).value_or("");
    const std::string what = "supervisor '" + s.name + "'";
    if (!s.name.empty() && !valid_name(s.name))
      r.error(n["name"], what + ": a name is a letter then letters, digits, '_' or '-' (at most 64)");
    if (!s.name.empty() && !seen.insert(s.name).second)
      r.error(n["name"], what + (s.name == "root" ? " is reserved (the tree's root)" : " is defined twice"));
    if (auto st = r.str(n, "strategy", what, false)) {
      s.strategy = *st;
      if (std::find(strategies.begin(), strategies.end(), s.strategy) == strategies.end())
        r.error(n["strategy"], what + ": unknown strategy '" + s.strategy + "' (known: " + join(strategies) + ")");
    }
    s.intensity = r.num<std::uint32_t>(n, "intensity", what, 0, 1000).value_or(3);
    s.period_ms = r.num<std::uint32_t>(n, "period_ms", what, 1, 86400000).value_or(5000);
    s.children = r.names(n, "children", what);
    if (s.children.empty()) r.error(n, what + ": needs 'children' (a list of ring nodes)");
    for (std::size_t i = 0; i < s.children.size(); ++i) {
      const std::string& c = s.children[i];
      const yaml::node at = n["children"][i];
      const node_spec* ns = t.node(c);
      if (!ns) r.error(at, what + ": no node named '" + c + "'");
      else if (ns->kind != node_kind::ring)
        r.error(at, what + ": '" + c + "' is a CPU node; supervisors hold ring nodes (CPU nodes live in the graph)");
      else if (!owner.emplace(c, s.name).second)
        r.error(at, what + ": '" + c + "' is already supervised by '" + owner[c] + "'");
    }
    s.parent = r.str(n, "parent", what, false).value_or("");
    if (s.parent == "root") s.parent.clear();
    t.supervisors.push_back(std::move(s));
  }
  // Parents: known, no cycle among them, and no deeper than the limit. Each supervisor has one
  // parent, so the parents form a forest unless a walk up meets itself: each is walked once
  // (memoized depths), linear in the number of supervisors.
  std::unordered_map<std::string_view, std::size_t> id;
  id.reserve(t.supervisors.size());
  for (std::size_t i = 0; i < t.supervisors.size(); ++i) id.emplace(t.supervisors[i].name, i);
  std::vector<std::int64_t> depth(t.supervisors.size(), 0);  // 0 unknown, -1 on the walk, -2 on a cycle / bad
  std::vector<std::size_t> walk;
  for (std::size_t i = 0; i < t.supervisors.size(); ++i) {
    if (depth[i] != 0) continue;
    walk.clear();
    std::size_t at = i;
    std::int64_t base = 0;  // the depth above the walk's top
    for (;;) {
      const supervisor_entry& s = t.supervisors[at];
      if (depth[at] == -1) {  // met the walk itself: a cycle
        r.error(s.pos, "supervisor '" + s.name + "': its parents form a cycle");
        base = -2;
        break;
      }
      if (depth[at] != 0) {
        base = depth[at];
        break;
      }
      depth[at] = -1;
      walk.push_back(at);
      if (s.parent.empty()) break;
      const auto p = id.find(s.parent);
      if (p == id.end()) {
        r.error(s.pos, "supervisor '" + s.name + "': no supervisor named '" + s.parent + "' (its parent)");
        base = -2;
        break;
      }
      at = p->second;
    }
    for (auto k = walk.rbegin(); k != walk.rend(); ++k) {
      if (base < 0) {
        depth[*k] = -2;
        continue;
      }
      depth[*k] = ++base;
      if (base == max_depth + 1)
        r.error(t.supervisors[*k].pos, "supervisor '" + t.supervisors[*k].name + "' is nested " + std::to_string(base) +
                                           " deep, past limits.max_supervisor_depth (" + std::to_string(max_depth) +
                                           ")");
    }
  }
}

// `plugins: [path, ...]`, each resolved against the topology file's folder. False on a problem.
bool read_plugins(reader& r, const yaml::node& list, topology& t) {
  if (!r.optional_list(list, "plugins")) return !list.IsDefined();
  bool good = true;
  std::set<std::string> seen;
  const std::filesystem::path base = std::filesystem::path(t.file).parent_path();
  for (const auto& n : list) {
    if (!n.IsScalar() || n.Scalar().empty()) {
      r.error(n, "'plugins' lists paths of plugin files (strings)");
      good = false;
      continue;
    }
    plugin_ref p;
    p.path = n.Scalar();
    p.pos = pos_of(n);
    const std::filesystem::path given(p.path);
    std::error_code ec;
    const std::filesystem::path full = std::filesystem::absolute(given.is_absolute() ? given : base / given, ec);
    p.resolved = (ec ? given : full).lexically_normal().string();
    if (!seen.insert(p.resolved).second) {
      r.error(n, "plugin '" + p.path + "' is listed twice");
      good = false;
      continue;
    }
    t.plugins.push_back(std::move(p));
  }
  return good;
}

void read_load(reader& r, const yaml::node& list, topology& t) {
  if (!r.optional_list(list, "load")) return;
  const std::vector<std::string> entries = t.entries();
  std::set<std::string> seen;
  for (const auto& n : list) {
    if (!r.map(n, "load generator",
               {"name", "target", "message", "rate", "duration_s", "start_s", "payload_bytes", "max_in_flight", "at"}))
      continue;
    load_spec s;
    s.pos = pos_of(n);
    s.name = r.str(n, "name", "load generator", true).value_or("");
    const std::string what = "load generator '" + s.name + "'";
    if (!s.name.empty() && !seen.insert(s.name).second) r.error(n["name"], what + " is defined twice");
    s.target = r.str(n, "target", what, true).value_or("");
    s.message = r.str(n, "message", what, true).value_or("");
    if (!s.message.empty() && !r.cat.has_message(s.message))
      r.error(n["message"],
              what + ": unknown message type '" + s.message + "' (known: " + join_names(r.cat.messages) + ")");
    else if (!s.message.empty() && !r.cat.is_loadable(s.message))
      r.error(n["message"], what + ": message type '" + s.message +
                                "' has no load generator (its kernel defines no load_request): it cannot be a "
                                "'load:' message (ones that can: " +
                                join_names(r.cat.loadable) + ")");
    if (const node_spec* target = t.node(s.target)) {
      if (std::find(entries.begin(), entries.end(), s.target) == entries.end())
        r.error(n["target"],
                what + ": '" + s.target + "' has incoming edges; load enters at an entry node (" + join(entries) + ")");
      else if (!s.message.empty() && !target->in_type.empty() && target->in_type != s.message)
        r.error(n["message"], what + ": '" + s.target + "' takes " + target->in_type + ", not " + s.message);
    } else if (!s.target.empty()) {
      r.error(n["target"], what + ": no node named '" + s.target + "'");
    }
    s.rate = r.num<double>(n, "rate", what, 0.001, 1e7, true).value_or(0);
    s.duration_s = r.num<double>(n, "duration_s", what, 0, 1e7).value_or(0);
    s.start_s = r.num<double>(n, "start_s", what, 0, 1e7).value_or(0);
    s.payload_bytes = r.num<std::uint32_t>(n, "payload_bytes", what, 0, 1u << 20).value_or(64);
    s.max_in_flight = r.num<std::uint32_t>(n, "max_in_flight", what, 1, 65536).value_or(128);
    s.at = read_at(r, n, t, what);
    t.load.push_back(std::move(s));
  }
}

// member_kill / member_partition: carried out by `ringflow cluster up` on a member's process.
void read_member_fault(reader& r, const yaml::node& n, const topology& t, const std::vector<std::string>& drivers,
                       fault_spec& s) {
  s.kind = n["kind"].Scalar();
  const std::string what = s.kind + " fault";
  if (!t.cluster.enabled()) r.error(n["kind"], what + ": member faults are for cluster topologies ('cluster:')");
  for (const char* k : {"node", "at_message", "probability", "times", "latency_us"})
    if (n[k]) r.error(n[k], what + ": '" + k + "' is not a member fault's key (member, at_s, restore_after_s)");
  s.member = r.str(n, "member", what, true).value_or("");
  if (!s.member.empty() && t.cluster.enabled()) {
    if (!t.cluster.member(s.member)) r.error(n["member"], what + ": unknown member '" + s.member + "'");
    else if (std::find(drivers.begin(), drivers.end(), s.member) != drivers.end())
      r.error(n["member"], what + ": member '" + s.member +
                               "' hosts load generators; killing or partitioning it would lose the run's accounting "
                               "(place the load on another member)");
  }
  if (auto x = r.num<double>(n, "at_s", what, 0, 1e7, true)) s.at_s = *x;
  if (n["restore_after_s"]) s.restore_after_s = r.num<double>(n, "restore_after_s", what, 0, 1e7).value_or(-1);
  else if (s.kind == "member_partition") r.error(n, what + ": missing 'restore_after_s' (a partition heals)");
}

void read_faults(reader& r, const yaml::node& list, topology& t) {
  if (!r.optional_list(list, "faults")) return;
  std::string kinds;
  for (std::size_t i = 0; i < sim::fault_kind_count; ++i)
    kinds += std::string(i ? ", " : "") + sim::to_string(static_cast<sim::fault_kind>(i));
  kinds += ", kill_worker, actor_crash, member_kill, member_partition";
  const std::vector<std::string> drivers = t.driving_members();
  for (const auto& n : list) {
    if (!r.map(
            n, "fault",
            {"node", "kind", "at_s", "at_message", "probability", "times", "latency_us", "restore_after_s", "member"}))
      continue;
    fault_spec s;
    s.pos = pos_of(n);
    if (const yaml::node k = n["kind"];
        k && k.IsScalar() && (k.Scalar() == "member_kill" || k.Scalar() == "member_partition")) {
      read_member_fault(r, n, t, drivers, s);
      t.faults.push_back(std::move(s));
      continue;
    }
    if (n["member"]) r.error(n["member"], "fault: 'member' is for member_kill and member_partition faults");
    s.node = r.str(n, "node", "fault", true).value_or("");
    const std::string what = "fault on '" + s.node + "'";
    if (const node_spec* ns = t.node(s.node)) {
      if (ns->kind != node_kind::ring) r.error(n["node"], what + ": faults are injected into ring nodes' devices");
    } else if (!s.node.empty()) {
      r.error(n["node"], what + ": no node named '" + s.node + "'");
    }
    s.kind = r.str(n, "kind", what, true).value_or("");
    const node_spec* target = t.node(s.node);
    const bool hosted = target && target->host == "process";
    if (s.kind == "kill_worker") {
      // SIGKILL of the node's kernel-host workers, sent by the service at at_s.
      if (target && !hosted) r.error(n["kind"], what + ": 'kill_worker' is for nodes with host: process");
      if (!n["at_s"]) r.error(n, what + ": 'kill_worker' is triggered by 'at_s'");
    } else if (s.kind == "actor_crash") {
      // The ring actor itself is killed (the message that triggers it is answered `stopped`); its
      // OTP supervisor restarts it. Triggers count the messages routed to the node, like a device's.
      if (n["latency_us"]) r.error(n["latency_us"], what + ": 'latency_us' is for slow faults");
    } else if (!s.kind.empty() && !sim::fault_kind_from(s.kind)) {
      r.error(n["kind"], what + ": unknown fault kind '" + s.kind + "' (known: " + kinds + ")");
    } else if (hosted && s.kind == "device_lost") {
      r.error(n["kind"], what + ": 'device_lost' is for in-process nodes (a kernel host's device is its worker)");
    } else if (hosted && target && (target->backend == "cuda" || target->backend == "hip")) {
      // A GPU worker's kernel runs on the device: there is no fault injector in its path.
      r.error(n["kind"], what + ": '" + s.kind + "' is injected by the sim backend; a host: process node on " +
                             target->backend + " takes kill_worker and actor_crash faults");
    }
    int triggers = 0;
    if (auto x = r.num<double>(n, "at_s", what, 0, 1e7)) s.at_s = *x, ++triggers;
    if (auto x = r.num<std::uint64_t>(n, "at_message", what, 1, ~0ull)) s.at_message = *x, ++triggers;
    if (auto x = r.num<double>(n, "probability", what, 1e-9, 1)) s.probability = *x, ++triggers;
    const int given = !!n["at_s"] + !!n["at_message"] + !!n["probability"];
    if (given == 0) r.error(n, what + ": needs one trigger: 'at_s', 'at_message' or 'probability'");
    else if (given > 1) r.error(n, what + ": give only one trigger of 'at_s', 'at_message', 'probability'");
    s.times = r.num<std::uint32_t>(n, "times", what, 0, 1000000).value_or(1);
    s.latency_us = r.num<std::uint32_t>(n, "latency_us", what, 1, 60000000).value_or(1000);
    if (n["restore_after_s"]) {
      if (s.kind != "device_lost" && !s.on_member())
        r.error(n["restore_after_s"], what + ": 'restore_after_s' is for device_lost faults");
      s.restore_after_s = r.num<double>(n, "restore_after_s", what, 0, 1e7).value_or(-1);
    }
    (void)triggers;
    t.faults.push_back(std::move(s));
  }
}

// The `config:` block as a yaml-cpp node for the config layer (config.cpp reads YAML that way),
// its marks those of the whole file: the block's own text, after as many newlines and spaces as
// precede it. False with the reason in `out` (a scalar) when yaml-cpp refuses it (an alias of an
// anchor outside the block).
bool config_block(const std::string& text, const yaml::node& c, YAML::Node& out) {
  const yaml::doc_node* d = c.raw();
  const std::size_t b = yaml::byte_offset(text, d->start), e = std::max(yaml::byte_offset(text, d->end), b);
  std::string padded(static_cast<std::size_t>(std::max(0, d->start.line)), '\n');
  padded.append(static_cast<std::size_t>(std::max(0, d->start.column)), ' ');
  padded.append(text, b, e - b);
  try {
    out = YAML::Load(padded);
    return true;
  } catch (const YAML::Exception& x) {
    out = YAML::Node(x.msg + " (aliases in 'config' name anchors inside it)");
    return false;
  }
}

// One size limit: the caller's, else the file's own `config: {limits: {key: N}}`, else the default.
// A malformed value in the file is left to the config layer (it reports it); the default holds here.
std::int64_t limit_of(const std::optional<std::int64_t>& given, const yaml::node& root, const char* key,
                      std::int64_t fallback) {
  if (given) return *given;
  const yaml::node c = root["config"];
  if (!c || !c.IsMap() || !c["limits"] || !c["limits"].IsMap()) return fallback;
  const yaml::node v = c["limits"][key];
  if (!v || !v.IsScalar()) return fallback;
  std::int64_t x = 0;
  const std::string& t = v.Scalar();
  const auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), x);
  return ec == std::errc() && p == t.data() + t.size() && x > 0 ? x : fallback;
}

// A section longer than its limit: one error, and the section is not read (a file past a limit
// is refused before its parts are validated, so the limit also bounds the time spent on it).
bool within(reader& r, const yaml::node& list, const char* section, const char* key, std::int64_t limit) {
  if (!list || !list.IsSequence() || static_cast<std::int64_t>(list.size()) <= limit) return true;
  r.error(list, "'" + std::string(section) + "' has " + std::to_string(list.size()) + " entries, past limits." + key +
                    " (" + std::to_string(limit) + "); raise it in the config if this topology is meant");
  return false;
}

}  // namespace

std::optional<topology> parse_topology(const std::string& text, const std::string& file,
                                       std::vector<topology_error>& errors, const plugin_loader& plugins,
                                       const topology_limits& limits) {
  const std::size_t before = errors.size();
  reader r(file, errors);
  yaml::node root;
  try {
    root = yaml::load(text);
  } catch (const yaml::yaml_error& e) {
    r.error(source_pos{e.where.line + 1, e.where.column + 1}, std::string("YAML syntax error: ") + e.what());
    return std::nullopt;
  }
  if (!root || root.IsNull()) {
    r.error(source_pos{1, 1}, "the file is empty (a topology needs at least 'name' and 'nodes')");
    return std::nullopt;
  }
  topology t;
  t.file = file;
  if (!r.map(root, "the topology",
             {"name", "description", "plugins", "duration_s", "config", "nodes", "edges", "supervisors", "load",
              "faults", "cluster"}))
    return std::nullopt;
  // Plugins first: the rest of the file is checked against the names they add.
  if (!read_plugins(r, root["plugins"], t)) return std::nullopt;
  if (!t.plugins.empty()) {
    if (!plugins) {
      r.error(root["plugins"], "'plugins' cannot be loaded here (this reader has no plugin loader)");
      return std::nullopt;
    }
    const bool loaded = plugins(t.plugins, r.cat, errors);
    for (std::size_t i = before; i < errors.size(); ++i)
      if (errors[i].file.empty()) errors[i].file = file;  // the loader's problems are this file's
    if (!loaded) return std::nullopt;                     // the loader said why, per plugin
  }
  if (errors.size() != before) return std::nullopt;
  t.name = r.str(root, "name", "the topology", true).value_or("");
  if (root["description"] && root["description"].IsScalar()) t.description = root["description"].Scalar();
  t.duration_s = r.num<double>(root, "duration_s", "the topology", 0, 1e7).value_or(0);
  if (const yaml::node c = root["config"]) {
    t.config_pos = pos_of(c);
    if (!c.IsMap()) r.error(c, "'config' must be a mapping (the config file's sections)");
    else if (!config_block(text, c, t.config)) r.error(c, "'config': " + t.config.Scalar());
  }
  const std::int64_t max_nodes = limit_of(limits.max_nodes, root, "max_nodes", topology_limits::default_max_nodes);
  const std::int64_t max_edges = limit_of(limits.max_edges, root, "max_edges", topology_limits::default_max_edges);
  const std::int64_t max_depth = limit_of(limits.max_supervisor_depth, root, "max_supervisor_depth",
                                          topology_limits::default_max_supervisor_depth);
  // Every section past its limit is reported (not only the first).
  const bool fits_nodes = within(r, root["nodes"], "nodes", "max_nodes", max_nodes);
  const bool fits_edges = within(r, root["edges"], "edges", "max_edges", max_edges);
  const bool fits_supervisors = within(r, root["supervisors"], "supervisors", "max_nodes", max_nodes);
  if (!fits_nodes || !fits_edges || !fits_supervisors) return std::nullopt;
  read_cluster(r, root["cluster"], t);
  if (!root["nodes"]) r.error(root, "the topology: missing 'nodes'");
  else read_nodes(r, root["nodes"], t);
  t.reindex();
  read_edges(r, root["edges"], t);
  read_supervisors(r, root["supervisors"], t, max_depth);
  read_load(r, root["load"], t);
  read_faults(r, root["faults"], t);
  if (errors.size() != before) return std::nullopt;
  return t;
}

std::optional<topology> load_topology(const std::string& path, std::vector<topology_error>& errors,
                                      const plugin_loader& plugins, const topology_limits& limits) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    errors.push_back(topology_error{path, {}, "cannot read the file"});
    return std::nullopt;
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  return parse_topology(ss.str(), path, errors, plugins, limits);
}

}  // namespace ringflow::ops
