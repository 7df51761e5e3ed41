// Kernel plugins (runtime/plugins.hpp, ringflow/plugin.hpp): loading into the catalog, bad plugins
// refused whole with the file and the reason, the example plugin in topologies (in-process, in a
// kernel-host worker, under a supervisor), workers refusing a different file, and a plugin's
// device table on the emulated GPU. Each TEST_CASE runs in its own process (ctest), so what one
// loads never leaks into another.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>

#include "plugin_example/fill_generated.h"
#include "ringflow/demo_kernels.hpp"
#include "ringflow/doorbell.hpp"
#include "ringflow/gpu/kernel_registry.hpp"
#include "ringflow/runtime/catalog.hpp"
#include "ringflow/runtime/checkpoint.hpp"
#include "ringflow/runtime/plugins.hpp"
#include "ringflow/version.hpp"
#include "support/gpu_emulator.hpp"
#include "support/program_run.hpp"

namespace fs = std::filesystem;
using namespace ringflow;
using namespace ringflow::ops;
using ringflow::testing::outcome;
using ringflow::testing::temp_dir;
using ringflow::testing::write_file;

namespace {

const std::string program = RINGFLOW_PROGRAM;
const std::string desk_path = RINGFLOW_DESK_PLUGIN;            // examples/plugin_example, built in-tree
const std::string desk_copy_path = RINGFLOW_DESK_COPY_PLUGIN;  // the same kernels, another file
const std::string plugins_dir = RINGFLOW_TEST_PLUGIN_DIR;
std::string bad(const std::string& which) { return plugins_dir + "/libringflow_test_plugin_" + which + ".so"; }

outcome run(const std::vector<std::string>& args) { return ringflow::testing::run_program(program, args); }

// Loads `paths`; the problems joined ("path: what; ...") when it fails.
std::string load_failure(const std::vector<std::string>& paths) {
  std::vector<loaded_plugin> out;
  std::vector<plugin_problem> problems;
  if (load_plugins(paths, out, problems)) return {};
  std::string s;
  for (const auto& p : problems) s += p.path + ": " + p.what + "; ";
  return s.empty() ? "failed without a reason" : s;
}

// A topology with a plugin (absolute path) and `body` (nodes etc.).
fs::path desk_topology(const std::string& name, const std::string& plugin, const std::string& body) {
  return write_file(name + ".yaml", "name: " + name + "\nplugins: [" + plugin + "]\n" + body);
}

nlohmann::json summary_of(const fs::path& p) { return nlohmann::json::parse(ringflow::testing::slurp(p)); }

}  // namespace

TEST_CASE("plugins: the example plugin's kernel, types and function join the catalog", "[plugins]") {
  REQUIRE(find_kernel("fill") == nullptr);
  REQUIRE(load_failure({desk_path}).empty());
  const kernel_info* k = find_kernel("fill");
  REQUIRE(k != nullptr);
  CHECK(k->request == "desk.Trade");
  CHECK(k->reply == "desk.Fill");
  CHECK(k->origin == desk_path);
  const message_info* trade = find_message("desk.Trade");
  const message_info* fill = find_message("desk.Fill");
  REQUIRE(trade);
  REQUIRE(fill);
  CHECK(trade->loadable());
  CHECK_FALSE(fill->loadable());
  CHECK(fill->sequence_of);
  CHECK(fill->check);
  REQUIRE(find_function("risk_check") != nullptr);
  CHECK(catalog_payloads().find(trade->id) != nullptr);  // ring actors verify its payloads

  // The load hook makes a valid request carrying the sequence; the Verifier refuses garbage.
  const fb_msg m = trade->make(41, 100);
  CHECK(trade->verify(m));
  CHECK(m.type() == trade->id);
  fb_msg junk = m;
  junk.bytes.resize(12);
  CHECK_FALSE(trade->verify(junk));

  // The audit record: the file's content hash and the versions.
  const std::vector<loaded_plugin> l = loaded_plugins();
  REQUIRE(l.size() == 1);
  std::string err;
  CHECK(l[0].sha256 == sha256_of_file(desk_path, err));
  CHECK(l[0].name == "ringflow_test_plugin_desk");
  CHECK(l[0].ringflow_version == RINGFLOW_VERSION_STRING);
  CHECK(l[0].flatbuffers_version == "2.0.8");

  // Loading the same file again is no duplicate: it is already there.
  CHECK(load_failure({desk_path}).empty());
  CHECK(loaded_plugins().size() == 1);

  // The function: a trade passes; a wrong type or an oversize trade is the node's error.
  const cpu_node_fn risk = find_function("risk_check")->make(*trade);
  const std::optional<fb_msg> passed = risk(m);
  REQUIRE(passed);
  CHECK(passed->bytes == m.bytes);
  CHECK_THROWS_WITH(risk(junk), Catch::Contains("not a desk.Trade"));
}

TEST_CASE("plugins: bad plugins are refused with the file and the reason, and nothing is half-loaded", "[plugins]") {
  const std::string text_file = write_file("not-a-library.so", "just text\n").string();
  struct refused {
    std::string path;
    std::string reason;
  };
  const std::vector<refused> cases = {
      {"/no/such/plugin.so", "cannot open the file: No such file or directory"},
      {text_file, "not a loadable shared library"},
      {bad("no_entry"), "not a ringflow plugin: it exports no ringflow_plugin_v1"},
      {bad("bad_abi"), "plugin ABI version 99, this program's is 1"},
      {bad("bad_ringflow"), "built with ringflow 0.2.0, this program is ringflow 0.1.0"},
      {bad("bad_flatbuffers"), "built with FlatBuffers 2.0.9, this program uses FlatBuffers 2.0.8"},
      {bad("throws"), "its entry point threw: the plugin's set-up failed on purpose"},
      {bad("dup_builtin"), "kernel 'echo' is already defined (built-in)"},
      {bad("dup_function"), "function 'validate' is already defined (built-in)"},
      {bad("unknown_types"), "kernel 'plain_fill': its reply type desk.Nothing (\"NOPE\") is unknown"},
      {desk_copy_path, "kernel 'fill' is already defined (plugin " + desk_path + ")"},
  };
  for (const refused& c : cases) {
    INFO(c.path);
    // With a good plugin first in the list: all or none, so neither is loaded.
    const std::string why = load_failure({desk_path, c.path});
    CHECK_THAT(why, Catch::Contains(c.path + ": " + c.reason));
    CHECK(find_kernel("fill") == nullptr);
    CHECK(find_message("desk.Trade") == nullptr);
    CHECK(find_function("risk_check") == nullptr);
    CHECK(loaded_plugins().empty());
  }
  // And the good one alone still loads afterwards (nothing was left behind by the failures).
  CHECK(load_failure({desk_path}).empty());
  CHECK(find_kernel("fill") != nullptr);
}

TEST_CASE("plugins: ringflow validate loads and checks them, exit 3 naming the file, line and reason", "[plugins]") {
  const std::string body =
      "nodes:\n  - {name: fill, kernel: fill}\nload:\n  - {name: l, target: fill, message: desk.Trade, rate: 10}\n";
  const outcome ok = run({"validate", desk_topology("ok", desk_path, body).string()});
  CHECK(ok.code == 0);
  CHECK_THAT(ok.out, Catch::Contains("plugin " + desk_path + ": ringflow_test_plugin_desk, sha256:"));
  CHECK_THAT(ok.out, Catch::Contains("kernels: fill; messages: desk.Trade, desk.Fill; functions: risk_check"));

  const fs::path v = desk_topology("badver", bad("bad_ringflow"), body);
  const outcome o = run({"validate", v.string()});
  CHECK(o.code == 3);
  CHECK_THAT(o.err, Catch::Contains(v.string() + ":2:11: plugin '" + bad("bad_ringflow") + "'"));
  CHECK_THAT(o.err, Catch::Contains("built with ringflow 0.2.0, this program is ringflow 0.1.0"));
  CHECK(run({"run", v.string(), "--duration", "1", "--http", "off"}).code == 3);  // run refuses it the same way

  // A relative path is relative to the topology file; a missing one says so.
  const fs::path rel =
      write_file("rel.yaml", "name: rel\nplugins: [nowhere/libx.so]\nnodes:\n  - {name: e, kernel: echo}\n");
  const outcome r = run({"validate", rel.string()});
  CHECK(r.code == 3);
  CHECK_THAT(r.err, Catch::Contains((temp_dir() / "nowhere/libx.so").string() + "): cannot open the file"));

  // A type without load hooks cannot be a load: message.
  const fs::path nl = desk_topology("noload", bad("no_load"),
                                    "nodes:\n  - {name: f, kernel: plain_fill}\nload:\n  - {name: l, target: f, "
                                    "message: desk.Trade, rate: 10}\n");
  const outcome n = run({"validate", nl.string()});
  CHECK(n.code == 3);
  CHECK_THAT(n.err, Catch::Contains("message type 'desk.Trade' has no load generator"));

  // Without `plugins:`, a plugin's names are unknown (a file sees only what it names).
  const fs::path none = write_file("none.yaml", "name: none\nnodes:\n  - {name: f, kernel: fill}\n");
  const outcome u = run({"validate", none.string()});
  CHECK(u.code == 3);
  CHECK_THAT(u.err, Catch::Contains("unknown kernel 'fill'"));
}

TEST_CASE("plugins: the example topology runs a plugin kernel in a worker process, supervised (lost 0, wrong 0)",
          "[plugins]") {
  const fs::path sum = temp_dir() / "desk-summary.json";
  const outcome o =
      run({"run", RINGFLOW_DESK_TOPOLOGY, "--duration", "2.5", "--http", "off", "--summary-json", sum.string()});
  INFO(o.err);
  REQUIRE(o.code == 0);
  const nlohmann::json s = summary_of(sum);
  CHECK(s["lost"] == 0);
  CHECK(s["wrong"] == 0);
  CHECK(s["duplicated"] == 0);
  CHECK(s["errors"] == 0);
  CHECK(s["replied"].get<std::uint64_t>() > 1000);
  CHECK(s["restarts"].get<std::uint64_t>() >= 1);  // the worker kill at 1.5 s, recovered
  CHECK_THAT(o.err, Catch::Contains("\"msg\":\"plugin loaded\""));
  CHECK_THAT(o.err, Catch::Contains("\"sha256\":\"sha256:"));
}

TEST_CASE("plugins: a plugin kernel in-process on the sim device with crashes: exactly once, checked replies",
          "[plugins]") {
  const fs::path t = desk_topology("inproc", desk_path,
                                   "nodes:\n  - {name: fill, kernel: fill, backend: sim, replicas: 2}\n"
                                   "load:\n  - {name: l, target: fill, message: desk.Trade, rate: 1500, "
                                   "payload_bytes: 200}\nfaults:\n  - {node: fill, kind: crash, at_s: 0.8}\n");
  const fs::path sum = temp_dir() / "inproc-summary.json";
  const outcome o = run({"run", t.string(), "--duration", "2", "--http", "off", "--summary-json", sum.string()});
  INFO(o.err);
  REQUIRE(o.code == 0);
  const nlohmann::json s = summary_of(sum);
  CHECK(s["lost"] == 0);
  CHECK(s["wrong"] == 0);
  CHECK(s["replied"].get<std::uint64_t>() > 1000);
  CHECK(s["faults_injected"].get<std::uint64_t>() >= 1);
}

TEST_CASE("plugins: a plugin's stateful kernel keeps its state through a crash and a worker kill, exactly once",
          "[plugins][state]") {
  const std::string path = bad("stateful");  // (the helper names any test plugin's file)
  REQUIRE(load_failure({path}).empty());
  const kernel_info* k = find_kernel("position");
  REQUIRE(k);
  CHECK(k->state_bytes == 7 * 8 + 8);
  REQUIRE((k->init_state && k->apply_state && k->dump_state));
  const message_info* trade = find_message("desk.Trade");
  REQUIRE(trade);
  // The fault-free state of trades 0 .. n-1, through the plugin's own handler on the host.
  auto reference = [&](std::uint64_t n) {
    std::vector<std::uint8_t> st(k->state_bytes);
    k->init_state(st.data());
    for (std::uint64_t i = 0; i < n; ++i) {
      const fb_msg m = trade->make(i, 16);
      k->apply_state(st.data(), m.bytes.data(), static_cast<std::uint32_t>(m.bytes.size()));
    }
    return st;
  };
  const nlohmann::json dump = nlohmann::json::parse(k->dump_state(reference(10).data()));
  CHECK(dump["applied"] == 10);
  CHECK(dump["net"].size() == 7);
  // In a topology: one node in-process on the sim device (a crash; state.verify on), one in a
  // kernel-host worker (SIGKILLed), each checkpointed; both states must be the fault-free ones.
  const fs::path dir = temp_dir() / "plugin-state";
  fs::remove_all(dir);
  const fs::path t = desk_topology(
      "pstate", path,
      "nodes:\n"
      "  - {name: pos, kernel: position, backend: sim, state: {snapshot_every: 200, verify: true},\n"
      "     checkpoint: {dir: " +
          dir.string() +
          ", every_ms: 100}}\n"
          "  - {name: hosted, kernel: position, backend: cpu, host: process, state: {snapshot_every: 200},\n"
          "     checkpoint: {dir: " +
          dir.string() +
          ", every_ms: 100}}\n"
          "load:\n"
          "  - {name: a, target: pos, message: desk.Trade, rate: 1500, payload_bytes: 16}\n"
          "  - {name: b, target: hosted, message: desk.Trade, rate: 1500, payload_bytes: 16}\n"
          "faults:\n"
          "  - {node: pos, kind: crash, at_s: 0.7}\n"
          "  - {node: hosted, kind: kill_worker, at_s: 0.9}\n");
  const fs::path sum = temp_dir() / "pstate-summary.json";
  const outcome o = run({"run", t.string(), "--duration", "2", "--http", "off", "--summary-json", sum.string()});
  INFO(o.err.substr(o.err.size() > 4000 ? o.err.size() - 4000 : 0));
  REQUIRE(o.code == 0);
  const nlohmann::json j = summary_of(sum);
  CHECK(j["lost"] == 0);
  CHECK(j["wrong"] == 0);
  CHECK(j["errors"] == 0);
  CHECK(j["restarts"].get<std::uint64_t>() >= 2);
  CHECK_THAT(o.err, !Catch::Contains("state.verify"));  // no non-determinism reported
  std::uint64_t covered = 0;
  for (const char* node : {"pos", "hosted"}) {
    INFO(node);
    const checkpoint_store::loaded l = checkpoint_store(dir, node).load();
    REQUIRE(l.cp);
    CHECK(l.cp->kernel == "position");
    CHECK(l.cp->requests_covered > 100);
    CHECK(l.cp->state == reference(l.cp->requests_covered));
    covered += l.cp->requests_covered;
  }
  CHECK(covered == j["replied"].get<std::uint64_t>());
}

TEST_CASE("plugins: a table from before the state arrays loads, its kernels stateless (the host reads nothing past it)",
          "[plugins][state]") {
  REQUIRE(load_failure({bad("stateful_old")}).empty());
  const kernel_info* k = find_kernel("position");
  REQUIRE(k);
  CHECK(k->state_bytes == 0);
  CHECK_FALSE(k->apply_state);
  const fs::path t = desk_topology("pold", bad("stateful_old"),
                                   "nodes:\n  - {name: pos, kernel: position, state: {snapshot_every: 10}}\n");
  const outcome o = run({"validate", t.string()});
  CHECK(o.code == 3);
  CHECK_THAT(o.err, Catch::Contains("kernel 'position' keeps no state"));
}

TEST_CASE("plugins: a wrong answer is counted wrong by the kernel's check_reply", "[plugins]") {
  REQUIRE(load_failure({desk_path}).empty());
  const message_info* fill = find_message("desk.Fill");
  REQUIRE(fill);
  // A fill with the wrong notional for its trade (what a broken kernel would send).
  flatbuffers::FlatBufferBuilder b;
  desk::FinishFillBuffer(b, desk::CreateFill(b, 5, 6, 1.0, true));
  const fb_msg wrong(b.GetBufferPointer(), b.GetSize());
  std::string why;
  CHECK_FALSE(fill->check(wrong, why));
  CHECK_THAT(why, Catch::Contains("check_reply refused the reply"));
  REQUIRE(fill->sequence_of(wrong));
  CHECK(*fill->sequence_of(wrong) == 5);
  flatbuffers::FlatBufferBuilder r;
  desk::FinishFillBuffer(r, desk::CreateFill(r, 5, 6, 6 * 105.0, true));  // quantity 6, price 105
  CHECK(fill->check(fb_msg(r.GetBufferPointer(), r.GetSize()), why));
}

TEST_CASE("plugins: a kernel-host worker refuses a plugin file that is not the service's", "[plugins]") {
  std::vector<loaded_plugin> out;
  std::vector<plugin_problem> problems;
  CHECK_FALSE(load_plugins({desk_path}, out, problems, {"sha256:" + std::string(64, '0')}));
  REQUIRE(problems.size() == 1);
  CHECK_THAT(problems[0].what, Catch::Contains("differs from the service's sha256:000"));
  CHECK(find_kernel("fill") == nullptr);
  // The worker's exit code for it: 7 (bad_plugin), before it touches any segment.
  const outcome o = run({"kernel-host", "--segment", "/ringflow.none", "--plugin", desk_path, "--plugin-sha256",
                         "sha256:" + std::string(64, '0')});
  CHECK(o.code == 7);
  CHECK_THAT(o.err, Catch::Contains("differs from the service's"));
}

TEST_CASE("plugins: a plugin's device table is served by the emulated GPU, and a second one is refused with both named",
          "[plugins][gpu]") {
  gpu::emulator::reset_process();
  REQUIRE(load_failure({RINGFLOW_GPU_PLUGIN}).empty());
  {
    std::shared_ptr<gpu::gpu_device> dev = gpu::make_emulated_device();
    REQUIRE(dev);
    // The plugin's kernel is on the device's table, next to the built-ins; a ring actor of it
    // would bind here (the device logic itself is test_gpu_device's).
    incarnation_factory f = dev->factory("fill", {});
    doorbell bell;
    std::unique_ptr<incarnation> inc = f(&bell);
    REQUIRE(inc);
    CHECK(std::string(inc->kernel_name()) == "fill");
    CHECK(inc->request_type() == find_message("desk.Trade")->id);
    CHECK(inc->stop(std::chrono::milliseconds(2000)));
  }
  // A second plugin with its own device table: one table per backend per process.
  REQUIRE(load_failure({RINGFLOW_GPU_PLUGIN2}).empty());
  try {
    (void)gpu::make_emulated_device();
    FAIL("a second device table must be refused");
  } catch (const std::invalid_argument& e) {
    CHECK_THAT(e.what(), Catch::Contains("more than one kernel table for backend emulated"));
    CHECK_THAT(e.what(), Catch::Contains(std::string("plugin ") + RINGFLOW_GPU_PLUGIN));
    CHECK_THAT(e.what(), Catch::Contains(std::string("plugin ") + RINGFLOW_GPU_PLUGIN2));
  }
}

#if defined(RINGFLOW_CUDA_PLUGIN)
TEST_CASE(
    "plugins: a plugin's CUDA device table (nvcc, RINGFLOW_PLUGIN_GPU_KERNELS) is registered for the cuda backend",
    "[plugins][gpu]") {
  REQUIRE(load_failure({RINGFLOW_CUDA_PLUGIN}).empty());
  const std::vector<loaded_plugin> l = loaded_plugins();
  REQUIRE(l.size() == 1);
  CHECK(l[0].gpu_backends == std::vector<std::string>{"cuda"});
  CHECK(l[0].kernels == std::vector<std::string>{"fill"});
  // What a CUDA device opened now would serve: the demo kernels, then the plugin's.
  const gpu::kernel_table_info t = gpu::select_kernel_table("cuda", gpu::kernel_table_info{});
  REQUIRE(t.size == 5);
  CHECK(gpu::kernel_index(t, "echo") == 0);
  CHECK(gpu::kernel_index(t, "vwap") == 3);
  CHECK(gpu::kernel_index(t, "fill") == 4);
  CHECK(t.request_type(4) == find_message("desk.Trade")->id);
  CHECK(t.reply_type(4) == find_message("desk.Fill")->id);
  REQUIRE(t.state_bytes != nullptr);  // the table's state sizes cross too (gpu_state_v1): vwap keeps state
  CHECK(t.state_bytes(3) == sizeof(demo_kernels::VwapKernel::state));
  CHECK(t.state_bytes(4) == 0);
  REQUIRE(t.origin != nullptr);
  CHECK(std::string(t.origin) == std::string("plugin ") + RINGFLOW_CUDA_PLUGIN);
  CHECK(t.launch != nullptr);  // launched only on a GPU: not verified here
}
#endif
