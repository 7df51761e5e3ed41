// ringflow_fuzz_config: the input as a config file (YAML bytes) through the config layer
// (runtime/src/config.cpp): load_text() then validate(), as `ringflow run --config` does.
// Invariants: nothing throws or crashes; every error names what is wrong; a config that is
// accepted survives its own effective form — to_json() read back as a config file (JSON is YAML)
// is accepted too and gives the same config (values that are UTF-8 text), and every key's
// get_value() is set_value()-able to the same config.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "fuzz_common.hpp"
#include "ringflow/runtime/config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace ringflow::ops;
  if (size > 1 << 16) return -1;
  const std::string text(reinterpret_cast<const char*>(data), size);
  program_config cfg;
  std::vector<config_error> errors;
  try {
    load_text(cfg, text, "fuzz.yaml", errors);
    if (errors.empty()) validate(cfg, errors);
  } catch (...) {
    RF_CHECK(!"the config layer threw");
  }
  for (const config_error& e : errors) RF_CHECK(!e.what.empty() && !e.str().empty());
  if (!errors.empty()) return 0;

  // Accepted: its effective form reads back to the same config. (Not when a value is a path that
  // is not UTF-8 text, which a config may hold and JSON cannot: such a value is dumped replaced.)
  std::string effective;
  try {
    effective = to_json(cfg).dump();
  } catch (const nlohmann::json::type_error&) {
    return 0;
  }
  program_config again;
  std::vector<config_error> again_errors;
  load_text(again, effective, "effective.json", again_errors);
  if (again_errors.empty()) validate(again, again_errors);
  RF_CHECK(again_errors.empty());
  RF_CHECK(again == cfg);
  // And key by key through the flag/environment path.
  program_config by_key;
  std::vector<config_error> key_errors;
  for (const std::string& k : all_keys()) {
    const std::optional<std::string> v = get_value(cfg, k);
    RF_CHECK(v.has_value());
    set_value(by_key, k, *v, "fuzz", key_errors);
  }
  RF_CHECK(key_errors.empty());
  RF_CHECK(by_key == cfg);
  return 0;
}
