// The topology catalog: see ringflow/runtime/catalog.hpp.
#include "ringflow/runtime/catalog.hpp"

#include <flatbuffers/flatbuffers.h>

#include <cstring>
#include <nlohmann/json.hpp>
#include <set>
#include <shared_mutex>
#include <stdexcept>

#include "ringflow/actors/errors.hpp"
#include "ringflow/demo_kernels.hpp"
#include "ringflow/generated/echo_generated.h"
#include "ringflow/generated/saxpy_reply_generated.h"
#include "ringflow/generated/saxpy_request_generated.h"
#include "ringflow/generated/score_reply_generated.h"
#include "ringflow/generated/score_request_generated.h"
#include "ringflow/generated/trade_generated.h"
#include "ringflow/generated/vwap_reply_generated.h"
#include "ringflow/host_serve.hpp"

namespace ringflow::ops {
namespace {

fb_msg finish(flatbuffers::FlatBufferBuilder& b) { return fb_msg(b.GetBufferPointer(), b.GetSize()); }

template <class T>
bool verify_as(const fb_msg& m, const char* ident) {
  flatbuffers::Verifier v(m.bytes.data(), m.bytes.size());
  return v.VerifyBuffer<T>(ident);
}

// Saxpy has no id field: the sequence number travels in the first four elements of y as 16-bit
// chunks (exact in a float), with x = 0 there, so y' = a*x + y keeps them whatever `a` is.
constexpr std::uint32_t saxpy_seq_words = 4;

std::optional<std::uint64_t> seq_from_floats(const flatbuffers::Vector<float>* y) {
  if (!y || y->size() < saxpy_seq_words) return std::nullopt;
  std::uint64_t s = 0;
  for (std::uint32_t i = 0; i < saxpy_seq_words; ++i) {
    const float f = y->Get(i);
    if (!(f >= 0.0f && f < 65536.0f)) return std::nullopt;
    s |= static_cast<std::uint64_t>(f) << (16 * i);
  }
  return s;
}

std::vector<message_info> make_messages() {
  std::vector<message_info> v;
  v.push_back(message_info{"Echo",
                           msg::Echo::type_id_,
                           [](std::uint64_t seq, std::uint32_t bytes) {
                             flatbuffers::FlatBufferBuilder b(128 + bytes);
                             std::vector<std::uint8_t> body(bytes);
                             for (std::uint32_t i = 0; i < bytes; ++i) body[i] = static_cast<std::uint8_t>(seq + i);
                             demo::FinishEchoBuffer(b, demo::CreateEcho(b, seq, b.CreateVector(body)));
                             return finish(b);
                           },
                           [](const fb_msg& m) -> std::optional<std::uint64_t> {
                             if (!verify_as<demo::Echo>(m, demo::EchoIdentifier())) return std::nullopt;
                             return demo::GetEcho(m.bytes.data())->sequence();
                           },
                           [](const fb_msg& m) { return verify_as<demo::Echo>(m, demo::EchoIdentifier()); },
                           nullptr,
                           {},
                           {}});
  v.push_back(message_info{
      "SaxpyRequest",
      msg::SaxpyRequest::type_id_,
      [](std::uint64_t seq, std::uint32_t bytes) {
        const std::uint32_t n = saxpy_seq_words + bytes / 8;
        std::vector<float> x(n), y(n);
        for (std::uint32_t i = 0; i < n; ++i) {
          x[i] = i < saxpy_seq_words ? 0.0f : static_cast<float>(i);
          y[i] = i < saxpy_seq_words ? static_cast<float>((seq >> (16 * i)) & 0xffff) : static_cast<float>(i);
        }
        flatbuffers::FlatBufferBuilder b(64 + 8 * n);
        demo::FinishSaxpyRequestBuffer(b, demo::CreateSaxpyRequest(b, 2.0f, b.CreateVector(x), b.CreateVector(y)));
        return finish(b);
      },
      [](const fb_msg& m) -> std::optional<std::uint64_t> {
        if (!verify_as<demo::SaxpyRequest>(m, demo::SaxpyRequestIdentifier())) return std::nullopt;
        return seq_from_floats(demo::GetSaxpyRequest(m.bytes.data())->y());
      },
      [](const fb_msg& m) { return verify_as<demo::SaxpyRequest>(m, demo::SaxpyRequestIdentifier()); },
      nullptr,
      {},
      {}});
  v.push_back(message_info{"SaxpyReply",
                           msg::SaxpyReply::type_id_,
                           [](std::uint64_t seq, std::uint32_t bytes) {
                             const std::uint32_t n = saxpy_seq_words + bytes / 8;
                             std::vector<float> y(n);
                             for (std::uint32_t i = 0; i < n; ++i)
                               y[i] = i < saxpy_seq_words ? static_cast<float>((seq >> (16 * i)) & 0xffff)
                                                          : static_cast<float>(3 * i);
                             flatbuffers::FlatBufferBuilder b(64 + 4 * n);
                             demo::FinishSaxpyReplyBuffer(b, demo::CreateSaxpyReply(b, b.CreateVector(y)));
                             return finish(b);
                           },
                           [](const fb_msg& m) -> std::optional<std::uint64_t> {
                             if (!verify_as<demo::SaxpyReply>(m, demo::SaxpyReplyIdentifier())) return std::nullopt;
                             return seq_from_floats(demo::GetSaxpyReply(m.bytes.data())->y());
                           },
                           [](const fb_msg& m) { return verify_as<demo::SaxpyReply>(m, demo::SaxpyReplyIdentifier()); },
                           nullptr,
                           {},
                           {}});
  v.push_back(message_info{
      "ScoreRequest",
      msg::ScoreRequest::type_id_,
      [](std::uint64_t seq, std::uint32_t bytes) {
        std::vector<demo::Feature> f;
        const std::uint32_t n = bytes / 8 == 0 ? 1 : bytes / 8;
        for (std::uint32_t i = 0; i < n; ++i)
          f.emplace_back(static_cast<std::uint32_t>(seq * 31 + i), static_cast<float>((seq + i) % 7) / 7.0f);
        const demo::Quote q(100.0 + static_cast<double>(seq % 50), 1 + static_cast<std::uint32_t>(seq % 9),
                            static_cast<std::uint8_t>(seq % 4));
        flatbuffers::FlatBufferBuilder b(128 + 8 * n);
        demo::FinishScoreRequestBuffer(b, demo::CreateScoreRequestDirect(b, seq, &q, &f, 0.25f, "RFX"));
        return finish(b);
      },
      [](const fb_msg& m) -> std::optional<std::uint64_t> {
        if (!verify_as<demo::ScoreRequest>(m, demo::ScoreRequestIdentifier())) return std::nullopt;
        return demo::GetScoreRequest(m.bytes.data())->request_id();
      },
      [](const fb_msg& m) { return verify_as<demo::ScoreRequest>(m, demo::ScoreRequestIdentifier()); },
      nullptr,
      {},
      {}});
  v.push_back(message_info{"ScoreReply",
                           msg::ScoreReply::type_id_,
                           [](std::uint64_t seq, std::uint32_t) {
                             flatbuffers::FlatBufferBuilder b(64);
                             demo::FinishScoreReplyBuffer(b, demo::CreateScoreReply(b, seq, 0.5f, 100.0, true, 0));
                             return finish(b);
                           },
                           [](const fb_msg& m) -> std::optional<std::uint64_t> {
                             if (!verify_as<demo::ScoreReply>(m, demo::ScoreReplyIdentifier())) return std::nullopt;
                             return demo::GetScoreReply(m.bytes.data())->request_id();
                           },
                           [](const fb_msg& m) { return verify_as<demo::ScoreReply>(m, demo::ScoreReplyIdentifier()); },
                           nullptr,
                           {},
                           {}});
  // Trades for VwapKernel: key, price and quantity from `seq` (deterministic), `sequence` = seq.
  v.push_back(message_info{"Trade",
                           msg::Trade::type_id_,
                           [](std::uint64_t seq, std::uint32_t) {
                             flatbuffers::FlatBufferBuilder b(64);
                             demo::FinishTradeBuffer(
                                 b, demo::CreateTrade(b, static_cast<std::uint32_t>(seq % demo_kernels::vwap_keys),
                                                      100 + static_cast<std::int64_t>(seq % 13),
                                                      1 + static_cast<std::uint32_t>(seq % 9), seq));
                             return finish(b);
                           },
                           [](const fb_msg& m) -> std::optional<std::uint64_t> {
                             if (!verify_as<demo::Trade>(m, demo::TradeIdentifier())) return std::nullopt;
                             return demo::GetTrade(m.bytes.data())->sequence();
                           },
                           [](const fb_msg& m) { return verify_as<demo::Trade>(m, demo::TradeIdentifier()); },
                           nullptr,
                           {},
                           {}});
  v.push_back(message_info{"VwapReply",
                           msg::VwapReply::type_id_,
                           [](std::uint64_t seq, std::uint32_t) {
                             flatbuffers::FlatBufferBuilder b(64);
                             demo::FinishVwapReplyBuffer(b, demo::CreateVwapReply(b, 0, 1, 1, 100, 100, seq));
                             return finish(b);
                           },
                           [](const fb_msg& m) -> std::optional<std::uint64_t> {
                             if (!verify_as<demo::VwapReply>(m, demo::VwapReplyIdentifier())) return std::nullopt;
                             return demo::GetVwapReply(m.bytes.data())->sequence();
                           },
                           [](const fb_msg& m) { return verify_as<demo::VwapReply>(m, demo::VwapReplyIdentifier()); },
                           nullptr,
                           {},
                           {}});
  return v;
}

// The built-ins' full names and payload Verifiers (payload_registry::demo() has them by id).
void complete_builtins(std::vector<message_info>& v) {
  const payload_registry& demo = payload_registry::demo();
  for (message_info& m : v) {
    if (const payload_registry::entry* e = demo.find(m.id)) m.verifier = e->verify;
  }
  for (message_info& m : v) {
    if (m.name == "Echo") m.full_name = msg::Echo::name_;
    if (m.name == "SaxpyRequest") m.full_name = msg::SaxpyRequest::name_;
    if (m.name == "SaxpyReply") m.full_name = msg::SaxpyReply::name_;
    if (m.name == "ScoreRequest") m.full_name = msg::ScoreRequest::name_;
    if (m.name == "ScoreReply") m.full_name = msg::ScoreReply::name_;
    if (m.name == "Trade") m.full_name = msg::Trade::name_;
    if (m.name == "VwapReply") m.full_name = msg::VwapReply::name_;
  }
}

template <ring_kernel K>
kernel_info kernel_entry(const char* request, const char* reply) {
  // A stateful kernel's rings get room for its state (snapshots, restores): with_state_room.
  kernel_info k;
  k.name = K::name;
  k.request = request;
  k.reply = reply;
  k.request_id = K::request::type_id_;
  k.reply_id = K::reply::type_id_;
  k.cpu_factory = [](cpu_incarnation_options o) {
    return cpu_incarnation_factory<K>(with_state_room<K>(std::move(o)));
  };
  k.sim_factory = [](sim::sim_device& d, cpu_incarnation_options o) {
    return d.template factory<K>(with_state_room<K>(std::move(o)));
  };
  k.state_bytes = state_bytes_of<K>;
  if constexpr (stateful_kernel<K>) {
    k.init_state = [](std::uint8_t* s) { host_init_state<K>(s); };
    k.apply_state = [](std::uint8_t* s, const std::uint8_t* req, std::uint32_t size) {
      host_apply_state<K>(s, req, size);  // as a CPU incarnation serves it (host_serve.hpp)
    };
  }
  return k;
}

// VwapKernel, with its state shown per instrument (the keys that traded).
kernel_info vwap_entry() {
  kernel_info k = kernel_entry<demo_kernels::VwapKernel>("Trade", "VwapReply");
  k.dump_state = [](const std::uint8_t* p) {
    demo_kernels::VwapKernel::state s;
    std::memcpy(&s, p, sizeof s);
    nlohmann::json keys = nlohmann::json::array();
    for (std::uint32_t i = 0; i < demo_kernels::vwap_keys; ++i) {
      const auto& t = s.keys[i];
      if (t.trades == 0) continue;
      keys.push_back({{"key", i},
                      {"trades", t.trades},
                      {"volume", t.volume},
                      {"notional", t.notional},
                      {"vwap_ticks", t.notional / static_cast<std::int64_t>(t.volume)}});
    }
    return nlohmann::json{{"applied", s.applied}, {"keys", keys}}.dump();
  };
  return k;
}

std::vector<function_info> make_functions() {
  std::vector<function_info> v;
  v.push_back(function_info{"passthrough", "forwards the message unchanged", [](const message_info&) -> cpu_node_fn {
                              return [](const fb_msg& m) -> std::optional<fb_msg> { return m; };
                            }});
  v.push_back(function_info{"validate", "verifies the message (FlatBuffers Verifier); a bad one is refused (malformed)",
                            [](const message_info& t) -> cpu_node_fn {
                              auto verify = t.verify;
                              std::string name = t.name;
                              return [verify, name](const fb_msg& m) -> std::optional<fb_msg> {
                                if (!verify(m)) throw std::invalid_argument("not a valid " + name);
                                return m;
                              };
                            }});
  v.push_back(
      function_info{"sink", "ends the message (a terminal that keeps nothing)", [](const message_info&) -> cpu_node_fn {
                      return [](const fb_msg&) -> std::optional<fb_msg> { return std::nullopt; };
                    }});
  return v;
}

template <class T>
std::string names_of(const std::deque<T>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x.name;
  return s;
}

struct catalog_state {
  std::shared_mutex mu;
  std::deque<message_info> messages;
  std::deque<kernel_info> kernels;
  std::deque<function_info> functions;
  std::deque<payload_registry> payloads;  // the newest is current; older ones stay valid
  catalog_state() {
    std::vector<message_info> m = make_messages();
    complete_builtins(m);
    messages.assign(m.begin(), m.end());
    kernels = {
        kernel_entry<demo_kernels::EchoKernel>("Echo", "Echo"),
        kernel_entry<demo_kernels::SaxpyKernel>("SaxpyRequest", "SaxpyReply"),
        kernel_entry<demo_kernels::ScoreKernel>("ScoreRequest", "ScoreReply"),
        vwap_entry(),
    };
    std::vector<function_info> f = make_functions();
    functions.assign(f.begin(), f.end());
    payloads.push_back(payload_registry::demo());
  }
};
catalog_state& state() {
  static catalog_state s;
  return s;
}

template <class T, class Pred>
const T* find_in(const std::deque<T>& v, Pred p) {
  std::shared_lock lock(state().mu);
  for (const auto& x : v)
    if (p(x)) return &x;
  return nullptr;
}

}  // namespace

const std::deque<message_info>& message_catalog() { return state().messages; }
const std::deque<kernel_info>& kernel_catalog() { return state().kernels; }
const std::deque<function_info>& function_catalog() { return state().functions; }

const message_info* find_message(const std::string& name) {
  return find_in(state().messages, [&](const message_info& m) { return m.name == name; });
}
const message_info* find_message(type_id id) {
  return find_in(state().messages, [&](const message_info& m) { return m.id == id; });
}
const kernel_info* find_kernel(const std::string& name) {
  return find_in(state().kernels, [&](const kernel_info& k) { return k.name == name; });
}
const function_info* find_function(const std::string& name) {
  return find_in(state().functions, [&](const function_info& f) { return f.name == name; });
}
std::string message_names() {
  std::shared_lock lock(state().mu);
  return names_of(state().messages);
}
std::string kernel_names() {
  std::shared_lock lock(state().mu);
  return names_of(state().kernels);
}
std::string function_names() {
  std::shared_lock lock(state().mu);
  return names_of(state().functions);
}

const payload_registry& catalog_payloads() {
  std::shared_lock lock(state().mu);
  return state().payloads.back();
}

void add_to_catalog(std::vector<message_info> messages, std::vector<kernel_info> kernels,
                    std::vector<function_info> functions) {
  catalog_state& s = state();
  std::unique_lock lock(s.mu);
  std::set<std::string> names;
  std::set<type_id> ids;
  for (const auto& m : s.messages) names.insert(m.name), ids.insert(m.id);
  for (const auto& m : messages)
    if (!names.insert(m.name).second || !ids.insert(m.id).second)
      throw std::invalid_argument("message type '" + m.name + "' (or its type id) is already in the catalog");
  std::set<std::string> kn, fn;
  for (const auto& k : s.kernels) kn.insert(k.name);
  for (const auto& k : kernels)
    if (!kn.insert(k.name).second) throw std::invalid_argument("kernel '" + k.name + "' is already in the catalog");
  for (const auto& f : s.functions) fn.insert(f.name);
  for (const auto& f : functions)
    if (!fn.insert(f.name).second) throw std::invalid_argument("function '" + f.name + "' is already in the catalog");
  payload_registry next = s.payloads.back();
  for (const auto& m : messages)
    if (m.verifier) next.add(m.id, m.name, m.verifier);
  for (auto& m : messages) s.messages.push_back(std::move(m));
  for (auto& k : kernels) s.kernels.push_back(std::move(k));
  for (auto& f : functions) s.functions.push_back(std::move(f));
  s.payloads.push_back(std::move(next));
}

}  // namespace ringflow::ops
