// stunbench: the load generator and the bare C responder of `npm run bench -- stun|turn`.
//
//   stunbench load HOST PORT SECONDS SOCKETS WINDOW [COUNT]
//                                                      closed-loop STUN Binding load; prints JSON.
//                                                      With COUNT, sends COUNT requests (plus any
//                                                      refills after a loss) and stops at COUNT
//                                                      answers or SECONDS (bench/instructions.ts)
//   stunbench echo HOST PORT                           bare responder: answers each request with a
//                                                      Binding success header (the machine's ceiling)
//
// Written in C so the generator is never the bottleneck: recvmmsg/sendmmsg in batches, one
// thread, many source sockets (distinct 4-tuples, so SO_REUSEPORT spreads them over workers).
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64
#define MAXSOCK 1024

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void fill_request(uint8_t *p, uint64_t n) {
  // Binding request, length 0, magic cookie, 12-byte transaction id from a counter.
  p[0] = 0x00; p[1] = 0x01; p[2] = 0; p[3] = 0;
  p[4] = 0x21; p[5] = 0x12; p[6] = 0xa4; p[7] = 0x42;
  memcpy(p + 8, &n, 8);
  memset(p + 16, 0x5a, 4);
}

static int run_load(const char *host, int port, double seconds, int nsock, int window, uint64_t count) {
  struct sockaddr_in dst = {0};
  dst.sin_family = AF_INET;
  dst.sin_port = htons(port);
  if (inet_pton(AF_INET, host, &dst.sin_addr) != 1) { fprintf(stderr, "bad host\n"); return 2; }
  if (nsock > MAXSOCK) nsock = MAXSOCK;
  int ep = epoll_create1(0);
  int fds[MAXSOCK];
  double last_rx[MAXSOCK];
  uint64_t counter = 1, sent = 0, received = 0, resent = 0;
  static uint8_t txbuf[BATCH][20];
  static uint8_t rxbuf[BATCH][1500];
  struct mmsghdr tx[BATCH], rx[BATCH];
  struct iovec txiov[BATCH], rxiov[BATCH];
  for (int i = 0; i < BATCH; i++) {
    txiov[i].iov_base = txbuf[i]; txiov[i].iov_len = 20;
    memset(&tx[i], 0, sizeof tx[i]);
    tx[i].msg_hdr.msg_iov = &txiov[i]; tx[i].msg_hdr.msg_iovlen = 1;
    rxiov[i].iov_base = rxbuf[i]; rxiov[i].iov_len = sizeof rxbuf[i];
    memset(&rx[i], 0, sizeof rx[i]);
    rx[i].msg_hdr.msg_iov = &rxiov[i]; rx[i].msg_hdr.msg_iovlen = 1;
  }
  for (int s = 0; s < nsock; s++) {
    fds[s] = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    int sz = 4 << 20;
    setsockopt(fds[s], SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
    setsockopt(fds[s], SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
    if (connect(fds[s], (struct sockaddr *)&dst, sizeof dst) != 0) { perror("connect"); return 1; }
    struct epoll_event ev = { .events = EPOLLIN, .data.u32 = (uint32_t)s };
    epoll_ctl(ep, EPOLL_CTL_ADD, fds[s], &ev);
  }
  double start = now_s(), end = start + seconds;
  // Prime every socket with its window.
  for (int s = 0; s < nsock; s++) {
    int left = window;
    if (count && (uint64_t)left > count - sent) left = count - sent;
    while (left > 0) {
      int n = left < BATCH ? left : BATCH;
      for (int i = 0; i < n; i++) fill_request(txbuf[i], counter++);
      int r = sendmmsg(fds[s], tx, n, 0);
      if (r > 0) sent += r;
      left -= n;
    }
    last_rx[s] = start;
  }
  struct epoll_event evs[64];
  double next_check = start + 0.05;
  for (;;) {
    double t = now_s();
    if (t >= end || (count && received >= count)) break;
    int n = epoll_wait(ep, evs, 64, 10);
    for (int e = 0; e < n; e++) {
      int s = evs[e].data.u32;
      for (;;) {
        int r = recvmmsg(fds[s], rx, BATCH, MSG_DONTWAIT, NULL);
        if (r <= 0) break;
        int ok = 0;
        for (int i = 0; i < r; i++) {
          uint8_t *p = rxbuf[i];
          if (rx[i].msg_len >= 20 && p[0] == 0x01 && p[1] == 0x01) ok++;
        }
        received += ok;
        last_rx[s] = t;
        int more = r;
        if (count && (uint64_t)more > count - (sent < count ? sent : count)) more = sent < count ? count - sent : 0;
        for (int i = 0; i < more; i++) fill_request(txbuf[i], counter++);
        int w = more ? sendmmsg(fds[s], tx, more, 0) : 0;
        if (w > 0) sent += w;
        if (r < BATCH) break;
      }
    }
    if (t >= next_check) {
      // A socket silent for 200 ms (1 s when counting: the server may run under valgrind) lost its
      // window (drops under overload): refill it.
      for (int s = 0; s < nsock; s++) {
        if (t - last_rx[s] > (count ? 1.0 : 0.2)) {
          int left = window;
          while (left > 0) {
            int k = left < BATCH ? left : BATCH;
            for (int i = 0; i < k; i++) fill_request(txbuf[i], counter++);
            int w = sendmmsg(fds[s], tx, k, 0);
            if (w > 0) { sent += w; resent += w; }
            left -= k;
          }
          last_rx[s] = t;
        }
      }
      next_check = t + 0.05;
    }
  }
  double elapsed = now_s() - start;
  printf("{\"sent\":%llu,\"received\":%llu,\"refilled\":%llu,\"seconds\":%.3f,\"rps\":%.0f}\n",
         (unsigned long long)sent, (unsigned long long)received, (unsigned long long)resent, elapsed, received / elapsed);
  return 0;
}

static int run_echo(const char *host, int port) {
  struct sockaddr_in addr = {0};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  inet_pton(AF_INET, host, &addr.sin_addr);
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  int one = 1, sz = 4 << 20;
  setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
  if (bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0) { perror("bind"); return 1; }
  static uint8_t buf[BATCH][1500];
  struct mmsghdr msgs[BATCH];
  struct iovec iov[BATCH];
  struct sockaddr_in from[BATCH];
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
    for (int i = 0; i < r; i++) {
      buf[i][0] = 0x01; buf[i][1] = 0x01;
      iov[i].iov_len = msgs[i].msg_len;
    }
    sendmmsg(fd, msgs, r, 0);
  }
}

int main(int argc, char **argv) {
  if (argc >= 7 && strcmp(argv[1], "load") == 0)
    return run_load(argv[2], atoi(argv[3]), atof(argv[4]), atoi(argv[5]), atoi(argv[6]), argc >= 8 ? strtoull(argv[7], NULL, 10) : 0);
  if (argc >= 4 && strcmp(argv[1], "echo") == 0) return run_echo(argv[2], atoi(argv[3]));
  fprintf(stderr, "usage: stunbench load HOST PORT SECONDS SOCKETS WINDOW [COUNT] | stunbench echo HOST PORT\n");
  return 2;
}
