/*
 * delayq: a fixed one-way delay for the lab's links (docs/lab.md "Delay and loss"). The kernel has
 * no netem qdisc, so iptables hands the packets of a link to NFQUEUE `--queue` and this program
 * gives each one its NF_ACCEPT verdict `--delay-ms` after it arrived. The delay is constant, so the
 * packets leave in the order they came: a FIFO of (packet id, due time) is the whole scheduler.
 *
 *   delayq --queue N --delay-ms D [--maxlen 8192]
 *
 * Only the packet's metadata is copied to userspace (NFQNL_COPY_META). The queue is not fail-open:
 * when it is full the kernel drops the packet (nothing bypasses the delay) and counts it in
 * /proc/net/netfilter/nfnetlink_queue (queue_dropped), which is how the lab sees an overflow.
 * On SIGUSR1 it lets go: what it holds leaves at once, and what comes after is not delayed (a
 * test's path that must come up only after another: lab/delay.ts `hold`).
 * Prints "ready" on stdout once the queue is bound; on SIGTERM/SIGINT, or when its parent dies,
 * it prints its counters and how late its verdicts were (one JSON line) on stderr and exits
 * (unbinding drops what is still held).
 *
 * Build: cc -O2 -o delayq delayq.c -lnetfilter_queue  (Debian: libnetfilter-queue-dev)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <arpa/inet.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <linux/netfilter.h>
#include <libnetfilter_queue/libnetfilter_queue.h>

struct held {
  uint32_t id;
  uint64_t due_ns;
};

static struct held *fifo;
static uint32_t cap, head, count;
static uint64_t delay_ns;
static uint64_t received, accepted, enobufs, max_held;
static volatile sig_atomic_t stopping, letting_go;
/* How late each verdict left after its due time, in microseconds (the last bucket: 20 ms or more). */
#define LATE_BUCKETS 20001
static uint64_t late_us[LATE_BUCKETS], late_max_us;

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void on_signal(int sig) {
  if (sig == SIGUSR1) letting_go = 1;
  else stopping = 1;
}

/* SIGUSR1: no delay from now on; everything held is due now (in the order it came). */
static void let_go(void) {
  uint64_t now = now_ns();
  delay_ns = 0;
  for (uint32_t i = 0; i < count; i++) fifo[(head + i) % cap].due_ns = now;
  letting_go = 0;
}

/* One queued packet: note when it came. The kernel holds at most `cap` (the queue's maxlen). */
static int on_packet(struct nfq_q_handle *qh, struct nfgenmsg *msg, struct nfq_data *nfa, void *data) {
  (void)msg;
  (void)data;
  struct nfqnl_msg_packet_hdr *ph = nfq_get_msg_packet_hdr(nfa);
  if (!ph) return 0;
  uint32_t id = ntohl(ph->packet_id);
  received++;
  if (count == cap) {
    /* Cannot happen while maxlen == cap; never hold a packet we could not track. */
    nfq_set_verdict(qh, id, NF_DROP, 0, NULL);
    return 0;
  }
  fifo[(head + count) % cap] = (struct held){ id, now_ns() + delay_ns };
  count++;
  if (count > max_held) max_held = count;
  return 0;
}

static void release_due(struct nfq_q_handle *qh) {
  uint64_t now = now_ns();
  while (count > 0 && fifo[head].due_ns <= now) {
    nfq_set_verdict(qh, fifo[head].id, NF_ACCEPT, 0, NULL);
    uint64_t late = (now - fifo[head].due_ns) / 1000u;
    if (late > late_max_us) late_max_us = late;
    late_us[late < LATE_BUCKETS ? late : LATE_BUCKETS - 1]++;
    accepted++;
    head = (head + 1) % cap;
    count--;
  }
}

/* The q-quantile of the verdicts' lateness, in microseconds. */
static uint64_t late_quantile(double q) {
  uint64_t want = (uint64_t)(q * (double)accepted), seen = 0;
  for (uint64_t i = 0; i < LATE_BUCKETS; i++) {
    seen += late_us[i];
    if (seen > want) return i;
  }
  return late_max_us;
}

static void usage(void) {
  fprintf(stderr, "usage: delayq --queue N --delay-ms D [--maxlen LEN]\n");
  exit(2);
}

int main(int argc, char **argv) {
  long queue = -1, delay_ms = -1, maxlen = 8192;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--queue")) queue = strtol(argv[i + 1], NULL, 10);
    else if (!strcmp(argv[i], "--delay-ms")) delay_ms = strtol(argv[i + 1], NULL, 10);
    else if (!strcmp(argv[i], "--maxlen")) maxlen = strtol(argv[i + 1], NULL, 10);
    else usage();
  }
  if (argc % 2 == 0 || queue < 0 || queue > 65535 || delay_ms < 0 || delay_ms > 10000 || maxlen < 1 || maxlen > 1 << 20) usage();
  delay_ns = (uint64_t)delay_ms * 1000000u;
  cap = (uint32_t)maxlen;
  fifo = calloc(cap, sizeof *fifo);
  if (!fifo) return 1;

  /* Exit with the lab: SIGTERM when the parent (the lab's Node process) dies. */
  pid_t parent = getppid();
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (getppid() != parent) return 0;
  /* Timers wake as close to the due time as the kernel can (default slack is 50 us). */
  prctl(PR_SET_TIMERSLACK, 1UL);
  /* A loaded machine must not add its scheduling latency to the delay: run ahead of ordinary
     tasks when allowed. The loop sleeps between packets, so it cannot starve the machine. */
  struct sched_param sp = { .sched_priority = 10 };
  int realtime = sched_setscheduler(0, SCHED_FIFO, &sp) == 0;

  sigset_t block, unblocked;
  sigemptyset(&block);
  sigaddset(&block, SIGTERM);
  sigaddset(&block, SIGINT);
  sigaddset(&block, SIGUSR1);
  sigprocmask(SIG_BLOCK, &block, &unblocked);
  struct sigaction sa = { .sa_handler = on_signal };
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGUSR1, &sa, NULL);

  struct nfq_handle *h = nfq_open();
  if (!h) { perror("delayq: nfq_open"); return 1; }
  struct nfq_q_handle *qh = nfq_create_queue(h, (uint16_t)queue, on_packet, NULL);
  if (!qh) { fprintf(stderr, "delayq: cannot bind queue %ld: %s\n", queue, strerror(errno)); return 1; }
  if (nfq_set_mode(qh, NFQNL_COPY_META, 0) < 0) { perror("delayq: nfq_set_mode"); return 1; }
  if (nfq_set_queue_maxlen(qh, (uint32_t)maxlen) < 0) { perror("delayq: nfq_set_queue_maxlen"); return 1; }
  /* Not fail-open: a full queue drops (and counts) rather than letting a packet skip the delay.
     GSO packets are queued whole: they are only held, never rewritten. */
  if (nfq_set_queue_flags(qh, NFQA_CFG_F_FAIL_OPEN | NFQA_CFG_F_GSO, NFQA_CFG_F_GSO) < 0) {
    perror("delayq: nfq_set_queue_flags");
    return 1;
  }
  int fd = nfq_fd(h);
  /* Room for a full queue's messages, so the kernel's sends do not fail (user_dropped). */
  int rcvbuf = 16 << 20;
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf) < 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  printf("ready\n");
  fflush(stdout);

  char buf[65536];
  while (!stopping) {
    if (letting_go) let_go();
    struct timespec timeout, *tp = NULL;
    if (count > 0) {
      uint64_t now = now_ns(), due = fifo[head].due_ns;
      uint64_t wait = due > now ? due - now : 0;
      timeout.tv_sec = (time_t)(wait / 1000000000u);
      timeout.tv_nsec = (long)(wait % 1000000000u);
      tp = &timeout;
    }
    struct pollfd pfd = { .fd = fd, .events = POLLIN };
    int n = ppoll(&pfd, 1, tp, &unblocked);
    if (n < 0 && errno != EINTR) { perror("delayq: ppoll"); break; }
    if (n > 0) {
      for (;;) {
        ssize_t len = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (len >= 0) { nfq_handle_packet(h, buf, (int)len); continue; }
        if (errno == ENOBUFS) { enobufs++; continue; }
        break;
      }
    }
    if (letting_go) let_go();
    release_due(qh);
  }
  /* One JSON line: what the lab reports as the stage's own precision. */
  fprintf(stderr,
          "{\"queue\":%ld,\"delayMs\":%ld,\"received\":%llu,\"accepted\":%llu,\"maxHeld\":%llu,\"receiveOverruns\":%llu,"
          "\"stillHeld\":%u,\"realtime\":%s,\"lateUs\":{\"p50\":%llu,\"p99\":%llu,\"p999\":%llu,\"max\":%llu}}\n",
          queue, delay_ms, (unsigned long long)received, (unsigned long long)accepted, (unsigned long long)max_held,
          (unsigned long long)enobufs, count, realtime ? "true" : "false", (unsigned long long)late_quantile(0.5),
          (unsigned long long)late_quantile(0.99), (unsigned long long)late_quantile(0.999), (unsigned long long)late_max_us);
  nfq_destroy_queue(qh);
  nfq_close(h);
  return 0;
}
