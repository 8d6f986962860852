// udpbatch: batched UDP I/O (Linux recvmmsg/sendmmsg) as a small Node-API addon, for the
// STUN/TURN listeners and the TURN relay sockets alike. Node's dgram makes two syscalls and
// several JS objects per datagram; here one wake-up receives up to BATCH datagrams into a buffer
// shared with JS, and one sendmmsg per socket sends what JS queued. Only the I/O is native:
// parsing and policy stay in TypeScript (src/transport/batchGroup.ts drives this; docs/turn.md,
// "Workers and speed", and docs/performance.md, "STUN", say what it buys).
//
// A group is a set of sockets sharing one receive buffer, one send buffer and one JS callback.
// A listener is a group of one socket with 2 KiB slots; a worker's relay sockets — thousands of
// them — are one group with 64 KiB slots, so a relay socket costs its fd and a uv_poll_t.
//
// Shared with JS: rx and tx hold BATCH slots of `slot` bytes each; rx meta and tx meta hold
// META little-endian int32s per slot, the same layout both ways:
//   [sock, len, port, family (4 or 6), ip0, ip1, ip2, ip3, flags (rx only)]
// ip0..ip3 hold the address bytes in network order (IPv4 in ip0, the rest 0), as raw 32-bit
// words; flags is 1 when the datagram was cut short, 2 when the forwarding table sent it on.
// A readable socket is drained with recvmmsg and handed to JS in one call: onBatch(sock, n).
// JS fills tx slots 0..n-1 and calls flush(group, n): one sendmmsg per socket, order kept.
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <arpa/inet.h>
#include <node_api.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#define BATCH 64
#define META 9
#define MAX_SLOT 65536

typedef struct Group Group;
typedef struct Chan Chan;

typedef struct Forwarder Forwarder;

typedef struct {
  int fd;
  int id;
  int closing;
  int family;
  // Forwarding-table channels that name this socket (as a client's listener or a peer's relay
  // socket): a socket nobody names costs the receive path one comparison.
  int fwd_refs;
  // The kernel refused a GSO send from this socket as such (EIO: no checksum offload on the
  // route's device): its forwarded datagrams leave one per message from then on.
  int no_gso;
  Group *g;
  uv_poll_t poll;
} Sock;

struct Group {
  napi_env env;
  napi_ref callback;
  napi_async_context async_ctx;
  int slot;
  int max_rounds;
  int closing;
  uint8_t *rx, *tx;
  int32_t *rxmeta, *txmeta;
  struct mmsghdr rxm[BATCH], txm[BATCH];
  struct iovec rxiov[BATCH], txiov[BATCH];
  struct sockaddr_storage rxaddr[BATCH], txaddr[BATCH];
  // Socket ids index `socks`; an id is reused once libuv has let go of its handle.
  Sock **socks;
  int cap, *free_ids, nfree, next_id;
  // What still points into the group: its JS external, its four JS ArrayBuffers and every
  // poll handle libuv has not let go of. The last one to let go frees it.
  int refs;
  uint64_t rx_count, tx_count, tx_errors;
  // The forwarding table this group's sockets consult before JS (NULL: none), and their role in
  // it: FWD_CLIENTS (listeners: ChannelData from clients) or FWD_PEERS (relay sockets).
  Forwarder *fwd;
  int fwd_role;
  // Forwarded datagrams of one receive round (socket, channel, ChannelData header, payload),
  // and the messages they leave in: several of a channel in one message with UDP_SEGMENT (GSO).
  Sock *fsock[BATCH];
  Chan *fchan[BATCH];
  uint8_t *fdata[BATCH];
  int flen[BATCH];
  uint8_t fhdr[BATCH][4];
  struct mmsghdr fm[BATCH];
  int fseg[BATCH];
  struct iovec fiov[2 * BATCH];
  char fctl[BATCH][CMSG_SPACE(sizeof(uint16_t))];
};

#define CHECK(call) do { if ((call) != napi_ok) { napi_throw_error(env, "UDPBATCH_NAPI", #call); return NULL; } } while (0)

// ---- addresses -----------------------------------------------------------------------------

// Meta [port, family, ip0..ip3] (from `m`) <-> a sockaddr.
static void meta_from_sockaddr(const struct sockaddr_storage *ss, int32_t *m) {
  if (ss->ss_family == AF_INET) {
    const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
    m[0] = ntohs(a->sin_port);
    m[1] = 4;
    memcpy(&m[2], &a->sin_addr, 4);
    m[3] = m[4] = m[5] = 0;
  } else {
    const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
    m[0] = ntohs(a->sin6_port);
    m[1] = 6;
    memcpy(&m[2], &a->sin6_addr, 16);
  }
}

static socklen_t sockaddr_from_meta(const int32_t *m, struct sockaddr_storage *out) {
  if (m[1] == 4) {
    struct sockaddr_in *a = (struct sockaddr_in *)out;
    memset(a, 0, sizeof *a);
    a->sin_family = AF_INET;
    a->sin_port = htons((uint16_t)m[0]);
    memcpy(&a->sin_addr, &m[2], 4);
    return sizeof *a;
  }
  struct sockaddr_in6 *a = (struct sockaddr_in6 *)out;
  memset(a, 0, sizeof *a);
  a->sin6_family = AF_INET6;
  a->sin6_port = htons((uint16_t)m[0]);
  memcpy(&a->sin6_addr, &m[2], 16);
  return sizeof *a;
}

// A literal IPv4 or IPv6 address and a port; 0 when `addr` is neither.
static socklen_t sockaddr_from_text(const char *addr, int port, struct sockaddr_storage *out) {
  memset(out, 0, sizeof *out);
  if (strchr(addr, ':')) {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)out;
    a->sin6_family = AF_INET6;
    a->sin6_port = htons((uint16_t)port);
    return inet_pton(AF_INET6, addr, &a->sin6_addr) == 1 ? sizeof *a : 0;
  }
  struct sockaddr_in *a = (struct sockaddr_in *)out;
  a->sin_family = AF_INET;
  a->sin_port = htons((uint16_t)port);
  return inet_pton(AF_INET, addr, &a->sin_addr) == 1 ? sizeof *a : 0;
}

// ---- forwarding table ----------------------------------------------------------------------
//
// Channels the TURN relay has let through once, so that their ChannelData moves here both ways
// without entering JS (docs/turn.md "Forwarding in the addon"). The TypeScript relay stays the
// one place the rules live: it offers a channel after it has relayed one of its datagrams, with
// a deadline (the earliest of the allocation's, the permission's and the channel's expiry) and
// bandwidth credit taken from the allocation's token bucket; it unbinds a channel or releases the
// whole allocation when its rules say so. Here a datagram is forwarded only while its channel is
// before its deadline and its allocation has credit for it; any other datagram goes to JS as
// before, which decides and may offer again. Bytes and packets forwarded are counted per
// allocation and collected by JS (at each sweep, each scrape and at release).
//
// A channel is found two ways: from a client, by (listener socket, client address, channel
// number); from a peer, by (relay socket, peer address). Two chained hash tables, one entry each.

#define FWD_CLIENTS 1
#define FWD_PEERS 2
/** Credit no allocation without a bandwidth limit runs out of. */
#define FWD_UNLIMITED 4503599627370496.0

typedef union {
  struct sockaddr sa;
  struct sockaddr_in v4;
  struct sockaddr_in6 v6;
} Addr;

typedef struct {
  int id;
  int dirty;  // 1 + its index in the forwarder's dirty list, 0 when not in it
  double credit;
  double to_peer, to_client;  // payload bytes since JS last collected
  Chan *chans;
} Fwd;

struct Chan {
  Fwd *a;
  int number;
  Sock *lsock, *rsock;
  int32_t cmeta[6], pmeta[6];  // [port, family, ip0..ip3] as in rx meta
  Addr caddr, paddr;
  socklen_t calen, palen;
  int64_t deadline_ms;
  uint32_t ch, ph;
  Chan *cnext, *pnext, *anext;
};

struct Forwarder {
  Chan **ctab, **ptab;
  uint32_t mask;
  int nchan;
  // Allocations by id (NULL: free); an id is reused after release.
  Fwd **allocs;
  int acap, anext, *afree, nafree;
  int *dirty, ndirty;
  double packets_to_peer, packets_to_client;
  // The JS external and every group attached to it; the last one to let go frees it.
  int refs;
};

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint32_t mix(uint32_t h, uint32_t v) {
  h ^= v;
  h *= 0x9e3779b1u;
  return h ^ (h >> 15);
}

static uint32_t hash_key(const Sock *s, const int32_t *meta, int number) {
  uintptr_t p = (uintptr_t)s;
  uint32_t h = mix(mix(0x811c9dc5u, (uint32_t)p), (uint32_t)(p >> 32));
  for (int k = 0; k < 6; k++) h = mix(h, (uint32_t)meta[k]);
  return mix(h, (uint32_t)number);
}

static int same_meta(const int32_t *a, const int32_t *b) {
  return a[0] == b[0] && a[1] == b[1] && a[2] == b[2] && a[3] == b[3] && a[4] == b[4] && a[5] == b[5];
}

static Chan *find_from_client(Forwarder *f, const Sock *s, const int32_t *meta, int number) {
  uint32_t h = hash_key(s, meta, number);
  for (Chan *c = f->ctab[h & f->mask]; c; c = c->cnext)
    if (c->ch == h && c->lsock == s && c->number == number && same_meta(c->cmeta, meta)) return c;
  return NULL;
}

static Chan *find_from_peer(Forwarder *f, const Sock *s, const int32_t *meta) {
  uint32_t h = hash_key(s, meta, 0);
  for (Chan *c = f->ptab[h & f->mask]; c; c = c->pnext)
    if (c->ph == h && c->rsock == s && same_meta(c->pmeta, meta)) return c;
  return NULL;
}

static void unlink_chain(Chan **head, Chan *c, int peer_chain) {
  for (Chan **pp = head; *pp; pp = peer_chain ? &(*pp)->pnext : &(*pp)->cnext) {
    if (*pp == c) { *pp = peer_chain ? c->pnext : c->cnext; return; }
  }
}

static void chan_free(Forwarder *f, Chan *c) {
  unlink_chain(&f->ctab[c->ch & f->mask], c, 0);
  unlink_chain(&f->ptab[c->ph & f->mask], c, 1);
  for (Chan **pp = &c->a->chans; *pp; pp = &(*pp)->anext) {
    if (*pp == c) { *pp = c->anext; break; }
  }
  c->lsock->fwd_refs--;
  c->rsock->fwd_refs--;
  f->nchan--;
  free(c);
}

// Doubles both tables once they hold as many channels as buckets.
static void fwd_grow(Forwarder *f) {
  uint32_t size = (f->mask + 1) * 2;
  Chan **ct = calloc(size, sizeof *ct), **pt = calloc(size, sizeof *pt);
  if (!ct || !pt) { free(ct); free(pt); return; }
  for (uint32_t b = 0; b <= f->mask; b++) {
    for (Chan *c = f->ctab[b], *next; c; c = next) { next = c->cnext; c->cnext = ct[c->ch & (size - 1)]; ct[c->ch & (size - 1)] = c; }
    for (Chan *c = f->ptab[b], *next; c; c = next) { next = c->pnext; c->pnext = pt[c->ph & (size - 1)]; pt[c->ph & (size - 1)] = c; }
  }
  free(f->ctab);
  free(f->ptab);
  f->ctab = ct;
  f->ptab = pt;
  f->mask = size - 1;
}

static void fwd_mark_dirty(Forwarder *f, Fwd *a) {
  if (a->dirty) return;
  f->dirty[f->ndirty] = a->id;
  a->dirty = ++f->ndirty;
}

static void fwd_unmark_dirty(Forwarder *f, Fwd *a) {
  if (!a->dirty) return;
  int at = a->dirty - 1, last = f->dirty[--f->ndirty];
  f->dirty[at] = last;
  f->allocs[last]->dirty = at + 1;
  a->dirty = 0;
}

// Every channel naming a socket that is closing (a listener at shutdown; a relay socket whose
// allocation JS did not release first). Rare: the whole table is walked.
static void fwd_forget_sock(Forwarder *f, Sock *s) {
  for (uint32_t b = 0; b <= f->mask && s->fwd_refs > 0; b++) {
    for (Chan *c = f->ctab[b], *next; c; c = next) {
      next = c->cnext;
      if (c->lsock == s || c->rsock == s) chan_free(f, c);
    }
  }
}

static void fwd_unref(Forwarder *f) {
  if (--f->refs > 0) return;
  for (int i = 0; i < f->anext; i++) {
    if (!f->allocs[i]) continue;
    while (f->allocs[i]->chans) chan_free(f, f->allocs[i]->chans);
    free(f->allocs[i]);
  }
  free(f->ctab);
  free(f->ptab);
  free(f->allocs);
  free(f->afree);
  free(f->dirty);
  free(f);
}

// Several datagrams of one channel leave in one message with UDP_SEGMENT (Linux GSO, 4.18+):
// the kernel walks its UDP/IP path once for all of them. All segments but the last must have
// the same size, at most UDP_MAX_SEGMENTS (64) per message; the total stays under one datagram.
#define GSO_MAX_SEGMENTS 64
#define GSO_MAX_BYTES 60000

static void fwd_count_sent(Sock *s, int segments) { s->g->tx_count += segments; }

// One message of `segments` datagrams that the kernel refused as a whole (no GSO on the path,
// a segment over the MTU): its datagrams go one by one.
static void fwd_send_each(Sock *s, struct mmsghdr *m, int segments) {
  struct msghdr one = m->msg_hdr;
  one.msg_control = NULL;
  one.msg_controllen = 0;
  struct iovec *iov = m->msg_hdr.msg_iov;
  int per = (int)m->msg_hdr.msg_iovlen / segments;  // 1 or 2 iovecs per datagram
  for (int k = 0; k < segments; k++) {
    one.msg_iov = iov + k * per;
    one.msg_iovlen = per;
    if (sendmsg(s->fd, &one, 0) < 0) s->g->tx_errors++;
    else fwd_count_sent(s, 1);
  }
}

// Sends the round's forwarded datagrams 0..n-1: grouped by socket and channel (order kept within
// a channel), a channel's run in GSO messages, one sendmmsg per socket.
static void fwd_send(Group *g, int n) {
  int order[BATCH];
  for (int i = 0; i < n; i++) order[i] = i;
  // Stable insertion sort by (socket, channel): at most BATCH entries, mostly already in runs.
  for (int i = 1; i < n; i++) {
    int v = order[i], j = i - 1;
    while (j >= 0 && (g->fsock[order[j]] > g->fsock[v] || (g->fsock[order[j]] == g->fsock[v] && g->fchan[order[j]] > g->fchan[v]))) {
      order[j + 1] = order[j];
      j--;
    }
    order[j + 1] = v;
  }
  int nmsg = 0, niov = 0;
  Sock *msock[BATCH];
  int seg = 0, total = 0, closed = 0;
  for (int q = 0; q < n; q++) {
    int i = order[q];
    int hdr = g->fchan[i]->lsock == g->fsock[i];  // to a client: a ChannelData header in front
    int len = g->flen[i] + (hdr ? 4 : 0);
    struct mmsghdr *cur = nmsg > 0 ? &g->fm[nmsg - 1] : NULL;
    int joins = cur && !g->fsock[i]->no_gso && msock[nmsg - 1] == g->fsock[i] && g->fchan[order[q - 1]] == g->fchan[i] && !closed
      && len <= seg && g->fseg[nmsg - 1] < GSO_MAX_SEGMENTS && total + len <= GSO_MAX_BYTES;
    if (!joins) {
      cur = &g->fm[nmsg];
      msock[nmsg] = g->fsock[i];
      g->fseg[nmsg] = 0;
      struct msghdr *h = &cur->msg_hdr;
      Chan *c = g->fchan[i];
      h->msg_name = hdr ? (void *)&c->caddr : (void *)&c->paddr;
      h->msg_namelen = hdr ? c->calen : c->palen;
      h->msg_iov = &g->fiov[niov];
      h->msg_iovlen = 0;
      h->msg_control = NULL;
      h->msg_controllen = 0;
      h->msg_flags = 0;
      nmsg++;
      seg = len;
      total = 0;
      closed = 0;
    } else if (len < seg) {
      closed = 1;  // a shorter datagram ends the message: only the last may be shorter
    }
    if (hdr) {
      g->fiov[niov].iov_base = g->fhdr[i];
      g->fiov[niov].iov_len = 4;
      niov++;
      cur->msg_hdr.msg_iovlen++;
    }
    g->fiov[niov].iov_base = g->fdata[i];
    g->fiov[niov].iov_len = g->flen[i];
    niov++;
    cur->msg_hdr.msg_iovlen++;
    g->fseg[nmsg - 1]++;
    total += len;
    if (g->fseg[nmsg - 1] == 2) {
      // Now a GSO message: the segment size is the first datagram's (`seg`).
      struct msghdr *h = &cur->msg_hdr;
      h->msg_control = g->fctl[nmsg - 1];
      h->msg_controllen = sizeof g->fctl[nmsg - 1];
      struct cmsghdr *cm = CMSG_FIRSTHDR(h);
      cm->cmsg_level = SOL_UDP;
      cm->cmsg_type = UDP_SEGMENT;
      cm->cmsg_len = CMSG_LEN(sizeof(uint16_t));
      uint16_t size = (uint16_t)seg;
      memcpy(CMSG_DATA(cm), &size, sizeof size);
    }
  }
  int k = 0;
  while (k < nmsg) {
    Sock *s = msock[k];
    int start = k;
    while (k < nmsg && msock[k] == s) k++;
    int off = start;
    while (off < k) {
      int r = sendmmsg(s->fd, g->fm + off, k - off, 0);
      if (r < 0) {
        if (errno == EINTR) continue;
        if (g->fseg[off] > 1) {
          if (errno == EIO || errno == ENOPROTOOPT) s->no_gso = 1;
          fwd_send_each(s, &g->fm[off], g->fseg[off]);
        } else {
          s->g->tx_errors++;
        }
        off++;
        continue;
      }
      for (int m = off; m < off + r; m++) fwd_count_sent(s, g->fseg[m]);
      off += r;
    }
  }
}

// Forwards what it can of received datagrams 0..n-1 of `s` and marks them (meta[8] = 2) so JS
// skips them. Returns how many it forwarded.
static int forward_round(Group *g, Sock *s, int n) {
  Forwarder *f = g->fwd;
  int64_t now = now_ms();
  int q = 0;
  for (int i = 0; i < n; i++) {
    int32_t *m = g->rxmeta + i * META;
    if (m[8] != 0) continue;
    uint8_t *buf = g->rx + (size_t)i * g->slot;
    int len = m[1];
    Chan *c;
    if (g->fwd_role == FWD_CLIENTS) {
      // RFC 8656 §12.4: ChannelData is number (first two bits 01), length, data.
      if (len < 4 || (buf[0] & 0xc0) != 0x40) continue;
      int number = (buf[0] << 8) | buf[1];
      int dlen = (buf[2] << 8) | buf[3];
      if (4 + dlen > len) continue;
      c = find_from_client(f, s, m + 2, number);
      if (!c || now >= c->deadline_ms || c->a->credit < dlen || c->rsock->closing) continue;
      c->a->credit -= dlen;
      c->a->to_peer += dlen;
      f->packets_to_peer++;
      g->fsock[q] = c->rsock;
      g->fdata[q] = buf + 4;
      g->flen[q] = dlen;
    } else {
      if (len > 0xffff - 4) continue;
      c = find_from_peer(f, s, m + 2);
      if (!c || now >= c->deadline_ms || c->a->credit < len || c->lsock->closing) continue;
      c->a->credit -= len;
      c->a->to_client += len;
      f->packets_to_client++;
      uint8_t *hdr = g->fhdr[q];
      hdr[0] = (uint8_t)(c->number >> 8);
      hdr[1] = (uint8_t)c->number;
      hdr[2] = (uint8_t)(len >> 8);
      hdr[3] = (uint8_t)len;
      g->fsock[q] = c->lsock;
      g->fdata[q] = buf;
      g->flen[q] = len;
    }
    g->fchan[q] = c;
    fwd_mark_dirty(f, c->a);
    m[8] = 2;
    q++;
  }
  if (q > 0) fwd_send(g, q);
  return q;
}

// ---- receive -------------------------------------------------------------------------------

static void on_readable(uv_poll_t *handle, int status, int events) {
  Sock *s = (Sock *)handle->data;
  Group *g = s->g;
  if (status < 0 || s->closing) return;
  napi_env env = g->env;
  // Opened at the first batch JS gets: a round the forwarding table takes whole never enters JS.
  napi_handle_scope scope = NULL;
  napi_value cb, recv, argv[2], result;
  for (int round = 0; round < g->max_rounds && !s->closing; round++) {
    // The headers point at fixed slots (set up in NewGroup); recvmmsg rewrites only the name
    // lengths of the datagrams it fills, so only those need resetting.
    int n = recvmmsg(s->fd, g->rxm, BATCH, MSG_DONTWAIT, NULL);
    if (n <= 0) break;
    g->rx_count += n;
    for (int i = 0; i < n; i++) {
      int32_t *m = g->rxmeta + i * META;
      m[0] = s->id;
      m[1] = (int32_t)g->rxm[i].msg_len;
      meta_from_sockaddr(&g->rxaddr[i], m + 2);
      m[8] = (g->rxm[i].msg_hdr.msg_flags & MSG_TRUNC) ? 1 : 0;
      g->rxm[i].msg_hdr.msg_namelen = sizeof g->rxaddr[i];
    }
    int forwarded = g->fwd && s->fwd_refs > 0 ? forward_round(g, s, n) : 0;
    if (forwarded < n) {
      if (!scope) {
        if (napi_open_handle_scope(env, &scope) != napi_ok) { scope = NULL; break; }
        napi_get_reference_value(env, g->callback, &cb);
        napi_get_global(env, &recv);
      }
      napi_create_int32(env, s->id, &argv[0]);
      napi_create_int32(env, n, &argv[1]);
      // make_callback (not call_function): the handler runs as an event-loop callback, so the
      // promises and nextTicks it queues run right after it, as for any dgram 'message' handler.
      if (napi_make_callback(env, g->async_ctx, recv, cb, 2, argv, &result) != napi_ok) {
        napi_value exc;
        if (napi_get_and_clear_last_exception(env, &exc) == napi_ok) napi_fatal_exception(env, exc);
        break;
      }
    }
    if (n < BATCH) break;
  }
  if (scope) napi_close_handle_scope(env, scope);
}

// ---- send ----------------------------------------------------------------------------------

static Sock *sock_of(Group *g, int id) {
  return id >= 0 && id < g->next_id ? g->socks[id] : NULL;
}

// Sends tx slots 0..n-1: grouped by socket (order kept within a socket), one sendmmsg per group.
static void flush_tx(Group *g, int n) {
  if (n <= 0) return;
  if (n > BATCH) n = BATCH;
  int order[BATCH], k = 0;
  for (int i = 0; i < n; i++) order[i] = i;
  // Stable insertion sort by socket id: at most BATCH entries, mostly one socket or short runs.
  for (int i = 1; i < n; i++) {
    int v = order[i], sid = g->txmeta[v * META];
    int j = i - 1;
    while (j >= 0 && g->txmeta[order[j] * META] > sid) { order[j + 1] = order[j]; j--; }
    order[j + 1] = v;
  }
  while (k < n) {
    int sid = g->txmeta[order[k] * META];
    int start = k;
    while (k < n && g->txmeta[order[k] * META] == sid) k++;
    Sock *s = sock_of(g, sid);
    if (!s || s->closing) continue;
    int cnt = 0;
    for (int q = start; q < k; q++) {
      int i = order[q];
      const int32_t *m = g->txmeta + i * META;
      int len = m[1];
      if (len < 0 || len > g->slot) len = 0;
      g->txiov[cnt].iov_base = g->tx + (size_t)i * g->slot;
      g->txiov[cnt].iov_len = len;
      memset(&g->txm[cnt].msg_hdr, 0, sizeof g->txm[cnt].msg_hdr);
      g->txm[cnt].msg_hdr.msg_iov = &g->txiov[cnt];
      g->txm[cnt].msg_hdr.msg_iovlen = 1;
      g->txm[cnt].msg_hdr.msg_name = &g->txaddr[cnt];
      g->txm[cnt].msg_hdr.msg_namelen = sockaddr_from_meta(m + 2, &g->txaddr[cnt]);
      cnt++;
    }
    int off = 0;
    while (off < cnt) {
      int r = sendmmsg(s->fd, g->txm + off, cnt - off, 0);
      if (r < 0) {
        if (errno == EINTR) continue;
        // EAGAIN (send buffer full) or an unreachable destination: drop this one, keep the rest.
        g->tx_errors++;
        off++;
        continue;
      }
      g->tx_count += r;
      off += r;
    }
  }
}

// ---- groups and sockets --------------------------------------------------------------------

static void unref(Group *g) {
  if (--g->refs > 0) return;
  if (g->fwd) fwd_unref(g->fwd);
  free(g->rx);
  free(g->tx);
  free(g->rxmeta);
  free(g->txmeta);
  free(g->socks);
  free(g->free_ids);
  free(g);
}

static void on_closed(uv_handle_t *handle) {
  Sock *s = (Sock *)handle->data;
  Group *g = s->g;
  g->free_ids[g->nfree++] = s->id;
  free(s);
  unref(g);
}

static void close_sock(Group *g, Sock *s) {
  s->closing = 1;
  if (s->fwd_refs > 0 && g->fwd) fwd_forget_sock(g->fwd, s);
  g->socks[s->id] = NULL;
  uv_poll_stop(&s->poll);
  close(s->fd);
  uv_close((uv_handle_t *)&s->poll, on_closed);
}

static int take_id(Group *g) {
  if (g->nfree > 0) return g->free_ids[--g->nfree];
  if (g->next_id == g->cap) {
    int cap = g->cap ? g->cap * 2 : 16;
    g->socks = realloc(g->socks, cap * sizeof *g->socks);
    g->free_ids = realloc(g->free_ids, cap * sizeof *g->free_ids);
    for (int i = g->cap; i < cap; i++) g->socks[i] = NULL;
    g->cap = cap;
  }
  return g->next_id++;
}

// A bound, non-blocking UDP socket, or -1 with *code set to the error code JS gets.
static int bind_udp(const char *addr, int port, bool reuse, bool v6only, int buffer_bytes, const char **code) {
  struct sockaddr_storage ss;
  socklen_t sslen = sockaddr_from_text(addr, port, &ss);
  if (sslen == 0) { *code = "UDPBATCH_BAD_ADDRESS"; errno = EINVAL; return -1; }
  int fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) { *code = errno == EMFILE || errno == ENFILE ? "EMFILE" : "UDPBATCH_SOCKET"; return -1; }
  int one = 1;
  if (reuse) {
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  }
  if (ss.ss_family == AF_INET6) {
    int v = v6only ? 1 : 0;
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v, sizeof v);
  }
  if (buffer_bytes > 0) {
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buffer_bytes, sizeof buffer_bytes);
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buffer_bytes, sizeof buffer_bytes);
  }
  if (bind(fd, (struct sockaddr *)&ss, sslen) != 0) {
    int e = errno;
    close(fd);
    errno = e;
    *code = e == EADDRINUSE ? "EADDRINUSE" : "UDPBATCH_BIND";
    return -1;
  }
  return fd;
}

static int bound_port(int fd) {
  struct sockaddr_storage bound;
  socklen_t blen = sizeof bound;
  int32_t m[6] = { 0 };
  if (getsockname(fd, (struct sockaddr *)&bound, &blen) == 0) meta_from_sockaddr(&bound, m);
  return m[0];
}

// ---- the JS surface ------------------------------------------------------------------------

// The call's first n arguments into argv, and the group argv[0] names (NULL when it names none).
static Group *group_call(napi_env env, napi_callback_info info, size_t n, napi_value *argv) {
  size_t argc = n;
  void *p = NULL;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  if (napi_get_value_external(env, argv[0], &p) != napi_ok) return NULL;
  return (Group *)p;
}

// For calls (handle, n): the group, and n in *n (-1 when it is no number).
static Group *group_int_call(napi_env env, napi_callback_info info, int32_t *n) {
  napi_value argv[2];
  Group *g = group_call(env, info, 2, argv);
  if (napi_get_value_int32(env, argv[1], n) != napi_ok) *n = -1;
  return g;
}

static napi_status set(napi_env env, napi_value obj, const char *name, napi_value v) {
  return napi_set_named_property(env, obj, name, v);
}

static napi_status set_int(napi_env env, napi_value obj, const char *name, int32_t n) {
  napi_value v;
  napi_status st = napi_create_int32(env, n, &v);
  return st == napi_ok ? set(env, obj, name, v) : st;
}

static void finalize(napi_env env, void *data, void *hint) { (void)env; (void)data; unref((Group *)hint); }

static napi_status set_buffer(napi_env env, napi_value obj, const char *name, Group *g, void *p, size_t len) {
  napi_value v;
  napi_status st = napi_create_external_arraybuffer(env, p, len, finalize, g, &v);
  return st == napi_ok ? set(env, obj, name, v) : st;
}

// group(slot: number, maxRounds: number, onBatch: (sock, n) => void)
//   → { handle, rx, rxMeta, tx, txMeta }
// maxRounds bounds how many batches one readable socket may deliver before others get a turn.
static napi_value NewGroup(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t slot, rounds;
  CHECK(napi_get_value_int32(env, argv[0], &slot));
  CHECK(napi_get_value_int32(env, argv[1], &rounds));
  if (slot <= 0 || slot > MAX_SLOT || rounds <= 0) { napi_throw_range_error(env, "UDPBATCH_BAD_GROUP", "slot must be 1..65536 bytes, maxRounds >= 1"); return NULL; }
  Group *g = calloc(1, sizeof *g);
  g->env = env;
  g->slot = slot;
  g->max_rounds = rounds;
  g->refs = 5;
  g->rx = malloc((size_t)BATCH * slot);
  g->tx = malloc((size_t)BATCH * slot);
  g->rxmeta = calloc(BATCH * META, sizeof(int32_t));
  g->txmeta = calloc(BATCH * META, sizeof(int32_t));
  for (int i = 0; i < BATCH; i++) {
    g->rxiov[i].iov_base = g->rx + (size_t)i * slot;
    g->rxiov[i].iov_len = slot;
    g->rxm[i].msg_hdr.msg_iov = &g->rxiov[i];
    g->rxm[i].msg_hdr.msg_iovlen = 1;
    g->rxm[i].msg_hdr.msg_name = &g->rxaddr[i];
    g->rxm[i].msg_hdr.msg_namelen = sizeof g->rxaddr[i];
  }
  CHECK(napi_create_reference(env, argv[2], 1, &g->callback));
  napi_value resource, resource_name;
  CHECK(napi_create_object(env, &resource));
  CHECK(napi_create_string_utf8(env, "P2PD_UDPBATCH", NAPI_AUTO_LENGTH, &resource_name));
  CHECK(napi_async_init(env, resource, resource_name, &g->async_ctx));

  napi_value obj, v;
  CHECK(napi_create_object(env, &obj));
  CHECK(napi_create_external(env, g, finalize, g, &v));
  CHECK(set(env, obj, "handle", v));
  CHECK(set_buffer(env, obj, "rx", g, g->rx, (size_t)BATCH * slot));
  CHECK(set_buffer(env, obj, "rxMeta", g, g->rxmeta, BATCH * META * 4));
  CHECK(set_buffer(env, obj, "tx", g, g->tx, (size_t)BATCH * slot));
  CHECK(set_buffer(env, obj, "txMeta", g, g->txmeta, BATCH * META * 4));
  return obj;
}

// open(handle, address: string, port: number, reusePort: boolean, ipv6Only: boolean,
//      bufferBytes: number) → { sock, port }; throws EADDRINUSE when the port is taken.
// bufferBytes > 0 sets SO_RCVBUF and SO_SNDBUF (the kernel caps them at net.core.*mem_max).
static napi_value Open(napi_env env, napi_callback_info info) {
  napi_value argv[6];
  Group *g = group_call(env, info, 6, argv);
  if (!g || g->closing) { napi_throw_error(env, "UDPBATCH_CLOSED", "the group is closed"); return NULL; }
  char addr[64];
  size_t alen;
  int32_t port, size;
  bool reuse, v6only;
  CHECK(napi_get_value_string_utf8(env, argv[1], addr, sizeof addr, &alen));
  CHECK(napi_get_value_int32(env, argv[2], &port));
  CHECK(napi_get_value_bool(env, argv[3], &reuse));
  CHECK(napi_get_value_bool(env, argv[4], &v6only));
  CHECK(napi_get_value_int32(env, argv[5], &size));
  const char *code = NULL;
  int fd = bind_udp(addr, port, reuse, v6only, size, &code);
  if (fd < 0) { napi_throw_error(env, code, strcmp(code, "UDPBATCH_BAD_ADDRESS") == 0 ? addr : strerror(errno)); return NULL; }

  uv_loop_t *loop;
  CHECK(napi_get_uv_event_loop(env, &loop));
  Sock *s = calloc(1, sizeof *s);
  s->fd = fd;
  s->family = strchr(addr, ':') ? 6 : 4;
  s->g = g;
  s->id = take_id(g);
  g->socks[s->id] = s;
  g->refs++;
  uv_poll_init(loop, &s->poll, fd);
  s->poll.data = s;
  uv_poll_start(&s->poll, UV_READABLE, on_readable);

  napi_value obj;
  CHECK(napi_create_object(env, &obj));
  CHECK(set_int(env, obj, "sock", s->id));
  CHECK(set_int(env, obj, "port", bound_port(fd)));
  return obj;
}

// close(handle, sock): stops delivering and closes the socket.
static napi_value Close(napi_env env, napi_callback_info info) {
  int32_t id;
  Group *g = group_int_call(env, info, &id);
  Sock *s = g ? sock_of(g, id) : NULL;
  if (s && !s->closing) close_sock(g, s);
  return NULL;
}

// closeGroup(handle): closes every socket of the group and drops its callback.
static napi_value CloseGroup(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  Group *g = group_call(env, info, 1, argv);
  if (!g || g->closing) return NULL;
  g->closing = 1;
  for (int i = 0; i < g->next_id; i++) if (g->socks[i]) close_sock(g, g->socks[i]);
  napi_delete_reference(env, g->callback);
  napi_async_destroy(env, g->async_ctx);
  return NULL;
}

// flush(handle, n): sends tx slots 0..n-1 now.
static napi_value Flush(napi_env env, napi_callback_info info) {
  int32_t n;
  Group *g = group_int_call(env, info, &n);
  if (g && !g->closing) flush_tx(g, n);
  return NULL;
}

// A JS array of the n numbers in vals.
static napi_value doubles(napi_env env, const double *vals, uint32_t n) {
  napi_value arr, v;
  CHECK(napi_create_array_with_length(env, n, &arr));
  for (uint32_t i = 0; i < n; i++) {
    CHECK(napi_create_double(env, vals[i], &v));
    CHECK(napi_set_element(env, arr, i, v));
  }
  return arr;
}

// stats(handle) → [received, sent, sendErrors] over the group's sockets.
static napi_value Stats(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  Group *g = group_call(env, info, 1, argv);
  int live = g && !g->closing;
  double vals[3] = { live ? (double)g->rx_count : 0, live ? (double)g->tx_count : 0, live ? (double)g->tx_errors : 0 };
  return doubles(env, vals, 3);
}

// ---- the forwarding table's JS surface (src/turn/forwarder.ts drives it) --------------------

static void forwarder_finalize(napi_env env, void *data, void *hint) { (void)env; (void)hint; fwd_unref((Forwarder *)data); }

static Forwarder *forwarder_of(napi_env env, napi_value v) {
  void *p = NULL;
  return napi_get_value_external(env, v, &p) == napi_ok ? (Forwarder *)p : NULL;
}

// forwarder() → handle: an empty forwarding table.
static napi_value NewForwarder(napi_env env, napi_callback_info info) {
  Forwarder *f = calloc(1, sizeof *f);
  if (!f) { napi_throw_error(env, "UDPBATCH_NOMEM", "out of memory"); return NULL; }
  f->mask = 63;
  f->ctab = calloc(f->mask + 1, sizeof *f->ctab);
  f->ptab = calloc(f->mask + 1, sizeof *f->ptab);
  f->refs = 1;
  napi_value v;
  CHECK(napi_create_external(env, f, forwarder_finalize, NULL, &v));
  return v;
}

// attach(group, forwarder, role): the group's sockets consult the table before JS, as
// listeners (role 1: ChannelData from clients) or relay sockets (role 2: datagrams from peers).
static napi_value Attach(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  Group *g = group_call(env, info, 3, argv);
  Forwarder *f = forwarder_of(env, argv[1]);
  int32_t role;
  if (!g || !f || g->fwd || napi_get_value_int32(env, argv[2], &role) != napi_ok || (role != FWD_CLIENTS && role != FWD_PEERS)) {
    napi_throw_error(env, "UDPBATCH_BAD_ATTACH", "attach(group, forwarder, 1 | 2) once per group");
    return NULL;
  }
  g->fwd = f;
  g->fwd_role = role;
  f->refs++;
  return NULL;
}

// allocate(forwarder) → id: an allocation's entry, with no channels and no credit.
static napi_value Allocate(napi_env env, napi_callback_info info) {
  napi_value argv[1], v;
  size_t argc = 1;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  Forwarder *f = forwarder_of(env, argv[0]);
  if (!f) return NULL;
  int id;
  if (f->nafree > 0) id = f->afree[--f->nafree];
  else {
    if (f->anext == f->acap) {
      int cap = f->acap ? f->acap * 2 : 64;
      Fwd **allocs = realloc(f->allocs, cap * sizeof *allocs);
      int *afree = realloc(f->afree, cap * sizeof *afree);
      int *dirty = realloc(f->dirty, cap * sizeof *dirty);
      if (allocs) f->allocs = allocs;
      if (afree) f->afree = afree;
      if (dirty) f->dirty = dirty;
      if (!allocs || !afree || !dirty) { napi_throw_error(env, "UDPBATCH_NOMEM", "out of memory"); return NULL; }
      f->acap = cap;
    }
    id = f->anext++;
  }
  Fwd *a = calloc(1, sizeof *a);
  if (!a) { napi_throw_error(env, "UDPBATCH_NOMEM", "out of memory"); return NULL; }
  a->id = id;
  f->allocs[id] = a;
  CHECK(napi_create_int32(env, id, &v));
  return v;
}

static Fwd *alloc_of(Forwarder *f, int32_t id) {
  return f && id >= 0 && id < f->anext ? f->allocs[id] : NULL;
}

// A literal address and port as rx meta and a sockaddr. An IPv4 address seen by an IPv6
// (dual-stack) socket arrives as ::ffff:a.b.c.d, so it is written that way for such a socket.
static int endpoint_from_text(const char *text, int port, int sock_family, int32_t *meta, Addr *out, socklen_t *outlen) {
  char mapped[64];
  if (sock_family == 6 && !strchr(text, ':')) {
    snprintf(mapped, sizeof mapped, "::ffff:%s", text);
    text = mapped;
  }
  struct sockaddr_storage ss;
  socklen_t len = sockaddr_from_text(text, port, &ss);
  if (len == 0 || len > sizeof *out) return 0;
  memcpy(out, &ss, len);
  *outlen = len;
  meta_from_sockaddr(&ss, meta);
  return 1;
}

// offer(forwarder, id, clientGroup, clientSock, clientAddress, clientPort, relayGroup, relaySock,
//       peerAddress, peerPort, number, creditBytes, validMs) → boolean
// Binds (or refreshes) channel `number` of allocation `id` between the client at the listener
// socket and the peer at the relay socket, forwarded for validMs from now; adds creditBytes to
// the allocation's credit. False when the sockets are not attached to this table as those roles.
static napi_value Offer(napi_env env, napi_callback_info info) {
  napi_value argv[13], v;
  size_t argc = 13;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  Forwarder *f = forwarder_of(env, argv[0]);
  int32_t id, lsid, cport, rsid, pport, number;
  double credit, valid_ms;
  void *lgp = NULL, *rgp = NULL;
  char caddr[64], paddr[64];
  size_t alen;
  CHECK(napi_get_value_int32(env, argv[1], &id));
  CHECK(napi_get_value_external(env, argv[2], &lgp));
  CHECK(napi_get_value_int32(env, argv[3], &lsid));
  CHECK(napi_get_value_string_utf8(env, argv[4], caddr, sizeof caddr, &alen));
  CHECK(napi_get_value_int32(env, argv[5], &cport));
  CHECK(napi_get_value_external(env, argv[6], &rgp));
  CHECK(napi_get_value_int32(env, argv[7], &rsid));
  CHECK(napi_get_value_string_utf8(env, argv[8], paddr, sizeof paddr, &alen));
  CHECK(napi_get_value_int32(env, argv[9], &pport));
  CHECK(napi_get_value_int32(env, argv[10], &number));
  CHECK(napi_get_value_double(env, argv[11], &credit));
  CHECK(napi_get_value_double(env, argv[12], &valid_ms));
  Group *lg = lgp, *rg = rgp;
  Fwd *a = alloc_of(f, id);
  Sock *ls = lg && lg->fwd == f && lg->fwd_role == FWD_CLIENTS ? sock_of(lg, lsid) : NULL;
  Sock *rs = rg && rg->fwd == f && rg->fwd_role == FWD_PEERS ? sock_of(rg, rsid) : NULL;
  int ok = a && ls && rs && !ls->closing && !rs->closing && number >= 0x4000 && number <= 0x7fff && valid_ms > 0 && credit >= 0;
  Chan c = { 0 };
  if (ok) ok = endpoint_from_text(caddr, cport, ls->family, c.cmeta, &c.caddr, &c.calen)
            && endpoint_from_text(paddr, pport, rs->family, c.pmeta, &c.paddr, &c.palen);
  if (ok) {
    // One channel per number and one per peer in an allocation (RFC 8656 §12): an entry left
    // from an earlier binding of either goes first.
    for (Chan *e = a->chans, *next; e; e = next) {
      next = e->anext;
      int same = e->number == number && e->lsock == ls && same_meta(e->cmeta, c.cmeta) && e->rsock == rs && same_meta(e->pmeta, c.pmeta);
      if (same) {
        e->deadline_ms = now_ms() + (int64_t)valid_ms;
        ok = 2;
        break;
      }
      if (e->number == number || (e->rsock == rs && same_meta(e->pmeta, c.pmeta))) chan_free(f, e);
    }
  }
  if (ok == 1) {
    if ((uint32_t)f->nchan > f->mask) fwd_grow(f);
    Chan *n = malloc(sizeof *n);
    if (!n) ok = 0;
    else {
      *n = c;
      n->a = a;
      n->number = number;
      n->lsock = ls;
      n->rsock = rs;
      n->deadline_ms = now_ms() + (int64_t)valid_ms;
      n->ch = hash_key(ls, n->cmeta, number);
      n->ph = hash_key(rs, n->pmeta, 0);
      n->cnext = f->ctab[n->ch & f->mask];
      f->ctab[n->ch & f->mask] = n;
      n->pnext = f->ptab[n->ph & f->mask];
      f->ptab[n->ph & f->mask] = n;
      n->anext = a->chans;
      a->chans = n;
      ls->fwd_refs++;
      rs->fwd_refs++;
      f->nchan++;
    }
  }
  if (ok) a->credit = fmin(a->credit + credit, FWD_UNLIMITED);
  CHECK(napi_get_boolean(env, ok != 0, &v));
  return v;
}

// unbind(forwarder, id, number): channel `number` of allocation `id` is no longer forwarded.
static napi_value Unbind(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  size_t argc = 3;
  int32_t id, number;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  Forwarder *f = forwarder_of(env, argv[0]);
  CHECK(napi_get_value_int32(env, argv[1], &id));
  CHECK(napi_get_value_int32(env, argv[2], &number));
  Fwd *a = alloc_of(f, id);
  for (Chan *e = a ? a->chans : NULL, *next; e; e = next) {
    next = e->anext;
    if (e->number == number) chan_free(f, e);
  }
  return NULL;
}

// release(forwarder, id) → [bytesToPeer, bytesToClient] not collected yet; the id is free after.
static napi_value Release(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  size_t argc = 2;
  int32_t id;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  Forwarder *f = forwarder_of(env, argv[0]);
  CHECK(napi_get_value_int32(env, argv[1], &id));
  Fwd *a = alloc_of(f, id);
  if (!a) return doubles(env, (double[2]) { 0, 0 }, 2);
  double to_peer = a->to_peer, to_client = a->to_client;
  while (a->chans) chan_free(f, a->chans);
  fwd_unmark_dirty(f, a);
  free(a);
  f->allocs[id] = NULL;
  f->afree[f->nafree++] = id;
  return doubles(env, (double[2]) { to_peer, to_client }, 2);
}

// collect(forwarder, out: Float64Array) → n: writes [id, bytesToPeer, bytesToClient] of up to
// out.length / 3 allocations that forwarded since the last collect, and zeroes their counts.
static napi_value Collect(napi_env env, napi_callback_info info) {
  napi_value argv[2], v;
  size_t argc = 2;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  Forwarder *f = forwarder_of(env, argv[0]);
  napi_typedarray_type type;
  size_t length;
  void *data;
  CHECK(napi_get_typedarray_info(env, argv[1], &type, &length, &data, NULL, NULL));
  if (!f || type != napi_float64_array) { napi_throw_type_error(env, "UDPBATCH_BAD_COLLECT", "collect(forwarder, Float64Array)"); return NULL; }
  double *out = data;
  int n = 0, room = (int)(length / 3);
  while (f->ndirty > 0 && n < room) {
    Fwd *a = f->allocs[f->dirty[f->ndirty - 1]];
    out[n * 3] = a->id;
    out[n * 3 + 1] = a->to_peer;
    out[n * 3 + 2] = a->to_client;
    a->to_peer = a->to_client = 0;
    fwd_unmark_dirty(f, a);
    n++;
  }
  CHECK(napi_create_int32(env, n, &v));
  return v;
}

// prune(forwarder) → channels dropped because their deadline passed (an offer binds them again).
static napi_value Prune(napi_env env, napi_callback_info info) {
  napi_value argv[1], v;
  size_t argc = 1;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  Forwarder *f = forwarder_of(env, argv[0]);
  int dropped = 0;
  int64_t now = now_ms();
  for (uint32_t b = 0; f && b <= f->mask; b++) {
    for (Chan *c = f->ctab[b], *next; c; c = next) {
      next = c->cnext;
      if (now >= c->deadline_ms) { chan_free(f, c); dropped++; }
    }
  }
  CHECK(napi_create_int32(env, dropped, &v));
  return v;
}

// forwarderStats(forwarder) → [packetsToPeer, packetsToClient, channels]: packets since creation.
static napi_value ForwarderStats(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  size_t argc = 1;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  Forwarder *f = forwarder_of(env, argv[0]);
  double vals[3] = { f ? f->packets_to_peer : 0, f ? f->packets_to_client : 0, f ? f->nchan : 0 };
  return doubles(env, vals, 3);
}

static napi_value Init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    { "group", NULL, NewGroup, NULL, NULL, NULL, napi_default, NULL },
    { "open", NULL, Open, NULL, NULL, NULL, napi_default, NULL },
    { "close", NULL, Close, NULL, NULL, NULL, napi_default, NULL },
    { "closeGroup", NULL, CloseGroup, NULL, NULL, NULL, napi_default, NULL },
    { "flush", NULL, Flush, NULL, NULL, NULL, napi_default, NULL },
    { "stats", NULL, Stats, NULL, NULL, NULL, napi_default, NULL },
    { "forwarder", NULL, NewForwarder, NULL, NULL, NULL, napi_default, NULL },
    { "attach", NULL, Attach, NULL, NULL, NULL, napi_default, NULL },
    { "allocate", NULL, Allocate, NULL, NULL, NULL, napi_default, NULL },
    { "offer", NULL, Offer, NULL, NULL, NULL, napi_default, NULL },
    { "unbind", NULL, Unbind, NULL, NULL, NULL, napi_default, NULL },
    { "release", NULL, Release, NULL, NULL, NULL, napi_default, NULL },
    { "collect", NULL, Collect, NULL, NULL, NULL, napi_default, NULL },
    { "prune", NULL, Prune, NULL, NULL, NULL, napi_default, NULL },
    { "forwarderStats", NULL, ForwarderStats, NULL, NULL, NULL, napi_default, NULL },
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  set_int(env, exports, "BATCH", BATCH);
  set_int(env, exports, "META", META);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
