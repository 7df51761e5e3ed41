// HTTP/1.1 request parsing for the program's HTTP server (http.cpp). Internal: a pure function
// over untrusted bytes, fuzzed by tests/fuzz/ringflow_fuzz_http.cpp.
//
// Contract
//   * parse_request(buf, max_header_bytes, max_body_bytes) looks at the start of `buf` (a
//     connection's unread bytes) and says one of:
//       incomplete  more bytes are needed (and the header so far is within max_header_bytes);
//       complete    one request: `req` filled in, `req.consumed` bytes (header + body) belong to it
//                   (pipelined requests follow it in `buf`);
//       error       `code` is the status to answer (400 malformed, 413 body too large, 431 header
//                   too large or too many fields, 501 a Transfer-Encoding, 505 an HTTP version
//                   other than 1.0/1.1) and `error` says why; the connection is then closed.
//   * Lines end in CRLF or a bare LF. Empty lines before the request line are skipped (RFC 9112
//     2.2) and count toward max_header_bytes. The request line is METHOD SP TARGET SP HTTP/x.y;
//     TARGET is origin-form (/path?query: the query is dropped), absolute-form
//     (http://host/path) or "*". Field names are tokens with no space before the colon; obsolete
//     line folding, control bytes, conflicting Content-Length values and a Content-Length that is
//     not plain digits are errors. At most 100 fields.
//   * keep_alive: HTTP/1.1 unless "Connection: close"; HTTP/1.0 only with "Connection: keep-alive".
// Never reads outside `buf`; allocates only the strings it returns.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace ringflow::ops::http {

struct request {
  std::string method;  // as sent (methods are case-sensitive)
  std::string path;    // the target's path, without the query; "*" for the asterisk form
  int minor = 1;       // HTTP/1.<minor>
  bool keep_alive = true;
  std::size_t consumed = 0;  // header + body bytes
  std::size_t body_bytes = 0;
};

enum class parse_status { incomplete, complete, error };

struct parse_result {
  parse_status status = parse_status::incomplete;
  request req;
  int code = 0;  // for error
  std::string error;
};

parse_result parse_request(std::string_view buf, std::size_t max_header_bytes, std::size_t max_body_bytes);

/// The reason phrase of the status codes the server sends ("Unknown" for others).
const char* reason_phrase(int code);

}  // namespace ringflow::ops::http
