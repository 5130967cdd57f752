#include "core/proxy_protocol.h"

#include <algorithm>
#include <cstring>

namespace acceptpool {

namespace {

constexpr uint8_t kV2Signature[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                      0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
constexpr char kV1Prefix[] = "PROXY ";
constexpr size_t kV1PrefixBytes = sizeof(kV1Prefix) - 1;

constexpr size_t kInetBlock = 2 * 4 + 2 * 2;
constexpr size_t kInet6Block = 2 * 16 + 2 * 2;
constexpr size_t kUnixBlock = 2 * kProxyUnixPathBytes;

uint16_t Be16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }

// ---- v1 tokens ----

// A cursor over the v1 line (CRLF excluded).
struct Line {
  const uint8_t* p;
  const uint8_t* end;

  bool Take(char c) {
    if (p == end || *p != static_cast<uint8_t>(c)) return false;
    ++p;
    return true;
  }
  bool Take(const char* word) {
    size_t n = std::strlen(word);
    if (static_cast<size_t>(end - p) < n || std::memcmp(p, word, n) != 0) return false;
    p += n;
    return true;
  }
};

bool IsDigit(uint8_t c) { return c >= '0' && c <= '9'; }

// A decimal number up to `max` with no heading zero (the spec forbids them
// against octal confusion), at most `max_digits` digits.
bool Decimal(Line& line, uint32_t max, int max_digits, uint32_t* out) {
  const uint8_t* start = line.p;
  uint32_t value = 0;
  while (line.p != line.end && IsDigit(*line.p) && line.p - start < max_digits) {
    value = value * 10 + (*line.p - '0');
    ++line.p;
  }
  size_t digits = static_cast<size_t>(line.p - start);
  if (digits == 0 || (line.p != line.end && IsDigit(*line.p))) return false;
  if (digits > 1 && *start == '0') return false;
  if (value > max) return false;
  *out = value;
  return true;
}

bool Ipv4(Line& line, uint8_t* out) {
  for (int i = 0; i < 4; ++i) {
    uint32_t octet;
    if (i > 0 && !line.Take('.')) return false;
    if (!Decimal(line, 255, 3, &octet)) return false;
    out[i] = static_cast<uint8_t>(octet);
  }
  return true;
}

int HexValue(uint8_t c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Groups of 1 to 4 hex digits, at most one "::", and an IPv4 tail (as
// inet_ntop writes a mapped address) counting as the last two groups. The
// address ends at a space or the end of the line.
bool Ipv6(Line& line, uint8_t* out) {
  uint16_t groups[8] = {};
  int count = 0;
  int gap = -1;  // groups before the "::"
  if (line.Take(':')) {
    if (!line.Take(':')) return false;
    gap = 0;
  }
  while (line.p != line.end && *line.p != ' ') {
    if (count == 8) return false;
    // An IPv4 tail: digits then a dot before the next colon.
    const uint8_t* q = line.p;
    while (q != line.end && IsDigit(*q)) ++q;
    if (q != line.p && q != line.end && *q == '.') {
      if (count > 6) return false;
      uint8_t v4[4];
      if (!Ipv4(line, v4)) return false;
      groups[count++] = static_cast<uint16_t>((v4[0] << 8) | v4[1]);
      groups[count++] = static_cast<uint16_t>((v4[2] << 8) | v4[3]);
      break;
    }
    uint32_t value = 0;
    int digits = 0;
    while (line.p != line.end && HexValue(*line.p) >= 0) {
      if (++digits > 4) return false;
      value = value * 16 + static_cast<uint32_t>(HexValue(*line.p));
      ++line.p;
    }
    if (digits == 0) return false;
    groups[count++] = static_cast<uint16_t>(value);
    if (line.p == line.end || *line.p == ' ') break;
    if (!line.Take(':')) return false;
    if (line.Take(':')) {
      if (gap >= 0) return false;
      gap = count;
      if (line.p == line.end || *line.p == ' ') break;
    } else if (line.p == line.end || *line.p == ' ') {
      return false;  // a trailing single colon
    }
  }
  if (line.p != line.end && *line.p != ' ') return false;
  if (gap < 0 && count != 8) return false;
  if (gap >= 0 && count > 7) return false;  // "::" stands for at least one group
  uint16_t full[8] = {};
  if (gap < 0) {
    std::memcpy(full, groups, sizeof(full));
  } else {
    for (int i = 0; i < gap; ++i) full[i] = groups[i];
    int tail = count - gap;
    for (int i = 0; i < tail; ++i) full[8 - tail + i] = groups[gap + i];
  }
  for (int i = 0; i < 8; ++i) {
    out[2 * i] = static_cast<uint8_t>(full[i] >> 8);
    out[2 * i + 1] = static_cast<uint8_t>(full[i]);
  }
  return true;
}

// ---- CRC32C ----

// Bitwise (reflected polynomial 0x82F63B78): only headers that carry a
// checksum TLV pay for it, and those are a few hundred bytes.
uint32_t Crc32cUpdate(uint32_t crc, uint8_t byte) {
  crc ^= byte;
  for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1u)));
  return crc;
}

}  // namespace

uint32_t Crc32c(const uint8_t* data, size_t size) {
  uint32_t crc = 0xFFFFFFFFu;
  for (size_t i = 0; i < size; ++i) crc = Crc32cUpdate(crc, data[i]);
  return crc ^ 0xFFFFFFFFu;
}

void ProxyParser::Reset() {
  state_ = ProxyParse::kMore;
  error_ = ProxyError::kNone;
  size_ = 0;
  need_ = 0;
  header_ = ProxyHeader();
}

ProxyParse ProxyParser::Fail(ProxyError e) {
  state_ = ProxyParse::kError;
  error_ = e;
  return state_;
}

ProxyParse ProxyParser::Feed(const char* data, size_t size, size_t* used) {
  *used = 0;
  if (state_ != ProxyParse::kMore) return state_;
  const uint8_t* in = reinterpret_cast<const uint8_t*>(data);
  while (*used < size) {
    if (size_ > 0 && buf_[0] == kV2Signature[0] && size_ >= kProxyV2FixedBytes) {
      // v2 past its fixed part: copy the rest of the declared length at once.
      size_t take = std::min<size_t>(size - *used, need_ - size_);
      std::memcpy(buf_ + size_, in + *used, take);
      size_ = static_cast<uint16_t>(size_ + take);
      *used += take;
      if (size_ == need_) return FinishV2();
      continue;
    }
    buf_[size_++] = in[(*used)++];
    if (CheckPrefix() != ProxyParse::kMore) return state_;
  }
  return state_;
}

// Runs after each byte of a v1 line or of v2's fixed part, so a wrong
// signature, version or length is refused on its first wrong byte instead
// of waiting for a timeout.
ProxyParse ProxyParser::CheckPrefix() {
  size_t n = size_;
  uint8_t last = buf_[n - 1];
  if (buf_[0] == kV2Signature[0]) {
    if (n <= sizeof(kV2Signature)) {
      return last == kV2Signature[n - 1] ? ProxyParse::kMore : Fail(ProxyError::kSignature);
    }
    if (n == 13) {
      if ((last >> 4) != 2) return Fail(ProxyError::kVersion);
      if ((last & 0x0F) > 1) return Fail(ProxyError::kCommand);
      return ProxyParse::kMore;
    }
    if (n == 14) {
      // LOCAL ignores the family (the spec: discard the block, family included).
      bool local = (buf_[12] & 0x0F) == 0;
      if (!local && ((last >> 4) > 3 || (last & 0x0F) > 2)) return Fail(ProxyError::kFamily);
      return ProxyParse::kMore;
    }
    if (n == kProxyV2FixedBytes) {
      size_t length = Be16(buf_ + 14);
      if (kProxyV2FixedBytes + length > kProxyMaxBytes) return Fail(ProxyError::kTooLong);
      bool local = (buf_[12] & 0x0F) == 0;
      uint8_t family = buf_[13] >> 4;
      uint8_t transport = buf_[13] & 0x0F;
      if (!local && transport != 0) {
        size_t block = family == 1   ? kInetBlock
                       : family == 2 ? kInet6Block
                       : family == 3 ? kUnixBlock
                                     : 0;
        if (length < block) return Fail(ProxyError::kLength);
      }
      need_ = static_cast<uint16_t>(kProxyV2FixedBytes + length);
      if (length == 0) return FinishV2();
    }
    return ProxyParse::kMore;
  }
  if (buf_[0] == static_cast<uint8_t>(kV1Prefix[0])) {
    if (n <= kV1PrefixBytes) {
      return last == static_cast<uint8_t>(kV1Prefix[n - 1]) ? ProxyParse::kMore
                                                            : Fail(ProxyError::kSignature);
    }
    if (last == '\n') {
      // Only a full CRLF ends the line; a lone LF is an error.
      return buf_[n - 2] == '\r' ? FinishV1() : Fail(ProxyError::kLine);
    }
    if (n >= 2 && buf_[n - 2] == '\r') return Fail(ProxyError::kLine);  // a lone CR
    if (n >= kProxyV1MaxBytes) return Fail(ProxyError::kTooLong);
    return ProxyParse::kMore;
  }
  return Fail(ProxyError::kSignature);
}

ProxyParse ProxyParser::FinishV1() {
  header_ = ProxyHeader();
  header_.version = 1;
  header_.command = ProxyCommand::kProxy;
  header_.length = size_;
  Line line{buf_ + kV1PrefixBytes, buf_ + size_ - 2};
  if (line.Take("UNKNOWN")) {
    // The rest of the line is to be ignored, whatever it holds.
    if (line.p != line.end && *line.p != ' ') return Fail(ProxyError::kLine);
    header_.family = ProxyFamily::kUnspec;
    state_ = ProxyParse::kDone;
    return state_;
  }
  bool v6;
  if (line.Take("TCP4 ")) {
    v6 = false;
  } else if (line.Take("TCP6 ")) {
    v6 = true;
  } else {
    return Fail(ProxyError::kLine);
  }
  header_.family = v6 ? ProxyFamily::kInet6 : ProxyFamily::kInet;
  header_.transport = ProxyTransport::kStream;
  for (SocketAddress* a : {&header_.source, &header_.destination}) {
    a->family = v6 ? 6 : 4;
    if (!(v6 ? Ipv6(line, a->addr) : Ipv4(line, a->addr))) return Fail(ProxyError::kAddress);
    if (!line.Take(' ')) return Fail(ProxyError::kLine);
  }
  uint32_t source_port;
  uint32_t destination_port;
  if (!Decimal(line, 65535, 5, &source_port)) return Fail(ProxyError::kPort);
  if (!line.Take(' ')) return Fail(ProxyError::kLine);
  if (!Decimal(line, 65535, 5, &destination_port)) return Fail(ProxyError::kPort);
  if (line.p != line.end) return Fail(ProxyError::kLine);
  header_.source.port = static_cast<uint16_t>(source_port);
  header_.destination.port = static_cast<uint16_t>(destination_port);
  state_ = ProxyParse::kDone;
  return state_;
}

ProxyParse ProxyParser::FinishV2() {
  header_ = ProxyHeader();
  header_.version = 2;
  header_.length = size_;
  if ((buf_[12] & 0x0F) == 0) {
    // LOCAL: the connection's own endpoints; the block is skipped unread.
    header_.command = ProxyCommand::kLocal;
    state_ = ProxyParse::kDone;
    return state_;
  }
  header_.command = ProxyCommand::kProxy;
  uint8_t family = buf_[13] >> 4;
  uint8_t transport = buf_[13] & 0x0F;
  if (family == 0 || transport == 0) {
    // Unspecified: accepted with the real endpoints, the block ignored.
    state_ = ProxyParse::kDone;
    return state_;
  }
  header_.transport = transport == 1 ? ProxyTransport::kStream : ProxyTransport::kDgram;
  const uint8_t* block = buf_ + kProxyV2FixedBytes;
  size_t used;
  if (family == 1 || family == 2) {
    size_t n = family == 1 ? 4 : 16;
    header_.family = family == 1 ? ProxyFamily::kInet : ProxyFamily::kInet6;
    header_.source.family = header_.destination.family = family == 1 ? 4 : 6;
    std::memcpy(header_.source.addr, block, n);
    std::memcpy(header_.destination.addr, block + n, n);
    header_.source.port = Be16(block + 2 * n);
    header_.destination.port = Be16(block + 2 * n + 2);
    used = family == 1 ? kInetBlock : kInet6Block;
  } else {
    header_.family = ProxyFamily::kUnix;
    header_.unix_offset = static_cast<uint16_t>(kProxyV2FixedBytes);
    used = kUnixBlock;
  }
  return ParseTlvs(kProxyV2FixedBytes + used, size_);
}

ProxyParse ProxyParser::ParseTlvs(size_t begin, size_t end) {
  size_t crc_at = 0;  // value offset of a CRC32C TLV, 0 if none
  for (size_t at = begin; at < end;) {
    if (end - at < 3) return Fail(ProxyError::kTlv);
    size_t length = Be16(buf_ + at + 1);
    if (end - at - 3 < length) return Fail(ProxyError::kTlv);
    if (buf_[at] == kProxyTlvCrc32c) {
      if (length != 4 || crc_at != 0) return Fail(ProxyError::kTlv);
      crc_at = at + 3;
    }
    at += 3 + length;
  }
  if (crc_at != 0) {
    // The sender computed it over the whole header with the field zeroed.
    uint32_t sent = (static_cast<uint32_t>(buf_[crc_at]) << 24) | (buf_[crc_at + 1] << 16) |
                    (buf_[crc_at + 2] << 8) | buf_[crc_at + 3];
    uint8_t saved[4];
    std::memcpy(saved, buf_ + crc_at, 4);
    std::memset(buf_ + crc_at, 0, 4);
    uint32_t computed = Crc32c(buf_, size_);
    std::memcpy(buf_ + crc_at, saved, 4);
    if (computed != sent) return Fail(ProxyError::kChecksum);
  }
  header_.tlv_offset = static_cast<uint16_t>(begin);
  header_.tlv_length = static_cast<uint16_t>(end - begin);
  state_ = ProxyParse::kDone;
  return state_;
}

ProxyParserPool::ProxyParserPool() : scratch_(std::make_unique<ProxyParser>()) {}

ProxyParserPool::~ProxyParserPool() = default;

uint32_t ProxyParserPool::Hold(const ProxyParser& parser) {
  uint32_t handle;
  if (!free_.empty()) {
    handle = free_.back();
    free_.pop_back();
  } else {
    if (parsers_.size() >= kMaxHeld) return 0;
    parsers_.push_back(std::make_unique<ProxyParser>());
    handle = static_cast<uint32_t>(parsers_.size());
  }
  *parsers_[handle - 1] = parser;
  ++held_;
  return handle;
}

void ProxyParserPool::Release(uint32_t handle) {
  free_.push_back(handle);
  --held_;
}

void ProxyParserPool::Trim() {
  if (held_ != 0) return;
  parsers_.clear();
  free_.clear();
}

bool CidrContains(const CidrRange& range, const SocketAddress& peer) {
  const uint8_t* addr = peer.addr;
  uint8_t family = peer.family;
  static constexpr uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (family == 6 && range.family == 4 && std::memcmp(addr, kMapped, sizeof(kMapped)) == 0) {
    addr += 12;
    family = 4;
  }
  if (family != range.family) return false;
  size_t full = range.prefix / 8;
  if (std::memcmp(addr, range.addr, full) != 0) return false;
  unsigned rest = range.prefix % 8;
  if (rest == 0) return true;
  uint8_t mask = static_cast<uint8_t>(0xFF << (8 - rest));
  return (addr[full] & mask) == (range.addr[full] & mask);
}

}  // namespace acceptpool
