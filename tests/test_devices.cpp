// Device discovery (ringflow/runtime/devices.hpp). Every check holds on a machine with no GPU and
// no driver (CI, the development machines: one "no CUDA device" entry) as well as on one with GPUs
// (cuda:N entries), so the GPU-dependent parts accept either shape of the contract, never both.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "ringflow/runtime/devices.hpp"

using namespace ringflow::ops;

namespace {

std::vector<device_info> of_backend(const std::vector<device_info>& all, const std::string& backend) {
  std::vector<device_info> v;
  for (const auto& d : all)
    if (d.backend == backend) v.push_back(d);
  return v;
}

// Either every entry of the vendor is a device `<backend>:N` (N = 0, 1, ... in order) with a name
// and memory — available, or saying why ringflow cannot use it (its backend is not in this build,
// or the backend's runtime cannot open it / map host memory) — or there is exactly one unavailable
// entry `<backend>` saying why there is no device.
void check_vendor(const std::vector<device_info>& all, const std::string& backend, const std::string& none_prefix) {
  const auto v = of_backend(all, backend);
  REQUIRE_FALSE(v.empty());
  INFO(backend << " entries: " << to_json(v).dump());
  if (v.size() == 1 && v[0].id == backend) {
    CHECK_FALSE(v[0].available);
    CHECK(v[0].id == backend);
    CHECK(v[0].detail.rfind(none_prefix, 0) == 0);
    CHECK(v[0].detail.size() > none_prefix.size());  // the reason follows the prefix
    CHECK(v[0].memory_bytes == 0);
    CHECK_FALSE(backend_available(all, backend));
    return;
  }
  for (std::size_t i = 0; i < v.size(); ++i) {
    CHECK(v[i].id == backend + ":" + std::to_string(i));
    if (!v[i].available)
      CHECK((v[i].detail.find("built without its " + backend + " backend") != std::string::npos ||
             v[i].detail.find("cannot") != std::string::npos));
    CHECK_FALSE(v[i].name.empty());
    CHECK(v[i].memory_bytes > 0);
  }
  CHECK(backend_available(all, backend) ==
        std::any_of(v.begin(), v.end(), [](const device_info& d) { return d.available; }));
}

}  // namespace

TEST_CASE("cpu:0 and sim:0 are always listed first and available", "[devices]") {
  const auto d = discover_devices();
  REQUIRE(d.size() >= 4);  // cpu, sim, at least one CUDA entry, at least one HIP entry
  CHECK(d[0].id == "cpu:0");
  CHECK(d[0].backend == "cpu");
  CHECK(d[0].available);
  CHECK_FALSE(d[0].name.empty());
  CHECK(d[1].id == "sim:0");
  CHECK(d[1].backend == "sim");
  CHECK(d[1].available);
  CHECK_FALSE(d[1].name.empty());
  CHECK(of_backend(d, "cpu").size() == 1);
  CHECK(of_backend(d, "sim").size() == 1);
  CHECK(backend_available(d, "cpu"));
  CHECK(backend_available(d, "sim"));
}

TEST_CASE("CUDA: all devices available with name and memory, or one entry saying why not", "[devices]") {
  check_vendor(discover_devices(), "cuda", "no CUDA device: ");
}

TEST_CASE("HIP: all devices available with name and memory, or one entry saying why not", "[devices]") {
  check_vendor(discover_devices(), "hip", "no HIP device: ");
}

TEST_CASE("every entry has a known backend and a unique id, and probing twice gives the same list", "[devices]") {
  const auto a = discover_devices();
  const auto b = discover_devices();
  CHECK(to_json(a) == to_json(b));
  std::vector<std::string> ids;
  for (const auto& d : a) {
    CHECK((d.backend == "cpu" || d.backend == "sim" || d.backend == "cuda" || d.backend == "hip"));
    CHECK(d.id.rfind(d.backend, 0) == 0);
    CHECK(std::count(ids.begin(), ids.end(), d.id) == 0);
    ids.push_back(d.id);
  }
}

TEST_CASE("to_json keeps every field of every entry, in order", "[devices]") {
  const auto d = discover_devices();
  const nlohmann::json j = to_json(d);
  REQUIRE(j.is_array());
  REQUIRE(j.size() == d.size());
  for (std::size_t i = 0; i < d.size(); ++i) {
    CHECK(j[i].size() == 6);
    CHECK(j[i]["id"].get<std::string>() == d[i].id);
    CHECK(j[i]["backend"].get<std::string>() == d[i].backend);
    CHECK(j[i]["name"].get<std::string>() == d[i].name);
    CHECK(j[i]["available"].get<bool>() == d[i].available);
    CHECK(j[i]["detail"].get<std::string>() == d[i].detail);
    CHECK(j[i]["memory_bytes"].get<std::uint64_t>() == d[i].memory_bytes);
  }
  // Fixed entries: exact values survive the text form too (what `ringflow devices --json` prints).
  const std::vector<device_info> fixed{
      {"cuda:0", "cuda", "NVIDIA H100 80GB HBM3", true, "compute capability 9.0", std::uint64_t{85'520'809'984}},
      {"hip", "hip", "HIP", false, "no HIP device: \"quoted\"", 0}};
  const auto back = nlohmann::json::parse(to_json(fixed).dump());
  CHECK(back[0]["memory_bytes"].get<std::uint64_t>() == 85'520'809'984u);
  CHECK(back[0]["name"] == "NVIDIA H100 80GB HBM3");
  CHECK(back[1]["available"] == false);
  CHECK(back[1]["detail"] == "no HIP device: \"quoted\"");
  CHECK(to_json({}).is_array());
  CHECK(to_json({}).empty());
}

TEST_CASE("to_table has a header and one aligned line per entry, with every id", "[devices]") {
  const auto d = discover_devices();
  const std::string t = to_table(d);
  for (const auto& x : d) CHECK_THAT(t, Catch::Contains(x.id));
  CHECK(t.rfind("ID", 0) == 0);
  CHECK(static_cast<std::size_t>(std::count(t.begin(), t.end(), '\n')) == d.size() + 1);

  // Columns line up: BACKEND starts at the same offset on every line.
  const std::vector<device_info> fixed{{"cpu:0", "cpu", "host CPU (16 threads)", true, "x", 1ull << 34},
                                       {"cuda", "cuda", "CUDA", false, "no CUDA device: y", 0}};
  const std::string f = to_table(fixed);
  std::vector<std::string> lines;
  for (std::size_t pos = 0, nl; (nl = f.find('\n', pos)) != std::string::npos; pos = nl + 1)
    lines.push_back(f.substr(pos, nl - pos));
  REQUIRE(lines.size() == 3);
  const auto at = lines[0].find("BACKEND");
  CHECK(lines[1].find("cpu ") == at);
  CHECK(lines[2].find("cuda ", 1) == at);
  CHECK_THAT(lines[1], Catch::Contains("16.0 GiB"));
  CHECK_THAT(lines[2], Catch::EndsWith("no CUDA device: y"));
}

TEST_CASE("backend_available is true exactly for backends with an available entry", "[devices]") {
  const auto d = discover_devices();
  for (const char* b : {"cpu", "sim", "cuda", "hip"}) {
    bool any = false;
    for (const auto& x : d) any = any || (x.backend == b && x.available);
    CHECK(backend_available(d, b) == any);
  }
  CHECK_FALSE(backend_available(d, "tpu"));
  CHECK_FALSE(backend_available({}, "cpu"));
  const std::vector<device_info> only_unavailable{{"cuda", "cuda", "CUDA", false, "no CUDA device: z", 0}};
  CHECK_FALSE(backend_available(only_unavailable, "cuda"));
}
