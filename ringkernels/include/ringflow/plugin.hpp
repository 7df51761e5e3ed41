// ringflow/plugin.hpp — kernel plugins: a shared library that adds ring kernels, their message
// types (with the load generator's hooks) and CPU functions to the program that loads it.
//
// Writing one (docs/KERNELS.md, "Run your kernel in a topology"; examples/plugin_example):
//
//   #include <ringflow/plugin.hpp>
//   #include "order_generated.h"           // flatc's classes of the kernel's types (the Verifier)
//   #include "quote_kernel.hpp"            // struct QuoteKernel { request = trial::rf::Order, ... }
//   RINGFLOW_KERNEL_PLUGIN(QuoteKernel)    // once per plugin, at namespace scope
//   RINGFLOW_PLUGIN_FUNCTION("audit", [](std::span<const std::uint8_t> m) { ...; return bytes; });
//
// and in CMake `ringflow_add_kernel_plugin(<name> SOURCES ...)` (cmake/RingflowPlugins.cmake).
//
// Contract (the ABI, version 1)
//   * The library exports one C symbol, `ringflow_plugin_v1`, a function returning a pointer to a
//     table_v1 that stays valid for the life of the process. Its first eight words (ABI version,
//     table size, ringflow major.minor.patch, FlatBuffers major.minor.revision) never move: a host
//     reads them before anything else and refuses a plugin whose ABI version, ringflow
//     major.minor or FlatBuffers version differs from its own, naming both.
//   * Everything crosses through the table: names, type ids and plain function pointers compiled
//     into the plugin (host_serve<K> for each kernel; the FlatBuffers Verifier, the load hooks and
//     the CPU functions behind C-style trampolines that never let an exception out). The plugin
//     links no ringflow library — only headers — so it has no copy of any host registry; the
//     host never calls into a plugin except through these pointers.
//   * Message types are named by their fully qualified table names (D::name_, e.g. "trial.Order").
//     A kernel's request and reply types are always in the table (once each).
//   * Load-generator hooks — optional static members of a kernel:
//       load_request(std::uint64_t seq, std::uint32_t payload_bytes) -> bytes (a finished buffer of
//           the request type carrying `seq`, its body about payload_bytes long; any container with
//           data() and size(): std::vector<std::uint8_t>, flatbuffers::DetachedBuffer)
//       load_sequence(std::span<const std::uint8_t> reply) -> std::optional<std::uint64_t>
//           (the sequence a reply carries)
//       check_reply(std::span<const std::uint8_t> reply) -> bool (is the reply right?)
//     The host calls them only with buffers its Verifier accepted. A request type without
//     load_request cannot be a topology's `load:` message (validate says so); a reply without
//     load_sequence is not matched to its request; check_reply false counts the answer `wrong`.
//   * CPU functions: RINGFLOW_PLUGIN_FUNCTION(name, callable) with callable(std::span<const
//     std::uint8_t>) returning std::vector<std::uint8_t> (the output) or
//     std::optional<std::vector<std::uint8_t>> (nullopt: no output, the message ends here); an
//     exception is the node's error for that message (errc::handler_fault with its text).
//   * Stateful kernels (kernel.hpp: `using state = S`, init, handle(in, out, S&)): their state
//     size, host_serve_state<K>, init, host_apply_state<K> and an optional JSON dump (a static
//     `std::string dump_state(const S&)` of the kernel) cross in kernel_state_v1, one per kernel;
//     a device table's state sizes in gpu_state_v1. Both arrays were appended to table_v1 within
//     ABI 1: a host reads them only from a table whose table_bytes covers them, so a plugin built
//     before them loads as before (its kernels stateless).
//   * Device code: RINGFLOW_PLUGIN_GPU_KERNELS(K...) in one .cu file of the plugin
//     (ringflow/gpu/plugin_kernels.cuh) adds a device kernel table; see docs/KERNELS.md for the
//     rule of one device table per backend per process.
// Thread-safety: the entry point may be called more than once (it returns the same table); the
// trampolines are reentrant when the kernel's hooks and the functions are.
#pragma once

#include <flatbuffers/flatbuffers.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "ringflow/host_serve.hpp"
#include "ringflow/kernel.hpp"
#include "ringflow/persistent.hpp"
#include "ringflow/version.hpp"

#define RINGFLOW_PLUGIN_ABI_VERSION 1u

namespace ringflow::plugin_abi {

/// Where a trampoline writes bytes it returns (output, error text): the host's buffer.
struct byte_sink {
  void* ctx = nullptr;
  void (*write)(void* ctx, const std::uint8_t* data, std::size_t n) = nullptr;
};

// Result codes of the trampolines.
inline constexpr int ok = 0;       // done (output written / sequence found / reply right)
inline constexpr int none = 1;     // no output / no sequence / reply wrong (why written)
inline constexpr int failed = -1;  // the user's code threw: the error sink has its text

struct kernel_v1 {
  const char* name;     // K::name
  const char* request;  // message type names (D::name_)
  const char* reply;
  type_id request_id;
  type_id reply_id;
  host_serve_fn serve;  // host_serve<K>, compiled into the plugin
};

/// A kernel's state parts (state_bytes 0: stateless, the rest null).
struct kernel_state_v1 {
  std::uint32_t state_bytes;
  host_serve_state_fn serve_state;                                              // host_serve_state<K>
  void (*init)(void* state);                                                    // host_init_state<K>
  void (*apply)(void* state, const std::uint8_t* request, std::uint32_t size);  // host_apply_state<K>
  int (*dump)(const void* state, byte_sink out, byte_sink error);               // K::dump_state, or null
};

/// A device table's state sizes by kernel index (null: no kernel of it keeps state).
struct gpu_state_v1 {
  std::uint32_t (*state_bytes)(std::uint32_t index);
};

struct message_v1 {
  const char* name;  // D::name_, e.g. "trial.Order"
  type_id id;        // D::type_id_
  /// flatc's Verifier of the root table with its identifier (the same FlatBuffers version as the
  /// host: the table says which, and a different one is refused).
  bool (*verify)(flatbuffers::Verifier& v);
  /// Load hooks; nullptr where the kernel provides none.
  int (*make)(std::uint64_t seq, std::uint32_t payload_bytes, byte_sink out, byte_sink error);
  int (*sequence_of)(const std::uint8_t* data, std::size_t n, std::uint64_t* seq, byte_sink error);
  int (*check)(const std::uint8_t* data, std::size_t n, byte_sink why);
};

struct function_v1 {
  const char* name;
  const char* help;
  void* ctx;
  int (*call)(void* ctx, const std::uint8_t* in, std::size_t n, byte_sink out, byte_sink error);
};

/// A device kernel table (mirrors gpu::kernel_table_info; the host registers it as its own).
struct gpu_table_v1 {
  const char* backend;  // "cuda", "hip" (or "emulated": the tests' host emulator)
  std::uint32_t size;
  const char* (*name)(std::uint32_t);
  type_id (*request_type)(std::uint32_t);
  type_id (*reply_type)(std::uint32_t);
  int (*launch)(unsigned blocks, unsigned threads, void* stream, const persistent_args& args);
};

struct table_v1 {
  // ---- fixed for every ABI version: read and checked first ----
  std::uint32_t abi_version;  // RINGFLOW_PLUGIN_ABI_VERSION
  std::uint32_t table_bytes;  // sizeof(table_v1) as the plugin saw it
  std::uint32_t ringflow_major, ringflow_minor, ringflow_patch;
  std::uint32_t flatbuffers_major, flatbuffers_minor, flatbuffers_revision;
  // ---- version 1 ----
  const char* plugin_name;  // the CMake target's name (RINGFLOW_PLUGIN_NAME)
  std::uint32_t kernel_count;
  const kernel_v1* kernels;
  std::uint32_t message_count;
  const message_v1* messages;
  std::uint32_t function_count;
  const function_v1* functions;
  std::uint32_t gpu_table_count;
  const gpu_table_v1* gpu_tables;
  // ---- appended within ABI 1 (read only when table_bytes covers them: table_v1_base_bytes) ----
  const kernel_state_v1* kernel_states;  // kernel_count entries, or null (every kernel stateless)
  const gpu_state_v1* gpu_states;        // gpu_table_count entries, or null
};

/// The size of table_v1 before the appended fields: the least table_bytes a host accepts.
inline constexpr std::uint32_t table_v1_base_bytes = static_cast<std::uint32_t>(offsetof(table_v1, kernel_states));

/// The entry point's type and name.
using entry_fn = const table_v1* (*)();
inline constexpr const char* entry_symbol = "ringflow_plugin_v1";

}  // namespace ringflow::plugin_abi

// ================================================================================================
// The plugin side: what RINGFLOW_KERNEL_PLUGIN and RINGFLOW_PLUGIN_FUNCTION expand to.
// ================================================================================================
#if !defined(RINGFLOW_PLUGIN_NAME)
#define RINGFLOW_PLUGIN_NAME "unnamed"
#endif

namespace ringflow::plugin_detail {

namespace abi = ringflow::plugin_abi;

inline void put(abi::byte_sink s, const void* p, std::size_t n) {
  if (s.write) s.write(s.ctx, static_cast<const std::uint8_t*>(p), n);
}
inline void put_error(abi::byte_sink s, const char* what) { put(s, what, std::strlen(what)); }

template <class D>
struct identifier_of {
  static constexpr char value[5] = {static_cast<char>(D::type_id_ & 0xff), static_cast<char>((D::type_id_ >> 8) & 0xff),
                                    static_cast<char>((D::type_id_ >> 16) & 0xff),
                                    static_cast<char>((D::type_id_ >> 24) & 0xff), 0};
};

template <class D>
concept has_complete_flatc_type = requires {
  sizeof(typename D::flatc_type_);
};

template <class D>
bool verify(flatbuffers::Verifier& v) {
  static_assert(has_complete_flatc_type<D>,
                "ringflow plugin: include flatc's <stem>_generated.h for every message type of the plugin's kernels "
                "(the descriptor's flatc_type_ must be complete: the host verifies with flatc's Verifier)");
  return v.VerifyBuffer<typename D::flatc_type_>(identifier_of<D>::value);
}

template <class K>
concept has_load_request = requires(std::uint64_t s, std::uint32_t n) {
  {K::load_request(s, n).data()};
  {K::load_request(s, n).size()};
};
template <class K>
concept has_load_sequence = requires(std::span<const std::uint8_t> r) {
  { K::load_sequence(r) } -> std::convertible_to<std::optional<std::uint64_t>>;
};
template <class K>
concept has_check_reply = requires(std::span<const std::uint8_t> r) {
  { K::check_reply(r) } -> std::convertible_to<bool>;
};

template <class K>
int make(std::uint64_t seq, std::uint32_t payload_bytes, abi::byte_sink out, abi::byte_sink error) {
  try {
    const auto r = K::load_request(seq, payload_bytes);
    put(out, r.data(), r.size());
    return abi::ok;
  } catch (const std::exception& e) {
    put_error(error, e.what());
  } catch (...) {
    put_error(error, "load_request threw a non-standard exception");
  }
  return abi::failed;
}

template <class K>
int sequence_of(const std::uint8_t* data, std::size_t n, std::uint64_t* seq, abi::byte_sink error) {
  try {
    const std::optional<std::uint64_t> s = K::load_sequence(std::span<const std::uint8_t>(data, n));
    if (!s) return abi::none;
    *seq = *s;
    return abi::ok;
  } catch (const std::exception& e) {
    put_error(error, e.what());
  } catch (...) {
    put_error(error, "load_sequence threw a non-standard exception");
  }
  return abi::failed;
}

template <class K>
int check(const std::uint8_t* data, std::size_t n, abi::byte_sink why) {
  try {
    if (K::check_reply(std::span<const std::uint8_t>(data, n))) return abi::ok;
    put_error(why, "check_reply refused the reply");
    return abi::none;
  } catch (const std::exception& e) {
    put_error(why, e.what());
  } catch (...) {
    put_error(why, "check_reply threw a non-standard exception");
  }
  return abi::failed;
}

// ---- CPU functions (RINGFLOW_PLUGIN_FUNCTION): the plugin's own list, filled before main/dlopen returns ----
struct function_entry {
  std::string name;
  std::function<std::optional<std::vector<std::uint8_t>>(std::span<const std::uint8_t>)> fn;
};
inline std::vector<function_entry>& functions() {
  static std::vector<function_entry> v;
  return v;
}
template <class F>
bool add_function(const char* name, F f) {
  functions().push_back(
      function_entry{name, [f = std::move(f)](std::span<const std::uint8_t> in) mutable {
                       using R = decltype(f(in));
                       if constexpr (std::is_convertible_v<R, std::optional<std::vector<std::uint8_t>>>) {
                         return std::optional<std::vector<std::uint8_t>>(f(in));
                       } else {
                         static_assert(std::is_same_v<R, void>,
                                       "RINGFLOW_PLUGIN_FUNCTION: the callable returns "
                                       "std::vector<std::uint8_t> or an optional of it");
                         return std::optional<std::vector<std::uint8_t>>{};
                       }
                     }});
  return true;
}
inline int call_function(void* ctx, const std::uint8_t* in, std::size_t n, abi::byte_sink out, abi::byte_sink error) {
  try {
    auto* e = static_cast<function_entry*>(ctx);
    std::optional<std::vector<std::uint8_t>> r = e->fn(std::span<const std::uint8_t>(in, n));
    if (!r) return abi::none;
    put(out, r->data(), r->size());
    return abi::ok;
  } catch (const std::exception& e) {
    put_error(error, e.what());
  } catch (...) {
    put_error(error, "the function threw a non-standard exception");
  }
  return abi::failed;
}

// ---- device tables (RINGFLOW_PLUGIN_GPU_KERNELS / RINGFLOW_PLUGIN_GPU_TABLE) ----
inline std::vector<abi::gpu_table_v1>& gpu_tables() {
  static std::vector<abi::gpu_table_v1> v;
  return v;
}
inline std::vector<abi::gpu_state_v1>& gpu_states() {
  static std::vector<abi::gpu_state_v1> v;
  return v;
}
template <class Table>
std::uint32_t gpu_state_bytes(std::uint32_t index) {
  return index < Table::size ? Table::state_bytes(index) : 0;
}
template <class Table>
bool add_gpu_table(const abi::gpu_table_v1& t) {
  gpu_tables().push_back(t);
  gpu_states().push_back(abi::gpu_state_v1{Table::max_state_bytes ? &gpu_state_bytes<Table> : nullptr});
  return true;
}

// ---- stateful kernels ----
template <class K>
concept has_dump_state = requires(const typename K::state& s) {
  { K::dump_state(s) } -> std::convertible_to<std::string>;
};
template <class K>
int dump_state(const void* state, abi::byte_sink out, abi::byte_sink error) {
  try {
    const std::string j = K::dump_state(*static_cast<const typename K::state*>(state));
    put(out, j.data(), j.size());
    return abi::ok;
  } catch (const std::exception& e) {
    put_error(error, e.what());
  } catch (...) {
    put_error(error, "dump_state threw a non-standard exception");
  }
  return abi::failed;
}
template <class K>
abi::kernel_state_v1 state_of() {
  if constexpr (stateful_kernel<K>) {
    int (*dump)(const void*, abi::byte_sink, abi::byte_sink) = nullptr;
    if constexpr (has_dump_state<K>) dump = &dump_state<K>;
    return abi::kernel_state_v1{state_bytes_of<K>, &host_serve_state<K>, &host_init_state<K>, &host_apply_state<K>,
                                dump};
  } else {
    return abi::kernel_state_v1{0, nullptr, nullptr, nullptr, nullptr};
  }
}

// ---- the table ----
template <class D>
void add_message(std::vector<abi::message_v1>& ms) {
  for (const auto& m : ms)
    if (m.id == D::type_id_) return;
  ms.push_back(abi::message_v1{D::name_, D::type_id_, &verify<D>, nullptr, nullptr, nullptr});
}
template <class D>
abi::message_v1& message_of(std::vector<abi::message_v1>& ms) {
  for (auto& m : ms)
    if (m.id == D::type_id_) return m;
  return ms.front();  // unreachable: add_message ran first
}

template <class K>
void add_kernel(std::vector<abi::kernel_v1>& ks, std::vector<abi::kernel_state_v1>& ss,
                std::vector<abi::message_v1>& ms) {
  static_assert(ring_kernel<K>, "RINGFLOW_KERNEL_PLUGIN: every argument must satisfy ringflow::ring_kernel");
  using Rq = typename K::request;
  using Rp = typename K::reply;
  // (A stateful kernel's `serve` answers `internal` without its state: a host that reads no
  // kernel_states cannot serve it, and says so on every request.)
  ks.push_back(abi::kernel_v1{K::name, Rq::name_, Rp::name_, Rq::type_id_, Rp::type_id_, &host_serve<K>});
  ss.push_back(state_of<K>());
  add_message<Rq>(ms);
  add_message<Rp>(ms);
  if constexpr (has_load_request<K>) {
    if (!message_of<Rq>(ms).make) message_of<Rq>(ms).make = &make<K>;
  }
  if constexpr (has_load_sequence<K>) {
    if (!message_of<Rp>(ms).sequence_of) message_of<Rp>(ms).sequence_of = &sequence_of<K>;
  }
  if constexpr (has_check_reply<K>) {
    if (!message_of<Rp>(ms).check) message_of<Rp>(ms).check = &check<K>;
  }
}

template <class... Ks>
const abi::table_v1* table() {
  struct built {
    std::vector<abi::kernel_v1> kernels;
    std::vector<abi::kernel_state_v1> states;
    std::vector<abi::message_v1> messages;
    std::vector<abi::function_v1> functions;
    abi::table_v1 t{};
    built() {
      (add_kernel<Ks>(kernels, states, messages), ...);
      for (function_entry& f : plugin_detail::functions())
        functions.push_back(abi::function_v1{f.name.c_str(), "a plugin function", &f, &call_function});
      t.abi_version = RINGFLOW_PLUGIN_ABI_VERSION;
      t.table_bytes = sizeof(abi::table_v1);
      t.ringflow_major = RINGFLOW_VERSION_MAJOR;
      t.ringflow_minor = RINGFLOW_VERSION_MINOR;
      t.ringflow_patch = RINGFLOW_VERSION_PATCH;
      t.flatbuffers_major = FLATBUFFERS_VERSION_MAJOR;
      t.flatbuffers_minor = FLATBUFFERS_VERSION_MINOR;
      t.flatbuffers_revision = FLATBUFFERS_VERSION_REVISION;
      t.plugin_name = RINGFLOW_PLUGIN_NAME;
      t.kernel_count = static_cast<std::uint32_t>(kernels.size());
      t.kernels = kernels.data();
      t.message_count = static_cast<std::uint32_t>(messages.size());
      t.messages = messages.data();
      t.function_count = static_cast<std::uint32_t>(functions.size());
      t.functions = functions.data();
      t.gpu_table_count = static_cast<std::uint32_t>(gpu_tables().size());
      t.gpu_tables = gpu_tables().data();
      t.kernel_states = states.data();
      t.gpu_states = gpu_states().data();
    }
  };
  static const built b;  // built on the first call (after every static registration ran)
  return &b.t;
}

}  // namespace ringflow::plugin_detail

#define RINGFLOW_PLUGIN_CAT2_(a, b) a##b
#define RINGFLOW_PLUGIN_CAT_(a, b) RINGFLOW_PLUGIN_CAT2_(a, b)

/// Declares the plugin's kernels (once per plugin, at namespace scope, outside any namespace).
#define RINGFLOW_KERNEL_PLUGIN(...)                                                                                \
  extern "C" __attribute__((visibility("default"))) const ::ringflow::plugin_abi::table_v1* ringflow_plugin_v1() { \
    return ::ringflow::plugin_detail::table<__VA_ARGS__>();                                                        \
  }

/// Adds a CPU function node `name` (a string literal) to the plugin (at namespace scope).
#define RINGFLOW_PLUGIN_FUNCTION(name, ...)                                                                          \
  namespace {                                                                                                        \
  [[maybe_unused]] const bool RINGFLOW_PLUGIN_CAT_(ringflow_plugin_function_,                                        \
                                                   __LINE__) = ::ringflow::plugin_detail::add_function(name,         \
                                                                                                       __VA_ARGS__); \
  }

/// Adds a device kernel table (backend name, table type, launch function) to the plugin; the .cu
/// form is RINGFLOW_PLUGIN_GPU_KERNELS (ringflow/gpu/plugin_kernels.cuh).
#define RINGFLOW_PLUGIN_GPU_TABLE(backend, Table, launch)                                         \
  namespace {                                                                                     \
  [[maybe_unused]] const bool RINGFLOW_PLUGIN_CAT_(ringflow_plugin_gpu_table_, __LINE__) =        \
      ::ringflow::plugin_detail::add_gpu_table<Table>(::ringflow::plugin_abi::gpu_table_v1{       \
          backend, Table::size, &Table::name, &Table::request_type, &Table::reply_type, launch}); \
  }
