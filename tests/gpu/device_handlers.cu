// tests/gpu/device_handlers.cu — the device-portable headers, compiled for and run on a GPU.
//
// Part 1 (batch): for each demo kernel (Saxpy, Score, Echo) builds a seeded mix of requests on the
// host with fb::builder (absent fields, mismatched x/y, malformed bytes, wrong types, a reply too
// large for the response arena), pushes them into a ring region, copies it and an empty response
// ring region to the device and serves each ring from one device thread with serve_one<K> until
// idle, three times: rings in device memory served in place; rings in device memory served
// through staging buffers (serve_staging: the persistent kernel's chunked copies); and rings in
// mapped pinned host memory served through staging — the production path across PCIe. The same
// requests are served on the host with the same serve_one<K> in place; every reply (every header
// field and payload byte) must be identical, and the host replies must carry the expected statuses.
// Part 2 (ping-pong): a persistent device thread serves an Echo ring that lives in mapped pinned
// host memory (system-scope acquire/release across PCIe); the host pushes messages one at a time
// (round-trip latency) and then pipelined, checks every reply, and stops the kernel through a
// control_block in mapped memory. Host-side timeout: 10 s; the device side has its own idle
// watchdog so nothing hangs.
//
// Exit codes: 0 pass, 1 fail, 77 no usable GPU (ctest SKIP_RETURN_CODE; prints "SKIP: no usable
// <backend> device: <why>").
// The same source is compiled by nvcc (CUDA) and by hipcc -x hip; the shim below is the only
// backend conditional, and it is test code, not library code.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <random>
#include <string>
#include <vector>

// ---------------------------------------------------------------- CUDA / HIP shim (test only)
// GPU(Name) is cudaName / hipName. LAUNCH(kernel, blocks, threads, args...) launches a kernel.
// RINGFLOW_GPU_TEST_EMULATE (device_handlers_emulated.cpp, any host compiler): "device" memory is
// host memory and each block is a std::thread, so the test's own logic (request mix, reply
// comparison, ping-pong protocol, timeouts) is checked on machines without a GPU, under TSan too.
#if defined(RINGFLOW_GPU_TEST_EMULATE)
#include <thread>
#define __global__
#define __device__
#define GPU(name) emu##name
#define gpuHostAlloc(p, n) emuMalloc((p), (n))
#define gpuFreeHost emuFree
#define gpuDeviceProp emuDeviceProp
#define gpuAttrCanMapHostMemory 0
#define LAUNCH(kernel, blocks, threads, ...) emu_launch((blocks), [=] { kernel(__VA_ARGS__); })
namespace {
enum emuError_t { emuSuccess = 0, emuErrorMemoryAllocation = 2 };
enum emuMemcpyKind { emuMemcpyHostToDevice, emuMemcpyDeviceToHost };
struct emuDeviceProp {
  char name[64] = "host emulation (RINGFLOW_GPU_TEST_EMULATE)";
  int major = 0, minor = 0;
};
struct emu_dim3 {
  unsigned x = 0;
};
thread_local emu_dim3 blockIdx, threadIdx;
std::vector<std::thread> g_emu_blocks;
const char* emuGetErrorString(emuError_t e) { return e == emuSuccess ? "no error" : "out of memory"; }
emuError_t emuGetDeviceCount(int* n) {
  *n = 1;
  return emuSuccess;
}
emuError_t emuGetDeviceProperties(emuDeviceProp* p, int) {
  *p = emuDeviceProp{};
  return emuSuccess;
}
emuError_t emuDeviceGetAttribute(int* v, int, int) {
  *v = 1;
  return emuSuccess;
}
template <class T>
emuError_t emuMalloc(T** p, std::size_t n) {
  *p = static_cast<T*>(std::aligned_alloc(256, (n + 255) / 256 * 256));
  return *p ? emuSuccess : emuErrorMemoryAllocation;
}
emuError_t emuFree(void* p) {
  std::free(p);
  return emuSuccess;
}
emuError_t emuMemcpy(void* d, const void* s, std::size_t n, emuMemcpyKind) {
  std::memcpy(d, s, n);
  return emuSuccess;
}
emuError_t emuMemset(void* d, int v, std::size_t n) {
  std::memset(d, v, n);
  return emuSuccess;
}
emuError_t emuHostGetDevicePointer(void** d, void* h, unsigned) {
  *d = h;
  return emuSuccess;
}
emuError_t emuGetLastError() { return emuSuccess; }
emuError_t emuDeviceSynchronize() {
  for (auto& t : g_emu_blocks) t.join();
  g_emu_blocks.clear();
  return emuSuccess;
}
template <class F>
void emu_launch(unsigned blocks, F f) {
  for (unsigned b = 0; b < blocks; ++b)
    g_emu_blocks.emplace_back([f, b] {
      blockIdx.x = b;
      threadIdx.x = 0;
      f();
    });
}
}  // namespace
#elif defined(__HIPCC__)
#include <hip/hip_runtime.h>
#define GPU(name) hip##name
#define gpuHostAlloc(p, n) hipHostMalloc((p), (n), hipHostMallocMapped | hipHostMallocCoherent)
#define gpuFreeHost hipHostFree
#define gpuDeviceProp hipDeviceProp_t
#define gpuAttrCanMapHostMemory hipDeviceAttributeCanMapHostMemory
#define LAUNCH(kernel, blocks, threads, ...) kernel<<<(blocks), (threads)>>>(__VA_ARGS__)
#else
#include <cuda_runtime.h>
#define GPU(name) cuda##name
#define gpuHostAlloc(p, n) cudaHostAlloc((p), (n), cudaHostAllocMapped)
#define gpuFreeHost cudaFreeHost
#define gpuDeviceProp cudaDeviceProp
#define gpuAttrCanMapHostMemory cudaDevAttrCanMapHostMemory
#define LAUNCH(kernel, blocks, threads, ...) kernel<<<(blocks), (threads)>>>(__VA_ARGS__)
#endif

#include "ringflow/control_block.hpp"
#include "ringflow/demo_kernels.hpp"
#include "ringflow/fb_writer.hpp"
#include "ringflow/kernel.hpp"
#include "ringflow/messages.hpp"
#include "ringflow/ring.hpp"

namespace rf = ringflow;
namespace msg = ringflow::msg;
#if defined(RINGFLOW_GPU_TEST_EMULATE)
constexpr const char* kBackend = "emulated";
#elif defined(__HIPCC__)
constexpr const char* kBackend = "hip";
#else
constexpr const char* kBackend = "cuda";
#endif
using rf::demo_kernels::EchoKernel;
using rf::demo_kernels::SaxpyKernel;
using rf::demo_kernels::ScoreKernel;

#define CHECK(call)                                                                                       \
  do {                                                                                                    \
    const GPU(Error_t) e_ = (call);                                                                       \
    if (e_ != GPU(Success)) {                                                                             \
      std::fprintf(stderr, "%s:%d: %s failed: %s\n", __FILE__, __LINE__, #call, GPU(GetErrorString)(e_)); \
      std::exit(1);                                                                                       \
    }                                                                                                     \
  } while (0)

namespace {

int g_failures = 0;

#define EXPECT(cond, ...)                                                    \
  do {                                                                       \
    if (!(cond)) {                                                           \
      if (++g_failures <= 20) {                                              \
        std::fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
        std::fprintf(stderr, __VA_ARGS__);                                   \
        std::fprintf(stderr, "\n");                                          \
      }                                                                      \
    }                                                                        \
  } while (0)

// Device time in ns, for the ping-pong kernel's idle watchdog only.
__device__ inline std::uint64_t device_now_ns() {
#if defined(RINGFLOW_GPU_TEST_EMULATE)
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
          .count());
#elif defined(__HIPCC__)
#if defined(__HIP_DEVICE_COMPILE__)
  // s_memrealtime: the 100 MHz constant "REFCLK" counter on gfx9 (what wall_clock64() reads;
  // ROCm 5.2 declares wall_clock64 for the device pass only).
  return static_cast<std::uint64_t>(__builtin_amdgcn_s_memrealtime()) * 10u;
#else
  return 0;  // host pass of a __device__ function: never called
#endif
#else
  std::uint64_t t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
#endif
}

// Idle steps of the pollers: the ring's backoff / PAUSE on a GPU; a yield in emulation, where the
// "device" thread may share a core with the host thread.
__device__ inline void device_idle(rf::backoff& bo) {
#if defined(RINGFLOW_GPU_TEST_EMULATE)
  (void)bo;
  std::this_thread::yield();
#else
  bo.pause();
#endif
}
inline void host_idle() {
#if defined(RINGFLOW_GPU_TEST_EMULATE)
  std::this_thread::yield();
#else
  rf::cpu_relax();
#endif
}

// ---------------------------------------------------------------- host memory helpers

/// 128-byte aligned, zeroed host memory (ring regions want 128-byte alignment).
struct host_buffer {
  std::vector<std::uint8_t> storage;
  std::uint8_t* p = nullptr;
  explicit host_buffer(std::size_t n) : storage(n + 128, 0) {
    const auto a = reinterpret_cast<std::uintptr_t>(storage.data());
    p = storage.data() + ((128 - a % 128) % 128);
  }
};

// ---------------------------------------------------------------- requests

struct request {
  rf::slot_header header{};
  std::vector<std::uint8_t> payload;
  rf::status expect = rf::status::ok;
};

/// Builds one FlatBuffer with fb::builder into an 8-byte aligned buffer and returns its bytes.
template <class Fill>
std::vector<std::uint8_t> build(std::uint32_t cap, rf::type_id id, std::uint16_t num_fields, std::uint32_t inline_max,
                                Fill fill) {
  std::vector<std::uint64_t> buf((cap + 7) / 8 + 1);
  rf::fb::builder b(reinterpret_cast<std::uint8_t*>(buf.data()), cap);
  b.begin(id, num_fields, inline_max);
  fill(b);
  const std::uint32_t n = b.finish();
  if (n == 0) {
    std::fprintf(stderr, "test bug: fb::builder failed (capacity %u)\n", cap);
    std::exit(1);
  }
  const auto* p = reinterpret_cast<const std::uint8_t*>(buf.data());
  return std::vector<std::uint8_t>(p, p + n);
}

/// Bytes that never parse as a table: the root offset points far outside the buffer.
std::vector<std::uint8_t> malformed_bytes(std::mt19937_64& rng) {
  std::vector<std::uint8_t> v(4 + rng() % 60);
  for (auto& c : v) c = static_cast<std::uint8_t>(rng());
  v[0] = 0xF0;
  v[1] = 0xFF;
  v[2] = 0xFF;
  v[3] = 0xFF;
  return v;
}

float rand_float(std::mt19937_64& rng, float lo, float hi) {
  return std::uniform_real_distribution<float>(lo, hi)(rng);
}

std::vector<std::uint8_t> echo_payload(std::mt19937_64& rng, std::uint64_t seq, std::uint32_t body_len) {
  std::vector<std::uint8_t> body(body_len);
  for (auto& c : body) c = static_cast<std::uint8_t>(rng());
  const bool with_seq = rng() % 4 != 0, with_note = rng() % 2 == 0;
  const std::string note = "note-" + std::to_string(seq);
  return build(body_len + 256, msg::Echo::type_id_, msg::Echo::num_fields_, msg::Echo::inline_max_,
               [&](rf::fb::builder& b) {
                 if (with_seq) b.add<std::uint64_t>(msg::Echo::fields_::sequence, seq);
                 if (!body.empty() || rng() % 2)
                   b.add_vector<std::uint8_t>(msg::Echo::fields_::body, body.data(), body_len);
                 if (with_note)
                   b.add_string(msg::Echo::fields_::note, note.data(), static_cast<std::uint32_t>(note.size()));
               });
}

void fill_header(std::mt19937_64& rng, request& r, rf::type_id type, std::uint64_t corr) {
  r.header = rf::slot_header{};
  r.header.correlation_id = corr;
  r.header.deadline_ns = rng() % 3 == 0 ? 0 : rng();  // ignored: the device passes now_ns = 0
  r.header.type_id = type;
  if (rng() % 2) {
    for (auto& c : r.header.trace_id) c = static_cast<std::uint8_t>(rng());
    for (auto& c : r.header.span_id) c = static_cast<std::uint8_t>(rng());
  }
}

constexpr std::uint32_t kRequestsPerKernel = 300;
// The response ring's arena (its largest payload); the "reply too large" cases exceed it.
constexpr std::uint32_t kReplyArena = 512u << 10;

std::vector<request> make_saxpy(std::mt19937_64& rng, std::uint64_t base) {
  std::vector<request> out;
  for (std::uint32_t i = 0; i < kRequestsPerKernel; ++i) {
    request r;
    const std::uint64_t corr = base + i;
    const unsigned kind = i == 7 ? 100 : static_cast<unsigned>(rng() % 20);
    if (kind == 100) {
      // x alone, so large that its reply (64 + 4n bytes) exceeds the response arena.
      const std::uint32_t n = kReplyArena / 4 + 1000;
      std::vector<float> x(n, 1.5f);
      fill_header(rng, r, msg::SaxpyRequest::type_id_, corr);
      r.payload = build(4 * n + 256, msg::SaxpyRequest::type_id_, msg::SaxpyRequest::num_fields_,
                        msg::SaxpyRequest::inline_max_,
                        [&](rf::fb::builder& b) { b.add_vector<float>(msg::SaxpyRequest::fields_::x, x.data(), n); });
      r.expect = rf::status::reply_too_large;
    } else if (kind < 2) {  // not a table
      fill_header(rng, r, msg::SaxpyRequest::type_id_, corr);
      r.payload = malformed_bytes(rng);
      r.expect = rf::status::malformed;
    } else if (kind < 4) {  // an Echo sent to the saxpy ring
      fill_header(rng, r, msg::Echo::type_id_, corr);
      r.payload = echo_payload(rng, corr, static_cast<std::uint32_t>(rng() % 64));
      r.expect = rf::status::wrong_type;
    } else {
      const std::uint32_t nx = static_cast<std::uint32_t>(rng() % 201);
      std::uint32_t ny = nx;
      bool with_x = true, with_y = true;
      r.expect = rf::status::ok;
      if (kind < 7) {  // mismatched lengths
        if (kind == 4 && nx > 0) with_y = false;
        else ny = nx + 1 + static_cast<std::uint32_t>(rng() % 3);
        r.expect = rf::status::invalid_argument;
      } else if (kind == 7) {  // both vectors absent: an empty (valid) reply
        with_x = with_y = false;
      }
      std::vector<float> x(nx), y(ny);
      for (auto& v : x) v = rand_float(rng, -100.0f, 100.0f);
      for (auto& v : y) v = rand_float(rng, -100.0f, 100.0f);
      const bool with_a = rng() % 10 < 7;
      const float a = rand_float(rng, -3.0f, 3.0f);
      fill_header(rng, r, msg::SaxpyRequest::type_id_, corr);
      r.payload = build(4 * (nx + ny) + 256, msg::SaxpyRequest::type_id_, msg::SaxpyRequest::num_fields_,
                        msg::SaxpyRequest::inline_max_, [&](rf::fb::builder& b) {
                          if (with_y) b.add_vector<float>(msg::SaxpyRequest::fields_::y, y.data(), ny);
                          if (with_a) b.add<float>(msg::SaxpyRequest::fields_::a, a);
                          if (with_x) b.add_vector<float>(msg::SaxpyRequest::fields_::x, x.data(), nx);
                        });
    }
    out.push_back(std::move(r));
  }
  return out;
}

std::vector<request> make_score(std::mt19937_64& rng, std::uint64_t base) {
  std::vector<request> out;
  for (std::uint32_t i = 0; i < kRequestsPerKernel; ++i) {
    request r;
    const std::uint64_t corr = base + i;
    const unsigned kind = static_cast<unsigned>(rng() % 20);
    if (kind < 2) {
      fill_header(rng, r, msg::ScoreRequest::type_id_, corr);
      r.payload = malformed_bytes(rng);
      r.expect = rf::status::malformed;
    } else if (kind < 4) {  // a SaxpyRequest header type on the score ring
      fill_header(rng, r, msg::SaxpyRequest::type_id_, corr);
      r.payload = malformed_bytes(rng);
      r.expect = rf::status::wrong_type;
    } else {
      msg::Quote q{};
      q.base_price = std::uniform_real_distribution<double>(0.5, 5000.0)(rng);
      q.quantity = rng() % 5 == 0 ? 0u : static_cast<std::uint32_t>(rng() % 1000);
      q.tier = static_cast<std::uint8_t>(rng() % 6);
      const bool with_quote = rng() % 8 != 0, with_id = rng() % 8 != 0, with_max = rng() % 3 != 0;
      const bool with_symbol = rng() % 2 == 0;
      const float max_discount = rand_float(rng, -0.1f, 0.5f);
      const std::uint64_t request_id = rng();
      std::vector<msg::Feature> features(rng() % 41);
      for (auto& f : features) f = msg::Feature{static_cast<std::uint32_t>(rng()), rand_float(rng, -2.0f, 2.0f)};
      const bool with_features = !features.empty() || rng() % 2;
      const std::string symbol = "SYM" + std::to_string(rng() % 10000);
      fill_header(rng, r, msg::ScoreRequest::type_id_, corr);
      r.payload = build(8 * static_cast<std::uint32_t>(features.size()) + 256, msg::ScoreRequest::type_id_,
                        msg::ScoreRequest::num_fields_, msg::ScoreRequest::inline_max_, [&](rf::fb::builder& b) {
                          if (with_symbol)
                            b.add_string(msg::ScoreRequest::fields_::symbol, symbol.data(),
                                         static_cast<std::uint32_t>(symbol.size()));
                          if (with_features)
                            b.add_vector<msg::Feature>(msg::ScoreRequest::fields_::features, features.data(),
                                                       static_cast<std::uint32_t>(features.size()));
                          if (with_quote) b.add<msg::Quote>(msg::ScoreRequest::fields_::quote, q);
                          if (with_max) b.add<float>(msg::ScoreRequest::fields_::max_discount, max_discount);
                          if (with_id) b.add<std::uint64_t>(msg::ScoreRequest::fields_::request_id, request_id);
                        });
      r.expect = rf::status::ok;
    }
    out.push_back(std::move(r));
  }
  return out;
}

std::vector<request> make_echo(std::mt19937_64& rng, std::uint64_t base) {
  std::vector<request> out;
  for (std::uint32_t i = 0; i < kRequestsPerKernel; ++i) {
    request r;
    const std::uint64_t corr = base + i;
    const unsigned kind = i == 11 ? 100 : static_cast<unsigned>(rng() % 20);
    if (kind == 100) {  // larger than the response ring can ever carry
      fill_header(rng, r, msg::Echo::type_id_, corr);
      r.payload = echo_payload(rng, corr, kReplyArena + 4096);
      r.expect = rf::status::reply_too_large;
    } else if (kind < 2) {  // a ScoreRequest header type on the echo ring
      fill_header(rng, r, msg::ScoreRequest::type_id_, corr);
      r.payload = malformed_bytes(rng);
      r.expect = rf::status::wrong_type;
    } else if (kind < 5) {  // Echo does not parse: any bytes (including none) come back verbatim
      fill_header(rng, r, msg::Echo::type_id_, corr);
      r.payload.resize(rng() % 300);
      for (auto& c : r.payload) c = static_cast<std::uint8_t>(rng());
      r.expect = rf::status::ok;
    } else {  // inline (< 192 bytes) and arena payloads
      fill_header(rng, r, msg::Echo::type_id_, corr);
      r.payload = echo_payload(rng, corr, static_cast<std::uint32_t>(rng() % 700));
      r.expect = rf::status::ok;
    }
    out.push_back(std::move(r));
  }
  return out;
}

// ---------------------------------------------------------------- serving (host and device)

constexpr rf::ring_config kRequestRing{512, 256, 4u << 20, 0};
constexpr rf::ring_config kReplyRing{512, 256, kReplyArena, 0};

enum kernel_kind : std::uint32_t { kind_saxpy = 0, kind_score = 1, kind_echo = 2, kind_count = 3 };
const char* const kKindName[kind_count] = {"saxpy", "score", "echo"};

struct serve_job {
  rf::ring_region requests;
  rf::ring_region replies;
  std::uint64_t* reply_scratch;
  rf::serve_tally tally;
  std::uint32_t kind;
  std::uint32_t blocked;
  std::uint32_t staged;       // 1: serve_one gets `staging` (the persistent kernel's path)
  rf::serve_staging staging;  // device memory (staged jobs only)
};

// How part 1 places a job's rings and whether the device serves them through staging buffers:
// in place from device memory (the first check of the handlers themselves), staged from device
// memory, and staged from mapped pinned host memory — the persistent kernel's own path (16-byte
// chunk copies of the slot and its arena payload across PCIe, the reply written back in chunks).
enum class batch_mode { device_in_place, device_staged, mapped_staged };
const char* to_string(batch_mode m) {
  switch (m) {
    case batch_mode::device_in_place: return "rings in device memory, served in place";
    case batch_mode::device_staged: return "rings in device memory, served through staging";
    default: return "rings in mapped host memory, served through staging";
  }
}
constexpr std::uint32_t kStageRequestBytes = 256 + (64u << 10);  // a slot and any arena payload of the mix
constexpr std::uint32_t kStageReplyBytes = 64u << 10;

template <class K>
RINGFLOW_HD void serve_until_idle(serve_job& j) {
  rf::ring_consumer in(j.requests);
  rf::ring_producer out(j.replies, j.reply_scratch);
  rf::serve_tally t{};
  for (;;) {
    const rf::serve_result r = rf::serve_one<K>(in, out, 0, t, j.staged ? &j.staging : nullptr);
    if (r == rf::serve_result::idle) break;
    if (r == rf::serve_result::blocked) {  // the response ring is sized so this never happens
      j.blocked = 1;
      break;
    }
  }
  in.publish();
  j.tally = t;
}

RINGFLOW_HD void run_job(serve_job& j) {
  switch (j.kind) {
    case kind_saxpy: serve_until_idle<SaxpyKernel>(j); break;
    case kind_score: serve_until_idle<ScoreKernel>(j); break;
    case kind_echo: serve_until_idle<EchoKernel>(j); break;
    default: break;
  }
}

/// One block per ring, one thread per block: the device backend's one-thread-per-ring model.
__global__ void serve_kernel(serve_job* jobs, std::uint32_t n) {
  if (threadIdx.x == 0 && blockIdx.x < n) run_job(jobs[blockIdx.x]);
}

void push_all(rf::ring_region region, std::uint64_t* scratch, const std::vector<request>& reqs) {
  rf::ring_producer p(region, scratch);
  for (const request& r : reqs) {
    const rf::ring_message m{r.header, r.payload.data(), static_cast<std::uint32_t>(r.payload.size())};
    const rf::ring_status st = p.try_push(m);
    if (st != rf::ring_status::ok) {
      std::fprintf(stderr, "test bug: request ring rejected a push (%u bytes): %d\n",
                   static_cast<unsigned>(r.payload.size()), static_cast<int>(st));
      std::exit(1);
    }
  }
}

bool same_bits(float a, float b) { return std::memcmp(&a, &b, sizeof a) == 0; }

/// Checks one host reply against the request it answers (semantics, independent of the device).
void check_reply_semantics(std::uint32_t kind, const request& req, const rf::slot_header& h,
                           rf::fb::bytes_view payload) {
  EXPECT(h.correlation_id == req.header.correlation_id, "corr %llu",
         static_cast<unsigned long long>(req.header.correlation_id));
  EXPECT(h.deadline_ns == req.header.deadline_ns, "deadline copied");
  EXPECT(std::memcmp(h.trace_id, req.header.trace_id, 16) == 0 && std::memcmp(h.span_id, req.header.span_id, 8) == 0,
         "trace context copied");
  EXPECT(h.status == static_cast<std::uint16_t>(req.expect), "%s corr %llu: status %s, expected %s", kKindName[kind],
         static_cast<unsigned long long>(h.correlation_id), rf::to_string(static_cast<rf::status>(h.status)),
         rf::to_string(req.expect));
  if (h.status != 0) {
    EXPECT(h.type_id == msg::ErrorReply::type_id_ && (h.flags & rf::slot_flags::error_reply), "error reply type/flag");
    const auto e = ringflow::view_of<msg::ErrorReply>(payload);
    EXPECT(e.table_.valid() && e.code() == h.status && !e.detail().empty(), "ErrorReply {code, detail}");
    return;
  }
  EXPECT(!(h.flags & rf::slot_flags::error_reply), "ok reply without error flag");
  if (kind == kind_echo) {
    EXPECT(h.type_id == msg::Echo::type_id_ && payload.size == req.payload.size() &&
               (payload.size == 0 || std::memcmp(payload.data, req.payload.data(), payload.size) == 0),
           "echo corr %llu: reply is not the request", static_cast<unsigned long long>(h.correlation_id));
  } else if (kind == kind_saxpy) {
    const auto q =
        ringflow::view_of<msg::SaxpyRequest>({req.payload.data(), static_cast<std::uint32_t>(req.payload.size())});
    const auto rep = ringflow::view_of<msg::SaxpyReply>(payload);
    EXPECT(h.type_id == msg::SaxpyReply::type_id_ && rep.table_.valid(), "saxpy reply type");
    const auto x = q.x(), y = q.y(), yo = rep.y();
    EXPECT(yo.size() == x.size(), "saxpy reply length");
    for (std::uint32_t i = 0; i < x.size() && i < yo.size(); ++i) {
      const float want = q.a() * x[i] + y[i];
      EXPECT(same_bits(yo[i], want), "saxpy corr %llu y[%u] = %a, want %a",
             static_cast<unsigned long long>(h.correlation_id), i, yo[i], want);
    }
  } else {
    const auto q =
        ringflow::view_of<msg::ScoreRequest>({req.payload.data(), static_cast<std::uint32_t>(req.payload.size())});
    const auto rep = ringflow::view_of<msg::ScoreReply>(payload);
    EXPECT(h.type_id == msg::ScoreReply::type_id_ && rep.table_.valid(), "score reply type");
    EXPECT(rep.request_id() == q.request_id(), "score request_id");
    EXPECT(rep.score() >= 0.0f && rep.score() <= 1.0f && rep.reason() <= 2, "score range");
  }
}

/// Compares the replies of two response regions one by one: every header field and payload byte.
std::uint32_t compare_replies(std::uint32_t kind, rf::ring_region host, rf::ring_region dev,
                              const std::vector<request>& reqs, std::uint32_t counts[16]) {
  rf::ring_consumer hc(host), dc(dev);
  std::uint32_t n = 0;
  for (const request& req : reqs) {
    const rf::slot_header* h = hc.try_peek();
    const rf::slot_header* d = dc.try_peek();
    EXPECT(h != nullptr, "%s: host reply %u missing", kKindName[kind], n);
    EXPECT(d != nullptr, "%s: device reply %u missing", kKindName[kind], n);
    if (!h || !d) return n;
    check_reply_semantics(kind, req, *h, hc.payload_view(h));
    ++counts[h->status < 16 ? h->status : 15];
    const bool same_header =
        h->seq == d->seq && h->correlation_id == d->correlation_id && h->deadline_ns == d->deadline_ns &&
        h->type_id == d->type_id && h->payload_len == d->payload_len && h->arena_offset == d->arena_offset &&
        h->flags == d->flags && h->status == d->status && std::memcmp(h->trace_id, d->trace_id, 16) == 0 &&
        std::memcmp(h->span_id, d->span_id, 8) == 0;
    EXPECT(same_header,
           "%s reply %u (corr %llu): header differs: host {status %u type %08x len %u flags %x arena %u} "
           "device {status %u type %08x len %u flags %x arena %u corr %llu}",
           kKindName[kind], n, static_cast<unsigned long long>(h->correlation_id), h->status, h->type_id,
           h->payload_len, h->flags, h->arena_offset, d->status, d->type_id, d->payload_len, d->flags, d->arena_offset,
           static_cast<unsigned long long>(d->correlation_id));
    if (same_header && h->payload_len) {
      const std::uint8_t* hp = hc.payload(h);
      const std::uint8_t* dp = dc.payload(d);
      std::uint32_t first = h->payload_len;
      for (std::uint32_t i = 0; i < h->payload_len; ++i)
        if (hp[i] != dp[i]) {
          first = i;
          break;
        }
      EXPECT(first == h->payload_len,
             "%s reply %u (corr %llu): payload differs at byte %u of %u (host %02x device %02x)", kKindName[kind], n,
             static_cast<unsigned long long>(h->correlation_id), first, h->payload_len,
             first < h->payload_len ? hp[first] : 0, first < h->payload_len ? dp[first] : 0);
    }
    hc.release();
    dc.release();
    ++n;
  }
  EXPECT(hc.try_peek() == nullptr && dc.try_peek() == nullptr, "%s: extra replies", kKindName[kind]);
  return n;
}

int part1_batch(batch_mode mode) {
  const bool mapped = mode == batch_mode::mapped_staged;
  const bool staged = mode != batch_mode::device_in_place;
  std::mt19937_64 rng(0x52494e47u);
  std::vector<request> reqs[kind_count] = {make_saxpy(rng, 1ull << 32), make_score(rng, 2ull << 32),
                                           make_echo(rng, 3ull << 32)};
  const rf::ring_layout req_layout{kRequestRing}, rep_layout{kReplyRing};

  std::vector<host_buffer> req_host, rep_host, rep_back;
  std::vector<std::vector<std::uint64_t>> scratch_host;
  serve_job host_jobs[kind_count], dev_jobs[kind_count];
  void* dev_mem[kind_count * 3] = {};     // device addresses of each job's rings and scratch
  void* mapped_mem[kind_count * 2] = {};  // mapped mode: the host addresses of its rings
  void* stage_mem[kind_count] = {};       // staged modes: each job's staging buffers (device memory)

  for (std::uint32_t k = 0; k < kind_count; ++k) {
    req_host.emplace_back(req_layout.bytes());
    rep_host.emplace_back(rep_layout.bytes());
    rep_back.emplace_back(rep_layout.bytes());
    scratch_host.emplace_back(rep_layout.producer_scratch_words(), 0);
    const rf::ring_region rq = rf::ring_region::init(req_host[k].p, kRequestRing);
    std::vector<std::uint64_t> req_scratch(req_layout.producer_scratch_words());
    push_all(rq, req_scratch.data(), reqs[k]);
    rf::ring_region::init(rep_host[k].p, kReplyRing);

    // Device copies: the filled request ring, the empty response ring (snapshot before the host
    // serves into its own copy), and the response producer's private scratch.
    void *d_req = nullptr, *d_rep = nullptr, *d_scr = nullptr;
    if (mapped) {
      void *h_req = nullptr, *h_rep = nullptr;
      CHECK(gpuHostAlloc(&h_req, req_layout.bytes()));
      CHECK(gpuHostAlloc(&h_rep, rep_layout.bytes()));
      std::memcpy(h_req, req_host[k].p, req_layout.bytes());
      std::memcpy(h_rep, rep_host[k].p, rep_layout.bytes());
      CHECK(GPU(HostGetDevicePointer)(&d_req, h_req, 0));
      CHECK(GPU(HostGetDevicePointer)(&d_rep, h_rep, 0));
      mapped_mem[2 * k] = h_req;
      mapped_mem[2 * k + 1] = h_rep;
    } else {
      CHECK(GPU(Malloc)(&d_req, req_layout.bytes()));
      CHECK(GPU(Malloc)(&d_rep, rep_layout.bytes()));
      CHECK(GPU(Memcpy)(d_req, req_host[k].p, req_layout.bytes(), GPU(MemcpyHostToDevice)));
      CHECK(GPU(Memcpy)(d_rep, rep_host[k].p, rep_layout.bytes(), GPU(MemcpyHostToDevice)));
    }
    CHECK(GPU(Malloc)(&d_scr, rep_layout.producer_scratch_words() * sizeof(std::uint64_t)));
    CHECK(GPU(Memset)(d_scr, 0, rep_layout.producer_scratch_words() * sizeof(std::uint64_t)));
    dev_mem[3 * k] = d_req;
    dev_mem[3 * k + 1] = d_rep;
    dev_mem[3 * k + 2] = d_scr;
    dev_jobs[k] =
        serve_job{rf::ring_region(d_req), rf::ring_region(d_rep), static_cast<std::uint64_t*>(d_scr), {}, k, 0, 0, {}};
    if (staged) {
      void* d_stage = nullptr;
      CHECK(GPU(Malloc)(&d_stage, kStageRequestBytes + kStageReplyBytes));
      stage_mem[k] = d_stage;
      auto* b = static_cast<std::uint8_t*>(d_stage);
      dev_jobs[k].staged = 1;
      dev_jobs[k].staging = rf::serve_staging{b, kStageRequestBytes, b + kStageRequestBytes, kStageReplyBytes};
    }
    host_jobs[k] = serve_job{rq, rf::ring_region(rep_host[k].p), scratch_host[k].data(), {}, k, 0, 0, {}};
  }

  // Device: one block per ring.
  serve_job* d_jobs = nullptr;
  CHECK(GPU(Malloc)(reinterpret_cast<void**>(&d_jobs), sizeof dev_jobs));
  CHECK(GPU(Memcpy)(d_jobs, dev_jobs, sizeof dev_jobs, GPU(MemcpyHostToDevice)));
  const auto t0 = std::chrono::steady_clock::now();
  LAUNCH(serve_kernel, kind_count, 1, d_jobs, kind_count);
  CHECK(GPU(GetLastError)());
  CHECK(GPU(DeviceSynchronize)());
  const double dev_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  CHECK(GPU(Memcpy)(dev_jobs, d_jobs, sizeof dev_jobs, GPU(MemcpyDeviceToHost)));

  // Host: the same handlers on the host copies.
  for (auto& j : host_jobs) run_job(j);

  std::uint32_t total = 0;
  for (std::uint32_t k = 0; k < kind_count; ++k) {
    rf::ring_shared req_shared{};
    if (mapped) {
      std::memcpy(rep_back[k].p, mapped_mem[2 * k + 1], rep_layout.bytes());
      std::memcpy(&req_shared, mapped_mem[2 * k], sizeof req_shared);
    } else {
      CHECK(GPU(Memcpy)(rep_back[k].p, dev_mem[3 * k + 1], rep_layout.bytes(), GPU(MemcpyDeviceToHost)));
      CHECK(GPU(Memcpy)(&req_shared, dev_mem[3 * k], sizeof req_shared, GPU(MemcpyDeviceToHost)));
    }
    const serve_job& h = host_jobs[k];
    const serve_job& d = dev_jobs[k];
    EXPECT(!h.blocked && !d.blocked, "%s: a ring blocked", kKindName[k]);
    EXPECT(h.tally.served == reqs[k].size() && d.tally.served == h.tally.served &&
               d.tally.handler_errors == h.tally.handler_errors && d.tally.rejected == h.tally.rejected,
           "%s tally: host {%llu %llu %llu} device {%llu %llu %llu}", kKindName[k],
           static_cast<unsigned long long>(h.tally.served), static_cast<unsigned long long>(h.tally.handler_errors),
           static_cast<unsigned long long>(h.tally.rejected), static_cast<unsigned long long>(d.tally.served),
           static_cast<unsigned long long>(d.tally.handler_errors), static_cast<unsigned long long>(d.tally.rejected));
    EXPECT(req_shared.head == reqs[k].size(), "%s: device consumer published head %llu", kKindName[k],
           static_cast<unsigned long long>(req_shared.head));

    std::uint32_t counts[16] = {};
    const int failures_before = g_failures;
    const std::uint32_t n =
        compare_replies(k, rf::ring_region(rep_host[k].p), rf::ring_region(rep_back[k].p), reqs[k], counts);
    total += n;
    std::printf(
        "  %-5s %u replies %s: ok %u, invalid_argument %u, malformed %u, wrong_type %u, "
        "reply_too_large %u\n",
        kKindName[k], n, g_failures == failures_before ? "identical on host and device" : "MISMATCH", counts[0],
        counts[1], counts[2], counts[3], counts[4]);
    // Every error path the mix is meant to cover was actually taken.
    EXPECT(counts[0] > 0 && counts[3] > 0 && counts[4] + counts[2] + counts[1] > 0, "%s: mix lacks a status",
           kKindName[k]);
  }
  std::printf("part 1 (batch, %s): %u requests served by %u device threads in %.2f ms; %s\n", to_string(mode), total,
              kind_count, dev_ms, g_failures ? "MISMATCH" : "all replies identical");

  for (std::uint32_t i = 0; i < kind_count * 3; ++i)
    if (!mapped || i % 3 == 2) CHECK(GPU(Free)(dev_mem[i]));
  for (void* p : mapped_mem)
    if (p) CHECK(gpuFreeHost(p));
  for (void* p : stage_mem)
    if (p) CHECK(GPU(Free)(p));
  CHECK(GPU(Free)(d_jobs));
  return g_failures ? 1 : 0;
}

// ---------------------------------------------------------------- part 2: ping-pong over mapped memory

constexpr rf::ring_config kPingRing{64, 256, 64u << 10, 0};

/// A persistent echo server on one device thread: polls the request ring in mapped host memory,
/// stops when the host asks (control_block, also mapped), faults itself after `idle_limit_ns`
/// without a request so a lost host never leaves it spinning.
__global__ void echo_server(rf::ring_region req, rf::ring_region rep, std::uint64_t* scratch, rf::control_block* ctl,
                            std::uint64_t idle_limit_ns) {
  if (threadIdx.x != 0 || blockIdx.x != 0) return;
  ctl->set_state(rf::kernel_state::running);
  rf::ring_consumer in(req);
  rf::ring_producer out(rep, scratch);
  rf::serve_tally t{};
  rf::backoff bo;
  bo.max_ns = 1024;
  std::uint64_t last = device_now_ns();
  for (;;) {
    const rf::serve_result r = rf::serve_one<EchoKernel>(in, out, 0, t);
    if (r == rf::serve_result::served) {
      bo.reset();
      last = device_now_ns();
      continue;
    }
    if (ctl->stop_is_requested()) break;
    if (device_now_ns() - last > idle_limit_ns) {
      in.publish();
      ctl->progressed(t.served, t.handler_errors, t.rejected);
      ctl->fault(rf::kernel_error::internal, 0, "idle watchdog: no request and no stop");
      return;
    }
    device_idle(bo);
  }
  in.publish();
  ctl->progressed(t.served, t.handler_errors, t.rejected);
  ctl->set_state(rf::kernel_state::stopped);
}

int part2_pingpong() {
  int can_map = 0;
  CHECK(GPU(DeviceGetAttribute)(&can_map, gpuAttrCanMapHostMemory, 0));
  if (!can_map) {
    std::printf("part 2 (ping-pong): device cannot map host memory; FAILED\n");
    return 1;
  }
  const rf::ring_layout layout{kPingRing};
  void *h_req = nullptr, *h_rep = nullptr, *h_ctl = nullptr;
  CHECK(gpuHostAlloc(&h_req, layout.bytes()));  // page aligned
  CHECK(gpuHostAlloc(&h_rep, layout.bytes()));
  CHECK(gpuHostAlloc(&h_ctl, sizeof(rf::control_block)));
  const rf::ring_region req = rf::ring_region::init(h_req, kPingRing);
  const rf::ring_region rep = rf::ring_region::init(h_rep, kPingRing);
  auto* ctl = new (h_ctl) rf::control_block{};
  ctl->reset(1);

  void *d_req = nullptr, *d_rep = nullptr, *d_ctl = nullptr, *d_scr = nullptr;
  CHECK(GPU(HostGetDevicePointer)(&d_req, h_req, 0));
  CHECK(GPU(HostGetDevicePointer)(&d_rep, h_rep, 0));
  CHECK(GPU(HostGetDevicePointer)(&d_ctl, h_ctl, 0));
  CHECK(GPU(Malloc)(&d_scr, layout.producer_scratch_words() * sizeof(std::uint64_t)));
  CHECK(GPU(Memset)(d_scr, 0, layout.producer_scratch_words() * sizeof(std::uint64_t)));

  // Messages: strict ping-pong first (latency), then pipelined up to the ring's capacity.
  // Sized for the worst case: the echo handler reads and writes the payload one byte at a time,
  // and here both rings are in host memory, so a device thread may pay a PCIe round trip per
  // byte (~1 us): ~6000 messages of ~100 bytes on average stay far below the 10 s timeout.
  constexpr std::uint32_t kPingPong = 1000, kPipelined = 5000, kTotal = kPingPong + kPipelined;
  std::mt19937_64 rng(0x70696e67u);
  std::vector<std::vector<std::uint8_t>> payloads(kTotal);
  for (std::uint32_t i = 0; i < kTotal; ++i) {
    const std::uint32_t body = static_cast<std::uint32_t>(i % 16 == 0 ? 200 + rng() % 800 : rng() % 100);
    payloads[i] = echo_payload(rng, i, body);  // mostly inline, some in the arena (> 192 bytes)
  }

  LAUNCH(echo_server, 1, 1, rf::ring_region(d_req), rf::ring_region(d_rep), static_cast<std::uint64_t*>(d_scr),
         static_cast<rf::control_block*>(d_ctl), 20ull * 1000 * 1000 * 1000);
  CHECK(GPU(GetLastError)());

  using clock = std::chrono::steady_clock;
  const auto start = clock::now();
  const auto deadline = start + std::chrono::seconds(10);
  std::vector<std::uint64_t> scratch(layout.producer_scratch_words());
  rf::ring_producer out(req, scratch.data());
  rf::ring_consumer in(rep);
  std::vector<double> rtt_us;
  std::vector<clock::time_point> sent_at(kTotal);
  std::uint32_t sent = 0, received = 0;
  bool timed_out = false;
  clock::time_point pipelined_start{};
  while (received < kTotal) {
    if (clock::now() > deadline) {
      timed_out = true;
      break;
    }
    // Ping-pong phase: one message outstanding. Pipelined phase: as many as the ring holds.
    const bool ping_phase = received < kPingPong;
    bool progress = false;
    while (ping_phase ? (sent == received && sent < kPingPong) : sent < kTotal) {
      rf::ring_message m{};
      m.header.correlation_id = 1000000 + sent;
      m.header.type_id = msg::Echo::type_id_;
      m.payload = payloads[sent].data();
      m.payload_len = static_cast<std::uint32_t>(payloads[sent].size());
      if (out.try_push(m) != rf::ring_status::ok) break;
      sent_at[sent] = clock::now();
      ++sent;
      progress = true;
    }
    while (const rf::slot_header* h = in.try_peek()) {
      const auto& want = payloads[received];
      const std::uint8_t* p = in.payload(h);
      const bool ok = h->correlation_id == 1000000 + received && h->status == 0 && h->type_id == msg::Echo::type_id_ &&
                      h->payload_len == want.size() && std::memcmp(p, want.data(), want.size()) == 0;
      EXPECT(ok, "ping-pong reply %u: corr %llu status %u len %u (want %zu)", received,
             static_cast<unsigned long long>(h->correlation_id), h->status, h->payload_len, want.size());
      if (received < kPingPong)
        rtt_us.push_back(std::chrono::duration<double, std::micro>(clock::now() - sent_at[received]).count());
      in.release();
      ++received;
      if (received == kPingPong) pipelined_start = clock::now();
      progress = true;
      if (!ok) break;
    }
    if (g_failures) break;
    if (!progress) host_idle();
  }
  in.publish();
  const auto end = clock::now();
  if (timed_out)
    std::printf("part 2 (ping-pong): FAILED: timeout after 10 s, %u sent, %u received, kernel state %s\n", sent,
                received, rf::to_string(ctl->current_state()));

  ctl->request_stop();
  const auto stop_deadline = clock::now() + std::chrono::seconds(5);
  rf::kernel_state st = ctl->current_state();
  while (st != rf::kernel_state::stopped && st != rf::kernel_state::faulted && clock::now() < stop_deadline) {
    host_idle();
    st = ctl->current_state();
  }
  if (st != rf::kernel_state::stopped && st != rf::kernel_state::faulted) {
    std::printf("part 2 (ping-pong): FAILED: kernel did not stop within 5 s (state %s); exiting without sync\n",
                rf::to_string(st));
    std::fflush(stdout);
    std::_Exit(1);
  }
  CHECK(GPU(DeviceSynchronize)());

  EXPECT(!timed_out, "ping-pong completed within 10 s");
  EXPECT(st == rf::kernel_state::stopped && ctl->current_error() == rf::kernel_error::none, "kernel state %s: %s",
         rf::to_string(st), ctl->error_detail);
  EXPECT(ctl->processed_count() == received, "kernel served %llu, host received %u",
         static_cast<unsigned long long>(ctl->processed_count()), received);

  if (!timed_out && !rtt_us.empty()) {
    std::sort(rtt_us.begin(), rtt_us.end());
    const double pipe_s = std::chrono::duration<double>(end - pipelined_start).count();
    std::printf(
        "part 2 (ping-pong, device thread polling %s): %u messages echoed; round trip p50 %.2f us, "
        "p99 %.2f us; pipelined %u msgs in %.1f ms (%.0f msg/s)\n",
#if defined(RINGFLOW_GPU_TEST_EMULATE)
        "host memory (emulated)",
#else
        "mapped host memory",
#endif
        received, rtt_us[rtt_us.size() / 2], rtt_us[rtt_us.size() * 99 / 100], kPipelined, pipe_s * 1e3,
        kPipelined / pipe_s);
  }
  CHECK(GPU(Free)(d_scr));
  CHECK(gpuFreeHost(h_req));
  CHECK(gpuFreeHost(h_rep));
  CHECK(gpuFreeHost(h_ctl));
  return (timed_out || g_failures) ? 1 : 0;
}

}  // namespace

int main() {
  int count = 0;
  const GPU(Error_t) e = GPU(GetDeviceCount)(&count);
  if (e != GPU(Success) || count == 0) {
    std::printf("SKIP: no usable %s device: %s\n", kBackend,
                e != GPU(Success) ? GPU(GetErrorString)(e) : "device count is 0");
    return 77;
  }
  // A device that cannot create a context (exclusive mode taken, no permission) is not usable either.
  const GPU(Error_t) ctx = GPU(Free)(nullptr);
  if (ctx != GPU(Success)) {
    std::printf("SKIP: no usable %s device: context creation failed: %s\n", kBackend, GPU(GetErrorString)(ctx));
    return 77;
  }
  gpuDeviceProp prop{};
  CHECK(GPU(GetDeviceProperties)(&prop, 0));
  std::printf("device 0: %s (compute capability %d.%d)\n", prop.name, prop.major, prop.minor);

  for (const batch_mode m : {batch_mode::device_in_place, batch_mode::device_staged, batch_mode::mapped_staged})
    if (part1_batch(m) != 0) {
      std::printf("FAILED: %d check(s) failed in part 1 (%s)\n", g_failures, to_string(m));
      return 1;
    }
  if (part2_pingpong() != 0) {
    std::printf("FAILED: %d check(s) failed in part 2\n", g_failures);
    return 1;
  }
  std::printf("PASS\n");
  return 0;
}
