// ringflow/runtime/utf8.hpp — text that leaves the program is valid UTF-8.
//
// Contract
//   * valid_utf8(s) returns `s` when it is well-formed UTF-8 (RFC 3629: no overlongs, no
//     surrogates, nothing past U+10FFFF) and otherwise a copy with each invalid byte sequence (a
//     maximal ill-formed subpart, as Unicode's "substitution of maximal subparts" says) replaced by
//     U+FFFD. Never throws on content (only std::bad_alloc).
//   * Used for every log line (JSON and text), audit record, error printed for a file, /topology
//     and the summary: a config value, path or kernel detail with byte 0xFF is shown as "\uFFFD"
//     (the replacement character), never an exception (nlohmann::json's strict dump throws).
// Thread-safety: a pure function.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace ringflow::ops {

/// Length of the well-formed UTF-8 sequence at s[i] (1..4), or 0 when none starts there; `bad`
/// then holds how many bytes form the maximal ill-formed subpart (>= 1).
inline std::size_t utf8_sequence(std::string_view s, std::size_t i, std::size_t& bad) noexcept {
  const auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = b(i);
  bad = 1;
  if (c < 0x80) return 1;
  std::size_t n = 0;
  unsigned char lo = 0x80, hi = 0xBF;  // the second byte's range
  if (c >= 0xC2 && c <= 0xDF) n = 2;
  else if (c == 0xE0) n = 3, lo = 0xA0;
  else if (c == 0xED) n = 3, hi = 0x9F;  // no surrogates
  else if (c >= 0xE1 && c <= 0xEF) n = 3;
  else if (c == 0xF0) n = 4, lo = 0x90;
  else if (c == 0xF4) n = 4, hi = 0x8F;  // nothing past U+10FFFF
  else if (c >= 0xF1 && c <= 0xF3) n = 4;
  else return 0;  // 0x80..0xC1, 0xF5..0xFF: never start a sequence
  for (std::size_t k = 1; k < n; ++k) {
    if (i + k >= s.size()) return 0;
    const unsigned char x = b(i + k);
    if (x < (k == 1 ? lo : 0x80) || x > (k == 1 ? hi : 0xBF)) return 0;
    bad = k + 1;
  }
  return n;
}

inline bool is_valid_utf8(std::string_view s) noexcept {
  for (std::size_t i = 0, bad = 0; i < s.size();) {
    const std::size_t n = utf8_sequence(s, i, bad);
    if (!n) return false;
    i += n;
  }
  return true;
}

inline std::string valid_utf8(std::string_view s) {
  if (is_valid_utf8(s)) return std::string(s);
  std::string out;
  out.reserve(s.size() + 8);
  for (std::size_t i = 0, bad = 0; i < s.size();) {
    const std::size_t n = utf8_sequence(s, i, bad);
    if (n) {
      out.append(s.substr(i, n));
      i += n;
    } else {
      out.append("\xEF\xBF\xBD");  // U+FFFD
      i += bad;
    }
  }
  return out;
}

}  // namespace ringflow::ops
