// Kernel plugins: see ringflow/runtime/plugins.hpp (the ABI: ringflow/plugin.hpp).
#include "ringflow/runtime/plugins.hpp"

#include <dlfcn.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>

#include <nlohmann/json.hpp>

#include "ringflow/gpu/kernel_registry.hpp"
#include "ringflow/plugin.hpp"
#include "ringflow/runtime/catalog.hpp"
#include "ringflow/runtime/program.hpp"

namespace ringflow::ops {
namespace {

namespace abi = plugin_abi;

constexpr std::size_t max_name = 128;

std::string version_text(std::uint32_t a, std::uint32_t b, std::uint32_t c) {
  return std::to_string(a) + "." + std::to_string(b) + "." + std::to_string(c);
}
const std::string& host_ringflow_version() {
  static const std::string v = version_text(RINGFLOW_VERSION_MAJOR, RINGFLOW_VERSION_MINOR, RINGFLOW_VERSION_PATCH);
  return v;
}
const std::string& host_flatbuffers_version() {
  static const std::string v =
      version_text(FLATBUFFERS_VERSION_MAJOR, FLATBUFFERS_VERSION_MINOR, FLATBUFFERS_VERSION_REVISION);
  return v;
}

std::string type_text(type_id id) {
  std::string s = "\"";
  for (int i = 0; i < 4; ++i) {
    const char c = static_cast<char>((id >> (8 * i)) & 0xff);
    s += (c >= 32 && c < 127) ? c : '?';
  }
  return s + "\"";
}

// A file descriptor that closes itself.
struct fd_guard {
  int fd = -1;
  ~fd_guard() {
    if (fd >= 0) ::close(fd);
  }
};

std::string sha256_of_fd(int fd, std::string& error) {
  std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1) {
    error = "cannot hash (OpenSSL SHA-256 unavailable)";
    return {};
  }
  std::vector<unsigned char> buf(1 << 16);
  for (off_t at = 0;;) {
    const ssize_t n = ::pread(fd, buf.data(), buf.size(), at);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      error = std::string("cannot read: ") + std::strerror(errno);
      return {};
    }
    if (n == 0) break;
    EVP_DigestUpdate(ctx.get(), buf.data(), static_cast<std::size_t>(n));
    at += n;
  }
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx.get(), md, &len);
  static const char* hex = "0123456789abcdef";
  std::string s = "sha256:";
  for (unsigned int i = 0; i < len; ++i) s += hex[md[i] >> 4], s += hex[md[i] & 15];
  return s;
}

// ---- host-side wrappers of the table's trampolines ----

void append(void* ctx, const std::uint8_t* p, std::size_t n) {
  auto* v = static_cast<std::vector<std::uint8_t>*>(ctx);
  v->insert(v->end(), p, p + n);
}
abi::byte_sink sink(std::vector<std::uint8_t>& v) { return abi::byte_sink{&v, &append}; }
std::string text(const std::vector<std::uint8_t>& v) {
  return std::string(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(std::min<std::size_t>(v.size(), 512)));
}

bool run_verifier(payload_registry::verify_fn verify, const fb_msg& m) {
  if (m.bytes.size() < 8) return false;
  flatbuffers::Verifier v(m.bytes.data(), m.bytes.size());
  return verify(v);
}

message_info message_from(const abi::message_v1& m, const std::string& origin) {
  message_info info;
  info.name = m.name;
  info.full_name = m.name;
  info.id = m.id;
  info.origin = origin;
  info.verifier = m.verify;
  const payload_registry::verify_fn verify = m.verify;
  info.verify = [verify](const fb_msg& x) { return run_verifier(verify, x); };
  const std::string name = m.name;
  if (m.make) {
    auto make = m.make;
    info.make = [make, verify, name, origin](std::uint64_t seq, std::uint32_t bytes) {
      std::vector<std::uint8_t> out, err;
      if (make(seq, bytes, sink(out), sink(err)) != abi::ok)
        throw std::runtime_error("plugin " + origin + ": load_request of " + name + " threw: " + text(err));
      fb_msg msg(std::move(out));
      if (!run_verifier(verify, msg))
        throw std::runtime_error("plugin " + origin + ": load_request of " + name +
                                 " made a buffer its Verifier refuses (finish it with the type's identifier)");
      return msg;
    };
  }
  if (m.sequence_of) {
    auto seq_of = m.sequence_of;
    info.sequence_of = [seq_of, verify](const fb_msg& x) -> std::optional<std::uint64_t> {
      if (!run_verifier(verify, x)) return std::nullopt;
      std::uint64_t s = 0;
      std::vector<std::uint8_t> err;
      if (seq_of(x.bytes.data(), x.bytes.size(), &s, sink(err)) != abi::ok) return std::nullopt;
      return s;
    };
  }
  if (m.check) {
    auto check = m.check;
    info.check = [check, verify](const fb_msg& x, std::string& why) {
      if (!run_verifier(verify, x)) {
        why = "fails its Verifier";
        return false;
      }
      std::vector<std::uint8_t> w;
      const int r = check(x.bytes.data(), x.bytes.size(), sink(w));
      if (r == abi::ok) return true;
      why = (r == abi::failed ? "check_reply threw: " : "") + text(w);
      return false;
    };
  }
  return info;
}

// `st`: the kernel's state parts (null or state_bytes 0: stateless; checked by the caller).
kernel_info kernel_from(const abi::kernel_v1& k, const abi::kernel_state_v1* st, const std::string& request,
                        const std::string& reply, const std::string& origin) {
  cpu::kernel_binding b{k.name, k.request_id, k.reply_id, k.serve};
  kernel_info info;
  const std::uint32_t sb = st ? st->state_bytes : 0;
  if (sb) {  // a stateful kernel: each channel keeps its state; the rings carry snapshots
    b.serve = nullptr;
    b.serve_state = st->serve_state;
    b.state_bytes = sb;
    b.init_state = st->init;
    info.state_bytes = sb;
    auto init = st->init;
    auto apply = st->apply;
    info.init_state = [init](std::uint8_t* s) { init(s); };
    info.apply_state = [apply](std::uint8_t* s, const std::uint8_t* r, std::uint32_t n) { apply(s, r, n); };
    if (auto dump = st->dump)
      info.dump_state = [dump](const std::uint8_t* s) {
        std::vector<std::uint8_t> out, err;
        if (dump(s, sink(out), sink(err)) != abi::ok) return nlohmann::json{{"dump_state_error", text(err)}}.dump();
        return text(out);
      };
  }
  info.name = k.name;
  info.request = request;
  info.reply = reply;
  info.request_id = k.request_id;
  info.reply_id = k.reply_id;
  info.cpu_factory = [b, sb](cpu_incarnation_options o) {
    return cpu_incarnation_factory(b, with_state_room(std::move(o), sb));
  };
  info.sim_factory = [b, sb](sim::sim_device& d, cpu_incarnation_options o) {
    return d.wrap(cpu_incarnation_factory(b, with_state_room(std::move(o), sb)));
  };
  info.origin = origin;
  return info;
}

function_info function_from(const abi::function_v1& f, const std::string& origin) {
  function_info info;
  info.name = f.name;
  info.help = f.help ? f.help : "";
  info.origin = origin;
  auto call = f.call;
  void* ctx = f.ctx;
  const std::string name = f.name;
  info.make = [call, ctx, name](const message_info& type) -> cpu_node_fn {
    const type_id in_type = type.id;
    const std::string type_name = type.name;
    return [call, ctx, name, in_type, type_name](const fb_msg& m) -> std::optional<fb_msg> {
      std::vector<std::uint8_t> out, err;
      const int r = call(ctx, m.bytes.data(), m.bytes.size(), sink(out), sink(err));
      if (r == abi::none) return std::nullopt;
      if (r != abi::ok) throw std::invalid_argument("function " + name + ": " + text(err));
      fb_msg o(std::move(out));
      if (o.type() != in_type)
        throw std::invalid_argument("function " + name +
                                    " returned a message of another type (its node takes and "
                                    "gives " +
                                    type_name + ")");
      o.deadline_ns = m.deadline_ns;
      o.trace_hi = m.trace_hi, o.trace_lo = m.trace_lo, o.span = m.span;
      return o;
    };
  };
  return info;
}

bool sane_name(const char* s) { return s && *s && std::strlen(s) <= max_name; }

// One file being loaded.
struct staged {
  std::string path;
  void* handle = nullptr;  // dlopen's (null: compiled in, or already loaded)
  bool fresh = false;      // new to the catalog (false: already loaded, reused)
  loaded_plugin info;
  const abi::table_v1* table = nullptr;
  std::vector<message_info> messages;
  std::vector<kernel_info> kernels;
  std::vector<function_info> functions;
  std::vector<gpu::kernel_table_info> gpu;
  std::string origin;  // "plugin <path>" (gpu tables keep a pointer to it: stored in `origins`)
};

struct plugin_state {
  std::mutex mu;                      // one load at a time
  std::vector<loaded_plugin> loaded;  // in load order
  std::deque<std::string> origins;    // stable strings the GPU registry points to
  // Descriptors dlopen saw as /proc/self/fd/N: held for the life of the process. The dynamic
  // loader finds an object already loaded by its name before it opens anything, so a name
  // /proc/self/fd/N must never come back for another file while any object loaded under it may
  // still be mapped (a plugin, or a refused one that dlclose could not unload).
  std::vector<int> held_fds;
};
plugin_state& pstate() {
  static plugin_state s;
  return s;
}

// Checks a table's versions and shape; "" when good.
std::string check_table(staged& s) {
  const abi::table_v1* t = s.table;
  if (!t) return "its entry point returned no table";
  if (t->abi_version != RINGFLOW_PLUGIN_ABI_VERSION)
    return "plugin ABI version " + std::to_string(t->abi_version) + ", this program's is " +
           std::to_string(RINGFLOW_PLUGIN_ABI_VERSION) + " (rebuild the plugin against this ringflow)";
  const std::string rf = version_text(t->ringflow_major, t->ringflow_minor, t->ringflow_patch);
  const std::string fb = version_text(t->flatbuffers_major, t->flatbuffers_minor, t->flatbuffers_revision);
  if (t->ringflow_major != RINGFLOW_VERSION_MAJOR || t->ringflow_minor != RINGFLOW_VERSION_MINOR)
    return "built with ringflow " + rf + ", this program is ringflow " + host_ringflow_version() +
           " (major.minor must match: rebuild the plugin against this ringflow)";
  if (fb != host_flatbuffers_version())
    return "built with FlatBuffers " + fb + ", this program uses FlatBuffers " + host_flatbuffers_version() +
           " (the Verifiers cross the boundary: the versions must be equal)";
  if (t->table_bytes < abi::table_v1_base_bytes)
    return "its table is " + std::to_string(t->table_bytes) + " bytes, ABI 1 needs " +
           std::to_string(abi::table_v1_base_bytes);
  s.info.ringflow_version = rf;
  s.info.flatbuffers_version = fb;
  s.info.name = sane_name(t->plugin_name) ? t->plugin_name : "unnamed";
  if ((t->kernel_count && !t->kernels) || (t->message_count && !t->messages) || (t->function_count && !t->functions) ||
      (t->gpu_table_count && !t->gpu_tables))
    return "its table has counts without arrays";
  if (t->kernel_count + t->message_count + t->function_count == 0) return "it adds no kernel, message or function";
  if (t->kernel_count > 4096 || t->message_count > 4096 || t->function_count > 4096 || t->gpu_table_count > 16)
    return "its table is implausibly large";
  s.fresh = true;
  return {};
}

// Opens one file and reads its table into `s`; "" when good.
std::string open_plugin(staged& s, const std::string& expected) {
  fd_guard f;
  f.fd = ::open(s.path.c_str(), O_RDONLY | O_CLOEXEC);
  if (f.fd < 0) return std::string("cannot open the file: ") + std::strerror(errno);
  struct stat st {};
  if (::fstat(f.fd, &st) != 0 || !S_ISREG(st.st_mode)) return "not a regular file";
  std::string err;
  s.info.sha256 = sha256_of_fd(f.fd, err);
  if (s.info.sha256.empty()) return err;
  if (!expected.empty() && expected != s.info.sha256)
    return "content hash " + s.info.sha256 + " differs from the service's " + expected +
           " (the file changed after the service loaded it)";
  for (const loaded_plugin& l : pstate().loaded) {
    if (l.sha256 == s.info.sha256) {  // the same content: already in the catalog
      s.info = l;
      s.info.path = s.path;
      return {};
    }
    if (l.path == s.path)
      return "a different file was loaded from this path before (" + l.sha256 + ", now " + s.info.sha256 +
             "): a running process cannot replace a plugin";
  }
  const std::string fd_path = "/proc/self/fd/" + std::to_string(f.fd);
  pstate().held_fds.push_back(f.fd);  // its number is never reused (see plugin_state)
  f.fd = -1;
  s.handle = ::dlopen(fd_path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!s.handle) {
    const char* e = ::dlerror();
    return std::string("not a loadable shared library: ") + (e ? e : "dlopen failed");
  }
  auto entry = reinterpret_cast<abi::entry_fn>(::dlsym(s.handle, abi::entry_symbol));
  if (!entry) return std::string("not a ringflow plugin: it exports no ") + abi::entry_symbol;
  try {
    s.table = entry();
  } catch (const std::exception& e) {
    return std::string("its entry point threw: ") + e.what();
  } catch (...) {
    return "its entry point threw a non-standard exception";
  }
  return check_table(s);
}

// Checks the contents of every staged table against each other and the catalog; fills the
// entries. Problems go to `problems`.
void check_contents(std::vector<staged>& files, std::vector<plugin_problem>& problems) {
  // What exists: the catalog (built-ins, earlier plugins) by name and id.
  std::map<std::string, std::string> message_by_name;  // name -> origin
  std::map<type_id, const message_info*> catalog_ids;
  for (const message_info& m : message_catalog()) message_by_name[m.name] = m.origin, catalog_ids[m.id] = &m;
  std::map<std::string, std::string> kernel_by_name, function_by_name;
  for (const kernel_info& k : kernel_catalog()) kernel_by_name[k.name] = k.origin;
  for (const function_info& f : function_catalog()) function_by_name[f.name] = f.origin;
  std::map<type_id, std::string> staged_ids;  // id -> name, among this call's new types

  for (staged& s : files) {
    if (!s.fresh) continue;  // reused
    auto bad = [&](const std::string& what) { problems.push_back({s.path, what}); };
    const abi::table_v1& t = *s.table;
    // The arrays appended within ABI 1: only from a table that is large enough to hold them.
    const bool appended = t.table_bytes >= sizeof(abi::table_v1);
    const abi::kernel_state_v1* states = appended && t.kernel_count ? t.kernel_states : nullptr;
    const abi::gpu_state_v1* gstates = appended && t.gpu_table_count ? t.gpu_states : nullptr;
    // Messages first: kernels refer to them.
    std::map<type_id, std::string> own;  // id -> name as the catalog will know it
    for (std::uint32_t i = 0; i < t.message_count; ++i) {
      const abi::message_v1& m = t.messages[i];
      if (!sane_name(m.name) || !m.verify || m.id == 0) {
        bad("message #" + std::to_string(i) + ": needs a name (at most 128 characters), a type id and a verifier");
        continue;
      }
      if (auto it = catalog_ids.find(m.id); it != catalog_ids.end()) {
        if (it->second->full_name == m.name) {  // a built-in (or earlier) type the plugin's kernels use
          own[m.id] = it->second->name;
          continue;
        }
        bad("message type " + std::string(m.name) + ": type id " + type_text(m.id) + " is already " + it->second->name +
            "'s (" + it->second->origin + ")");
        continue;
      }
      if (auto it = staged_ids.find(m.id); it != staged_ids.end()) {
        if (it->second == m.name) {  // the same type as another plugin of this list: shared
          own[m.id] = m.name;
          continue;
        }
        bad("message type " + std::string(m.name) + ": type id " + type_text(m.id) + " is also " + it->second +
            "'s (another plugin of this list)");
        continue;
      }
      if (auto it = message_by_name.find(m.name); it != message_by_name.end()) {
        bad("message type " + std::string(m.name) + " is already defined (" + it->second + ")");
        continue;
      }
      message_by_name[m.name] = "plugin " + s.path;
      staged_ids[m.id] = m.name;
      own[m.id] = m.name;
      s.messages.push_back(message_from(m, s.path));
      s.info.messages.push_back(m.name);
      if (m.make) s.info.loadable.push_back(m.name);
    }
    for (std::uint32_t i = 0; i < t.kernel_count; ++i) {
      const abi::kernel_v1& k = t.kernels[i];
      if (!sane_name(k.name) || !k.serve || !k.request || !k.reply) {
        bad("kernel #" + std::to_string(i) + ": needs a name (at most 128 characters), types and a serve function");
        continue;
      }
      if (auto it = kernel_by_name.find(k.name); it != kernel_by_name.end()) {
        bad("kernel '" + std::string(k.name) + "' is already defined (" + it->second + ")");
        continue;
      }
      // Its types: the plugin's own, a built-in, or another plugin's of this list (by id).
      auto type_name = [&](type_id id, const char* declared) -> std::optional<std::string> {
        if (auto it = own.find(id); it != own.end()) return it->second;
        if (auto it = catalog_ids.find(id); it != catalog_ids.end()) return it->second->name;
        if (auto it = staged_ids.find(id); it != staged_ids.end() && it->second == declared) return it->second;
        return std::nullopt;
      };
      const std::optional<std::string> rq = type_name(k.request_id, k.request);
      const std::optional<std::string> rp = type_name(k.reply_id, k.reply);
      if (!rq || !rp) {
        bad("kernel '" + std::string(k.name) + "': its " + (!rq ? "request" : "reply") + " type " +
            (!rq ? k.request : k.reply) + " (" + type_text(!rq ? k.request_id : k.reply_id) +
            ") is unknown (not in this plugin, the built-ins or another loaded plugin)");
        continue;
      }
      // Its state parts (a table built before they were appended has none: stateless).
      const abi::kernel_state_v1* st = states ? &states[i] : nullptr;
      if (st && st->state_bytes && (!st->serve_state || !st->init || !st->apply || st->state_bytes > (64u << 20))) {
        bad("kernel '" + std::string(k.name) + "': keeps state but its table lacks serve_state, init or apply (or " +
            std::to_string(st->state_bytes) + " bytes of state: at most 64 MiB)");
        continue;
      }
      kernel_by_name[k.name] = "plugin " + s.path;
      s.kernels.push_back(kernel_from(k, st, *rq, *rp, s.path));
      s.info.kernels.push_back(k.name);
    }
    for (std::uint32_t i = 0; i < t.function_count; ++i) {
      const abi::function_v1& f = t.functions[i];
      if (!sane_name(f.name) || !f.call) {
        bad("function #" + std::to_string(i) + ": needs a name (at most 128 characters) and a call");
        continue;
      }
      if (auto it = function_by_name.find(f.name); it != function_by_name.end()) {
        bad("function '" + std::string(f.name) + "' is already defined (" + it->second + ")");
        continue;
      }
      function_by_name[f.name] = "plugin " + s.path;
      s.functions.push_back(function_from(f, s.path));
      s.info.functions.push_back(f.name);
    }
    for (std::uint32_t i = 0; i < t.gpu_table_count; ++i) {
      const abi::gpu_table_v1& g = t.gpu_tables[i];
      const std::string backend = g.backend ? g.backend : "";
      if ((backend != "cuda" && backend != "hip" && backend != "emulated") || g.size == 0 || !g.name ||
          !g.request_type || !g.reply_type || !g.launch) {
        bad("device table #" + std::to_string(i) + ": needs a backend (cuda, hip), kernels and a launch function");
        continue;
      }
      gpu::kernel_table_info info;
      info.backend = g.backend;
      info.size = g.size;
      info.name = g.name;
      info.request_type = g.request_type;
      info.reply_type = g.reply_type;
      info.launch = g.launch;
      if (gstates) info.state_bytes = gstates[i].state_bytes;  // null: no kernel of it keeps state
      s.gpu.push_back(info);
      s.info.gpu_backends.push_back(backend);
    }
  }
}

}  // namespace

std::string sha256_of_file(const std::string& path, std::string& error) {
  fd_guard f;
  f.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (f.fd < 0) {
    error = std::string("cannot open the file: ") + std::strerror(errno);
    return {};
  }
  return sha256_of_fd(f.fd, error);
}

namespace {
// Checks the staged files' contents, then adds them all to the catalog (or, on any problem,
// closes every one opened here). Holds pstate().mu.
bool commit(std::vector<staged>& files, std::vector<plugin_problem>& problems, std::size_t before,
            std::vector<loaded_plugin>& out) {
  plugin_state& ps = pstate();
  if (problems.size() == before) check_contents(files, problems);
  if (problems.size() == before) {
    std::vector<message_info> ms;
    std::vector<kernel_info> ks;
    std::vector<function_info> fs;
    for (staged& s : files) {
      for (auto& m : s.messages) ms.push_back(std::move(m));
      for (auto& k : s.kernels) ks.push_back(std::move(k));
      for (auto& f : s.functions) fs.push_back(std::move(f));
    }
    try {
      add_to_catalog(std::move(ms), std::move(ks), std::move(fs));
    } catch (const std::exception& e) {
      problems.push_back({files.empty() ? std::string() : files.front().path, e.what()});
    }
  }
  if (problems.size() != before) {
    for (staged& s : files)
      if (s.handle) ::dlclose(s.handle);  // nothing of them is used: unload
    return false;
  }
  for (staged& s : files) {
    if (s.fresh) {
      ps.origins.push_back("plugin " + s.path);
      for (gpu::kernel_table_info& g : s.gpu) {
        g.origin = ps.origins.back().c_str();
        gpu::register_kernel_table(g);
      }
      ps.loaded.push_back(s.info);
    }
    out.push_back(s.info);
  }
  return true;
}
}  // namespace

bool load_plugins(const std::vector<std::string>& paths, std::vector<loaded_plugin>& out,
                  std::vector<plugin_problem>& problems, const std::vector<std::string>& expected_sha256) {
  std::lock_guard lock(pstate().mu);
  const std::size_t before = problems.size();
  std::vector<staged> files(paths.size());
  for (std::size_t i = 0; i < paths.size(); ++i) {
    files[i].path = paths[i];
    files[i].info.path = paths[i];
    const std::string expected = i < expected_sha256.size() ? expected_sha256[i] : std::string();
    if (std::string why = open_plugin(files[i], expected); !why.empty()) problems.push_back({paths[i], why});
  }
  return commit(files, problems, before, out);
}

bool add_compiled_in_plugin(const plugin_abi::table_v1* table, const std::string& origin) {
  std::lock_guard lock(pstate().mu);
  std::vector<staged> files(1);
  files[0].path = origin;
  files[0].info.path = origin;
  files[0].info.sha256 = "compiled-in";
  files[0].table = table;
  std::vector<plugin_problem> problems;
  std::vector<loaded_plugin> out;
  if (std::string why = check_table(files[0]); !why.empty()) problems.push_back({origin, why});
  if (commit(files, problems, 0, out)) return true;
  for (const plugin_problem& p : problems) std::fprintf(stderr, "ringflow: %s: %s\n", p.path.c_str(), p.what.c_str());
  return false;
}

std::vector<loaded_plugin> loaded_plugins() {
  std::lock_guard lock(pstate().mu);
  return pstate().loaded;
}

plugin_loader topology_plugin_loader() {
  return [](std::vector<plugin_ref>& refs, catalog_view& names, std::vector<topology_error>& errors) {
    std::vector<std::string> paths;
    for (const plugin_ref& r : refs) paths.push_back(r.resolved);
    std::vector<loaded_plugin> got;
    std::vector<plugin_problem> problems;
    if (!load_plugins(paths, got, problems)) {
      for (const plugin_problem& p : problems) {
        source_pos pos;
        std::string as_written = p.path;
        for (const plugin_ref& r : refs)
          if (r.resolved == p.path) pos = r.pos, as_written = r.path;
        errors.push_back(topology_error{"", pos, "plugin '" + as_written + "' (" + p.path + "): " + p.what});
      }
      return false;
    }
    for (std::size_t i = 0; i < refs.size(); ++i) {
      refs[i].sha256 = got[i].sha256;
      for (const std::string& k : got[i].kernels)
        if (const kernel_info* ki = find_kernel(k))
          names.kernels.push_back({ki->name, ki->request, ki->reply, ki->state_bytes != 0});
      for (const std::string& m : got[i].messages) names.messages.push_back(m);
      for (const std::string& m : got[i].loadable) names.loadable.push_back(m);
      for (const std::string& f : got[i].functions) names.functions.push_back(f);
    }
    return true;
  };
}

std::optional<topology> load_topology_with_plugins(const std::string& path, std::vector<topology_error>& errors,
                                                   const topology_limits& limits) {
  return load_topology(path, errors, topology_plugin_loader(), limits);
}

std::vector<std::string> worker_plugin_args(const std::vector<plugin_ref>& plugins) {
  std::vector<std::string> a;
  for (const plugin_ref& p : plugins) a.insert(a.end(), {"--plugin", p.resolved, "--plugin-sha256", p.sha256});
  return a;
}

}  // namespace ringflow::ops
