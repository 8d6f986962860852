// turnbench: the load client, echo peer and allocation holder of `npm run bench -- turn`.
//
//   turnbench peer HOST PORT
//       the echoing peer: every datagram goes back to where it came from (recvmmsg/sendmmsg)
//   turnbench load SERVER PORT PEERHOST PEERPORT SECONDS ALLOCS WINDOW PAYLOAD USER PASS
//       ALLOCS allocations (one UDP socket each), each with a channel bound to the peer, keep
//       WINDOW ChannelData messages of PAYLOAD bytes in flight for SECONDS; prints JSON with
//       round trips per second and relayed Mbit/s
//   turnbench load ... USER PASS COUNT
//       the same with a fixed number of messages: sends COUNT (plus any refills after a loss) and
//       stops at COUNT round trips or SECONDS (bench/instructions.ts)
//   turnbench hold SERVER PORT COUNT USER PASS [SOURCE]
//       makes COUNT allocations, prints {"allocated":N} and holds them until stdin closes;
//       from SOURCE (another loopback address: another set of ephemeral ports) when given
//
// Written in C so the client is never the bottleneck: long-term credentials (MD5 key, HMAC-SHA1
// MESSAGE-INTEGRITY via libcrypto), then the data phase with epoll and recvmmsg/sendmmsg. The
// client's bursts, and the peer's echoes to one source, leave as UDP_SEGMENT (GSO) messages: the
// generator's own kernel path runs once per burst, so more of the two cores is left to the server
// under test (which still receives one datagram at a time: its sockets do not ask for GRO).
// TURNBENCH_GSO=0 sends one message per datagram.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64
#define MAXALLOC 20000
#define CHANNEL 0x4000

/** Whether to send bursts as GSO messages (TURNBENCH_GSO=0: never; off after the kernel refuses one). */
static int gso_on = -1;

static int gso_wanted(void) {
  if (gso_on < 0) gso_on = getenv("TURNBENCH_GSO") == NULL || atoi(getenv("TURNBENCH_GSO")) != 0;
  return gso_on;
}

static void set_segment(struct msghdr *h, char *ctl, size_t ctllen, int size) {
  h->msg_control = ctl;
  h->msg_controllen = ctllen;
  struct cmsghdr *cm = CMSG_FIRSTHDR(h);
  cm->cmsg_level = SOL_UDP;
  cm->cmsg_type = UDP_SEGMENT;
  cm->cmsg_len = CMSG_LEN(sizeof(uint16_t));
  uint16_t v = (uint16_t)size;
  memcpy(CMSG_DATA(cm), &v, sizeof v);
}

/** k copies of `frame` on a connected socket: one GSO message, else one sendmmsg of k. */
static int send_burst(int fd, struct mmsghdr *tx, const uint8_t *frame, int len, int k, int flags) {
  if (k > 1 && gso_wanted()) {
    struct iovec iov[64];
    for (int i = 0; i < k; i++) { iov[i].iov_base = (void *)frame; iov[i].iov_len = len; }
    char ctl[CMSG_SPACE(sizeof(uint16_t))];
    struct msghdr h = { .msg_iov = iov, .msg_iovlen = k };
    set_segment(&h, ctl, sizeof ctl, len);
    if (sendmsg(fd, &h, flags) >= 0) return k;
    if (errno != EIO && errno != EINVAL && errno != ENOPROTOOPT) return -1;
    gso_on = 0;
  }
  return sendmmsg(fd, tx, k, flags);
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

// ---- STUN message building and parsing (just what a TURN client needs)

typedef struct {
  uint8_t b[1500];
  int len;
} msg_t;

static uint64_t tid_counter = 1;

static void msg_start(msg_t *m, uint16_t type) {
  m->b[0] = type >> 8; m->b[1] = type & 0xff;
  m->b[2] = 0; m->b[3] = 0;
  m->b[4] = 0x21; m->b[5] = 0x12; m->b[6] = 0xa4; m->b[7] = 0x42;
  uint64_t t = tid_counter++;
  memcpy(m->b + 8, &t, 8);
  uint32_t r = (uint32_t)getpid();
  memcpy(m->b + 16, &r, 4);
  m->len = 20;
}

static void msg_setlen(msg_t *m, int body) { m->b[2] = body >> 8; m->b[3] = body & 0xff; }

static void attr(msg_t *m, uint16_t type, const void *v, int n) {
  uint8_t *p = m->b + m->len;
  p[0] = type >> 8; p[1] = type & 0xff; p[2] = n >> 8; p[3] = n & 0xff;
  memcpy(p + 4, v, n);
  int padded = (n + 3) & ~3;
  memset(p + 4 + n, 0, padded - n);
  m->len += 4 + padded;
  msg_setlen(m, m->len - 20);
}

static void attr_u32(msg_t *m, uint16_t type, uint32_t v) {
  uint32_t be = htonl(v);
  attr(m, type, &be, 4);
}

static void attr_xor_peer(msg_t *m, struct sockaddr_in *peer) {
  uint8_t v[8];
  v[0] = 0; v[1] = 1;
  uint16_t port = ntohs(peer->sin_port) ^ 0x2112;
  v[2] = port >> 8; v[3] = port & 0xff;
  uint32_t ip = ntohl(peer->sin_addr.s_addr) ^ 0x2112a442;
  v[4] = ip >> 24; v[5] = ip >> 16; v[6] = ip >> 8; v[7] = ip;
  attr(m, 0x0012, v, 8);
}

static void add_integrity(msg_t *m, const uint8_t key[16]) {
  msg_setlen(m, m->len - 20 + 24);
  unsigned int dl = 20;
  uint8_t digest[20];
  HMAC(EVP_sha1(), key, 16, m->b, m->len, digest, &dl);
  attr(m, 0x0008, digest, 20);
}

// Finds attribute `type`; returns its length and sets *val, or -1.
static int find_attr(const uint8_t *b, int len, uint16_t type, const uint8_t **val) {
  int off = 20;
  while (off + 4 <= len) {
    uint16_t t = (b[off] << 8) | b[off + 1];
    int n = (b[off + 2] << 8) | b[off + 3];
    if (off + 4 + n > len) return -1;
    if (t == type) { *val = b + off + 4; return n; }
    off += 4 + ((n + 3) & ~3);
  }
  return -1;
}

typedef struct {
  const char *user, *pass;
  char realm[256], nonce[256];
  uint8_t key[16];
  int have_key;
} creds_t;

static void add_creds(msg_t *m, creds_t *c) {
  attr(m, 0x0006, c->user, strlen(c->user));
  attr(m, 0x0014, c->realm, strlen(c->realm));
  attr(m, 0x0015, c->nonce, strlen(c->nonce));
  add_integrity(m, c->key);
}

static void learn_nonce(creds_t *c, const uint8_t *b, int len) {
  const uint8_t *v;
  int n = find_attr(b, len, 0x0014, &v);
  if (n > 0 && n < 255) { memcpy(c->realm, v, n); c->realm[n] = 0; }
  n = find_attr(b, len, 0x0015, &v);
  if (n > 0 && n < 255) { memcpy(c->nonce, v, n); c->nonce[n] = 0; }
  char buf[1024];
  int bl = snprintf(buf, sizeof buf, "%s:%s:%s", c->user, c->realm, c->pass);
  unsigned int ml = 16;
  EVP_Digest(buf, bl, c->key, &ml, EVP_md5(), NULL);
  c->have_key = 1;
}

static char last_reason[256];

static int error_code(const uint8_t *b, int len) {
  const uint8_t *v;
  int n = find_attr(b, len, 0x0009, &v);
  if (n < 4) return 0;
  int r = n - 4 < 255 ? n - 4 : 255;
  memcpy(last_reason, v + 4, r);
  last_reason[r] = 0;
  return (v[2] & 7) * 100 + v[3];
}

// One request/response on a connected socket, retransmitting; returns the response length or -1.
static int transact(int fd, msg_t *req, uint8_t *resp, int cap) {
  for (int attempt = 0; attempt < 6; attempt++) {
    send(fd, req->b, req->len, 0);
    struct pollfd p = { .fd = fd, .events = POLLIN };
    double until = now_s() + 0.25 * (1 << (attempt < 3 ? attempt : 3));
    while (now_s() < until) {
      int ms = (int)((until - now_s()) * 1000) + 1;
      if (poll(&p, 1, ms) <= 0) continue;
      int n = recv(fd, resp, cap, MSG_DONTWAIT);
      if (n >= 20 && memcmp(resp + 8, req->b + 8, 12) == 0) return n;
    }
  }
  return -1;
}

// A request with credentials: learns REALM/NONCE from a 401/438 and retries. Returns the
// response class (2 success, 3 error) or -1; *code gets the error code.
static int request(int fd, creds_t *c, uint16_t method, void (*fill)(msg_t *, void *), void *arg, int *code) {
  uint8_t resp[1500];
  for (int round = 0; round < 3; round++) {
    msg_t m;
    msg_start(&m, method);
    fill(&m, arg);
    if (c->have_key) add_creds(&m, c);
    int n = transact(fd, &m, resp, sizeof resp);
    if (n < 0) return -1;
    uint16_t type = (resp[0] << 8) | resp[1];
    if ((type & 0x0110) == 0x0100) return 2;
    *code = error_code(resp, n);
    if (*code == 401 || *code == 438) { learn_nonce(c, resp, n); continue; }
    return 3;
  }
  return 3;
}

static void fill_allocate(msg_t *m, void *arg) {
  (void)arg;
  attr_u32(m, 0x0019, 17u << 24); // REQUESTED-TRANSPORT UDP
}

static void fill_channel_bind(msg_t *m, void *arg) {
  attr_u32(m, 0x000c, (uint32_t)CHANNEL << 16);
  attr_xor_peer(m, (struct sockaddr_in *)arg);
}

static int open_client(struct sockaddr_in *server) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  int sz = 1 << 20;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
  setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
  if (connect(fd, (struct sockaddr *)server, sizeof *server) != 0) { perror("connect"); exit(1); }
  return fd;
}

static void addr_of(struct sockaddr_in *a, const char *host, int port) {
  memset(a, 0, sizeof *a);
  a->sin_family = AF_INET;
  a->sin_port = htons(port);
  if (inet_pton(AF_INET, host, &a->sin_addr) != 1) { fprintf(stderr, "bad address %s\n", host); exit(2); }
}

static void raise_nofile(void) {
  struct rlimit r;
  if (getrlimit(RLIMIT_NOFILE, &r) == 0) { r.rlim_cur = r.rlim_max; setrlimit(RLIMIT_NOFILE, &r); }
}

// ---- load

static int run_load(const char *shost, int sport, const char *phost, int pport, double seconds, int nalloc,
                    int window, int payload, const char *user, const char *pass, uint64_t count) {
  struct sockaddr_in server, peer;
  addr_of(&server, shost, sport);
  addr_of(&peer, phost, pport);
  if (nalloc > 1024) nalloc = 1024;
  if (payload > 1400) payload = 1400;
  creds_t c = { .user = user, .pass = pass };
  static int fds[1024];
  static double last_rx[1024];
  for (int a = 0; a < nalloc; a++) {
    fds[a] = open_client(&server);
    int code = 0;
    if (request(fds[a], &c, 0x0003, fill_allocate, NULL, &code) != 2) { fprintf(stderr, "allocate failed: %d %s\n", code, last_reason); return 1; }
    if (request(fds[a], &c, 0x0009, fill_channel_bind, &peer, &code) != 2) { fprintf(stderr, "channel bind failed: %d %s\n", code, last_reason); return 1; }
  }
  int ep = epoll_create1(0);
  for (int a = 0; a < nalloc; a++) {
    struct epoll_event ev = { .events = EPOLLIN, .data.u32 = (uint32_t)a };
    epoll_ctl(ep, EPOLL_CTL_ADD, fds[a], &ev);
  }
  static uint8_t frame[4 + 1500];
  frame[0] = CHANNEL >> 8; frame[1] = CHANNEL & 0xff; frame[2] = payload >> 8; frame[3] = payload & 0xff;
  memset(frame + 4, 0x5a, payload);
  static uint8_t rxbuf[BATCH][1600];
  struct mmsghdr tx[BATCH], rx[BATCH];
  struct iovec txiov[BATCH], rxiov[BATCH];
  for (int i = 0; i < BATCH; i++) {
    txiov[i].iov_base = frame; txiov[i].iov_len = 4 + payload;
    memset(&tx[i], 0, sizeof tx[i]);
    tx[i].msg_hdr.msg_iov = &txiov[i]; tx[i].msg_hdr.msg_iovlen = 1;
    rxiov[i].iov_base = rxbuf[i]; rxiov[i].iov_len = sizeof rxbuf[i];
    memset(&rx[i], 0, sizeof rx[i]);
    rx[i].msg_hdr.msg_iov = &rxiov[i]; rx[i].msg_hdr.msg_iovlen = 1;
  }
  uint64_t sent = 0, received = 0, refilled = 0;
  double start = now_s(), end = start + seconds;
  for (int a = 0; a < nalloc; a++) {
    int prime = window;
    if (count && (uint64_t)prime > count - sent) prime = count - sent;
    for (int left = prime; left > 0;) {
      int k = left < BATCH ? left : BATCH;
      int w = send_burst(fds[a], tx, frame, 4 + payload, k, 0);
      if (w > 0) sent += w;
      left -= k;
    }
    last_rx[a] = start;
  }
  struct epoll_event evs[64];
  double next_check = start + 0.05;
  for (;;) {
    double t = now_s();
    if (t >= end || (count && received >= count)) break;
    int n = epoll_wait(ep, evs, 64, 10);
    for (int e = 0; e < n; e++) {
      int a = evs[e].data.u32;
      for (;;) {
        int r = recvmmsg(fds[a], rx, BATCH, MSG_DONTWAIT, NULL);
        if (r <= 0) break;
        int ok = 0;
        for (int i = 0; i < r; i++) if (rx[i].msg_len >= 4 && (rxbuf[i][0] & 0xc0) == 0x40) ok++;
        received += ok;
        last_rx[a] = t;
        int more = r;
        if (count && (uint64_t)more > count - (sent < count ? sent : count)) more = sent < count ? count - sent : 0;
        int w = more ? send_burst(fds[a], tx, frame, 4 + payload, more, MSG_DONTWAIT) : 0;
        if (w > 0) sent += w;
        if (r < BATCH) break;
      }
    }
    if (t >= next_check) {
      // An allocation silent for 200 ms (1 s when counting: the server may run under valgrind)
      // lost its window to drops under overload: refill it.
      for (int a = 0; a < nalloc; a++) {
        if (t - last_rx[a] > (count ? 1.0 : 0.2)) {
          for (int left = window; left > 0;) {
            int k = left < BATCH ? left : BATCH;
            int w = send_burst(fds[a], tx, frame, 4 + payload, k, MSG_DONTWAIT);
            if (w > 0) { sent += w; refilled += w; }
            left -= k;
          }
          last_rx[a] = t;
        }
      }
      next_check = t + 0.05;
    }
  }
  double elapsed = now_s() - start;
  double rtps = received / elapsed;
  // Relayed payload, both directions (client → peer and peer → client).
  double mbps = rtps * payload * 8 * 2 / 1e6;
  printf("{\"sent\":%llu,\"received\":%llu,\"refilled\":%llu,\"seconds\":%.3f,\"rtps\":%.0f,\"mbps\":%.1f}\n",
         (unsigned long long)sent, (unsigned long long)received, (unsigned long long)refilled, elapsed, rtps, mbps);
  return 0;
}

// ---- hold

static int run_hold(const char *shost, int sport, int count, const char *user, const char *pass, const char *source) {
  raise_nofile();
  struct sockaddr_in server, local;
  addr_of(&server, shost, sport);
  if (source) addr_of(&local, source, 0);
  if (count > MAXALLOC) count = MAXALLOC;
  creds_t c = { .user = user, .pass = pass };
  static int fds[MAXALLOC];
  int ok = 0;
  for (int a = 0; a < count; a++) {
    fds[a] = socket(AF_INET, SOCK_DGRAM, 0);
    if (fds[a] < 0) { perror("socket"); break; }
    if (source && bind(fds[a], (struct sockaddr *)&local, sizeof local) != 0) { perror("bind"); break; }
    if (connect(fds[a], (struct sockaddr *)&server, sizeof server) != 0) { perror("connect"); break; }
    int code = 0;
    if (request(fds[a], &c, 0x0003, fill_allocate, NULL, &code) == 2) ok++;
    else { fprintf(stderr, "allocate %d failed: %d %s\n", a, code, last_reason); break; }
  }
  printf("{\"allocated\":%d}\n", ok);
  fflush(stdout);
  char b[64];
  while (read(0, b, sizeof b) > 0) { /* hold until stdin closes */ }
  return 0;
}

// ---- peer

static int run_peer(const char *host, int port) {
  struct sockaddr_in addr;
  addr_of(&addr, host, port);
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  int sz = 4 << 20;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
  setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
  if (bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0) { perror("bind"); return 1; }
  static uint8_t buf[BATCH][1600];
  struct mmsghdr msgs[BATCH];
  struct iovec iov[BATCH];
  struct sockaddr_in from[BATCH];
  struct mmsghdr out[BATCH];
  struct iovec oiov[BATCH];
  static char ctl[BATCH][CMSG_SPACE(sizeof(uint16_t))];
  fprintf(stderr, "ready\n");
  for (;;) {
    for (int i = 0; i < BATCH; i++) {
      iov[i].iov_base = buf[i]; iov[i].iov_len = sizeof buf[i];
      memset(&msgs[i], 0, sizeof msgs[i]);
      msgs[i].msg_hdr.msg_iov = &iov[i]; msgs[i].msg_hdr.msg_iovlen = 1;
      msgs[i].msg_hdr.msg_name = &from[i]; msgs[i].msg_hdr.msg_namelen = sizeof from[i];
    }
    int r = recvmmsg(fd, msgs, BATCH, MSG_WAITFORONE, NULL);
    if (r <= 0) continue;
    for (int i = 0; i < r; i++) iov[i].iov_len = msgs[i].msg_len;
    if (!gso_wanted()) {
      sendmmsg(fd, msgs, r, 0);
      continue;
    }
    // Echoes to one source in a row, of one size (the last may be shorter), leave as one GSO message.
    int order[BATCH];
    for (int i = 0; i < r; i++) order[i] = i;
    for (int i = 1; i < r; i++) {
      int v = order[i], j = i - 1;
      while (j >= 0 && memcmp(&from[order[j]], &from[v], sizeof from[v]) > 0) { order[j + 1] = order[j]; j--; }
      order[j + 1] = v;
    }
    int nout = 0, seg = 0, closed = 0;
    for (int q = 0; q < r; q++) {
      int i = order[q];
      int len = (int)iov[i].iov_len;
      struct msghdr *cur = nout > 0 ? &out[nout - 1].msg_hdr : NULL;
      if (cur && memcmp(cur->msg_name, &from[i], sizeof from[i]) == 0 && !closed && len <= seg && cur->msg_iovlen < 64) {
        if (len < seg) closed = 1;
      } else {
        cur = &out[nout].msg_hdr;
        memset(&out[nout], 0, sizeof out[nout]);
        cur->msg_name = &from[i];
        cur->msg_namelen = sizeof from[i];
        cur->msg_iov = &oiov[q];
        nout++;
        seg = len;
        closed = 0;
      }
      oiov[q] = iov[i];
      cur->msg_iovlen++;
      if (cur->msg_iovlen == 2) set_segment(cur, ctl[nout - 1], sizeof ctl[nout - 1], seg);
    }
    if (sendmmsg(fd, out, nout, 0) < 0 && (errno == EIO || errno == EINVAL || errno == ENOPROTOOPT)) {
      gso_on = 0;  // the kernel refuses GSO here: one message per datagram from now on
      sendmmsg(fd, msgs, r, 0);
    }
  }
}

int main(int argc, char **argv) {
  if (argc >= 4 && strcmp(argv[1], "peer") == 0) return run_peer(argv[2], atoi(argv[3]));
  if (argc >= 12 && strcmp(argv[1], "load") == 0)
    return run_load(argv[2], atoi(argv[3]), argv[4], atoi(argv[5]), atof(argv[6]), atoi(argv[7]), atoi(argv[8]), atoi(argv[9]), argv[10], argv[11],
                    argc >= 13 ? strtoull(argv[12], NULL, 10) : 0);
  if (argc >= 7 && strcmp(argv[1], "hold") == 0) return run_hold(argv[2], atoi(argv[3]), atoi(argv[4]), argv[5], argv[6], argc >= 8 ? argv[7] : NULL);
  fprintf(stderr,
          "usage: turnbench peer HOST PORT\n"
          "       turnbench load SERVER PORT PEERHOST PEERPORT SECONDS ALLOCS WINDOW PAYLOAD USER PASS [COUNT]\n"
          "       turnbench hold SERVER PORT COUNT USER PASS [SOURCE]\n");
  return 2;
}
