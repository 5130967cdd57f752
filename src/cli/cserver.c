/*
 * The "C epoll" server of `acceptpool bench --servers c`: a minimal
 * single-threaded epoll server, the limit of this machine next to which
 * acceptpool and node:net are measured. The bench compiles it with the
 * system's C compiler (cc -O2) on first use (src/cli/cserver.ts).
 *
 *   cserver <echo|discard|close> <backlog> <max-lifetime-seconds>
 *
 * It listens on 127.0.0.1 (any free port) and speaks the CLI's control
 * protocol (src/cli/children.ts) on stdin and stdout: it announces
 *   {"type":"listening","port":N,"engine":"epoll (C)","pid":N}
 * and answers each request line "<type> <id>":
 *   stats -> {"type":"stats","id":N,"rss":B,"cpuUs":N,"conns":N,"accepted":N,"bytesIn":N,"bytesOut":N}
 *   gc    -> {"type":"gc","id":N,"exposed":false}   (nothing to collect)
 *   other -> {"type":"error","id":N,"message":"unknown request"}
 * It exits when stdin ends, on SIGTERM or SIGINT, when its parent dies, and
 * after the maximum lifetime.
 *
 * The modes are those of the CLI's other servers:
 *   echo     every byte comes back; what the kernel does not take at once
 *            waits in a buffer of that connection, and reading stops until
 *            it is out (the only allocation, and only then)
 *   discard  bytes are read and dropped
 *   close    each connection is ended as soon as it is accepted: FIN, then
 *            what the peer still sends is read and dropped until its FIN
 *            (closing with unread input would reset the peer instead)
 * Level-triggered, one read (and one write) per readiness, accepts in
 * batches: the plainest loop that keeps every connection served.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
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

enum { kAcceptBatch = 64, kMaxEvents = 512, kReadSize = 65536, kMaxLine = 256 };

typedef enum { kEcho, kDiscard, kClose } Mode;

typedef struct {
  char *pending; /* echo bytes the kernel has not taken yet */
  uint32_t len;
  uint32_t off;
} Conn;

static volatile sig_atomic_t stop_requested = 0;
static Mode mode;
static int epfd = -1;
static int listen_fd = -1;
static int reserve_fd = -1;
static Conn *conns;
static size_t conn_slots;
static unsigned long long open_conns, accepted, bytes_in, bytes_out;

static void on_signal(int sig) {
  (void)sig;
  stop_requested = 1;
}

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* One protocol line; a parent that can no longer be written to is gone. */
static void say(const char *format, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *format, ...) {
  va_list ap;
  va_start(ap, format);
  vprintf(format, ap);
  va_end(ap);
  if (fflush(stdout) != 0) stop_requested = 1;
}

static void watch(int fd, uint32_t events, int op) {
  struct epoll_event ev;
  memset(&ev, 0, sizeof ev);
  ev.events = events;
  ev.data.fd = fd;
  epoll_ctl(epfd, op, fd, &ev);
}

static void close_conn(int fd) {
  Conn *c = &conns[fd];
  free(c->pending);
  c->pending = NULL;
  close(fd); /* also leaves the epoll set */
  open_conns--;
}

static void print_stats(long long id) {
  long pages = 0, resident = 0;
  FILE *f = fopen("/proc/self/statm", "r");
  if (f != NULL) {
    if (fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
    fclose(f);
  }
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  long long cpu_us = (long long)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000 + ru.ru_utime.tv_usec + ru.ru_stime.tv_usec;
  say("{\"type\":\"stats\",\"id\":%lld,\"rss\":%lld,\"cpuUs\":%lld,\"conns\":%llu,\"accepted\":%llu,"
      "\"bytesIn\":%llu,\"bytesOut\":%llu}\n",
      id, (long long)resident * sysconf(_SC_PAGESIZE), cpu_us, open_conns, accepted, bytes_in, bytes_out);
}

static void on_request(const char *line) {
  char type[32];
  long long id;
  if (sscanf(line, "%31s %lld", type, &id) != 2) return;
  if (strcmp(type, "stats") == 0) {
    print_stats(id);
  } else if (strcmp(type, "gc") == 0) {
    say("{\"type\":\"gc\",\"id\":%lld,\"exposed\":false}\n", id);
  } else {
    say("{\"type\":\"error\",\"id\":%lld,\"message\":\"unknown request\"}\n", id);
  }
}

static void on_stdin(void) {
  static char line[kMaxLine];
  static size_t used = 0;
  ssize_t r = read(STDIN_FILENO, line + used, sizeof line - 1 - used);
  if (r <= 0) {
    if (r < 0 && errno == EINTR) return;
    stop_requested = 1; /* the parent stopped us, or is gone */
    return;
  }
  used += (size_t)r;
  char *nl;
  while ((nl = memchr(line, '\n', used)) != NULL) {
    *nl = '\0';
    on_request(line);
    size_t taken = (size_t)(nl - line) + 1;
    memmove(line, nl + 1, used - taken);
    used -= taken;
  }
  if (used == sizeof line - 1) used = 0; /* no request is this long */
}

static void on_accept(void) {
  for (int k = 0; k < kAcceptBatch; k++) {
    int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if ((errno == EMFILE || errno == ENFILE) && reserve_fd >= 0) {
        /* Out of descriptors: shed one waiting connection through the
           reserve descriptor instead of spinning on a listener that stays
           readable. */
        close(reserve_fd);
        int shed = accept(listen_fd, NULL, NULL);
        if (shed >= 0) close(shed);
        reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
      }
      return;
    }
    if ((size_t)fd >= conn_slots) {
      close(fd);
      continue;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (mode == kClose) shutdown(fd, SHUT_WR);
    watch(fd, EPOLLIN, EPOLL_CTL_ADD);
    open_conns++;
    accepted++;
  }
}

/* Echo: the kernel took only part; keep the rest and wait until it can take more. */
static void keep_pending(int fd, const char *data, size_t len) {
  Conn *c = &conns[fd];
  c->pending = malloc(len);
  if (c->pending == NULL) {
    close_conn(fd);
    return;
  }
  memcpy(c->pending, data, len);
  c->len = (uint32_t)len;
  c->off = 0;
  watch(fd, EPOLLOUT, EPOLL_CTL_MOD);
}

static void on_writable(int fd) {
  Conn *c = &conns[fd];
  ssize_t w = send(fd, c->pending + c->off, c->len - c->off, MSG_NOSIGNAL);
  if (w < 0) {
    if (errno != EAGAIN && errno != EINTR) close_conn(fd);
    return;
  }
  bytes_out += (unsigned long long)w;
  c->off += (uint32_t)w;
  if (c->off < c->len) return;
  free(c->pending);
  c->pending = NULL;
  watch(fd, EPOLLIN, EPOLL_CTL_MOD);
}

static void on_readable(int fd) {
  static char buf[kReadSize];
  ssize_t r = recv(fd, buf, sizeof buf, 0);
  if (r == 0) {
    close_conn(fd);
    return;
  }
  if (r < 0) {
    if (errno != EAGAIN && errno != EINTR) close_conn(fd);
    return;
  }
  bytes_in += (unsigned long long)r;
  if (mode != kEcho) return;
  ssize_t w = send(fd, buf, (size_t)r, MSG_NOSIGNAL);
  if (w < 0) {
    if (errno != EAGAIN && errno != EINTR) {
      close_conn(fd);
      return;
    }
    w = 0;
  }
  bytes_out += (unsigned long long)w;
  if (w < r) keep_pending(fd, buf + w, (size_t)(r - w));
}

static int parse_mode(const char *s, Mode *out) {
  if (strcmp(s, "echo") == 0) *out = kEcho;
  else if (strcmp(s, "discard") == 0) *out = kDiscard;
  else if (strcmp(s, "close") == 0) *out = kClose;
  else return 0;
  return 1;
}

int main(int argc, char **argv) {
  char *end = NULL;
  long backlog = argc == 4 ? strtol(argv[2], &end, 10) : 0;
  int backlog_ok = end != NULL && *end == '\0' && backlog >= 1 && backlog <= 65535;
  double lifetime_s = argc == 4 ? strtod(argv[3], &end) : 0;
  int lifetime_ok = backlog_ok && *end == '\0' && lifetime_s > 0;
  if (argc != 4 || !parse_mode(argv[1], &mode) || !backlog_ok || !lifetime_ok) {
    fprintf(stderr, "usage: cserver <echo|discard|close> <backlog 1..65535> <max-lifetime-seconds>\n");
    return 2;
  }
  prctl(PR_SET_PDEATHSIG, SIGTERM);

  /* As Node does at startup: the soft descriptor limit up to the hard one. */
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    getrlimit(RLIMIT_NOFILE, &rl);
  }
  /* One slot per possible descriptor: calloc'd pages stay untouched, and
     so out of RSS, until a connection with that descriptor arrives. */
  conn_slots = rl.rlim_cur > (1u << 22) ? (1u << 22) : (size_t)rl.rlim_cur;
  conns = calloc(conn_slots, sizeof *conns);
  if (conns == NULL) {
    perror("cserver: calloc");
    return 1;
  }

  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);

  listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in sin;
  memset(&sin, 0, sizeof sin);
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t sin_len = sizeof sin;
  if (listen_fd < 0 || bind(listen_fd, (struct sockaddr *)&sin, sizeof sin) < 0 || listen(listen_fd, (int)backlog) < 0 ||
      getsockname(listen_fd, (struct sockaddr *)&sin, &sin_len) < 0) {
    perror("cserver: listen");
    return 1;
  }
  reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  epfd = epoll_create1(EPOLL_CLOEXEC);
  watch(listen_fd, EPOLLIN, EPOLL_CTL_ADD);
  struct epoll_event ev;
  memset(&ev, 0, sizeof ev);
  ev.events = EPOLLIN;
  ev.data.fd = STDIN_FILENO;
  if (epfd < 0 || epoll_ctl(epfd, EPOLL_CTL_ADD, STDIN_FILENO, &ev) < 0) {
    fprintf(stderr, "cserver: stdin must be a pipe from the parent (%s)\n", strerror(errno));
    return 2;
  }
  say("{\"type\":\"listening\",\"port\":%d,\"engine\":\"epoll (C)\",\"pid\":%d}\n", ntohs(sin.sin_port), (int)getpid());

  uint64_t deadline = now_ms() + (uint64_t)(lifetime_s * 1000);
  struct epoll_event events[kMaxEvents];
  while (!stop_requested) {
    if (now_ms() >= deadline) {
      fprintf(stderr, "cserver: maximum lifetime reached\n");
      return 3;
    }
    int n = epoll_wait(epfd, events, kMaxEvents, 1000);
    if (n < 0) {
      if (errno == EINTR) continue;
      perror("cserver: epoll_wait");
      return 1;
    }
    for (int k = 0; k < n && !stop_requested; k++) {
      int fd = events[k].data.fd;
      if (fd == listen_fd) {
        on_accept();
      } else if (fd == STDIN_FILENO) {
        on_stdin();
      } else if (conns[fd].pending != NULL) {
        on_writable(fd);
      } else {
        on_readable(fd);
      }
    }
  }
  return 0;
}
