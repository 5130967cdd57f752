/*
 * cserver: a minimal single-threaded epoll echo server, "the limit of this
 * machine" column of the acceptpool benchmarks. No per-connection user-space
 * state except a write-back buffer when the kernel refuses a whole echo.
 *
 * Listens on 127.0.0.1 (loopback only). Prints {"event":"listening","port":N}
 * and then answers lines on stdin:
 *   stats  -> {"event":"stats","rss":bytes,"cpuUser":us,"cpuSystem":us,"conns":n,"accepted":n}
 *   gc     -> {"event":"gc"}   (nothing to collect; for protocol parity)
 *   quit   -> exits (so does EOF on stdin, SIGTERM, SIGINT, or -T seconds)
 *
 * Build: cc -O2 -Wall -Wextra -o build/bench/cserver cserver.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
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

#define LISTEN_TAG UINT32_MAX
#define STDIN_TAG (UINT32_MAX - 1)
#define ACCEPT_BATCH 64
#define MAX_EVENTS 512

struct pending {
  char *buf;
  uint32_t len, off;
};

static volatile sig_atomic_t g_stop = 0;
static void on_signal(int sig) {
  (void)sig;
  g_stop = 1;
}

static int epfd, lfd, reserve_fd = -1;
static struct pending *pend;
static size_t npend;
static uint64_t conns, accepted, accept_errors;

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void close_conn(int fd) {
  if ((size_t)fd < npend && pend[fd].buf) {
    free(pend[fd].buf);
    pend[fd].buf = NULL;
  }
  close(fd);
  conns--;
}

static void print_stats(void) {
  long pages = 0, resident = 0;
  FILE *f = fopen("/proc/self/statm", "r");
  if (f) {
    if (fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
    fclose(f);
  }
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  printf("{\"event\":\"stats\",\"rss\":%lld,\"cpuUser\":%lld,\"cpuSystem\":%lld,\"conns\":%llu,\"accepted\":%llu,"
         "\"acceptErrors\":%llu}\n",
         (long long)resident * sysconf(_SC_PAGESIZE),
         (long long)ru.ru_utime.tv_sec * 1000000 + ru.ru_utime.tv_usec,
         (long long)ru.ru_stime.tv_sec * 1000000 + ru.ru_stime.tv_usec, (unsigned long long)conns,
         (unsigned long long)accepted, (unsigned long long)accept_errors);
  fflush(stdout);
}

static void do_accept(void) {
  for (int k = 0; k < ACCEPT_BATCH; k++) {
    int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
      accept_errors++;
      if ((errno == EMFILE || errno == ENFILE) && reserve_fd >= 0) {
        /* shed one waiting connection with the reserve descriptor, no spinning */
        close(reserve_fd);
        int s = accept(lfd, NULL, NULL);
        if (s >= 0) close(s);
        reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
      }
      return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct epoll_event ev;
    ev.events = EPOLLIN;
    ev.data.u32 = (uint32_t)fd;
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
      close(fd);
      continue;
    }
    conns++;
    accepted++;
  }
}

static void on_conn(int fd, uint32_t events) {
  struct pending *p = (size_t)fd < npend ? &pend[fd] : NULL;
  if (p && p->buf) {
    /* flush what the kernel refused earlier; reading stays off meanwhile */
    if (events & (EPOLLERR | EPOLLHUP)) {
      close_conn(fd);
      return;
    }
    ssize_t w = send(fd, p->buf + p->off, p->len - p->off, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK) close_conn(fd);
      return;
    }
    p->off += (uint32_t)w;
    if (p->off == p->len) {
      free(p->buf);
      p->buf = NULL;
      struct epoll_event ev;
      ev.events = EPOLLIN;
      ev.data.u32 = (uint32_t)fd;
      epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &ev);
    }
    return;
  }
  static char buf[65536];
  ssize_t r = recv(fd, buf, sizeof buf, 0);
  if (r == 0) {
    close_conn(fd);
    return;
  }
  if (r < 0) {
    if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) close_conn(fd);
    return;
  }
  ssize_t w = send(fd, buf, (size_t)r, MSG_NOSIGNAL);
  if (w < 0) {
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      close_conn(fd);
      return;
    }
    w = 0;
  }
  if (w < r && p) {
    p->len = (uint32_t)(r - w);
    p->off = 0;
    p->buf = malloc(p->len);
    if (!p->buf) {
      close_conn(fd);
      return;
    }
    memcpy(p->buf, buf + w, p->len);
    struct epoll_event ev;
    ev.events = EPOLLOUT;
    ev.data.u32 = (uint32_t)fd;
    epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &ev);
  }
}

int main(int argc, char **argv) {
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  int port = 0, backlog = 1024;
  double max_life_s = 1800;
  int ch;
  while ((ch = getopt(argc, argv, "p:b:T:")) != -1) {
    switch (ch) {
      case 'p': port = atoi(optarg); break;
      case 'b': backlog = atoi(optarg); break;
      case 'T': max_life_s = atof(optarg); break;
      default:
        fprintf(stderr, "usage: cserver [-p port] [-b backlog] [-T max_seconds]\n");
        return 2;
    }
  }
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    getrlimit(RLIMIT_NOFILE, &rl);
  }
  npend = rl.rlim_cur > 1000000 ? 1000000 : (size_t)rl.rlim_cur;
  pend = calloc(npend, sizeof *pend);

  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);

  lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in sin;
  memset(&sin, 0, sizeof sin);
  sin.sin_family = AF_INET;
  sin.sin_port = htons((uint16_t)port);
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(lfd, (struct sockaddr *)&sin, sizeof sin) < 0 || listen(lfd, backlog) < 0) {
    perror("cserver: listen");
    return 1;
  }
  socklen_t sl = sizeof sin;
  getsockname(lfd, (struct sockaddr *)&sin, &sl);
  reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

  epfd = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event ev;
  ev.events = EPOLLIN;
  ev.data.u32 = LISTEN_TAG;
  epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &ev);
  ev.events = EPOLLIN;
  ev.data.u32 = STDIN_TAG;
  int stdin_watched = epoll_ctl(epfd, EPOLL_CTL_ADD, STDIN_FILENO, &ev) == 0;

  printf("{\"event\":\"listening\",\"port\":%d,\"address\":\"127.0.0.1\",\"pid\":%d}\n", ntohs(sin.sin_port),
         (int)getpid());
  fflush(stdout);

  uint64_t deadline = now_ms() + (uint64_t)(max_life_s * 1000);
  struct epoll_event evs[MAX_EVENTS];
  char line[4096];
  size_t line_len = 0;
  while (!g_stop && now_ms() < deadline) {
    int n = epoll_wait(epfd, evs, MAX_EVENTS, 500);
    if (n < 0) {
      if (errno == EINTR) continue;
      perror("cserver: epoll_wait");
      break;
    }
    for (int k = 0; k < n; k++) {
      uint32_t tag = evs[k].data.u32;
      if (tag == LISTEN_TAG) {
        do_accept();
      } else if (tag == STDIN_TAG) {
        ssize_t r = read(STDIN_FILENO, line + line_len, sizeof line - 1 - line_len);
        if (r <= 0) {
          if (r < 0 && errno == EINTR) continue;
          g_stop = 1;
          break;
        }
        line_len += (size_t)r;
        char *nl;
        while ((nl = memchr(line, '\n', line_len)) != NULL) {
          *nl = 0;
          if (strncmp(line, "stats", 5) == 0) print_stats();
          else if (strncmp(line, "gc", 2) == 0) { printf("{\"event\":\"gc\"}\n"); fflush(stdout); }
          else if (strncmp(line, "quit", 4) == 0) g_stop = 1;
          size_t used = (size_t)(nl - line) + 1;
          memmove(line, nl + 1, line_len - used);
          line_len -= used;
        }
        if (line_len >= sizeof line - 1) line_len = 0;
      } else {
        on_conn((int)tag, evs[k].events);
      }
    }
  }
  (void)stdin_watched;
  return 0;
}
