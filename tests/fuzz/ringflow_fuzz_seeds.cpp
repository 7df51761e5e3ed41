// ringflow_fuzz_seeds <dir>: writes the seed corpus of the fuzz targets into <dir> (created if
// missing). Built without the fuzzer runtime. Seeds:
//   payload-*.bin   each demo payload (and ErrorReply) built with the flatc-generated builders
//   env-*.bin       valid envelopes (ringflow::encode_envelope) carrying each payload
//   bad-*.bin       invalid envelopes: truncated, wrong identifier, bad schema_version, deadline in
//                   the past, unknown type, type mismatch, empty/corrupt payload, ...
//   trace-*.txt     W3C traceparent strings, valid and invalid
//   http-*.txt      HTTP requests (ringflow_fuzz_http)
//   config-*.yaml   config files (ringflow_fuzz_config): every key, the deployment's, bad ones
//   ckpt-*.bin      checkpoint files (ringflow_fuzz_checkpoint): whole ones, a torn one
//   journal*.bin    journal files (durability: reply; ringflow_fuzz_checkpoint): whole, torn
//   writer-*.bin    byte strings that start each mode of ringflow_fuzz_writer_roundtrip
// All seeds go to every target: each accepts arbitrary bytes.
#include <flatbuffers/flatbuffers.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "ringflow/generated/echo_generated.h"
#include "ringflow/generated/envelope_generated.h"
#include "ringflow/generated/error_generated.h"
#include "ringflow/generated/saxpy_reply_generated.h"
#include "ringflow/generated/saxpy_request_generated.h"
#include "ringflow/generated/score_reply_generated.h"
#include "ringflow/generated/score_request_generated.h"
#include "ringflow/ingress.hpp"
#include "ringflow/messages.hpp"
#include "ringflow/runtime/checkpoint.hpp"

namespace {

using namespace ringflow;
using bytes = std::vector<std::uint8_t>;

constexpr const char* kTrace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
constexpr std::uint64_t kFarFuture = 4'000'000'000'000'000'000ull;  // year 2096

std::filesystem::path g_dir;
int g_count = 0;

void write(const std::string& name, const bytes& b) {
  std::ofstream out(g_dir / name, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
  if (!out) {
    std::fprintf(stderr, "ringflow_fuzz_seeds: cannot write %s\n", (g_dir / name).c_str());
    std::exit(1);
  }
  ++g_count;
}
void write(const std::string& name, const std::string& s) { write(name, bytes(s.begin(), s.end())); }

bytes finished(flatbuffers::FlatBufferBuilder& b) { return {b.GetBufferPointer(), b.GetBufferPointer() + b.GetSize()}; }

bytes echo_payload() {
  flatbuffers::FlatBufferBuilder b;
  const std::vector<std::uint8_t> body = {'h', 'e', 'l', 'l', 'o', 0, 1, 2, 3};
  demo::FinishEchoBuffer(b, demo::CreateEchoDirect(b, 42, &body, "a note"));
  return finished(b);
}

bytes saxpy_request_payload() {
  flatbuffers::FlatBufferBuilder b;
  const std::vector<float> x = {1, 2, 3, 4, 5}, y = {0.5f, -1, 1e30f, -0.0f, 7};
  demo::FinishSaxpyRequestBuffer(b, demo::CreateSaxpyRequestDirect(b, 2.5f, &x, &y));
  return finished(b);
}

bytes saxpy_reply_payload() {
  flatbuffers::FlatBufferBuilder b;
  const std::vector<float> y = {2.5f, 4, 8.5f, 10};
  demo::FinishSaxpyReplyBuffer(b, demo::CreateSaxpyReplyDirect(b, &y));
  return finished(b);
}

bytes score_request_payload() {
  flatbuffers::FlatBufferBuilder b;
  const demo::Quote quote(101.25, 7, 2);
  const std::vector<demo::Feature> features = {{0, 0.5f}, {3, -1.25f}, {17, 2.0f}};
  demo::FinishScoreRequestBuffer(b, demo::CreateScoreRequestDirect(b, 1234, &quote, &features, 0.1f, "ACME"));
  return finished(b);
}

bytes score_reply_payload() {
  flatbuffers::FlatBufferBuilder b;
  demo::FinishScoreReplyBuffer(b, demo::CreateScoreReply(b, 1234, 0.75f, 96.5, true, 0));
  return finished(b);
}

bytes error_reply_payload() {
  flatbuffers::FlatBufferBuilder b;
  wire::FinishErrorReplyBuffer(b, wire::CreateErrorReplyDirect(b, 3, "deadline passed"));
  return finished(b);
}

envelope_fields fields_for(type_id type, const bytes& payload) {
  envelope_fields f;
  f.type = type;
  f.correlation_id = 0x1122334455667788ull;
  f.sequence = 17;
  f.tenant = "acme";
  f.deadline_ns = kFarFuture;
  f.traceparent = kTrace;
  f.flags = 1;
  f.payload = payload;
  return f;
}

/// An envelope whose payload starts 4 bytes past an 8-byte boundary (valid: FlatBuffers only
/// requires 4-byte alignment of a [ubyte] vector; encode_envelope would align it to 8).
bytes misaligned_envelope(type_id type, const bytes& payload) {
  for (std::size_t pad = 0; pad < 8; ++pad) {
    flatbuffers::FlatBufferBuilder b;
    const auto tenant = b.CreateString(std::string(pad, 't'));
    const auto vec = b.CreateVector(payload.data(), payload.size());
    wire::EnvelopeBuilder eb(b);
    eb.add_type_id(type);
    eb.add_tenant(tenant);
    eb.add_payload(vec);
    b.Finish(eb.Finish(), wire::EnvelopeIdentifier());
    bytes out = finished(b);
    const auto* env = wire::GetEnvelope(out.data());
    if ((env->payload()->data() - out.data()) % 8 == 4) return out;
  }
  return {};
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <output-dir>\n", argv[0]);
    return 2;
  }
  g_dir = argv[1];
  std::filesystem::create_directories(g_dir);

  struct payload_seed {
    const char* name;
    type_id type;
    bytes payload;
  };
  const std::vector<payload_seed> payloads = {
      {"echo", msg::Echo::type_id_, echo_payload()},
      {"saxpy_request", msg::SaxpyRequest::type_id_, saxpy_request_payload()},
      {"saxpy_reply", msg::SaxpyReply::type_id_, saxpy_reply_payload()},
      {"score_request", msg::ScoreRequest::type_id_, score_request_payload()},
      {"score_reply", msg::ScoreReply::type_id_, score_reply_payload()},
      {"error_reply", msg::ErrorReply::type_id_, error_reply_payload()},
  };

  // Raw payloads and valid envelopes.
  for (const auto& p : payloads) {
    write(std::string("payload-") + p.name + ".bin", p.payload);
    write(std::string("env-") + p.name + ".bin", encode_envelope(fields_for(p.type, p.payload)));
    envelope_fields minimal;
    minimal.type = p.type;
    minimal.payload = p.payload;
    write(std::string("env-") + p.name + "-minimal.bin", encode_envelope(minimal));
    const bytes mis = misaligned_envelope(p.type, p.payload);
    if (!mis.empty()) write(std::string("env-") + p.name + "-misaligned.bin", mis);
  }
  {
    auto f = fields_for(msg::Echo::type_id_, payloads[0].payload);
    f.traceparent = "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-future";
    write("env-echo-trace-future-version.bin", encode_envelope(f));
    f.traceparent = "00-00000000000000000000000000000000-00f067aa0ba902b7-01";
    write("env-echo-trace-zero-id.bin", encode_envelope(f));
  }

  // Checkpoint files: an empty state, a VwapKernel-sized one, and a torn copy.
  {
    ringflow::ops::checkpoint c;
    c.kernel = "vwap";
    c.sequence = 7;
    c.requests_covered = 4096;
    c.written_unix_ms = 1796600000000ull;
    write("ckpt-empty.bin", ringflow::ops::encode_checkpoint(c));
    c.state.assign(776, 0);
    for (std::size_t i = 0; i < c.state.size(); ++i) c.state[i] = static_cast<std::uint8_t>(i * 31);
    c.state_bytes = 776;
    const bytes whole = ringflow::ops::encode_checkpoint(c);
    write("ckpt-vwap.bin", whole);
    write("ckpt-torn.bin", bytes(whole.begin(), whole.begin() + static_cast<std::ptrdiff_t>(whole.size() / 2)));
    std::vector<ringflow::ops::journal_entry> es;
    for (std::uint64_t i = 1; i <= 4; ++i) es.push_back({4096 + i, bytes(i * 5, static_cast<std::uint8_t>(i))});
    const bytes journal = ringflow::ops::encode_journal(4096, es);
    write("journal.bin", journal);
    write("journal-torn.bin", bytes(journal.begin(), journal.end() - 3));
  }

  // Invalid envelopes.
  const auto& score = payloads[3];
  const bytes good = encode_envelope(fields_for(score.type, score.payload));
  write("bad-empty.bin", bytes{});
  write("bad-short.bin", bytes(good.begin(), good.begin() + 7));
  write("bad-truncated-half.bin", bytes(good.begin(), good.begin() + static_cast<long>(good.size() / 2)));
  write("bad-truncated-last.bin", bytes(good.begin(), good.end() - 1));
  {
    bytes b = good;
    b[4] = 'X';
    write("bad-identifier.bin", b);
    b = good;
    b[0] = 0xFF;
    b[1] = 0xFF;
    write("bad-root-offset.bin", b);
  }
  {
    auto f = fields_for(score.type, score.payload);
    f.schema_version = 2;
    write("bad-schema-version-2.bin", encode_envelope(f));
    f.schema_version = 0;
    write("bad-schema-version-0.bin", encode_envelope(f));
  }
  {
    auto f = fields_for(score.type, score.payload);
    f.deadline_ns = 1;
    write("bad-deadline-past.bin", encode_envelope(f));
  }
  {
    auto f = fields_for(type_id_of("ZZZZ"), score.payload);
    write("bad-unknown-type.bin", encode_envelope(f));
    f = fields_for(msg::Echo::type_id_, score.payload);
    write("bad-type-mismatch.bin", encode_envelope(f));
    f = fields_for(score.type, bytes{});
    write("bad-empty-payload.bin", encode_envelope(f));
    const bytes short_payload(score.payload.begin(), score.payload.begin() + 6);
    f = fields_for(score.type, short_payload);
    write("bad-short-payload.bin", encode_envelope(f));
    bytes corrupt = score.payload;
    corrupt[0] ^= 0x40;  // root offset out of range
    f = fields_for(score.type, corrupt);
    write("bad-corrupt-payload.bin", encode_envelope(f));
    const bytes half(score.payload.begin(), score.payload.begin() + static_cast<long>(score.payload.size() / 2));
    f = fields_for(score.type, half);
    write("bad-truncated-payload.bin", encode_envelope(f));
  }

  // Traceparent strings.
  // Config files (ringflow_fuzz_config): every key (the effective form a run logs), the
  // deployment's (deploy/kubernetes.yaml), block style with an anchor, and refused ones.
  write(
      "config-full.json",
      std::string(
          "{\"breaker\": {\"backoff\": 2.0, \"cooldown_max_ms\": 300000, \"cooldown_ms\": 1200, \"failure_threshold\": "
          "2, \"window_ms\": 30000}, \"http\": {\"header_timeout_ms\": 5000, \"idle_timeout_ms\": 30000, \"listen\": "
          "\"127.0.0.1:9750\", \"max_connections\": 256, \"max_connections_per_peer\": 32, \"max_header_bytes\": "
          "16384}, \"ladder\": {\"backoff_initial_us\": 1000, \"backoff_max_ms\": 1000, \"hang_timeout_ms\": 233, "
          "\"probe_window_ms\": 200, \"restart_window_ms\": 10000, \"restarts_before_reinit\": 3, \"stop_timeout_ms\": "
          "2000}, \"limits\": {\"ingress_rate_per_s\": 0.0, \"max_edges\": 1000000, \"max_nodes\": 100000, "
          "\"max_payload_bytes\": 1048576, \"max_supervisor_depth\": 32, \"node_window\": 256}, \"log\": {\"file\": "
          "\"\", \"format\": \"json\", \"level\": \"info\"}, \"runtime\": {\"cpus.poller\": \"\", \"cpus.scheduler\": "
          "\"\", \"drain_timeout_ms\": 5000, \"kernel_threads\": -1, \"scheduler_threads\": 2, "
          "\"shutdown_timeout_ms\": 5000, \"wait\": \"adaptive\"}, \"trace\": {\"file\": \"\", \"sample_ratio\": 1.0}, "
          "\"workers\": {\"heartbeat_timeout_ms\": 1000, \"standby\": \"on\", \"start_timeout_ms\": 5000}}"));
  write("config-kubernetes.yaml", std::string("http: {listen: \"0.0.0.0:9750\"}\nlog: {level: info, format: json}\n"
                                              "breaker: {failure_threshold: 5, cooldown_ms: 30000}\n"
                                              "runtime: {drain_timeout_ms: 20000}\n"));
  write("config-block.yaml", std::string("# comment\nladder:\n  hang_timeout_ms: &t 250\n  probe_window_ms: *t\n"
                                         "runtime:\n  wait: spin\n  cpus:\n    poller: \"0-1\"\n"
                                         "workers: {standby: off}\ntrace: {sample_ratio: 0.5, file: /tmp/t.json}\n"));
  write("config-bad-key.yaml", std::string("ladder: {hang_timeout: 250}\n"));
  write("config-bad-type.yaml", std::string("http: {max_connections: many}\nlimits: {max_nodes: -1}\n"));
  write("config-bad-duplicate.yaml", std::string("log: {level: info}\nlog: {level: debug}\n"));

  // HTTP requests (ringflow_fuzz_http): well-formed, pipelined, and each error the parser answers.
  write("http-get.txt", std::string("GET /health/live HTTP/1.1\r\nHost: a\r\n\r\n"));
  write("http-pipelined.txt", std::string("GET /metrics?x HTTP/1.1\r\n\r\nHEAD /topology HTTP/1.0\r\n"
                                          "Connection: keep-alive\r\n\r\nGET /"));
  write("http-body.txt", std::string("POST /x HTTP/1.1\r\nContent-Length: 4\r\n\r\nbody"));
  write("http-absolute.txt", std::string("GET http://h:1/topology HTTP/1.1\nConnection: close\n\n"));
  write("http-chunked.txt", std::string("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"));
  write("http-bad-version.txt", std::string("GET / HTTP/2.0\r\n\r\n"));
  write("trace-valid.txt", std::string(kTrace));
  write("trace-future-version.txt",
        std::string("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-the-future-holds"));
  write("trace-version-ff.txt", std::string("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
  write("trace-zero-trace-id.txt", std::string("00-00000000000000000000000000000000-00f067aa0ba902b7-01"));
  write("trace-zero-span-id.txt", std::string("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01"));
  write("trace-uppercase.txt", std::string("00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01"));
  write("trace-too-long.txt", std::string(kTrace) + "-00");

  // Writer round-trip: mode byte (odd = generic, even = schema 0..5) followed by bytes.
  for (unsigned mode = 0; mode < 14; ++mode) {
    bytes b(96);
    std::uint32_t x = 0x9E3779B9u * (mode + 1);
    for (auto& v : b) {
      x ^= x << 13;
      x ^= x >> 17;
      x ^= x << 5;
      v = static_cast<std::uint8_t>(x);
    }
    b[0] = static_cast<std::uint8_t>(mode);
    write("writer-mode-" + std::to_string(mode) + ".bin", b);
  }

  std::printf("ringflow_fuzz_seeds: wrote %d seeds to %s\n", g_count, g_dir.c_str());
  return 0;
}
