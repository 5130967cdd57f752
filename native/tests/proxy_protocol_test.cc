// The PROXY protocol parser: every field of v1 and v2, each way a header can
// be wrong, and fuzzing (random bytes, truncation at every offset, every
// split point, mutated headers), which must end in a clean verdict.
#include "core/proxy_protocol.h"

#include <cstring>
#include <ostream>
#include <random>
#include <type_traits>
#include <string>
#include <vector>

#include "test_main.h"

using namespace acceptpool;

namespace acceptpool {
// EXPECT_EQ shows the enums' values.
template <typename E, typename = std::enable_if_t<std::is_enum<E>::value>>
std::ostream& operator<<(std::ostream& out, E value) {
  return out << static_cast<int>(value);
}
}  // namespace acceptpool

namespace {

using Bytes = std::vector<uint8_t>;

const uint8_t kSig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

Bytes Text(const std::string& s) { return Bytes(s.begin(), s.end()); }

void Put16(Bytes& b, uint16_t v) {
  b.push_back(static_cast<uint8_t>(v >> 8));
  b.push_back(static_cast<uint8_t>(v));
}

// A v2 header: `ver_cmd`, `fam`, then `body` (its length written for it).
Bytes V2(uint8_t ver_cmd, uint8_t fam, const Bytes& body) {
  Bytes b(kSig, kSig + 12);
  b.push_back(ver_cmd);
  b.push_back(fam);
  Put16(b, static_cast<uint16_t>(body.size()));
  b.insert(b.end(), body.begin(), body.end());
  return b;
}

Bytes Inet4Block(const uint8_t src[4], const uint8_t dst[4], uint16_t sport, uint16_t dport) {
  Bytes b(src, src + 4);
  b.insert(b.end(), dst, dst + 4);
  Put16(b, sport);
  Put16(b, dport);
  return b;
}

void AddTlv(Bytes& b, uint8_t type, const std::string& value) {
  b.push_back(type);
  Put16(b, static_cast<uint16_t>(value.size()));
  b.insert(b.end(), value.begin(), value.end());
}

struct Result {
  ProxyParse state;
  ProxyError error;
  size_t used;
};

// Feeds `b` in pieces cut at `cuts` (ascending offsets), as segments would
// arrive, and returns the verdict and how many bytes the header took.
Result FeedSplit(ProxyParser& p, const Bytes& b, const std::vector<size_t>& cuts) {
  p.Reset();
  size_t at = 0;
  size_t used_total = 0;
  std::vector<size_t> ends = cuts;
  ends.push_back(b.size());
  for (size_t end : ends) {
    if (end < at) continue;
    size_t used = 0;
    ProxyParse r = p.Feed(reinterpret_cast<const char*>(b.data()) + at, end - at, &used);
    used_total += used;
    at = end;
    if (r != ProxyParse::kMore) return {r, p.error(), used_total};
  }
  return {p.state(), p.error(), used_total};
}

Result FeedAll(ProxyParser& p, const Bytes& b) { return FeedSplit(p, b, {}); }

ProxyError ErrorOf(const Bytes& b) {
  ProxyParser p;
  return FeedAll(p, b).error;
}

std::string Tlvs(const ProxyParser& p) {
  const ProxyHeader& h = p.header();
  return std::string(reinterpret_cast<const char*>(p.bytes()) + h.tlv_offset, h.tlv_length);
}

const uint8_t kClient4[4] = {203, 0, 113, 7};
const uint8_t kServer4[4] = {10, 1, 2, 3};

}  // namespace

// ---- v1 ----

TEST(V1Tcp4GivesEveryField) {
  ProxyParser p;
  Bytes b = Text("PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\nGET /");
  Result r = FeedAll(p, b);
  ASSERT_EQ(r.state, ProxyParse::kDone);
  EXPECT_EQ(r.used, b.size() - 5);  // "GET /" is the session's
  const ProxyHeader& h = p.header();
  EXPECT_EQ(h.version, 1);
  EXPECT_EQ(h.command, ProxyCommand::kProxy);
  EXPECT_EQ(h.family, ProxyFamily::kInet);
  EXPECT_EQ(h.transport, ProxyTransport::kStream);
  EXPECT_EQ(h.source.family, 4);
  EXPECT_EQ(h.source.addr[0], 192);
  EXPECT_EQ(h.source.addr[3], 1);
  EXPECT_EQ(h.source.port, 56324);
  EXPECT_EQ(h.destination.addr[3], 11);
  EXPECT_EQ(h.destination.port, 443);
  EXPECT_EQ(h.length, b.size() - 5);
  EXPECT_EQ(h.tlv_length, 0);
}

TEST(V1Tcp6FullCompressedAndMapped) {
  ProxyParser p;
  ASSERT_EQ(
      FeedAll(p, Text("PROXY TCP6 2001:0db8:0000:0000:0000:0000:0000:0001 ::1 65535 0\r\n")).state,
      ProxyParse::kDone);
  const ProxyHeader& h = p.header();
  EXPECT_EQ(h.family, ProxyFamily::kInet6);
  EXPECT_EQ(h.source.family, 6);
  EXPECT_EQ(h.source.addr[0], 0x20);
  EXPECT_EQ(h.source.addr[1], 0x01);
  EXPECT_EQ(h.source.addr[2], 0x0d);
  EXPECT_EQ(h.source.addr[15], 1);
  EXPECT_EQ(h.source.port, 65535);
  for (int i = 0; i < 15; ++i) EXPECT_EQ(h.destination.addr[i], 0);
  EXPECT_EQ(h.destination.addr[15], 1);
  EXPECT_EQ(h.destination.port, 0);

  ASSERT_EQ(FeedAll(p, Text("PROXY TCP6 ::ffff:127.0.0.2 fe80::1:2 1 2\r\n")).state,
            ProxyParse::kDone);
  EXPECT_EQ(p.header().source.addr[10], 0xff);
  EXPECT_EQ(p.header().source.addr[11], 0xff);
  EXPECT_EQ(p.header().source.addr[12], 127);
  EXPECT_EQ(p.header().source.addr[15], 2);
  EXPECT_EQ(p.header().destination.addr[0], 0xfe);
  EXPECT_EQ(p.header().destination.addr[13], 1);
  EXPECT_EQ(p.header().destination.addr[15], 2);
}

TEST(V1LongestLineIsAccepted) {
  ProxyParser p;
  std::string ff = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
  Bytes b = Text("PROXY TCP6 " + ff + " " + ff + " 65535 65535\r\n");
  EXPECT_EQ(b.size(), 104u);
  EXPECT_EQ(FeedAll(p, b).state, ProxyParse::kDone);
  Bytes unknown = Text("PROXY UNKNOWN " + ff + " " + ff + " 65535 65535\r\n");
  EXPECT_EQ(unknown.size(), kProxyV1MaxBytes);
  EXPECT_EQ(FeedAll(p, unknown).state, ProxyParse::kDone);
}

TEST(V1UnknownKeepsTheRealEndpoints) {
  ProxyParser p;
  ASSERT_EQ(FeedAll(p, Text("PROXY UNKNOWN\r\n")).state, ProxyParse::kDone);
  EXPECT_EQ(p.header().family, ProxyFamily::kUnspec);
  EXPECT_EQ(p.header().length, 15);
  ASSERT_EQ(FeedAll(p, Text("PROXY UNKNOWN anything at all\r\n")).state, ProxyParse::kDone);
  EXPECT_EQ(p.header().family, ProxyFamily::kUnspec);
}

TEST(V1MalformedLinesAreRefused) {
  EXPECT_EQ(ErrorOf(Text("PROXY TCP4 192.168.0.01 1.2.3.4 1 2\r\n")), ProxyError::kAddress);
  EXPECT_EQ(ErrorOf(Text("PROXY TCP4 256.1.1.1 1.2.3.4 1 2\r\n")), ProxyError::kAddress);
  EXPECT_EQ(ErrorOf(Text("PROXY TCP4 1.2.3 1.2.3.4 1 2\r\n")), ProxyError::kAddress);
  EXPECT_EQ(ErrorOf(Text("PROXY TCP4 ::1 1.2.3.4 1 2\r\n")), ProxyError::kAddress);
  EXPECT_EQ(ErrorOf(Text("PROXY TCP6 1.2.3.4 ::1 1 2\r\n")), ProxyError::kAddress);
  EXPECT_EQ(ErrorOf(Text("PROXY TCP6 1::2::3 ::1 1 2\r\n")), ProxyError::kAddress);
  EXPECT_EQ(ErrorOf(Text("PROXY TCP6 1:2:3:4:5:6:7:8:9 ::1 1 2\r\n")), ProxyError::kAddress);
  EXPECT_EQ(ErrorOf(Text("PROXY TCP6 12345::1 ::1 1 2\r\n")), ProxyError::kAddress);
  EXPECT_EQ(ErrorOf(Text("PROXY TCP4 1.2.3.4 1.2.3.4 65536 2\r\n")), ProxyError::kPort);
  EXPECT_EQ(ErrorOf(Text("PROXY TCP4 1.2.3.4 1.2.3.4 01 2\r\n")), ProxyError::kPort);
  EXPECT_EQ(ErrorOf(Text("PROXY TCP4 1.2.3.4 1.2.3.4 1 -2\r\n")), ProxyError::kPort);
  EXPECT_EQ(ErrorOf(Text("PROXY TCP4 1.2.3.4  1.2.3.4 1 2\r\n")), ProxyError::kAddress);
  EXPECT_EQ(ErrorOf(Text("PROXY TCP4 1.2.3.4 1.2.3.4 1 2 \r\n")), ProxyError::kLine);
  EXPECT_EQ(ErrorOf(Text("PROXY TCP5 1.2.3.4 1.2.3.4 1 2\r\n")), ProxyError::kLine);
  EXPECT_EQ(ErrorOf(Text("PROXY UNKNOWNX\r\n")), ProxyError::kLine);
  EXPECT_EQ(ErrorOf(Text("PROXY \r\n")), ProxyError::kLine);
  // Only a whole CRLF ends the line.
  EXPECT_EQ(ErrorOf(Text("PROXY UNKNOWN\n")), ProxyError::kLine);
  EXPECT_EQ(ErrorOf(Text("PROXY UNKNOWN\rX\n")), ProxyError::kLine);
  EXPECT_EQ(ErrorOf(Text("proxy UNKNOWN\r\n")), ProxyError::kSignature);
  EXPECT_EQ(ErrorOf(Text("PROXYTCP4\r\n")), ProxyError::kSignature);
}

TEST(V1WithoutCrlfInTheLimitIsTooLong) {
  ProxyParser p;
  Bytes b = Text("PROXY UNKNOWN ");
  b.resize(kProxyV1MaxBytes + 20, 'a');
  Result r = FeedAll(p, b);
  EXPECT_EQ(r.state, ProxyParse::kError);
  EXPECT_EQ(r.error, ProxyError::kTooLong);
  // Refused at the limit, not later: it never holds more than a v1 line.
  EXPECT_EQ(r.used, kProxyV1MaxBytes);
}

// ---- v2 ----

TEST(V2Inet4GivesEveryField) {
  ProxyParser p;
  Bytes b = V2(0x21, 0x11, Inet4Block(kClient4, kServer4, 40000, 8443));
  size_t header = b.size();
  b.push_back('x');
  Result r = FeedAll(p, b);
  ASSERT_EQ(r.state, ProxyParse::kDone);
  EXPECT_EQ(r.used, header);
  const ProxyHeader& h = p.header();
  EXPECT_EQ(h.version, 2);
  EXPECT_EQ(h.command, ProxyCommand::kProxy);
  EXPECT_EQ(h.family, ProxyFamily::kInet);
  EXPECT_EQ(h.transport, ProxyTransport::kStream);
  EXPECT_EQ(h.source.family, 4);
  EXPECT_EQ(std::memcmp(h.source.addr, kClient4, 4), 0);
  EXPECT_EQ(std::memcmp(h.destination.addr, kServer4, 4), 0);
  EXPECT_EQ(h.source.port, 40000);
  EXPECT_EQ(h.destination.port, 8443);
  EXPECT_EQ(h.length, 28);
  EXPECT_EQ(h.tlv_length, 0);
}

TEST(V2Inet6AndDatagram) {
  ProxyParser p;
  Bytes body;
  for (int i = 0; i < 16; ++i) body.push_back(static_cast<uint8_t>(0x20 + i));
  for (int i = 0; i < 16; ++i) body.push_back(static_cast<uint8_t>(0x40 + i));
  Put16(body, 1);
  Put16(body, 65535);
  ASSERT_EQ(FeedAll(p, V2(0x21, 0x22, body)).state, ProxyParse::kDone);
  const ProxyHeader& h = p.header();
  EXPECT_EQ(h.family, ProxyFamily::kInet6);
  EXPECT_EQ(h.transport, ProxyTransport::kDgram);
  EXPECT_EQ(h.source.family, 6);
  EXPECT_EQ(h.source.addr[0], 0x20);
  EXPECT_EQ(h.source.addr[15], 0x2f);
  EXPECT_EQ(h.destination.addr[0], 0x40);
  EXPECT_EQ(h.source.port, 1);
  EXPECT_EQ(h.destination.port, 65535);
}

TEST(V2UnixKeepsBothPaths) {
  ProxyParser p;
  Bytes body(2 * kProxyUnixPathBytes, 0);
  std::memcpy(body.data(), "/run/client.sock", 16);
  std::memcpy(body.data() + kProxyUnixPathBytes, "/run/server.sock", 16);
  ASSERT_EQ(FeedAll(p, V2(0x21, 0x31, body)).state, ProxyParse::kDone);
  const ProxyHeader& h = p.header();
  EXPECT_EQ(h.family, ProxyFamily::kUnix);
  EXPECT_EQ(h.transport, ProxyTransport::kStream);
  const char* paths = reinterpret_cast<const char*>(p.bytes()) + h.unix_offset;
  EXPECT_EQ(std::string(paths), "/run/client.sock");
  EXPECT_EQ(std::string(paths + kProxyUnixPathBytes), "/run/server.sock");
}

TEST(V2LocalIsADirectConnectionWhateverItsBlock) {
  ProxyParser p;
  Result r = FeedAll(p, V2(0x20, 0x00, {}));
  ASSERT_EQ(r.state, ProxyParse::kDone);
  EXPECT_EQ(r.used, 16u);
  EXPECT_EQ(p.header().command, ProxyCommand::kLocal);
  EXPECT_EQ(p.header().family, ProxyFamily::kUnspec);
  // The spec: never assume LOCAL has no block; skip it, family included.
  Bytes junk = Inet4Block(kClient4, kServer4, 1, 2);
  junk.push_back(0xff);
  r = FeedAll(p, V2(0x20, 0x77, junk));
  ASSERT_EQ(r.state, ProxyParse::kDone);
  EXPECT_EQ(r.used, 16u + junk.size());
  EXPECT_EQ(p.header().command, ProxyCommand::kLocal);
  EXPECT_EQ(p.header().tlv_length, 0);
}

TEST(V2UnspecifiedFamilyOrTransportKeepsTheRealEndpoints) {
  ProxyParser p;
  ASSERT_EQ(FeedAll(p, V2(0x21, 0x00, {1, 2, 3})).state, ProxyParse::kDone);
  EXPECT_EQ(p.header().command, ProxyCommand::kProxy);
  EXPECT_EQ(p.header().family, ProxyFamily::kUnspec);
  ASSERT_EQ(FeedAll(p, V2(0x21, 0x10, {})).state, ProxyParse::kDone);
  EXPECT_EQ(p.header().family, ProxyFamily::kUnspec);
}

TEST(V2SeveralTlvsIncludingAwsVpceId) {
  ProxyParser p;
  Bytes body = Inet4Block(kClient4, kServer4, 5000, 80);
  AddTlv(body, 0x01, "h2");           // ALPN
  AddTlv(body, 0x02, "example.com");  // AUTHORITY
  AddTlv(body, 0xEA,
         std::string("\x01", 1) + "vpce-08d2bf15fac5001c9");  // AWS: subtype 1, VPC endpoint id
  AddTlv(body, 0x04, "");                                     // NOOP, empty
  ASSERT_EQ(FeedAll(p, V2(0x21, 0x11, body)).state, ProxyParse::kDone);
  const ProxyHeader& h = p.header();
  EXPECT_EQ(h.tlv_offset, 28);
  std::string tlvs = Tlvs(p);
  EXPECT_EQ(tlvs.size(), body.size() - 12);
  EXPECT_EQ(static_cast<uint8_t>(tlvs[0]), 0x01);
  EXPECT_EQ(tlvs.substr(3, 2), "h2");
  size_t aws = 5 + 3 + 11;
  EXPECT_EQ(static_cast<uint8_t>(tlvs[aws]), 0xEA);
  EXPECT_EQ(tlvs.substr(aws + 4, 22), "vpce-08d2bf15fac5001c9");
}

TEST(V2Crc32cIsVerified) {
  uint8_t check[] = "123456789";
  EXPECT_EQ(Crc32c(check, 9), 0xE3069283u);  // the standard check value
  Bytes body = Inet4Block(kClient4, kServer4, 5000, 80);
  AddTlv(body, 0x03, std::string(4, '\0'));
  Bytes b = V2(0x21, 0x11, body);
  uint32_t crc = Crc32c(b.data(), b.size());
  size_t at = b.size() - 4;
  b[at] = static_cast<uint8_t>(crc >> 24);
  b[at + 1] = static_cast<uint8_t>(crc >> 16);
  b[at + 2] = static_cast<uint8_t>(crc >> 8);
  b[at + 3] = static_cast<uint8_t>(crc);
  ProxyParser p;
  EXPECT_EQ(FeedAll(p, b).state, ProxyParse::kDone);
  // The buffer is as received after the check (JS sees the sent value).
  EXPECT_EQ(p.bytes()[at], b[at]);
  b[20] ^= 1;  // the client's address, changed on the way
  EXPECT_EQ(ErrorOf(b), ProxyError::kChecksum);
}

TEST(V2MalformedHeadersAreRefused) {
  Bytes block = Inet4Block(kClient4, kServer4, 1, 2);
  EXPECT_EQ(ErrorOf(V2(0x11, 0x11, block)), ProxyError::kVersion);
  EXPECT_EQ(ErrorOf(V2(0x31, 0x11, block)), ProxyError::kVersion);
  EXPECT_EQ(ErrorOf(V2(0x22, 0x11, block)), ProxyError::kCommand);
  EXPECT_EQ(ErrorOf(V2(0x21, 0x41, block)), ProxyError::kFamily);
  EXPECT_EQ(ErrorOf(V2(0x21, 0x13, block)), ProxyError::kFamily);
  EXPECT_EQ(ErrorOf(V2(0x21, 0x21, block)), ProxyError::kLength);  // IPv6 needs 36
  EXPECT_EQ(ErrorOf(V2(0x21, 0x31, block)), ProxyError::kLength);  // UNIX needs 216
  Bytes tlv = block;
  AddTlv(tlv, 0x02, "abc");
  tlv.pop_back();  // its value runs past the end
  EXPECT_EQ(ErrorOf(V2(0x21, 0x11, tlv)), ProxyError::kTlv);
  Bytes stub = block;
  stub.push_back(0x02);
  stub.push_back(0x00);  // two bytes: no room for a TLV's length
  EXPECT_EQ(ErrorOf(V2(0x21, 0x11, stub)), ProxyError::kTlv);
  Bytes bad_crc = block;
  AddTlv(bad_crc, 0x03, "abc");  // a checksum is 4 bytes
  EXPECT_EQ(ErrorOf(V2(0x21, 0x11, bad_crc)), ProxyError::kTlv);
}

TEST(V2OversizedLengthIsRefusedAtTheFixedPart) {
  ProxyParser p;
  Bytes b(kSig, kSig + 12);
  b.push_back(0x21);
  b.push_back(0x11);
  Put16(b, 0xFFFF);
  b.resize(b.size() + 100, 0);
  Result r = FeedAll(p, b);
  EXPECT_EQ(r.state, ProxyParse::kError);
  EXPECT_EQ(r.error, ProxyError::kTooLong);
  EXPECT_EQ(r.used, 16u);
  // The longest accepted header fits exactly.
  Bytes body = Inet4Block(kClient4, kServer4, 1, 2);
  AddTlv(body, 0x04, std::string(kProxyMaxBytes - 16 - body.size() - 3, 'n'));
  Bytes longest = V2(0x21, 0x11, body);
  EXPECT_EQ(longest.size(), kProxyMaxBytes);
  EXPECT_EQ(FeedAll(p, longest).state, ProxyParse::kDone);
  body.push_back(0);
  Bytes over = V2(0x21, 0x11, body);
  EXPECT_EQ(ErrorOf(over), ProxyError::kTooLong);
}

TEST(WrongSignatureIsRefusedOnItsFirstWrongByte) {
  ProxyParser p;
  Bytes http = Text("GET / HTTP/1.1\r\n\r\n");
  Result r = FeedAll(p, http);
  EXPECT_EQ(r.error, ProxyError::kSignature);
  EXPECT_EQ(r.used, 1u);
  Bytes v2 = V2(0x21, 0x11, Inet4Block(kClient4, kServer4, 1, 2));
  for (size_t i = 0; i < 12; ++i) {
    Bytes b = v2;
    b[i] ^= 0x40;
    r = FeedAll(p, b);
    EXPECT_EQ(r.error, ProxyError::kSignature);
    EXPECT_EQ(r.used, i + 1);
  }
  EXPECT_EQ(ErrorOf({}), ProxyError::kNone);  // nothing yet: still waiting
}

// ---- fuzzing ----

namespace {

std::vector<Bytes> ValidHeaders() {
  Bytes tlvs = Inet4Block(kClient4, kServer4, 5000, 80);
  AddTlv(tlvs, 0xEA, std::string("\x01", 1) + "vpce-1234");
  AddTlv(tlvs, 0x05, "unique-id");
  Bytes body6(36, 0x11);
  Bytes unix_body(2 * kProxyUnixPathBytes, 'u');
  return {
      Text("PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n"),
      Text("PROXY TCP6 2001:db8::1 ::ffff:10.0.0.1 1 65535\r\n"),
      Text("PROXY UNKNOWN\r\n"),
      V2(0x21, 0x11, Inet4Block(kClient4, kServer4, 40000, 8443)),
      V2(0x21, 0x21, body6),
      V2(0x21, 0x31, unix_body),
      V2(0x21, 0x11, tlvs),
      V2(0x20, 0x00, {}),
  };
}

bool SameHeader(const ProxyParser& a, const ProxyParser& b) {
  const ProxyHeader& x = a.header();
  const ProxyHeader& y = b.header();
  return x.version == y.version && x.command == y.command && x.family == y.family &&
         x.transport == y.transport && x.length == y.length && x.tlv_offset == y.tlv_offset &&
         x.tlv_length == y.tlv_length && x.source.port == y.source.port &&
         std::memcmp(x.source.addr, y.source.addr, 16) == 0 &&
         std::memcmp(x.destination.addr, y.destination.addr, 16) == 0 && a.size() == b.size() &&
         std::memcmp(a.bytes(), b.bytes(), a.size()) == 0;
}

// Whatever it was fed: a verdict, and offsets inside what it holds.
void ExpectSane(const ProxyParser& p, const Result& r, size_t fed) {
  EXPECT(r.used <= fed);
  EXPECT(p.size() <= kProxyMaxBytes);
  if (r.state == ProxyParse::kDone) {
    const ProxyHeader& h = p.header();
    EXPECT_EQ(static_cast<size_t>(h.length), p.size());
    EXPECT(static_cast<size_t>(h.tlv_offset) + h.tlv_length <= p.size());
    EXPECT(h.version == 1 || h.version == 2);
  }
  if (r.state == ProxyParse::kError) EXPECT(r.error != ProxyError::kNone);
}

}  // namespace

TEST(EverySplitPointGivesTheSameHeader) {
  for (const Bytes& whole : ValidHeaders()) {
    ProxyParser once;
    Result expected = FeedAll(once, whole);
    ASSERT_EQ(expected.state, ProxyParse::kDone);
    ProxyParser p;
    for (size_t cut = 0; cut <= whole.size(); ++cut) {
      Result r = FeedSplit(p, whole, {cut});
      EXPECT_EQ(r.state, ProxyParse::kDone);
      EXPECT_EQ(r.used, whole.size());
      EXPECT(SameHeader(p, once));
    }
    // One byte at a time: a slowloris sender.
    std::vector<size_t> every;
    for (size_t i = 1; i < whole.size(); ++i) every.push_back(i);
    Result r = FeedSplit(p, whole, every);
    EXPECT_EQ(r.state, ProxyParse::kDone);
    EXPECT(SameHeader(p, once));
  }
}

TEST(TruncationAtEveryOffsetWaitsWithoutAVerdict) {
  for (const Bytes& whole : ValidHeaders()) {
    ProxyParser p;
    for (size_t n = 0; n < whole.size(); ++n) {
      Bytes part(whole.begin(), whole.begin() + static_cast<long>(n));
      Result r = FeedAll(p, part);
      EXPECT_EQ(r.state, ProxyParse::kMore);
      EXPECT_EQ(r.used, n);
    }
  }
}

TEST(RandomBytesNeverCrashAndEndInAVerdict) {
  std::mt19937 rng(20261202);
  ProxyParser p;
  Bytes b;
  for (int round = 0; round < 100000; ++round) {
    size_t n = rng() % 300;
    b.resize(n);
    for (auto& c : b) c = static_cast<uint8_t>(rng());
    // Half the time, behind a real signature, so the parser gets past it.
    if (round % 2 == 0 && n >= 12) std::memcpy(b.data(), kSig, 12);
    if (round % 4 == 1 && n >= 6) std::memcpy(b.data(), "PROXY ", 6);
    std::vector<size_t> cuts;
    if (n > 0 && round % 3 == 0) cuts.push_back(rng() % n);
    Result r = FeedSplit(p, b, cuts);
    ExpectSane(p, r, n);
  }
}

TEST(MutatedHeadersNeverCrash) {
  std::mt19937 rng(7);
  ProxyParser p;
  for (const Bytes& whole : ValidHeaders()) {
    for (int round = 0; round < 5000; ++round) {
      Bytes b = whole;
      int flips = 1 + static_cast<int>(rng() % 3);
      for (int f = 0; f < flips; ++f) b[rng() % b.size()] = static_cast<uint8_t>(rng());
      if (round % 5 == 0) b.resize(rng() % (b.size() + 1));
      if (round % 7 == 0) b.resize(b.size() + rng() % 64, static_cast<uint8_t>(rng()));
      Result r = FeedSplit(p, b, {b.empty() ? 0 : rng() % b.size()});
      ExpectSane(p, r, b.size());
    }
  }
}

TEST(AFinishedParserTakesNothingMore) {
  ProxyParser p;
  Bytes b = Text("PROXY UNKNOWN\r\n");
  ASSERT_EQ(FeedAll(p, b).state, ProxyParse::kDone);
  size_t used = 99;
  EXPECT_EQ(p.Feed("more", 4, &used), ProxyParse::kDone);
  EXPECT_EQ(used, 0u);
  EXPECT_EQ(FeedAll(p, Text("nope")).state, ProxyParse::kError);
  EXPECT_EQ(p.Feed("PROXY ", 6, &used), ProxyParse::kError);
  EXPECT_EQ(used, 0u);
}

// ---- trusted ranges ----

TEST(CidrRangesMatchByPrefix) {
  CidrRange ten;
  ten.family = 4;
  ten.prefix = 8;
  ten.addr[0] = 10;
  SocketAddress peer;
  peer.family = 4;
  peer.addr[0] = 10;
  peer.addr[3] = 200;
  EXPECT(CidrContains(ten, peer));
  peer.addr[0] = 11;
  EXPECT(!CidrContains(ten, peer));

  CidrRange one;
  one.family = 4;
  one.prefix = 32;
  std::memcpy(one.addr, "\x7f\x00\x00\x01", 4);
  SocketAddress lo;
  lo.family = 4;
  std::memcpy(lo.addr, "\x7f\x00\x00\x01", 4);
  EXPECT(CidrContains(one, lo));
  lo.addr[3] = 2;
  EXPECT(!CidrContains(one, lo));

  CidrRange odd;  // 127.0.0.0/31: .0 and .1 only
  odd.family = 4;
  odd.prefix = 31;
  odd.addr[0] = 127;
  lo.addr[3] = 1;
  EXPECT(CidrContains(odd, lo));
  lo.addr[3] = 2;
  EXPECT(!CidrContains(odd, lo));

  CidrRange any4;  // 0.0.0.0/0
  any4.family = 4;
  EXPECT(CidrContains(any4, lo));
}

TEST(MappedIpv6PeersMatchIpv4Ranges) {
  CidrRange one;
  one.family = 4;
  one.prefix = 32;
  std::memcpy(one.addr, "\x7f\x00\x00\x01", 4);
  SocketAddress mapped;
  mapped.family = 6;
  mapped.addr[10] = 0xff;
  mapped.addr[11] = 0xff;
  std::memcpy(mapped.addr + 12, "\x7f\x00\x00\x01", 4);
  EXPECT(CidrContains(one, mapped));
  mapped.addr[15] = 3;
  EXPECT(!CidrContains(one, mapped));

  CidrRange loop6;  // ::1/128
  loop6.family = 6;
  loop6.prefix = 128;
  loop6.addr[15] = 1;
  SocketAddress v6;
  v6.family = 6;
  v6.addr[15] = 1;
  EXPECT(CidrContains(loop6, v6));
  EXPECT(!CidrContains(loop6, mapped));
  v6.addr[0] = 0x20;
  EXPECT(!CidrContains(loop6, v6));
}

int main(int argc, char** argv) { return acceptpool_test::RunAll(argc, argv); }
