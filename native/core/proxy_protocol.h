// The PROXY protocol, versions 1 and 2 (HAProxy's proxy-protocol.txt): a
// balancer in front of the server prepends one header to each connection
// naming the client it relays. This file is the pure parser (no I/O, no
// allocation: fed bytes as they arrive, in any split) and the trusted-peer
// ranges; the engine runs both before a session is announced.
//
// The parser copies the header, and nothing after it, into its own bounded
// buffer: a header split across segments is held here until it completes,
// and the bytes after it stay where they landed (the session's first data).
// Every anomaly is final: the parser reports one ProxyError and takes no
// more bytes.
#ifndef ACCEPTPOOL_CORE_PROXY_PROTOCOL_H_
#define ACCEPTPOOL_CORE_PROXY_PROTOCOL_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "core/address.h"
#include "core/wire.h"

namespace acceptpool {

// The spec's longest v1 line, CRLF included.
constexpr size_t kProxyV1MaxBytes = 107;
// v2: signature, version/command, family, length.
constexpr size_t kProxyV2FixedBytes = 16;
// v2 lets a header declare up to 16 + 65535 bytes; a receiver bounds what it
// holds. Real senders stay far below this (addresses plus a few TLVs: HAProxy,
// Envoy and AWS NLB send well under 600 bytes, and the spec sizes the header
// to fit the 536-byte minimum MSS, so a sender can write it at once). A longer
// declared length is refused as soon as the 16 fixed bytes are in.
constexpr size_t kProxyMaxBytes = 2048;
// Each address of an AF_UNIX v2 block.
constexpr size_t kProxyUnixPathBytes = 108;

// X(name, text): named lists (core/wire.h); JS shows the texts.
#define ACCEPTPOOL_PROXY_COMMANDS(X) X(kLocal, "local") X(kProxy, "proxy")

enum class ProxyCommand : uint8_t { ACCEPTPOOL_PROXY_COMMANDS(ACCEPTPOOL_NAMED_ENUMERATOR) };

// kUnspec: no usable address (v1 UNKNOWN, v2 AF_UNSPEC or an UNSPEC
// transport): the connection's own endpoints stand, as for LOCAL.
#define ACCEPTPOOL_PROXY_FAMILIES(X) \
  X(kUnspec, "unspec") X(kInet, "IPv4") X(kInet6, "IPv6") X(kUnix, "unix")

enum class ProxyFamily : uint8_t { ACCEPTPOOL_PROXY_FAMILIES(ACCEPTPOOL_NAMED_ENUMERATOR) };

#define ACCEPTPOOL_PROXY_TRANSPORTS(X) X(kUnspec, "unspec") X(kStream, "stream") X(kDgram, "dgram")

enum class ProxyTransport : uint8_t { ACCEPTPOOL_PROXY_TRANSPORTS(ACCEPTPOOL_NAMED_ENUMERATOR) };

// Why a header was refused; the text ends up in the JS error's message.
#define ACCEPTPOOL_PROXY_ERRORS(X)                             \
  X(kNone, "no error")                                         \
  X(kSignature, "no PROXY protocol signature")                 \
  X(kVersion, "unsupported version")                           \
  X(kCommand, "unknown v2 command")                            \
  X(kFamily, "unknown v2 address family or transport")         \
  X(kLength, "v2 address block shorter than its family needs") \
  X(kTooLong, "header longer than the limit")                  \
  X(kLine, "malformed v1 line")                                \
  X(kAddress, "malformed address")                             \
  X(kPort, "malformed port")                                   \
  X(kTlv, "malformed v2 TLV")                                  \
  X(kChecksum, "v2 CRC32C checksum mismatch")

enum class ProxyError : uint8_t { ACCEPTPOOL_PROXY_ERRORS(ACCEPTPOOL_NAMED_ENUMERATOR) };

enum class ProxyParse : uint8_t {
  kMore,   // every byte fed belongs to the header, which is not complete yet
  kDone,   // header() is valid; `used` of the last feed were the header's
  kError,  // error() says why; nothing more is taken
};

// A complete header. Offsets point into ProxyParser::bytes().
struct ProxyHeader {
  uint8_t version = 0;  // 1 or 2
  ProxyCommand command = ProxyCommand::kLocal;
  ProxyFamily family = ProxyFamily::kUnspec;
  ProxyTransport transport = ProxyTransport::kUnspec;
  // kInet, kInet6: the client (source) and the address it reached.
  SocketAddress source;
  SocketAddress destination;
  // kUnix: two kProxyUnixPathBytes fields, source then destination.
  uint16_t unix_offset = 0;
  // v2 TLVs (PROXY command only), checked to tile their region exactly.
  uint16_t tlv_offset = 0;
  uint16_t tlv_length = 0;
  uint16_t length = 0;  // header bytes in all
};

// PP2_TYPE_CRC32C: a TLV the parser verifies.
constexpr uint8_t kProxyTlvCrc32c = 0x03;

class ProxyParser {
 public:
  // Ready for a new connection's first byte.
  void Reset();
  // Takes bytes from the start of the connection's stream (where the last
  // feed stopped). *used: how many belong to the header (all of them for
  // kMore, up to its end for kDone, 0 after the end or an error).
  ProxyParse Feed(const char* data, size_t size, size_t* used);

  ProxyParse state() const { return state_; }
  ProxyError error() const { return error_; }
  const ProxyHeader& header() const { return header_; }
  const uint8_t* bytes() const { return buf_; }
  size_t size() const { return size_; }

 private:
  ProxyParse Fail(ProxyError e);
  // The last byte taken completes a check the header allows this early.
  ProxyParse CheckPrefix();
  ProxyParse FinishV1();
  ProxyParse FinishV2();
  ProxyParse ParseTlvs(size_t begin, size_t end);

  ProxyParse state_ = ProxyParse::kMore;
  ProxyError error_ = ProxyError::kNone;
  uint16_t size_ = 0;
  uint16_t need_ = 0;  // v2: the whole header's size, once the fixed part is in
  ProxyHeader header_;
  uint8_t buf_[kProxyMaxBytes];
};

// The parsers of headers split across segments, held between reads. A
// header normally arrives whole and is parsed where it landed with the one
// scratch parser; only a split one is copied into a held parser, so an idle
// connection holds none. Bounded (kMaxHeld); made on first need and freed
// once none is held.
class ProxyParserPool {
 public:
  static constexpr uint32_t kMaxHeld = 1024;

  ProxyParserPool();
  ProxyParserPool(const ProxyParserPool&) = delete;
  ProxyParserPool& operator=(const ProxyParserPool&) = delete;
  ~ProxyParserPool();

  ProxyParser& scratch() { return *scratch_; }
  // Copies `parser` into a held one: its handle (1..kMaxHeld), or 0 when
  // kMaxHeld are held already.
  uint32_t Hold(const ProxyParser& parser);
  ProxyParser& Get(uint32_t handle) { return *parsers_[handle - 1]; }
  void Release(uint32_t handle);
  // Frees every parser's memory when none is held (the engine's tick).
  void Trim();
  uint32_t held() const { return held_; }
  size_t allocated() const { return parsers_.size(); }

 private:
  std::unique_ptr<ProxyParser> scratch_;
  std::vector<std::unique_ptr<ProxyParser>> parsers_;
  std::vector<uint32_t> free_;  // handles of allocated parsers not held
  uint32_t held_ = 0;
};

// CRC32C (Castagnoli) of `size` bytes, as the spec's PP2_TYPE_CRC32C uses.
uint32_t Crc32c(const uint8_t* data, size_t size);

// An address range from the proxyProtocol.trusted option.
struct CidrRange {
  uint8_t family = 4;  // 4 or 6
  uint8_t prefix = 0;  // bits that must match
  uint8_t addr[16] = {};
};

// Whether `peer` lies in `range`. An IPv4-mapped IPv6 peer (a dual-stack
// listener's view of an IPv4 client) matches IPv4 ranges as its IPv4 address.
bool CidrContains(const CidrRange& range, const SocketAddress& peer);

// Why a connection that had to start with a header never became a session.
// X(name, text): a named list (core/wire.h).
#define ACCEPTPOOL_PROXY_REJECTS(X)                                                \
  X(kUntrusted, "untrusted") /* its peer is not in proxyProtocol.trusted */        \
  X(kMalformed, "malformed") /* the header broke the spec (ProxyError says how) */ \
  X(kTimeout, "timeout")     /* the header did not complete in time */             \
  X(kAborted, "aborted")     /* the peer closed or reset before it completed */    \
  X(kBusy, "busy")           /* too many split headers held at once */

enum class ProxyReject : uint8_t { ACCEPTPOOL_PROXY_REJECTS(ACCEPTPOOL_NAMED_ENUMERATOR) };

// The wire layout of a proxied session: a kSession record's data is the
// SocketAddress JS shows as the remote one, then this head, then
// `unix_bytes` of AF_UNIX paths (source, destination), then `tlv_bytes` of
// the header's TLVs as they came (type, 16-bit big-endian length, value).
struct ProxyRecordHead {
  uint8_t version;
  uint8_t command;    // ProxyCommand
  uint8_t family;     // ProxyFamily
  uint8_t transport;  // ProxyTransport
  uint16_t unix_bytes;
  uint16_t tlv_bytes;
  SocketAddress source;  // zero unless kInet/kInet6
  SocketAddress destination;
};
static_assert(sizeof(ProxyRecordHead) == 56, "wire layout");

// The most a proxied kSession record's data takes.
constexpr size_t kProxyRecordMaxBytes =
    sizeof(SocketAddress) + sizeof(ProxyRecordHead) + 2 * kProxyUnixPathBytes + kProxyMaxBytes;

// A kProxyRejected record's data: the peer, then this.
struct ProxyRejectInfo {
  uint8_t reason;  // ProxyReject
  uint8_t error;   // ProxyError (kMalformed), else kNone
  uint8_t reserved[6];
};

}  // namespace acceptpool

#endif  // ACCEPTPOOL_CORE_PROXY_PROTOCOL_H_
