#include "loadgen/http_response.h"

#include <algorithm>

namespace acceptpool {

namespace {

// The status line's start; '?' is any digit (HTTP/1.0 or HTTP/1.1).
constexpr char kStatusPrefix[] = "HTTP/1.? 200";
constexpr uint8_t kStatusPrefixLength = sizeof(kStatusPrefix) - 1;
// Header names compared in lower case, as they are case-insensitive.
constexpr char kContentLength[] = "content-length";
constexpr uint8_t kContentLengthLength = sizeof(kContentLength) - 1;
constexpr char kTransferEncoding[] = "transfer-encoding";
constexpr uint8_t kTransferEncodingLength = sizeof(kTransferEncoding) - 1;

// candidates_ bits.
constexpr uint8_t kIsContentLength = 1;
constexpr uint8_t kIsTransferEncoding = 2;
// flags_ bits.
constexpr uint8_t kHasLength = 1;
constexpr uint8_t kDigits = 2;
constexpr uint8_t kAfterDigits = 4;

char Lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

}  // namespace

HttpResponseReader::Outcome HttpResponseReader::Feed(const char* data, size_t size, size_t* used) {
  size_t i = 0;
  while (i < size) {
    if (step_ == Step::kBody) {
      size_t take = std::min<size_t>(size - i, value_);
      value_ -= static_cast<uint32_t>(take);
      i += take;
      if (value_ == 0) {
        *used = i;
        return Outcome::kDone;
      }
      continue;
    }
    if (++header_bytes_ > kMaxHttpHeaderBytes) return Outcome::kBad;
    char c = data[i++];
    switch (step_) {
      case Step::kStatus:
        if (pos_ < kStatusPrefixLength) {
          char want = kStatusPrefix[pos_++];
          if (want == '?' ? (c < '0' || c > '9') : c != want) return Outcome::kBad;
        } else if (c == ' ') {  // the reason phrase follows
          step_ = Step::kLineRest;
        } else if (c == '\r') {
          step_ = Step::kLineFeed;
        } else {
          return Outcome::kBad;  // 2000, 200x: not 200
        }
        break;
      case Step::kLineRest:
        if (c == '\n') step_ = Step::kLineStart;
        break;
      case Step::kLineFeed:
        if (c != '\n') return Outcome::kBad;
        step_ = Step::kLineStart;
        break;
      case Step::kLineStart:
        if (c == '\r') {
          step_ = Step::kHeadersEnd;
          break;
        }
        pos_ = 0;
        candidates_ = kIsContentLength | kIsTransferEncoding;
        step_ = Step::kName;
        if (!Header(c)) return Outcome::kBad;
        break;
      case Step::kName:
        if (!Header(c)) return Outcome::kBad;
        break;
      case Step::kLength:
        if (c == ' ' || c == '\t') {
          if (flags_ & kDigits) flags_ |= kAfterDigits;
        } else if (c == '\r') {
          if (!(flags_ & kDigits)) return Outcome::kBad;
          flags_ |= kHasLength;
          step_ = Step::kLineFeed;
        } else if (c < '0' || c > '9' || (flags_ & kAfterDigits)) {
          return Outcome::kBad;
        } else {
          uint64_t v = uint64_t{value_} * 10 + static_cast<uint64_t>(c - '0');
          if (v > kMaxHttpBody) return Outcome::kBad;
          value_ = static_cast<uint32_t>(v);
          flags_ |= kDigits;
        }
        break;
      case Step::kHeadersEnd: {
        if (c != '\n') return Outcome::kBad;
        Outcome o = EndHeaders();
        if (o != Outcome::kMore) {
          *used = i;
          return o;
        }
        break;
      }
      case Step::kBody: break;  // handled above
    }
  }
  *used = size;
  return Outcome::kMore;
}

// One character of a header name, or the colon after it.
bool HttpResponseReader::Header(char c) {
  if (c == ':') {
    if ((candidates_ & kIsContentLength) && pos_ == kContentLengthLength) {
      // A second Content-Length could disagree with the first: refused.
      if (flags_ & kHasLength) return false;
      step_ = Step::kLength;
    } else if ((candidates_ & kIsTransferEncoding) && pos_ == kTransferEncodingLength) {
      return false;  // chunked or otherwise: not framed by Content-Length
    } else {
      step_ = Step::kLineRest;
    }
    return true;
  }
  // A line without a name and a colon is no header.
  if (c == '\r' || c == '\n' || c == ' ' || c == '\t') return false;
  char l = Lower(c);
  if (pos_ >= kContentLengthLength || l != kContentLength[pos_]) candidates_ &= ~kIsContentLength;
  if (pos_ >= kTransferEncodingLength || l != kTransferEncoding[pos_])
    candidates_ &= ~kIsTransferEncoding;
  if (pos_ < UINT8_MAX) ++pos_;
  return true;
}

HttpResponseReader::Outcome HttpResponseReader::EndHeaders() {
  if (!(flags_ & kHasLength)) return Outcome::kBad;
  if (value_ == 0) return Outcome::kDone;
  step_ = Step::kBody;
  return Outcome::kMore;
}

}  // namespace acceptpool
