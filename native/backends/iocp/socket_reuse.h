// Whether the IOCP backend recycles accepted sockets: DisconnectEx with
// TF_REUSE_SOCKET, then AcceptEx on the same socket, instead of closesocket
// and a fresh socket. Pure policy, no Windows headers: it compiles and is
// tested everywhere (native/tests/iocp_policy_test.cc).
//
// ACCEPTPOOL_IOCP_REUSE chooses the mode: "off" (or "0") never recycles,
// "force" always tries, anything else (or nothing) is auto: try, and give up
// for good after kGiveUpAfter failures with no recycling ever having worked
// (Wine: DisconnectEx only shuts down the send side, so a recycled socket
// never serves again). A socket that fails to recycle is closed and a fresh
// one takes its place, in every mode.
#ifndef ACCEPTPOOL_BACKENDS_IOCP_SOCKET_REUSE_H_
#define ACCEPTPOOL_BACKENDS_IOCP_SOCKET_REUSE_H_

#include <cstdint>
#include <cstring>

namespace acceptpool {

// The order is what stats report (backendCounters.reuseMode).
enum class ReuseMode : uint8_t { kOff = 0, kAuto = 1, kForce = 2 };

// The mode an ACCEPTPOOL_IOCP_REUSE value names (null: unset).
inline ReuseMode ParseReuseMode(const char* value) {
  if (value == nullptr) return ReuseMode::kAuto;
  if (std::strcmp(value, "off") == 0 || std::strcmp(value, "0") == 0) return ReuseMode::kOff;
  if (std::strcmp(value, "force") == 0) return ReuseMode::kForce;
  return ReuseMode::kAuto;
}

class SocketReuse {
 public:
  static constexpr uint32_t kGiveUpAfter = 3;

  explicit SocketReuse(ReuseMode mode = ReuseMode::kAuto) : mode_(mode) {}

  ReuseMode mode() const { return mode_; }
  // Auto mode has given up.
  bool disabled() const { return disabled_; }

  // Whether a closing accepted socket may be recycled (the backend also
  // needs its listener still open).
  bool Allowed() const {
    return mode_ == ReuseMode::kForce || (mode_ == ReuseMode::kAuto && !disabled_);
  }

  // Whether accepted sockets may skip the completion port on immediate
  // success: only sockets that will never be recycled, because on Wine 8 a
  // DisconnectEx on such a socket loses its completion altogether.
  bool AcceptedMaySkipPort() const {
    return mode_ == ReuseMode::kOff || (mode_ == ReuseMode::kAuto && disabled_);
  }

  // A recycled socket went back into the accept pool.
  void NoteWorked() {
    worked_ = true;
    failures_ = 0;
  }
  // Recycling failed (DisconnectEx failed, stalled or left the socket
  // connected, or a recycled socket failed its accept or its sends).
  void NoteFailed() {
    ++failures_;
    if (mode_ == ReuseMode::kAuto && !worked_ && failures_ >= kGiveUpAfter) disabled_ = true;
  }

 private:
  ReuseMode mode_;
  bool disabled_ = false;
  bool worked_ = false;
  uint32_t failures_ = 0;
};

}  // namespace acceptpool

#endif  // ACCEPTPOOL_BACKENDS_IOCP_SOCKET_REUSE_H_
