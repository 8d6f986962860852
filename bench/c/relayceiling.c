// relayceiling: the bare C TURN relay of `npm run bench -- turn`, the machine's ceiling for relaying.
//
//   relayceiling HOST PORT [PROCESSES]
//
// Speaks just enough TURN for bench/c/turnbench.c's client: Binding, Allocate, Refresh,
// CreatePermission and ChannelBind get fixed success responses (no authentication, no
// MESSAGE-INTEGRITY, no lifetimes, no quotas, no peer policy); each client 5-tuple gets one relay
// socket, connected to its channel's peer at ChannelBind. ChannelData payloads (RFC 8656 §12.4)
// go out of the relay socket to the peer; the peer's datagrams come back as ChannelData. All I/O
// is recvmmsg/sendmmsg in batches of 64 on epoll. PROCESSES > 1 forks that many copies sharing
// the port with SO_REUSEPORT: the kernel keeps each client 5-tuple on one copy, which owns its
// relay socket, so the copies share nothing.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define BATCH 64
#define MAXALLOC 16384 // a power of two: the 5-tuple table is open-addressed
#define LISTEN_TAG 0xffffffffu

typedef struct {
  int used;
  struct sockaddr_in client;
  int relay_fd;
  uint16_t channel; // 0 until ChannelBind
} alloc_t;

static alloc_t allocs[MAXALLOC];
static int nallocs;
static int listen_fd, ep;
static struct sockaddr_in relay_host;

static unsigned slot_of(const struct sockaddr_in *a) {
  uint32_t h = a->sin_addr.s_addr * 2654435761u ^ a->sin_port * 40503u;
  return h & (MAXALLOC - 1);
}

static alloc_t *find(const struct sockaddr_in *a, int create) {
  for (unsigned i = slot_of(a), n = 0; n < MAXALLOC; i = (i + 1) & (MAXALLOC - 1), n++) {
    alloc_t *s = &allocs[i];
    if (s->used && s->client.sin_addr.s_addr == a->sin_addr.s_addr && s->client.sin_port == a->sin_port) return s;
    if (!s->used) {
      if (!create || nallocs >= MAXALLOC / 2) return NULL;
      int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
      if (fd < 0) return NULL;
      struct sockaddr_in r = relay_host;
      r.sin_port = 0;
      int sz = 1 << 20;
      setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
      setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
      if (bind(fd, (struct sockaddr *)&r, sizeof r) != 0) { close(fd); return NULL; }
      struct epoll_event ev = { .events = EPOLLIN, .data.u32 = i };
      epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
      s->used = 1; s->client = *a; s->relay_fd = fd; s->channel = 0;
      nallocs++;
      return s;
    }
  }
  return NULL;
}

// Appends an XOR-*-ADDRESS attribute (RFC 8489 §14.2) of `a` at p; returns its size.
static int put_xor_addr(uint8_t *p, uint16_t type, const struct sockaddr_in *a) {
  p[0] = type >> 8; p[1] = type & 0xff; p[2] = 0; p[3] = 8;
  p[4] = 0; p[5] = 1;
  uint16_t port = ntohs(a->sin_port) ^ 0x2112;
  p[6] = port >> 8; p[7] = port & 0xff;
  uint32_t ip = ntohl(a->sin_addr.s_addr) ^ 0x2112a442;
  p[8] = ip >> 24; p[9] = ip >> 16; p[10] = ip >> 8; p[11] = ip;
  return 12;
}

// Reads the XOR-PEER-ADDRESS (0x0012) of a request, IPv4 only; returns 0 when found.
static int peer_of(const uint8_t *b, int len, struct sockaddr_in *peer) {
  for (int off = 20; off + 4 <= len;) {
    int t = (b[off] << 8) | b[off + 1], n = (b[off + 2] << 8) | b[off + 3];
    if (off + 4 + n > len) return -1;
    if (t == 0x0012 && n == 8 && b[off + 5] == 1) {
      memset(peer, 0, sizeof *peer);
      peer->sin_family = AF_INET;
      peer->sin_port = htons(((b[off + 6] << 8) | b[off + 7]) ^ 0x2112);
      peer->sin_addr.s_addr = htonl((((uint32_t)b[off + 8] << 24) | (b[off + 9] << 16) | (b[off + 10] << 8) | b[off + 11]) ^ 0x2112a442);
      return 0;
    }
    off += 4 + ((n + 3) & ~3);
  }
  return -1;
}

static int channel_of(const uint8_t *b, int len) {
  for (int off = 20; off + 4 <= len;) {
    int t = (b[off] << 8) | b[off + 1], n = (b[off + 2] << 8) | b[off + 3];
    if (off + 4 + n > len) return -1;
    if (t == 0x000c && n == 4) return (b[off + 4] << 8) | b[off + 5];
    off += 4 + ((n + 3) & ~3);
  }
  return -1;
}

// Answers a STUN request in place (out gets the response); returns its length, or 0 for none.
static int answer(const uint8_t *b, int len, const struct sockaddr_in *from, uint8_t *out) {
  if (len < 20 || b[4] != 0x21 || b[5] != 0x12 || b[6] != 0xa4 || b[7] != 0x42) return 0;
  uint16_t type = (b[0] << 8) | b[1];
  if ((type & 0x0110) != 0) return 0; // requests only
  uint16_t method = type & 0x3eef;
  int n = 20;
  alloc_t *a = NULL;
  if (method != 0x0001) a = find(from, method == 0x0003);
  if (method == 0x0001) {
    n += put_xor_addr(out + n, 0x0020, from);
  } else if (method == 0x0003 && a) {
    struct sockaddr_in r;
    socklen_t rl = sizeof r;
    getsockname(a->relay_fd, (struct sockaddr *)&r, &rl);
    n += put_xor_addr(out + n, 0x0016, &r);
    n += put_xor_addr(out + n, 0x0020, from);
    static const uint8_t lifetime[8] = { 0x00, 0x0d, 0x00, 0x04, 0x00, 0x00, 0x02, 0x58 }; // 600 s
    memcpy(out + n, lifetime, 8);
    n += 8;
  } else if (method == 0x0009 && a) {
    struct sockaddr_in peer;
    int ch = channel_of(b, len);
    if (ch < 0x4000 || ch > 0x4fff || peer_of(b, len, &peer) != 0) return 0;
    connect(a->relay_fd, (struct sockaddr *)&peer, sizeof peer);
    a->channel = ch;
  } else if ((method == 0x0004 || method == 0x0008) && a) {
    // Refresh, CreatePermission: nothing to keep.
  } else {
    return 0;
  }
  uint16_t rtype = type | 0x0100;
  out[0] = rtype >> 8; out[1] = rtype & 0xff;
  out[2] = (n - 20) >> 8; out[3] = (n - 20) & 0xff;
  memcpy(out + 4, b + 4, 16);
  return n;
}

static uint8_t rxbuf[BATCH][4 + 1600];
static uint8_t txbuf[BATCH][1600];
static struct mmsghdr rx[BATCH], tx[BATCH];
static struct iovec rxiov[BATCH], txiov[BATCH];
static struct sockaddr_in from[BATCH];

// Datagrams on the TURN port: ChannelData out of the relay sockets, requests answered.
static void from_clients(void) {
  for (;;) {
    for (int i = 0; i < BATCH; i++) {
      rxiov[i].iov_base = rxbuf[i]; rxiov[i].iov_len = sizeof rxbuf[i];
      rx[i].msg_hdr.msg_name = &from[i]; rx[i].msg_hdr.msg_namelen = sizeof from[i];
    }
    int r = recvmmsg(listen_fd, rx, BATCH, MSG_DONTWAIT, NULL);
    if (r <= 0) return;
    int nreply = 0;
    // Runs of ChannelData for one allocation go out in one sendmmsg.
    alloc_t *run = NULL;
    int nrun = 0;
    for (int i = 0; i < r; i++) {
      uint8_t *b = rxbuf[i];
      int len = rx[i].msg_len;
      if (len >= 4 && (b[0] & 0xc0) == 0x40) {
        int dlen = (b[2] << 8) | b[3];
        alloc_t *a = find(&from[i], 0);
        if (!a || !a->channel || ((b[0] << 8) | b[1]) != a->channel || 4 + dlen > len) continue;
        if (run && a != run) { sendmmsg(run->relay_fd, tx, nrun, MSG_DONTWAIT); nrun = 0; }
        run = a;
        txiov[nrun].iov_base = b + 4; txiov[nrun].iov_len = dlen;
        tx[nrun].msg_hdr.msg_iov = &txiov[nrun];
        tx[nrun].msg_hdr.msg_name = NULL; tx[nrun].msg_hdr.msg_namelen = 0;
        nrun++;
      } else {
        int n = answer(b, len, &from[i], txbuf[nreply]);
        if (n > 0) {
          // Replies go out after this batch's relayed data, so they use the tail of tx.
          struct mmsghdr *m = &tx[BATCH - 1 - nreply];
          struct iovec *v = &txiov[BATCH - 1 - nreply];
          v->iov_base = txbuf[nreply]; v->iov_len = n;
          m->msg_hdr.msg_iov = v;
          m->msg_hdr.msg_name = &from[i]; m->msg_hdr.msg_namelen = sizeof from[i];
          nreply++;
        }
      }
    }
    if (run) sendmmsg(run->relay_fd, tx, nrun, MSG_DONTWAIT);
    if (nreply) sendmmsg(listen_fd, &tx[BATCH - nreply], nreply, MSG_DONTWAIT);
    if (r < BATCH) return;
  }
}

// Datagrams from a peer: back to the allocation's client as ChannelData.
static void from_peer(alloc_t *a) {
  for (;;) {
    for (int i = 0; i < BATCH; i++) {
      rxiov[i].iov_base = rxbuf[i] + 4; rxiov[i].iov_len = sizeof rxbuf[i] - 4;
      rx[i].msg_hdr.msg_name = NULL; rx[i].msg_hdr.msg_namelen = 0;
    }
    int r = recvmmsg(a->relay_fd, rx, BATCH, MSG_DONTWAIT, NULL);
    if (r <= 0) return;
    for (int i = 0; i < r; i++) {
      uint8_t *b = rxbuf[i];
      int len = rx[i].msg_len;
      b[0] = a->channel >> 8; b[1] = a->channel & 0xff; b[2] = len >> 8; b[3] = len & 0xff;
      // RFC 8656 §12.5: over UDP the ChannelData message need not be padded.
      txiov[i].iov_base = b; txiov[i].iov_len = 4 + len;
      tx[i].msg_hdr.msg_iov = &txiov[i];
      tx[i].msg_hdr.msg_name = &a->client; tx[i].msg_hdr.msg_namelen = sizeof a->client;
    }
    sendmmsg(listen_fd, tx, r, MSG_DONTWAIT);
    if (r < BATCH) return;
  }
}

static int bind_listener(void) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
  int one = 1, sz = 4 << 20;
  setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
  setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
  if (bind(fd, (struct sockaddr *)&relay_host, sizeof relay_host) != 0) { perror("bind"); exit(1); }
  return fd;
}

static __attribute__((noreturn)) void serve(int fd) {
  listen_fd = fd;
  ep = epoll_create1(0);
  struct epoll_event ev = { .events = EPOLLIN, .data.u32 = LISTEN_TAG };
  epoll_ctl(ep, EPOLL_CTL_ADD, listen_fd, &ev);
  for (int i = 0; i < BATCH; i++) {
    memset(&rx[i], 0, sizeof rx[i]);
    rx[i].msg_hdr.msg_iov = &rxiov[i]; rx[i].msg_hdr.msg_iovlen = 1;
    memset(&tx[i], 0, sizeof tx[i]);
    tx[i].msg_hdr.msg_iov = &txiov[i]; tx[i].msg_hdr.msg_iovlen = 1;
  }
  struct epoll_event evs[64];
  for (;;) {
    int n = epoll_wait(ep, evs, 64, -1);
    for (int e = 0; e < n; e++) {
      if (evs[e].data.u32 == LISTEN_TAG) from_clients();
      else from_peer(&allocs[evs[e].data.u32]);
    }
  }
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: relayceiling HOST PORT [PROCESSES]\n");
    return 2;
  }
  relay_host.sin_family = AF_INET;
  relay_host.sin_port = htons(atoi(argv[2]));
  if (inet_pton(AF_INET, argv[1], &relay_host.sin_addr) != 1) { fprintf(stderr, "bad address %s\n", argv[1]); return 2; }
  int procs = argc >= 4 ? atoi(argv[3]) : 1;
  if (procs <= 1) serve(bind_listener());
  if (procs > 64) procs = 64;
  // Every copy's socket joins the SO_REUSEPORT group before any answers: a group that grew later
  // would move 5-tuples already allocated on one copy to another.
  int fds[64];
  for (int p = 0; p < procs; p++) fds[p] = bind_listener();
  // The parent only waits; a copy ends with it (or with a SIGTERM to the process group).
  for (int p = 0; p < procs; p++) {
    if (fork() == 0) {
      prctl(PR_SET_PDEATHSIG, SIGTERM);
      for (int q = 0; q < procs; q++) if (q != p) close(fds[q]);
      serve(fds[p]);
    }
  }
  while (wait(NULL) > 0) { }
  return 0;
}
