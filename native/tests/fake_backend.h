// A scriptable in-memory backend for engine tests. It implements the backend
// contract the way a readiness backend does (or, with defer_release, the way
// a completion backend does: OnReleased comes in a later round), and lets a
// test play the network: connections waiting in the backlog, bytes and FIN
// from the peer, resets, and how many bytes each socket will take.
//
// It also polices the contract: every call that names a session must carry
// the socket the engine attached to that very occupant (slot AND
// generation), never a closed or unknown socket. Breaches are collected in
// violations() so a test can assert there were none.
#ifndef ACCEPTPOOL_NATIVE_TESTS_FAKE_BACKEND_H_
#define ACCEPTPOOL_NATIVE_TESTS_FAKE_BACKEND_H_

#include <algorithm>
#include <cstring>
#include <deque>
#include <functional>
#include <limits>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "core/backend.h"

namespace acceptpool_test {

using acceptpool::Backend;
using acceptpool::BackendEvents;
using acceptpool::Code;
using acceptpool::IoSlice;
using acceptpool::ListenOptions;
using acceptpool::Session;
using acceptpool::SessionId;
using acceptpool::SessionTable;
using acceptpool::SocketAddress;
using acceptpool::SocketHandle;
using acceptpool::SocketOptions;
using acceptpool::Status;
using acceptpool::SysError;

struct FakeSocket {
  SocketHandle handle = -1;
  SocketAddress peer;
  // Engine side.
  Session* session = nullptr;  // the slot it was attached to
  SessionId id = 0;            // the occupant's id at Attach
  bool attached = false;
  SocketOptions options;  // SetNoDelay / SetKeepAlive
  bool closed = false;
  bool aborted = false;
  bool discarded = false;
  bool write_shut = false;
  bool reading = true;
  bool want_writable = false;
  size_t writable = std::numeric_limits<size_t>::max();  // bytes it takes before blocking
  std::string written;       // bytes the engine sent (tests may trim it)
  size_t written_total = 0;  // including trimmed bytes
  int send_direct_calls = 0;
  int flush_calls = 0;
  // Peer side.
  std::string inbox;  // bytes the peer sent that the engine has not read
  size_t delivered = 0;
  bool peer_fin = false;
  bool fin_delivered = false;
  bool error_pending = false;
  bool connecting = false;  // an outgoing connect not yet settled
  Status error;
  bool fail_attach = false;
  Status send_error;  // returned by SendDirect/Flush when not ok
};

class FakeBackend final : public Backend {
 public:
  // ---- knobs and inspection for tests ----
  bool defer_release = false;      // completion style: OnReleased in a later round
  bool direct_sends = true;        // false: SendDirect sends nothing, like a backend without it
  bool accepts_first = false;      // order inside a round: accepts before session I/O, or after
  bool check_lowest_first = true;  // Attach checks that no lower chunk had a free slot
  // Peers answer our FIN with theirs (as node:net does without
  // allowHalfOpen), which ends a graceful close's lingering.
  bool peers_answer_fin = false;

  std::map<SocketHandle, FakeSocket> sockets;
  std::deque<SocketHandle> backlog;
  std::vector<bool> set_accepting_calls;
  std::vector<std::string> violations;
  bool listening = false;
  bool accepting = false;
  bool stopped_listening = false;
  int wakes = 0;
  int ticks_pending = 0;
  int polls = 0;
  int close_calls = 0;
  int attach_calls = 0;
  int discards = 0;
  std::vector<Session*> deferred;
  BackendEvents* events() const { return events_; }

  // A connection arrives in the backlog; the peer address carries the handle
  // in its address bytes so tests can tell connections apart.
  SocketHandle Connect() {
    SocketHandle h = next_handle_++;
    FakeSocket& sock = sockets[h];
    sock.handle = h;
    sock.peer.family = 4;
    sock.peer.port = static_cast<uint16_t>(1024 + h % 60000);
    uint32_t v = static_cast<uint32_t>(h);
    sock.peer.addr[0] = 10;
    sock.peer.addr[1] = static_cast<uint8_t>(v >> 16);
    sock.peer.addr[2] = static_cast<uint8_t>(v >> 8);
    sock.peer.addr[3] = static_cast<uint8_t>(v);
    backlog.push_back(h);
    return h;
  }
  FakeSocket& Sock(SocketHandle h) { return sockets.at(h); }
  // Outgoing connects (Backend::Connect) wait until the test settles them;
  // the result is reported in the next round.
  void SettleConnect(SocketHandle h, Status result = Status::Ok()) { connect_results[h] = result; }
  std::map<SocketHandle, Status> connect_results;
  SocketHandle last_outgoing = -1;
  int connect_calls = 0;
  Status fail_next_connect;                   // returned by the next Connect() when not ok
  std::vector<SocketAddress> connect_locals;  // the local address of each Connect (family 0: none)
  FakeSocket* BySessionId(SessionId id) {
    for (auto& [h, sock] : sockets) {
      if (sock.attached && sock.id == id) return &sock;
    }
    return nullptr;
  }
  void PeerSend(SocketHandle h, const std::string& bytes) { Sock(h).inbox += bytes; }
  void PeerEnd(SocketHandle h) { Sock(h).peer_fin = true; }
  void PeerError(SocketHandle h, SysError e, int raw) {
    FakeSocket& sock = Sock(h);
    sock.error_pending = true;
    sock.error = Status::System(e, raw, "read");
  }
  void AddWritable(SocketHandle h, size_t n) {
    FakeSocket& sock = Sock(h);
    if (sock.writable == std::numeric_limits<size_t>::max()) sock.writable = 0;
    sock.writable += n;
  }
  // A tick is also a second of the fake clock (FakeClockMs), which engines
  // under test read through EngineConfig::clock_ms.
  void Tick(int n = 1) {
    ticks_pending += n;
    Advance(1000ull * static_cast<uint64_t>(n));
  }
  static void Advance(uint64_t ms) { FakeClock() += ms; }
  static uint64_t& FakeClock() {
    static uint64_t now_ms = 1;
    return now_ms;
  }
  static uint64_t FakeClockMs() { return FakeClock(); }
  // The latest ArmTimer request.
  int armed_ms = -1;
  void ArmTimer(int delay_ms) override { armed_ms = delay_ms; }
  // Completes every deferred release now (inside a round, as a completion
  // backend would report them).
  bool release_all_deferred_next_round = true;

  // Called from the destructor, for tests of what the engine left behind
  // when it was destroyed (the fake dies with it).
  std::function<void(const FakeBackend&)> on_destroy;
  ~FakeBackend() override {
    if (on_destroy) on_destroy(*this);
  }

  // ---- Backend ----
  const char* name() const override { return "fake"; }

  Status Init(BackendEvents* events, SessionTable* table) override {
    events_ = events;
    table_ = table;
    return Status::Ok();
  }

  Status Listen(const SocketAddress& address, const ListenOptions&, SocketAddress* bound) override {
    *bound = address;
    if (bound->port == 0) bound->port = 4242;
    listening = true;
    accepting = true;
    return Status::Ok();
  }

  void SetAccepting(bool on) override {
    set_accepting_calls.push_back(on);
    accepting = on;
  }

  void StopListening() override {
    listening = false;
    stopped_listening = true;
  }

  void DiscardSocket(SocketHandle socket) override {
    ++discards;
    auto it = sockets.find(socket);
    if (it == sockets.end()) {
      Violation("DiscardSocket of unknown socket ", socket);
      return;
    }
    it->second.discarded = true;
    it->second.closed = true;
  }

  bool PeerAddress(const Session& s, SocketAddress* out) override {
    FakeSocket* sock = Checked(const_cast<Session&>(s), "PeerAddress");
    if (sock == nullptr) return false;
    *out = sock->peer;
    return true;
  }

  Status Attach(Session& s, bool) override {
    ++attach_calls;
    FakeSocket* sock = Find(s.socket, "Attach");
    if (sock == nullptr) return Status::System(SysError::kBadF, 9, "attach");
    if (sock->attached) Violation("Attach twice: socket ", s.socket);
    if (sock->fail_attach) return Status::System(SysError::kNoMem, 12, "epoll_ctl");
    if (check_lowest_first) {
      // The table hands out slots from the lowest chunk that has one free,
      // so high chunks empty out and can shrink; a free slot skipped in a
      // lower chunk is a lost slot.
      uint32_t chunk_start = s.slot - s.slot % table_->chunk_size();
      for (uint32_t slot = 0; slot < chunk_start; ++slot) {
        Session* lower = table_->AtSlot(slot);
        if (lower != nullptr && lower->state == acceptpool::SessionState::kFree) {
          Violation("Acquire skipped free slot ",
                    std::to_string(slot) + " for slot " + std::to_string(s.slot));
          break;
        }
      }
    }
    sock->attached = true;
    sock->session = &s;
    sock->id = s.id();
    return Status::Ok();
  }

  Status Connect(Session& s, const SocketAddress& remote, const SocketAddress* local,
                 bool) override {
    ++connect_calls;
    SocketAddress none;
    none.family = 0;
    connect_locals.push_back(local != nullptr ? *local : none);
    if (!fail_next_connect.ok()) {
      Status st = fail_next_connect;
      fail_next_connect = Status();
      return st;
    }
    SocketHandle h = next_handle_++;
    FakeSocket& sock = sockets[h];
    sock.handle = h;
    sock.peer = remote;
    sock.attached = true;
    sock.connecting = true;
    sock.session = &s;
    sock.id = s.id();
    s.socket = h;
    last_outgoing = h;
    return Status::Ok();
  }

  Status SendDirect(Session& s, const char* data, size_t size, size_t* sent) override {
    *sent = 0;
    FakeSocket* sock = Checked(s, "SendDirect");
    if (sock == nullptr) return Status::Ok();
    ++sock->send_direct_calls;
    if (!sock->send_error.ok()) return sock->send_error;
    if (!direct_sends) return Status::Ok();
    size_t n = std::min(size, sock->writable);
    Write(*sock, data, n);
    *sent = n;
    return Status::Ok();
  }

  Status Flush(Session& s, size_t* sent) override {
    *sent = 0;
    FakeSocket* sock = Checked(s, "Flush");
    if (sock == nullptr) return Status::Ok();
    ++sock->flush_calls;
    if (!sock->send_error.ok()) return sock->send_error;
    IoSlice slices[64];
    int count = s.queue.Peek(slices, 64);
    size_t total = 0;
    for (int i = 0; i < count && sock->writable > 0; ++i) {
      size_t n = std::min(slices[i].size, sock->writable);
      Write(*sock, slices[i].data, n);
      total += n;
      if (n < slices[i].size) break;
    }
    *sent = total;
    sock->want_writable = total < s.queue.bytes();
    return Status::Ok();
  }

  void SetReading(Session& s, bool on) override {
    FakeSocket* sock = Checked(s, "SetReading");
    if (sock != nullptr) sock->reading = on;
  }

  Status SetNoDelay(Session& s, bool on) override {
    FakeSocket* sock = Checked(s, "SetNoDelay");
    if (sock != nullptr) sock->options.no_delay = on;
    return Status::Ok();
  }
  Status SetKeepAlive(Session& s, bool on, uint32_t delay_s) override {
    FakeSocket* sock = Checked(s, "SetKeepAlive");
    if (sock == nullptr) return Status::Ok();
    sock->options.keep_alive = on;
    if (on && delay_s != 0) sock->options.keep_alive_delay_s = delay_s;
    return Status::Ok();
  }
  Status LocalAddress(const Session& s, SocketAddress* out) override {
    out->family = 4;
    out->port = static_cast<uint16_t>(1000 + s.slot);
    return Status::Ok();
  }
  Status ReadSocketOptions(const Session& s, SocketOptions* out) override {
    auto it = sockets.find(s.socket);
    if (it == sockets.end()) return Status::Of(Code::kInvalid);
    *out = it->second.options;
    return Status::Ok();
  }

  Status ShutdownWrite(Session& s) override {
    FakeSocket* sock = Checked(s, "ShutdownWrite");
    if (sock == nullptr) return Status::Ok();
    if (sock->write_shut) Violation("ShutdownWrite twice: socket ", s.socket);
    sock->write_shut = true;
    if (peers_answer_fin) sock->peer_fin = true;
    return Status::Ok();
  }

  void Close(Session& s, bool abort) override {
    ++close_calls;
    FakeSocket* sock = Find(s.socket, "Close");
    if (sock != nullptr) {
      if (sock->attached && (sock->session != &s || sock->id != s.id())) {
        Violation("Close with another occupant's socket ", s.socket);
      }
      sock->closed = true;
      sock->aborted = abort;
    }
    s.socket = acceptpool::kNoSocket;
    if (defer_release) {
      deferred.push_back(&s);
    } else {
      events_->OnReleased(s);
    }
  }

  int last_timeout = -2;
  Status PollOnce(int timeout_ms) override {
    ++polls;
    last_timeout = timeout_ms;
    if (release_all_deferred_next_round && !deferred.empty()) {
      std::vector<Session*> done;
      done.swap(deferred);
      for (Session* s : done) events_->OnReleased(*s);
    }
    SettleConnects();
    if (accepts_first) Accepts();
    SessionIo();
    if (!accepts_first) Accepts();
    while (ticks_pending > 0) {
      --ticks_pending;
      events_->OnTick();
    }
    if (woken_) {
      woken_ = false;
      events_->OnWake();
    }
    return Status::Ok();
  }

  void Wake() override {
    ++wakes;
    woken_ = true;
  }

  int PollDescriptor() const override { return -1; }

  int memory_returns = 0;
  void ReturnFreedMemory() override { ++memory_returns; }

 private:
  void SettleConnects() {
    for (auto it = connect_results.begin(); it != connect_results.end();) {
      FakeSocket& sock = Sock(it->first);
      if (sock.closed || sock.session == nullptr) {
        it = connect_results.erase(it);
        continue;
      }
      if (!it->second.ok()) {
        events_->OnSessionError(*sock.session, it->second);
      } else if (!events_->OnConnected(*sock.session)) {
        ++it;  // no room: report again next round, as epoll's level trigger does
        continue;
      }
      sock.connecting = false;
      it = connect_results.erase(it);
    }
  }

  template <typename T>
  void Violation(const char* what, const T& detail) {
    std::ostringstream out;
    out << what << detail;
    violations.push_back(out.str());
  }

  FakeSocket* Find(SocketHandle h, const char* call) {
    auto it = sockets.find(h);
    if (it == sockets.end()) {
      Violation(call, std::string(" on unknown socket ") + std::to_string(h));
      return nullptr;
    }
    if (it->second.closed) {
      Violation(call, std::string(" on closed socket ") + std::to_string(h));
      return nullptr;
    }
    return &it->second;
  }

  // The socket of this very occupant, or null (and a violation).
  FakeSocket* Checked(Session& s, const char* call) {
    FakeSocket* sock = Find(s.socket, call);
    if (sock == nullptr) return nullptr;
    if (!sock->attached || sock->session != &s || sock->id != s.id()) {
      Violation(call, std::string(" with a socket of another occupant: socket ") +
                          std::to_string(s.socket) + " attached to id " + std::to_string(sock->id) +
                          ", session id " + std::to_string(s.id()));
      return nullptr;
    }
    return sock;
  }

  void Write(FakeSocket& sock, const char* data, size_t n) {
    sock.written.append(data, n);
    sock.written_total += n;
    if (sock.writable != std::numeric_limits<size_t>::max()) sock.writable -= n;
  }

  void Accepts() {
    if (!listening || !accepting || backlog.empty()) return;
    uint32_t budget = events_->AcceptBudget();
    while (budget > 0 && !backlog.empty() && listening) {
      SocketHandle h = backlog.front();
      backlog.pop_front();
      --budget;
      events_->OnAccepted(h, sockets.at(h).peer);
    }
  }

  void SessionIo() {
    // Handles in order; callbacks never add or erase sockets.
    for (auto& entry : sockets) {
      FakeSocket& sock = entry.second;
      if (!sock.attached || sock.closed) continue;
      Session& s = *sock.session;
      if (sock.error_pending) {
        sock.error_pending = false;
        events_->OnSessionError(s, sock.error);
        continue;
      }
      if (sock.reading && !sock.inbox.empty()) {
        char* space = nullptr;
        size_t room = 0;
        if (events_->ReadSpace(&space, &room)) {
          size_t n = std::min(room, sock.inbox.size());
          std::memcpy(space, sock.inbox.data(), n);
          sock.inbox.erase(0, n);
          sock.delivered += n;
          events_->OnReceived(s, n);
        }
      } else if (sock.reading && sock.inbox.empty() && sock.peer_fin && !sock.fin_delivered) {
        sock.fin_delivered = true;
        events_->OnPeerEnd(s);
      }
      if (sock.closed) continue;
      if (sock.want_writable && sock.writable > 0) events_->OnSendProgress(s, 0);
    }
  }

  BackendEvents* events_ = nullptr;
  SessionTable* table_ = nullptr;
  SocketHandle next_handle_ = 100;
  bool woken_ = false;
};

}  // namespace acceptpool_test

#endif  // ACCEPTPOOL_NATIVE_TESTS_FAKE_BACKEND_H_
