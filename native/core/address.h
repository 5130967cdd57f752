// A socket address without OS headers. Its layout is also the wire format of
// a kSession record's data (read by JS with a DataView): family at 0, port at
// 2 (host order), scope id at 4, address bytes at 8.
#ifndef ACCEPTPOOL_CORE_ADDRESS_H_
#define ACCEPTPOOL_CORE_ADDRESS_H_

#include <cstddef>
#include <cstdint>

namespace acceptpool {

// The family of a Unix domain socket's address, which names no IP or port.
constexpr uint8_t kLocalFamily = 0;

struct SocketAddress {
  uint8_t family = 4;  // 4 or 6, or kLocalFamily
  uint8_t reserved = 0;
  uint16_t port = 0;
  uint32_t scope_id = 0;
  uint8_t addr[16] = {};  // IPv4 uses the first 4 bytes
};
static_assert(sizeof(SocketAddress) == 24, "wire layout");
static_assert(offsetof(SocketAddress, addr) == 8, "wire layout");

}  // namespace acceptpool

#endif  // ACCEPTPOOL_CORE_ADDRESS_H_
