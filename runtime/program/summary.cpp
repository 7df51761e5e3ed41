// The run summary as a table (a terminal) and as JSON (--summary-json): see program.hpp.
#include <cerrno>
#include <cstring>
#include <fstream>

#include "program.hpp"

namespace ringflow::program {

using namespace ringflow::ops;

std::string fmt_us(double us) {
  char b[32];
  if (us >= 1000.0) std::snprintf(b, sizeof b, "%.2f ms", us / 1000.0);
  else std::snprintf(b, sizeof b, "%.0f us", us);
  return b;
}

void print_summary_table(const run_summary& s, std::FILE* out) {
  std::fprintf(
      out,
      "\n  ringflow run summary\n"
      "  ---------------------------------------------\n"
      "  messages   sent %llu   replied %llu   errors %llu\n"
      "             lost %llu   duplicated %llu   wrong %llu\n"
      "  latency    p50 %s   p99 %s   p99.9 %s   max %s\n"
      "  faults     injected %llu   detected %llu\n"
      "  recovery   restarts %llu   reinits %llu   reroutes %llu   fail-backs %llu   replays %llu\n"
      "  run        %.1f s   %.0f msg/s\n"
      "  result     %s\n\n",
      static_cast<unsigned long long>(s.sent), static_cast<unsigned long long>(s.replied),
      static_cast<unsigned long long>(s.errors), static_cast<unsigned long long>(s.lost),
      static_cast<unsigned long long>(s.duplicated), static_cast<unsigned long long>(s.wrong), fmt_us(s.p50_us).c_str(),
      fmt_us(s.p99_us).c_str(), fmt_us(s.p999_us).c_str(), fmt_us(s.max_us).c_str(),
      static_cast<unsigned long long>(s.faults_injected), static_cast<unsigned long long>(s.faults_detected),
      static_cast<unsigned long long>(s.restarts), static_cast<unsigned long long>(s.reinits),
      static_cast<unsigned long long>(s.reroutes), static_cast<unsigned long long>(s.failbacks),
      static_cast<unsigned long long>(s.replays), s.duration_s, s.throughput_per_s,
      s.ok() ? "OK: every message answered exactly once (lost 0)"
      : !s.gave_up.empty()
          ? ("GAVE UP: supervisor '" + s.gave_up + "' exceeded its restart intensity; the topology was stopped").c_str()
          : "FAILED: messages were lost, duplicated or answered wrongly");
}

bool write_summary(const std::string& path, const run_summary& s, std::string& err) {
  if (path.empty()) return true;
  std::ofstream f(path, std::ios::trunc);
  if (f) f << s.to_json().dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  if (f) f.close();  // the write reaches the file (a full disk fails here, not in the buffer)
  if (!f) {
    err = "cannot write the summary to '" + path + "': " + std::strerror(errno);
    return false;
  }
  return true;
}

}  // namespace ringflow::program
