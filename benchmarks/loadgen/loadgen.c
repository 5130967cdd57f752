/*
 * loadgen: a small, fast epoll TCP load generator for the acceptpool benchmarks.
 *
 * Loopback only: the target must be in 127.0.0.0/8, and source addresses are
 * 127.0.0.1 .. 127.0.0.N. Every run is bounded in time and stops by itself.
 *
 * Modes
 *   connect-close  keep C connects in flight; each completed connect is closed at
 *                  once and replaced. Reports completed connections per second.
 *   reqrep         connect, send one S-byte request, read the S-byte echo, verify
 *                  it, close, replace. Reports connections per second.
 *   echo           C persistent connections; each sends S bytes, waits for the
 *                  echo, verifies it and sends the next. Reports messages per
 *                  second and round-trip latency percentiles.
 *   idle           open C connections (at most -i connects in flight) and hold
 *                  them without traffic. Prints {"event":"ready",...} once they
 *                  are up, then holds until stdin says "q" (or reaches EOF), a
 *                  SIGTERM/SIGINT arrives or -d seconds have passed.
 *
 * Port exhaustion and TIME_WAIT
 *   Each socket is bound, before connect, to one of N source addresses
 *   (127.0.0.1 .. 127.0.0.N, round robin) with IP_BIND_ADDRESS_NO_PORT, so the
 *   kernel picks the ephemeral port at connect time per 4-tuple: every source
 *   address gets its own ~28k ports instead of all sockets sharing one range.
 *   Closes use SO_LINGER {1, 0} by default (an RST instead of a FIN), so the
 *   client never enters TIME_WAIT and a connect storm of 50k+/s does not run out
 *   of (address, port) pairs within the 60 s TIME_WAIT period. The server side
 *   sees a reset (ECONNRESET or EOF) on sessions that are closed this way, which
 *   every server in the suite treats as an ordinary close. Use --graceful to
 *   close with a FIN instead (then spread over more source addresses, -n).
 *
 * Output: one JSON line on stdout with the results and error counts (idle mode
 * prints the "ready" line first). Diagnostics go to stderr.
 *
 * Build: cc -O2 -Wall -Wextra -pthread -o build/bench/loadgen loadgen.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

enum mode { MODE_CONNECT_CLOSE, MODE_REQREP, MODE_ECHO, MODE_IDLE };
static const char *const mode_names[] = {"connect-close", "reqrep", "echo", "idle"};

enum state {
  ST_NEW = 0,     /* never started (echo/idle: waiting for an in-flight slot) */
  ST_FREE,        /* failed or finished; the sweep restarts it */
  ST_CONNECTING,  /* non-blocking connect in progress */
  ST_ACTIVE,      /* reqrep/echo: sending a request or waiting for its echo */
  ST_IDLE,        /* idle mode: connected and held */
  ST_DEAD         /* given up (idle mode: failed too often or closed by the server) */
};

struct conn {
  int fd;
  uint8_t state;
  uint8_t attempts;
  uint8_t served;   /* echo: has had one reply (the server has accepted and serves it) */
  uint32_t idx;     /* global index, part of the payload pattern */
  uint32_t seq;     /* message / connection sequence, part of the payload pattern */
  uint32_t sent;    /* bytes of the current request written */
  uint32_t got;     /* bytes of the current reply read */
  uint64_t t_op;    /* start of the current connect or message (ns) */
  uint64_t t_conn;  /* start of the current connect (ns), for reqrep latency */
};

/* Log-linear latency histogram in nanoseconds: values < 64 exact, then 32
 * sub-buckets per power of two (about 3% resolution). */
#define HIST_SUB_BITS 5
#define HIST_N (64 + 58 * 32)

static inline int hist_index(uint64_t v) {
  if (v < 64) return (int)v;
  int e = 63 - __builtin_clzll(v); /* >= 6 */
  int m = (int)(v >> (e - HIST_SUB_BITS)); /* 32..63 */
  return 64 + (e - 6) * 32 + (m - 32);
}

static inline double hist_value(int idx) {
  if (idx < 64) return (double)idx;
  int e = (idx - 64) / 32 + 6;
  int m = (idx - 64) % 32 + 32;
  double lo = (double)((uint64_t)m << (e - HIST_SUB_BITS));
  double width = (double)(1ull << (e - HIST_SUB_BITS));
  return lo + width / 2;
}

struct errors {
  uint64_t refused, reset, timeout, addrnotavail, emfile, mismatch, eof, other;
  int last_errno;
};

struct worker {
  int id;
  int epfd;
  pthread_t thread;
  struct conn *conns;
  uint32_t nconns;
  uint32_t src_rr;
  uint32_t inflight;   /* connects in progress */
  uint32_t next_new;   /* first slot that may still be ST_NEW */
  int measuring;
  int stopping;
  uint64_t t_measure_start, t_measure_end;
  uint64_t completed;  /* in the measured window */
  uint64_t completed_all;
  uint64_t bytes;
  uint64_t connected;  /* connects that completed (all phases) */
  uint64_t dropped;    /* idle: closed by the server while held */
  uint32_t served;     /* echo: connections that got their first echo back */
  uint64_t t_all_served; /* echo: when the last of them did (0 = not yet) */
  uint64_t latency_sum_ns, latency_n, latency_max_ns;
  uint64_t *hist;
  uint64_t t_start;
  struct errors err;
  uint8_t *sbuf, *rbuf;
};

static struct {
  int mode;
  struct sockaddr_in dst;
  uint32_t conns;
  double duration_s;
  double warmup_s;
  uint32_t threads;
  uint32_t size;
  uint32_t nsrc;
  uint32_t timeout_ms;
  uint32_t inflight_cap;
  int linger0;
  int nodelay;
  double setup_s;
} opt;

static volatile sig_atomic_t g_stop = 0;

static void on_signal(int sig) {
  (void)sig;
  g_stop = 1;
}

static inline uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline uint8_t pattern(uint32_t idx, uint32_t seq, uint32_t i) {
  uint64_t x = (((uint64_t)idx << 32) | seq) * 0x9E3779B97F4A7C15ull;
  x ^= x >> 29;
  return (uint8_t)((uint8_t)(x >> ((i & 7u) * 8u)) ^ (uint8_t)(i >> 3));
}

static void count_errno(struct worker *w, int e) {
  switch (e) {
    case ECONNREFUSED: w->err.refused++; break;
    case ECONNRESET:
    case EPIPE: w->err.reset++; break;
    case ETIMEDOUT: w->err.timeout++; break;
    case EADDRNOTAVAIL:
    case EADDRINUSE: w->err.addrnotavail++; break;
    case EMFILE:
    case ENFILE:
    case ENOBUFS:
    case ENOMEM: w->err.emfile++; break;
    default: w->err.other++; break;
  }
  w->err.last_errno = e;
}

static int socket_error(int fd) {
  int e = 0;
  socklen_t len = sizeof e;
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len) < 0) return errno;
  return e;
}

static void close_conn(struct worker *w, struct conn *c, uint8_t next_state) {
  if (c->fd >= 0) {
    if (opt.linger0) {
      struct linger l = {1, 0};
      setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    }
    close(c->fd);
  }
  if (c->state == ST_CONNECTING && w->inflight > 0) w->inflight--;
  c->fd = -1;
  c->state = next_state;
}

/* Failure of a started connection: idle mode retries a few times, then gives up. */
static void fail_conn(struct worker *w, struct conn *c) {
  uint8_t next = ST_FREE;
  if (opt.mode == MODE_IDLE && c->attempts >= 3) next = ST_DEAD;
  close_conn(w, c, next);
}

static int start_connect(struct worker *w, uint32_t i, uint64_t now) {
  struct conn *c = &w->conns[i];
  c->attempts++;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    count_errno(w, errno);
    c->state = (opt.mode == MODE_IDLE && c->attempts >= 3) ? ST_DEAD : ST_FREE;
    return -1;
  }
  int one = 1;
  if (opt.nsrc > 1) {
    setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    struct sockaddr_in src;
    memset(&src, 0, sizeof src);
    src.sin_family = AF_INET;
    src.sin_addr.s_addr = htonl(0x7f000001u + (w->src_rr++ % opt.nsrc));
    if (bind(fd, (struct sockaddr *)&src, sizeof src) < 0) {
      count_errno(w, errno);
      close(fd);
      c->state = (opt.mode == MODE_IDLE && c->attempts >= 3) ? ST_DEAD : ST_FREE;
      return -1;
    }
  }
  if (opt.nodelay) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (connect(fd, (struct sockaddr *)&opt.dst, sizeof opt.dst) < 0 && errno != EINPROGRESS) {
    count_errno(w, errno);
    close(fd);
    c->state = (opt.mode == MODE_IDLE && c->attempts >= 3) ? ST_DEAD : ST_FREE;
    return -1;
  }
  struct epoll_event ev;
  ev.events = EPOLLOUT | EPOLLET;
  if (opt.mode != MODE_CONNECT_CLOSE) ev.events |= EPOLLIN | EPOLLRDHUP;
  ev.data.u64 = i;
  if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
    count_errno(w, errno);
    close(fd);
    c->state = ST_FREE;
    return -1;
  }
  c->fd = fd;
  c->state = ST_CONNECTING;
  c->sent = c->got = 0;
  c->t_op = c->t_conn = now;
  w->inflight++;
  return 0;
}

static inline void record_latency(struct worker *w, uint64_t ns) {
  if (!w->measuring) return;
  w->hist[hist_index(ns)]++;
  w->latency_sum_ns += ns;
  w->latency_n++;
  if (ns > w->latency_max_ns) w->latency_max_ns = ns;
}

/* Writes the rest of the current request. 1 = all written, 0 = would block, -1 = failed. */
static int send_request(struct worker *w, struct conn *c) {
  while (c->sent < opt.size) {
    uint32_t n = opt.size - c->sent;
    for (uint32_t k = 0; k < n; k++) w->sbuf[k] = pattern(c->idx, c->seq, c->sent + k);
    ssize_t r = send(c->fd, w->sbuf, n, MSG_NOSIGNAL);
    if (r < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
      if (errno == EINTR) continue;
      count_errno(w, errno);
      return -1;
    }
    c->sent += (uint32_t)r;
  }
  return 1;
}

static void start_message(struct worker *w, struct conn *c, uint64_t now) {
  c->sent = 0;
  c->got = 0;
  c->t_op = now;
  c->state = ST_ACTIVE;
  if (send_request(w, c) < 0) fail_conn(w, c);
}

/* Reads the reply. Returns 1 when the whole reply is in and verified, 0 when
 * more is needed, -1 when the connection failed (already closed). */
static int read_reply(struct worker *w, struct conn *c) {
  for (;;) {
    uint32_t want = opt.size - c->got;
    ssize_t r = recv(c->fd, w->rbuf, want, 0);
    if (r > 0) {
      for (ssize_t k = 0; k < r; k++) {
        if (w->rbuf[k] != pattern(c->idx, c->seq, c->got + (uint32_t)k)) {
          w->err.mismatch++;
          fail_conn(w, c);
          return -1;
        }
      }
      c->got += (uint32_t)r;
      if (w->measuring) w->bytes += (uint64_t)r;
      if (c->got == opt.size) return 1;
      /* a short read drained the socket; with EPOLLET the next arrival wakes us */
      if ((uint32_t)r < want) return 0;
      continue;
    }
    if (r == 0) {
      w->err.eof++;
      fail_conn(w, c);
      return -1;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
    if (errno == EINTR) continue;
    count_errno(w, errno);
    fail_conn(w, c);
    return -1;
  }
}

static void start_new_slots(struct worker *w, uint64_t now) {
  while (w->next_new < w->nconns && w->inflight < opt.inflight_cap && !w->stopping) {
    struct conn *c = &w->conns[w->next_new];
    if (c->state == ST_NEW) start_connect(w, w->next_new, now);
    w->next_new++;
  }
}

static void on_connected(struct worker *w, struct conn *c, uint64_t now) {
  if (w->inflight > 0) w->inflight--;
  c->state = ST_ACTIVE; /* no longer counted in flight */
  w->connected++;
  c->attempts = 0;
  switch (opt.mode) {
    case MODE_CONNECT_CLOSE:
      record_latency(w, now - c->t_conn);
      if (w->measuring) w->completed++;
      w->completed_all++;
      c->seq++;
      close_conn(w, c, ST_FREE);
      if (!w->stopping) start_connect(w, (uint32_t)(c - w->conns), now);
      return;
    case MODE_REQREP:
    case MODE_ECHO:
      start_message(w, c, now);
      return;
    case MODE_IDLE:
      c->state = ST_IDLE;
      return;
  }
}

static void handle_event(struct worker *w, uint32_t i, uint32_t events) {
  struct conn *c = &w->conns[i];
  if (c->fd < 0) return;
  uint64_t now = now_ns();

  if (c->state == ST_CONNECTING) {
    if (events & (EPOLLERR | EPOLLHUP)) {
      int e = socket_error(c->fd);
      count_errno(w, e ? e : ECONNRESET);
      fail_conn(w, c);
      return;
    }
    if (!(events & EPOLLOUT)) return;
    on_connected(w, c, now);
    /* connect-close restarted the slot; reqrep/echo just sent the request */
    if (c->state != ST_ACTIVE || !(events & EPOLLIN)) return;
  }

  if (c->state == ST_IDLE) {
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLERR | EPOLLHUP)) {
      char b[64];
      ssize_t r = recv(c->fd, b, sizeof b, 0);
      if (r > 0) return; /* unexpected data: ignore */
      if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
      if (r < 0) count_errno(w, errno); else w->err.eof++;
      w->dropped++;
      close_conn(w, c, ST_DEAD);
    }
    return;
  }

  if (c->state != ST_ACTIVE) return;
  if (c->sent < opt.size && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
    int s = send_request(w, c);
    if (s < 0) {
      fail_conn(w, c);
      return;
    }
  }
  if (!(events & (EPOLLIN | EPOLLRDHUP | EPOLLERR | EPOLLHUP))) return;
  for (;;) {
    int r = read_reply(w, c);
    if (r <= 0) return;
    now = now_ns();
    if (opt.mode == MODE_REQREP) {
      record_latency(w, now - c->t_conn);
      if (w->measuring) w->completed++;
      w->completed_all++;
      c->seq++;
      close_conn(w, c, ST_FREE);
      if (!w->stopping) start_connect(w, i, now);
      return;
    }
    /* echo */
    if (!c->served) {
      c->served = 1;
      if (++w->served == w->nconns) w->t_all_served = now;
    }
    record_latency(w, now - c->t_op);
    if (w->measuring) w->completed++;
    w->completed_all++;
    c->seq++;
    if (w->stopping) return;
    /* the echo of the next request can only arrive after it is sent, and that
     * arrival is a new edge: no need to read again now */
    start_message(w, c, now);
    return;
  }
}

static void sweep(struct worker *w, uint64_t now) {
  uint64_t tmo = (uint64_t)opt.timeout_ms * 1000000ull;
  for (uint32_t i = 0; i < w->nconns; i++) {
    struct conn *c = &w->conns[i];
    switch (c->state) {
      case ST_FREE:
        if (w->stopping) break;
        if ((opt.mode == MODE_ECHO || opt.mode == MODE_IDLE) && w->inflight >= opt.inflight_cap) break;
        start_connect(w, i, now);
        break;
      case ST_CONNECTING:
      case ST_ACTIVE:
        if (now - c->t_op > tmo) {
          w->err.timeout++;
          fail_conn(w, c);
        }
        break;
      default:
        break;
    }
  }
  start_new_slots(w, now);
}

static int setup_worker(struct worker *w, uint32_t nconns, uint32_t base_idx) {
  w->epfd = epoll_create1(EPOLL_CLOEXEC);
  if (w->epfd < 0) return -1;
  w->nconns = nconns;
  w->conns = calloc(nconns ? nconns : 1, sizeof *w->conns);
  w->hist = calloc(HIST_N, sizeof *w->hist);
  w->sbuf = malloc(opt.size);
  w->rbuf = malloc(opt.size);
  if (!w->conns || !w->hist || !w->sbuf || !w->rbuf) return -1;
  for (uint32_t i = 0; i < nconns; i++) {
    w->conns[i].fd = -1;
    w->conns[i].state = ST_NEW;
    w->conns[i].idx = base_idx + i;
  }
  w->src_rr = (uint32_t)w->id;
  return 0;
}

#define MAX_EVENTS 512
#define SWEEP_NS 20000000ull

/* connect-close, reqrep, echo */
static void *run_timed(void *arg) {
  struct worker *w = arg;
  struct epoll_event evs[MAX_EVENTS];
  uint64_t t0 = now_ns();
  w->t_start = t0;
  uint64_t t_warm = t0 + (uint64_t)(opt.warmup_s * 1e9);
  uint64_t t_setup_deadline = t0 + (uint64_t)(opt.setup_s * 1e9);
  uint64_t t_end = 0; /* set when measuring starts */
  uint64_t next_sweep = t0 + SWEEP_NS;

  if (opt.mode == MODE_ECHO) {
    start_new_slots(w, t0);
  } else {
    for (uint32_t i = 0; i < w->nconns; i++) start_connect(w, i, t0);
    w->next_new = w->nconns;
  }

  for (;;) {
    uint64_t now = now_ns();
    if (g_stop) break;
    if (!w->measuring) {
      int ready = now >= t_warm;
      if (opt.mode == MODE_ECHO) {
        /* echo: measure only once every connection has had an echo back, i.e. the
         * server has accepted and serves all of them (a connection the kernel
         * completed may wait in the accept queue), or setup timed out */
        ready = ready && (w->served == w->nconns || now >= t_setup_deadline);
      }
      if (ready) {
        w->measuring = 1;
        w->t_measure_start = now;
        t_end = now + (uint64_t)(opt.duration_s * 1e9);
      } else if (now >= t_setup_deadline + (uint64_t)(opt.duration_s * 1e9)) {
        break; /* never got going: give up (bounded) */
      }
    }
    if (w->measuring && now >= t_end) break;
    if (now >= next_sweep) {
      sweep(w, now);
      next_sweep = now + SWEEP_NS;
    }
    uint64_t wake = next_sweep;
    if (w->measuring && t_end < wake) wake = t_end;
    int timeout_ms = wake > now ? (int)((wake - now + 999999) / 1000000) : 0;
    int n = epoll_wait(w->epfd, evs, MAX_EVENTS, timeout_ms);
    if (n < 0) {
      if (errno == EINTR) continue;
      perror("epoll_wait");
      break;
    }
    for (int k = 0; k < n; k++) handle_event(w, (uint32_t)evs[k].data.u64, evs[k].events);
  }
  w->t_measure_end = now_ns();
  if (!w->measuring) w->t_measure_start = w->t_measure_end;
  w->stopping = 1;
  for (uint32_t i = 0; i < w->nconns; i++) {
    struct conn *c = &w->conns[i];
    if (c->fd >= 0) close_conn(w, c, ST_FREE);
  }
  return NULL;
}

/* idle: connect everything, report, hold, close */
static int run_idle(struct worker *w) {
  struct epoll_event evs[MAX_EVENTS];
  uint64_t t0 = now_ns();
  uint64_t setup_deadline = t0 + (uint64_t)(opt.setup_s * 1e9);
  uint64_t next_sweep = t0 + SWEEP_NS;
  int stdin_watched = 0;

  start_new_slots(w, t0);
  /* phase 1: connect */
  for (;;) {
    uint64_t now = now_ns();
    if (g_stop || now >= setup_deadline) break;
    uint64_t held = 0, pending = 0;
    if (now >= next_sweep) {
      sweep(w, now);
      next_sweep = now + SWEEP_NS;
      for (uint32_t i = 0; i < w->nconns; i++) {
        uint8_t s = w->conns[i].state;
        if (s == ST_IDLE) held++;
        else if (s != ST_DEAD) pending++;
      }
      if (pending == 0) break;
    }
    (void)held;
    int timeout_ms = (int)((next_sweep > now ? next_sweep - now : 0) / 1000000) + 1;
    int n = epoll_wait(w->epfd, evs, MAX_EVENTS, timeout_ms);
    if (n < 0) {
      if (errno == EINTR) continue;
      perror("epoll_wait");
      break;
    }
    for (int k = 0; k < n; k++) handle_event(w, (uint32_t)evs[k].data.u64, evs[k].events);
    start_new_slots(w, now_ns());
  }
  w->stopping = 1;
  /* anything still connecting is given up */
  for (uint32_t i = 0; i < w->nconns; i++) {
    struct conn *c = &w->conns[i];
    if (c->state == ST_CONNECTING) {
      w->err.timeout++;
      close_conn(w, c, ST_DEAD);
    } else if (c->state == ST_NEW || c->state == ST_FREE) {
      c->state = ST_DEAD;
    }
  }
  uint64_t held = 0;
  for (uint32_t i = 0; i < w->nconns; i++)
    if (w->conns[i].state == ST_IDLE) held++;
  uint64_t t_ready = now_ns();
  printf("{\"event\":\"ready\",\"connected\":%llu,\"failed\":%llu,\"connect_ms\":%.1f}\n",
         (unsigned long long)held, (unsigned long long)(w->nconns - held), (double)(t_ready - t0) / 1e6);
  fflush(stdout);

  /* phase 2: hold until stdin says so, a signal, or the deadline */
  struct epoll_event sev;
  sev.events = EPOLLIN;
  sev.data.u64 = UINT32_MAX;
  if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, STDIN_FILENO, &sev) == 0) stdin_watched = 1;
  uint64_t hold_end = t_ready + (uint64_t)(opt.duration_s * 1e9);
  int done = 0;
  while (!done && !g_stop) {
    uint64_t now = now_ns();
    if (now >= hold_end) break;
    int timeout_ms = (int)((hold_end - now) / 1000000) + 1;
    if (timeout_ms > 200) timeout_ms = 200;
    int n = epoll_wait(w->epfd, evs, MAX_EVENTS, timeout_ms);
    if (n < 0) {
      if (errno == EINTR) continue;
      perror("epoll_wait");
      break;
    }
    for (int k = 0; k < n; k++) {
      if (evs[k].data.u64 == UINT32_MAX) {
        char b[256];
        ssize_t r = read(STDIN_FILENO, b, sizeof b);
        if (r <= 0) {
          if (r < 0 && errno == EINTR) continue;
          done = 1;
          if (stdin_watched) epoll_ctl(w->epfd, EPOLL_CTL_DEL, STDIN_FILENO, NULL);
          stdin_watched = 0;
        } else if (memchr(b, 'q', (size_t)r)) {
          done = 1;
        }
        continue;
      }
      handle_event(w, (uint32_t)evs[k].data.u64, evs[k].events);
    }
  }
  w->t_measure_start = t0;
  w->t_measure_end = now_ns();
  for (uint32_t i = 0; i < w->nconns; i++) {
    struct conn *c = &w->conns[i];
    if (c->fd >= 0) close_conn(w, c, ST_DEAD);
  }
  return (int)held;
}

static void usage(void) {
  fprintf(stderr,
          "usage: loadgen -m connect-close|reqrep|echo|idle -p PORT [options]\n"
          "  -H, --host ADDR       target address, must be in 127.0.0.0/8 (default 127.0.0.1)\n"
          "  -p, --port PORT       target port (required)\n"
          "  -c, --conns N         connections in flight / persistent / held (default 100)\n"
          "  -d, --duration S      measured seconds; idle: longest hold (default 5)\n"
          "  -w, --warmup S        seconds before measuring (default 0.5)\n"
          "  -t, --threads N       worker threads (default 1; idle uses 1)\n"
          "  -s, --size N          request/message bytes (default 16)\n"
          "  -n, --src N           spread source addresses over 127.0.0.1..127.0.0.N (default 8)\n"
          "  -T, --timeout MS      connect / reply timeout (default 3000)\n"
          "  -i, --inflight N      most connects in flight when opening (echo/idle, default 256)\n"
          "  -S, --setup S         longest time to open all connections (echo/idle, default 30)\n"
          "  -g, --graceful        close with FIN instead of SO_LINGER 0 (RST)\n");
}

static int parse_mode(const char *s) {
  for (int i = 0; i < 4; i++)
    if (strcmp(s, mode_names[i]) == 0) return i;
  return -1;
}

int main(int argc, char **argv) {
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  opt.mode = -1;
  opt.conns = 100;
  opt.duration_s = 5;
  opt.warmup_s = 0.5;
  opt.threads = 1;
  opt.size = 16;
  opt.nsrc = 8;
  opt.timeout_ms = 3000;
  opt.inflight_cap = 256;
  opt.linger0 = 1;
  opt.setup_s = 30;
  const char *host = "127.0.0.1";
  int port = -1;

  static const struct option lopts[] = {
      {"mode", required_argument, 0, 'm'},    {"host", required_argument, 0, 'H'},
      {"port", required_argument, 0, 'p'},    {"conns", required_argument, 0, 'c'},
      {"duration", required_argument, 0, 'd'}, {"warmup", required_argument, 0, 'w'},
      {"threads", required_argument, 0, 't'}, {"size", required_argument, 0, 's'},
      {"src", required_argument, 0, 'n'},     {"timeout", required_argument, 0, 'T'},
      {"inflight", required_argument, 0, 'i'}, {"setup", required_argument, 0, 'S'},
      {"graceful", no_argument, 0, 'g'},      {"help", no_argument, 0, 'h'},
      {0, 0, 0, 0}};
  int ch;
  while ((ch = getopt_long(argc, argv, "m:H:p:c:d:w:t:s:n:T:i:S:gh", lopts, NULL)) != -1) {
    switch (ch) {
      case 'm': opt.mode = parse_mode(optarg); break;
      case 'H': host = optarg; break;
      case 'p': port = atoi(optarg); break;
      case 'c': opt.conns = (uint32_t)strtoul(optarg, NULL, 10); break;
      case 'd': opt.duration_s = atof(optarg); break;
      case 'w': opt.warmup_s = atof(optarg); break;
      case 't': opt.threads = (uint32_t)strtoul(optarg, NULL, 10); break;
      case 's': opt.size = (uint32_t)strtoul(optarg, NULL, 10); break;
      case 'n': opt.nsrc = (uint32_t)strtoul(optarg, NULL, 10); break;
      case 'T': opt.timeout_ms = (uint32_t)strtoul(optarg, NULL, 10); break;
      case 'i': opt.inflight_cap = (uint32_t)strtoul(optarg, NULL, 10); break;
      case 'S': opt.setup_s = atof(optarg); break;
      case 'g': opt.linger0 = 0; break;
      default: usage(); return 2;
    }
  }
  if (opt.mode < 0 || port <= 0 || port > 65535 || opt.conns == 0 || opt.size == 0 || opt.size > (1u << 20) ||
      opt.threads == 0 || opt.threads > 64 || opt.nsrc == 0 || opt.nsrc > 254 || opt.inflight_cap == 0 ||
      opt.duration_s <= 0 || opt.duration_s > 3600 || opt.warmup_s < 0 || opt.setup_s <= 0) {
    usage();
    return 2;
  }
  memset(&opt.dst, 0, sizeof opt.dst);
  opt.dst.sin_family = AF_INET;
  opt.dst.sin_port = htons((uint16_t)port);
  if (inet_pton(AF_INET, host, &opt.dst.sin_addr) != 1 || (ntohl(opt.dst.sin_addr.s_addr) >> 24) != 127) {
    fprintf(stderr, "loadgen: target must be an IPv4 loopback address (127.0.0.0/8), got %s\n", host);
    return 2;
  }
  if (opt.mode == MODE_IDLE) opt.threads = 1;
  if (opt.threads > opt.conns) opt.threads = opt.conns;
  opt.nodelay = opt.mode == MODE_ECHO;

  /* descriptors: raise the soft limit to the hard one and check we fit */
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    getrlimit(RLIMIT_NOFILE, &rl);
    if ((uint64_t)opt.conns + 16 + opt.threads > (uint64_t)rl.rlim_cur) {
      fprintf(stderr, "loadgen: %u connections do not fit the descriptor limit %llu; split over processes\n",
              opt.conns, (unsigned long long)rl.rlim_cur);
      return 2;
    }
  }

  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);

  struct worker *ws = calloc(opt.threads, sizeof *ws);
  if (!ws) return 1;
  uint32_t base = 0;
  for (uint32_t t = 0; t < opt.threads; t++) {
    uint32_t n = opt.conns / opt.threads + (t < opt.conns % opt.threads ? 1 : 0);
    ws[t].id = (int)t;
    if (setup_worker(&ws[t], n, base) < 0) {
      perror("loadgen: setup");
      return 1;
    }
    base += n;
  }

  struct rusage ru0;
  getrusage(RUSAGE_SELF, &ru0);
  uint64_t wall0 = now_ns();
  if (opt.mode == MODE_IDLE) {
    run_idle(&ws[0]);
  } else if (opt.threads == 1) {
    run_timed(&ws[0]);
  } else {
    for (uint32_t t = 0; t < opt.threads; t++) pthread_create(&ws[t].thread, NULL, run_timed, &ws[t]);
    for (uint32_t t = 0; t < opt.threads; t++) pthread_join(ws[t].thread, NULL);
  }
  uint64_t wall1 = now_ns();
  struct rusage ru1;
  getrusage(RUSAGE_SELF, &ru1);

  /* aggregate */
  struct errors e;
  memset(&e, 0, sizeof e);
  uint64_t completed = 0, completed_all = 0, bytes = 0, connected = 0, dropped = 0, served = 0;
  double all_served_ms = 0;
  int all_served = 1;
  uint64_t lat_sum = 0, lat_n = 0, lat_max = 0;
  double rate = 0, window = 0;
  uint64_t *hist = calloc(HIST_N, sizeof *hist);
  if (!hist) return 1;
  for (uint32_t t = 0; t < opt.threads; t++) {
    struct worker *w = &ws[t];
    double win = (double)(w->t_measure_end - w->t_measure_start) / 1e9;
    if (win > window) window = win;
    if (win > 0) rate += (double)w->completed / win;
    completed += w->completed;
    completed_all += w->completed_all;
    bytes += w->bytes;
    connected += w->connected;
    dropped += w->dropped;
    served += w->served;
    if (w->t_all_served) {
      double ms = (double)(w->t_all_served - w->t_start) / 1e6;
      if (ms > all_served_ms) all_served_ms = ms;
    } else {
      all_served = 0;
    }
    lat_sum += w->latency_sum_ns;
    lat_n += w->latency_n;
    if (w->latency_max_ns > lat_max) lat_max = w->latency_max_ns;
    for (int k = 0; k < HIST_N; k++) hist[k] += w->hist[k];
    e.refused += w->err.refused;
    e.reset += w->err.reset;
    e.timeout += w->err.timeout;
    e.addrnotavail += w->err.addrnotavail;
    e.emfile += w->err.emfile;
    e.mismatch += w->err.mismatch;
    e.eof += w->err.eof;
    e.other += w->err.other;
    if (w->err.last_errno) e.last_errno = w->err.last_errno;
  }
  double pct[5] = {50, 90, 99, 99.9, 100};
  double pv[5] = {0, 0, 0, 0, 0};
  if (lat_n > 0) {
    for (int p = 0; p < 5; p++) {
      uint64_t target = (uint64_t)((double)lat_n * pct[p] / 100.0 + 0.5);
      if (target < 1) target = 1;
      if (target > lat_n) target = lat_n;
      uint64_t acc = 0;
      for (int k = 0; k < HIST_N; k++) {
        acc += hist[k];
        if (acc >= target) {
          pv[p] = hist_value(k);
          break;
        }
      }
    }
  }
  double cpu_user = (double)(ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec) +
                    (double)(ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec) / 1e6;
  double cpu_sys = (double)(ru1.ru_stime.tv_sec - ru0.ru_stime.tv_sec) +
                   (double)(ru1.ru_stime.tv_usec - ru0.ru_stime.tv_usec) / 1e6;
  uint64_t errors_total = e.refused + e.reset + e.timeout + e.addrnotavail + e.emfile + e.mismatch + e.eof + e.other;

  printf("{\"mode\":\"%s\",\"port\":%d,\"threads\":%u,\"conns\":%u,\"size\":%u,\"src_addrs\":%u,\"linger0\":%s,"
         "\"duration_s\":%.4f,\"wall_s\":%.4f,\"completed\":%llu,\"completed_all\":%llu,\"rate\":%.1f,"
         "\"bytes\":%llu,\"connected\":%llu,\"dropped\":%llu,\"served\":%llu,\"all_served_ms\":%.1f,",
         mode_names[opt.mode], port, opt.threads, opt.conns, opt.size, opt.nsrc, opt.linger0 ? "true" : "false",
         window, (double)(wall1 - wall0) / 1e9, (unsigned long long)completed, (unsigned long long)completed_all,
         rate, (unsigned long long)bytes, (unsigned long long)connected, (unsigned long long)dropped,
         (unsigned long long)served, opt.mode == MODE_ECHO && all_served ? all_served_ms : -1.0);
  printf("\"latency_us\":{\"samples\":%llu,\"mean\":%.2f,\"p50\":%.2f,\"p90\":%.2f,\"p99\":%.2f,\"p999\":%.2f,"
         "\"max\":%.2f},",
         (unsigned long long)lat_n, lat_n ? (double)lat_sum / (double)lat_n / 1e3 : 0.0, pv[0] / 1e3, pv[1] / 1e3,
         pv[2] / 1e3, pv[3] / 1e3, (double)lat_max / 1e3);
  printf("\"errors\":{\"total\":%llu,\"refused\":%llu,\"reset\":%llu,\"timeout\":%llu,\"addrnotavail\":%llu,"
         "\"emfile\":%llu,\"mismatch\":%llu,\"eof\":%llu,\"other\":%llu,\"last_errno\":%d,\"last_error\":\"%s\"},",
         (unsigned long long)errors_total, (unsigned long long)e.refused, (unsigned long long)e.reset,
         (unsigned long long)e.timeout, (unsigned long long)e.addrnotavail, (unsigned long long)e.emfile,
         (unsigned long long)e.mismatch, (unsigned long long)e.eof, (unsigned long long)e.other, e.last_errno,
         e.last_errno ? strerror(e.last_errno) : "");
  printf("\"cpu\":{\"user_s\":%.3f,\"sys_s\":%.3f},\"interrupted\":%s}\n", cpu_user, cpu_sys,
         g_stop ? "true" : "false");
  fflush(stdout);
  return 0;
}
