// Fan-out subscribers in C for bench/scaleout (`run.py fanout --client c`).
//
// The Node raw client costs ~1 µs of CPU per delivery; on this 2-core machine that is as much
// as a web process spends, so the load generator took the core a second web process needed.
// This client holds every subscriber socket in one epoll loop and costs ~0.26 µs per delivery,
// about 73 % of it in the kernel (the receive side of loopback TCP).
//
//   subs < spec            (harness.js spawns it and writes the spec to stdin)
//
// Spec, one item per line:  N WARM MESSAGES TIMEOUT_MS CONCURRENCY
//                           ROOM (a JSON literal, as room.join takes it)
//                           N lines "HOST PORT URL_INDEX TOKEN"
// Stdout, one line each:    READY                  every socket upgraded, helloed and joined
//                           WARM                   every warm-up message ("w|..." content) arrived
//                           {json}                 the result, when every measured message
//                                                  arrived or TIMEOUT_MS after WARM passed
// Send times: content "m|<CLOCK_MONOTONIC ms>|...", as harness.js writes it in this mode.
// Every frame is checked: a text frame that is message.new must carry a parseable time; every
// close the harness did not ask for is counted. Bounded: exits on its own after the timeout.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { S_CONNECTING, S_UPGRADING, S_HELLO, S_JOINING, S_JOINED, S_CLOSED };

typedef struct {
  int fd, state, url;
  char host[64], token[1024];
  int port;
  char *buf;
  size_t len, cap;
} Conn;

static Conn *conns;
static int n_conns, n_joined, n_started, concurrency;
static long warm_expected, warm_got, expected, delivered, unparsed, unexpected_closes, reads;
static long *per_url;
static double *lat;
static double last_delivery;
static char room[256];
static int epfd;

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static double sys_s(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static double cpu_s(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static void die(const char *what) {
  printf("{\"error\": \"%s: %s\"}\n", what, strerror(errno));
  fflush(stdout);
  exit(1);
}

// Write all of buf (small frames on a fresh loopback socket: the send buffer always has room).
static void write_all(Conn *c, const void *buf, size_t n) {
  const char *p = buf;
  while (n) {
    ssize_t w = write(c->fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) die("write");
    p += w; n -= (size_t)w;
  }
}

// A client frame, masked with a zero key (valid: the server unmasks with whatever key is sent).
static void send_frame(Conn *c, int opcode, const char *payload, size_t n) {
  unsigned char head[14];
  size_t h = 0;
  head[h++] = (unsigned char)(0x80 | opcode);
  if (n < 126) head[h++] = (unsigned char)(0x80 | n);
  else { head[h++] = 0x80 | 126; head[h++] = (unsigned char)(n >> 8); head[h++] = (unsigned char)n; }
  memset(head + h, 0, 4); h += 4;
  char *frame = malloc(h + n);
  memcpy(frame, head, h);
  memcpy(frame + h, payload, n);
  write_all(c, frame, h + n);
  free(frame);
}

static void start_conn(Conn *c) {
  c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  if (c->fd < 0) die("socket");
  int one = 1;
  setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)c->port)};
  inet_pton(AF_INET, c->host, &a.sin_addr);
  if (connect(c->fd, (struct sockaddr *)&a, sizeof a) < 0 && errno != EINPROGRESS) die("connect");
  struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
  if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0) die("epoll_ctl");
  c->state = S_CONNECTING;
  n_started++;
}

static void on_connected(Conn *c) {
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
  epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
  char req[1400];
  int n = snprintf(req, sizeof req,
                   "GET /ws?token=%s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
                   c->token, c->host, c->port);
  write_all(c, req, (size_t)n);
  c->state = S_UPGRADING;
}

static int starts_with(const char *p, size_t n, const char *lit) {
  size_t k = strlen(lit);
  return n >= k && memcmp(p, lit, k) == 0;
}

// The send time after "m|" in the content of a message.new payload; -1 for warm-up, -2 if none.
static double send_time(const char *p, size_t n) {
  static const char key[] = "\"content\":\"";
  const char *at = memmem(p, n, key, sizeof key - 1);
  if (!at) return -2;
  const char *q = at + sizeof key - 1, *end = p + n;
  if (q >= end) return -2;
  if (*q == 'w') return -1;
  if (*q != 'm' || q + 2 >= end) return -2;
  q += 2;
  double v = 0, scale = 0;
  int digits = 0;
  for (; q < end; q++) {
    if (*q == '.') { scale = 1; continue; }
    if (*q < '0' || *q > '9') break;
    digits++;
    if (scale) { scale /= 10; v += (*q - '0') * scale; } else v = v * 10 + (*q - '0');
  }
  return digits ? v : -2;
}

static void on_text(Conn *c, const char *p, size_t n) {
  if (starts_with(p, n, "{\"type\":\"message.new\"")) {
    double ts = send_time(p, n);
    if (ts == -1) {
      if (++warm_got == warm_expected) { printf("WARM\n"); fflush(stdout); }
    } else if (ts < 0) {
      unparsed++;
    } else {
      double t = now_ms();
      if (delivered < expected) lat[delivered] = t - ts;
      delivered++;
      per_url[c->url]++;
      last_delivery = t;
    }
    return;
  }
  if (c->state == S_HELLO && starts_with(p, n, "{\"type\":\"hello\"")) {
    char req[400];
    int k = snprintf(req, sizeof req, "{\"type\":\"room.join\",\"id\":\"join\",\"room\":%s}", room);
    send_frame(c, 1, req, (size_t)k);
    c->state = S_JOINING;
  } else if (c->state == S_JOINING && memmem(p, n, "\"id\":\"join\"", 11)) {
    if (!starts_with(p, n, "{\"type\":\"ack\"")) {
      printf("{\"error\": \"room.join refused: %.*s\"}\n", (int)(n < 300 ? n : 300), p);
      fflush(stdout);
      exit(1);
    }
    c->state = S_JOINED;
    if (++n_joined == n_conns) { printf("READY\n"); fflush(stdout); }
    if (n_started < n_conns) start_conn(&conns[n_started]);
  }
}

// Parse every whole frame in c->buf; keep the rest.
static void frames(Conn *c) {
  size_t off = 0;
  const unsigned char *b = (const unsigned char *)c->buf;
  while (c->len - off >= 2) {
    size_t len = b[off + 1] & 0x7f, hdr = 2;
    if (len == 126) {
      if (c->len - off < 4) break;
      len = (size_t)b[off + 2] << 8 | b[off + 3]; hdr = 4;
    } else if (len == 127) {
      if (c->len - off < 10) break;
      len = 0;
      for (int i = 0; i < 8; i++) len = len << 8 | b[off + 2 + i];
      hdr = 10;
    }
    if (c->len - off < hdr + len) break;
    int op = b[off] & 0x0f;
    const char *payload = c->buf + off + hdr;
    if (op == 1) on_text(c, payload, len);
    else if (op == 9) send_frame(c, 10, payload, len);
    else if (op == 8) { unexpected_closes++; c->state = S_CLOSED; close(c->fd); c->len = 0; return; }
    off += hdr + len;
  }
  memmove(c->buf, c->buf + off, c->len - off);
  c->len -= off;
}

static void on_readable(Conn *c) {
  for (;;) {
    if (c->cap - c->len < 65536) {
      c->cap = c->cap ? c->cap * 2 : 131072;
      c->buf = realloc(c->buf, c->cap);
    }
    size_t room_left = c->cap - c->len;
    ssize_t r = read(c->fd, c->buf + c->len, room_left);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && errno == EAGAIN) return;
    if (r <= 0) { unexpected_closes++; c->state = S_CLOSED; close(c->fd); return; }
    c->len += (size_t)r;
    if (c->state == S_JOINED) reads++;
    if (c->state == S_UPGRADING) {
      char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
      if (!end) continue;
      if (!starts_with(c->buf, c->len, "HTTP/1.1 101")) {
        printf("{\"error\": \"upgrade refused: %.*s\"}\n", (int)(strcspn(c->buf, "\r")), c->buf);
        fflush(stdout);
        exit(1);
      }
      size_t used = (size_t)(end + 4 - c->buf);
      memmove(c->buf, c->buf + used, c->len - used);
      c->len -= used;
      c->state = S_HELLO;
    }
    frames(c);
    if (c->state == S_CLOSED) return;
    if ((size_t)r < room_left) return;  // drained (the next read would say EAGAIN)
  }
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int main(void) {
  long warm_per, messages, timeout_ms;
  if (scanf("%d %ld %ld %ld %d", &n_conns, &warm_per, &messages, &timeout_ms, &concurrency) != 5) die("spec");
  if (scanf("%255s", room) != 1) die("spec room");
  conns = calloc((size_t)n_conns, sizeof *conns);
  for (int i = 0; i < n_conns; i++)
    if (scanf("%63s %d %d %1023s", conns[i].host, &conns[i].port, &conns[i].url, conns[i].token) != 4) die("spec conn");
  int n_urls = 0;
  for (int i = 0; i < n_conns; i++) if (conns[i].url + 1 > n_urls) n_urls = conns[i].url + 1;
  per_url = calloc((size_t)n_urls, sizeof *per_url);
  warm_expected = (long)n_conns * warm_per;
  expected = (long)n_conns * messages;
  lat = malloc((size_t)(expected ? expected : 1) * sizeof *lat);
  epfd = epoll_create1(0);
  if (epfd < 0) die("epoll_create1");

  for (int i = 0; i < n_conns && i < concurrency; i++) start_conn(&conns[i]);
  struct epoll_event evs[256];
  double setup_deadline = now_ms() + 120000, deadline = 0, cpu0 = 0, sys0 = 0;
  long reads0 = 0;
  int warm_seen = 0;
  while (1) {
    double t = now_ms();
    if (!warm_seen && warm_got >= warm_expected && n_joined == n_conns) {
      warm_seen = 1; cpu0 = cpu_s(); sys0 = sys_s(); reads0 = reads; deadline = t + (double)timeout_ms;
    }
    if (warm_seen && (delivered >= expected || t > deadline)) break;
    if (!warm_seen && t > setup_deadline) {
      printf("{\"error\": \"setup: %d of %d joined, %ld of %ld warm-up deliveries\"}\n", n_joined, n_conns,
             warm_got, warm_expected);
      return 1;
    }
    int k = epoll_wait(epfd, evs, 256, 100);
    if (k < 0 && errno != EINTR) die("epoll_wait");
    for (int i = 0; i < k; i++) {
      Conn *c = evs[i].data.ptr;
      if (c->state == S_CLOSED) continue;
      if (c->state == S_CONNECTING) {
        int err = 0;
        socklen_t el = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
        if (err) { errno = err; die("connect"); }
        on_connected(c);
        continue;
      }
      if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) on_readable(c);
    }
  }
  double cpu = cpu_s() - cpu0, sys = sys_s() - sys0;
  long n = delivered < expected ? delivered : expected;
  qsort(lat, (size_t)n, sizeof *lat, cmp_double);
#define Q(p) (n ? lat[(long)((p) * n) < n ? (long)((p) * n) : n - 1] : 0)
  printf("{\"deliveries\": %ld, \"expected\": %ld, \"last_delivery_ms\": %.3f, \"cpu_s\": %.4f, \"sys_s\": %.4f, \"reads\": %ld, "
         "\"unparsed\": %ld, \"unexpected_closes\": %ld, \"latency_ms\": {\"p50\": %.2f, \"p90\": %.2f, "
         "\"p99\": %.2f, \"max\": %.2f}, \"deliveries_per_url\": [",
         delivered, expected, last_delivery, cpu, sys, reads - reads0, unparsed, unexpected_closes,
         Q(0.5), Q(0.9), Q(0.99), n ? lat[n - 1] : 0.0);
  for (int i = 0; i < n_urls; i++) printf("%s%ld", i ? ", " : "", per_url[i]);
  printf("]}\n");
  fflush(stdout);
  return 0;
}
