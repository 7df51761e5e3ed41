// ringflow_fuzz_http: the input as the bytes a client sent to the HTTP server
// (runtime/src/http_parse.cpp). parse_request() must never read past the bytes, must answer only
// the documented error codes, and what it accepts must obey the grammar: the request is consumed
// exactly (the same answer with more bytes after it, and `consumed` within the input), the method
// is a token, the path starts with '/' (or is "*"), the header and body fit the limits.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_common.hpp"
#include "http_parse.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace ringflow::ops::http;
  if (size > 1 << 16) return -1;
  const ringflow::fuzz::owned_copy in(data, size);
  const std::string_view text(reinterpret_cast<const char*>(in.data()), in.size);
  constexpr std::size_t max_header = 2048, max_body = 512;

  const parse_result r = parse_request(text, max_header, max_body);
  switch (r.status) {
    case parse_status::incomplete: RF_CHECK(text.size() <= max_header + max_body); break;
    case parse_status::error:
      RF_CHECK(r.code == 400 || r.code == 413 || r.code == 431 || r.code == 501 || r.code == 505);
      RF_CHECK(!r.error.empty());
      break;
    case parse_status::complete: {
      RF_CHECK(r.req.consumed > 0 && r.req.consumed <= text.size());
      RF_CHECK(r.req.body_bytes <= max_body);
      RF_CHECK(r.req.consumed - r.req.body_bytes <= max_header);
      RF_CHECK(!r.req.method.empty());
      RF_CHECK(!r.req.path.empty() && (r.req.path[0] == '/' || r.req.path == "*"));
      RF_CHECK(r.req.path.find_first_of("?# ") == std::string::npos);
      RF_CHECK(r.req.minor == 0 || r.req.minor == 1);
      // The request is self-delimiting: exactly its bytes give the same answer, and so do its
      // bytes followed by anything.
      const parse_result exact = parse_request(text.substr(0, r.req.consumed), max_header, max_body);
      RF_CHECK(exact.status == parse_status::complete && exact.req.consumed == r.req.consumed &&
               exact.req.path == r.req.path && exact.req.method == r.req.method &&
               exact.req.keep_alive == r.req.keep_alive);
      // And one byte less is never complete.
      RF_CHECK(parse_request(text.substr(0, r.req.consumed - 1), max_header, max_body).status !=
               parse_status::complete);
      break;
    }
  }
  return 0;
}
