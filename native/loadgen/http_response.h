// Checks one HTTP/1.x response as the load generator's http modes expect
// it: status 200, framed by Content-Length (a response without it, or with
// Transfer-Encoding, cannot be checked and is refused), headers within a
// bound, and the body's exact length. Bytes come in pieces of any size; the
// whole state is a dozen bytes that live in the lane, so reading allocates
// nothing and keeps no header text.
#ifndef ACCEPTPOOL_LOADGEN_HTTP_RESPONSE_H_
#define ACCEPTPOOL_LOADGEN_HTTP_RESPONSE_H_

#include <cstddef>
#include <cstdint>

namespace acceptpool {

// Status line and headers together, at most (what node:http sends for a
// hello world is about 100 bytes).
constexpr uint32_t kMaxHttpHeaderBytes = 16 * 1024;
// The largest Content-Length taken: a bigger body is no load-test response.
constexpr uint32_t kMaxHttpBody = 1u << 30;

class HttpResponseReader {
 public:
  enum class Outcome : uint8_t { kMore, kDone, kBad };

  // Ready for the next response.
  void Reset() { *this = HttpResponseReader(); }
  // Reads bytes of the response. kMore: all of them were taken and more
  // must follow; kDone: the response is complete after *used bytes (the
  // caller decides what bytes past it mean); kBad: not a response this
  // check accepts (*used is then meaningless).
  Outcome Feed(const char* data, size_t size, size_t* used);

 private:
  enum class Step : uint8_t {
    kStatus,
    kLineRest,
    kLineStart,
    kName,
    kLength,
    kLineFeed,
    kHeadersEnd,
    kBody
  };

  bool Header(char c);
  Outcome EndHeaders();

  uint32_t value_ = 0;         // Content-Length as read; then the body bytes still due
  uint32_t header_bytes_ = 0;  // status line and headers so far
  uint8_t pos_ = 0;            // position in the status prefix or header name
  uint8_t candidates_ = 0;  // header names still matching (kContentLength, kTransferEncoding bits)
  uint8_t flags_ = 0;       // kHasLength, kDigits, kAfterDigits
  Step step_ = Step::kStatus;
};

}  // namespace acceptpool

#endif  // ACCEPTPOOL_LOADGEN_HTTP_RESPONSE_H_
