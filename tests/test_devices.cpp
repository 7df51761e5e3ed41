// Device discovery: the CPU and sim devices always; CUDA and HIP through their driver libraries
// (dlopen), or one entry per vendor saying why there is none. Passes with and without a GPU.
#include <catch2/catch.hpp>

#include "ringflow/runtime/devices.hpp"

using namespace ringflow::ops;

TEST_CASE("cpu:0 and sim:0 are always there; each GPU vendor is listed or explained", "[devices]") {
  const std::vector<device_info> d = discover_devices();
  REQUIRE(d.size() >= 4);
  CHECK(d[0].id == "cpu:0");
  CHECK(d[0].available);
  CHECK(d[1].id == "sim:0");
  CHECK(d[1].available);
  for (const char* vendor : {"cuda", "hip"}) {
    INFO(vendor);
    std::size_t listed = 0, explained = 0;
    for (const auto& x : d) {
      if (x.backend != vendor) continue;
      if (x.available) {
        ++listed;
        CHECK(x.id.rfind(std::string(vendor) + ":", 0) == 0);
        CHECK_FALSE(x.name.empty());
      } else {
        ++explained;
        CHECK(x.id == vendor);
        CHECK_THAT(x.detail, Catch::StartsWith(std::string("no ") + (std::string(vendor) == "cuda" ? "CUDA" : "HIP") +
                                               " device: "));
      }
    }
    CHECK(listed + explained >= 1);
    CHECK((listed == 0 || explained == 0));  // either devices, or one reason
    CHECK(backend_available(d, vendor) == (listed > 0));
  }
  CHECK(backend_available(d, "cpu"));
  CHECK_FALSE(backend_available(d, "tpu"));
}

TEST_CASE("devices render as JSON and as a table", "[devices]") {
  const std::vector<device_info> d = {{"cpu:0", "cpu", "host", true, "x", 0},
                                      {"cuda", "cuda", "CUDA", false, "no CUDA device: none", 0},
                                      {"cuda:1", "cuda", "H100", true, "cc 9.0", 80ull << 30}};
  const nlohmann::json j = to_json(d);
  REQUIRE(j.size() == 3);
  CHECK(j[2]["id"] == "cuda:1");
  CHECK(j[2]["memory_bytes"] == (80ull << 30));
  CHECK(j[1]["available"] == false);
  CHECK(j[1]["detail"] == "no CUDA device: none");
  const std::string t = to_table(d);
  for (const auto& x : d) CHECK_THAT(t, Catch::Contains(x.id));
  CHECK_THAT(t, Catch::StartsWith("ID"));
}
