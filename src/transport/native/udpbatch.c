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
//   [sock, len, port, family (4 or 6), ip0, ip1, ip2, ip3, truncated (rx only)]
// ip0..ip3 hold the address bytes in network order (IPv4 in ip0), as raw 32-bit words.
// A readable socket is drained with recvmmsg and handed to JS in one call: onBatch(sock, n).
// JS fills tx slots 0..n-1 and calls flush(group, n): one sendmmsg per socket, order kept.
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <node_api.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#define BATCH 64
#define META 9
#define MAX_SLOT 65536

typedef struct Group Group;

typedef struct {
  int fd;
  int id;
  int closing;
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

// ---- receive -------------------------------------------------------------------------------

static void on_readable(uv_poll_t *handle, int status, int events) {
  Sock *s = (Sock *)handle->data;
  Group *g = s->g;
  if (status < 0 || s->closing) return;
  napi_env env = g->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value cb, recv, argv[2], result;
  napi_get_reference_value(env, g->callback, &cb);
  napi_get_global(env, &recv);
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
    napi_create_int32(env, s->id, &argv[0]);
    napi_create_int32(env, n, &argv[1]);
    // make_callback (not call_function): the handler runs as an event-loop callback, so the
    // promises and nextTicks it queues run right after it, as for any dgram 'message' handler.
    if (napi_make_callback(env, g->async_ctx, recv, cb, 2, argv, &result) != napi_ok) {
      napi_value exc;
      if (napi_get_and_clear_last_exception(env, &exc) == napi_ok) napi_fatal_exception(env, exc);
      break;
    }
    if (n < BATCH) break;
  }
  napi_close_handle_scope(env, scope);
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

// stats(handle) → [received, sent, sendErrors] over the group's sockets.
static napi_value Stats(napi_env env, napi_callback_info info) {
  napi_value argv[1], arr, v;
  Group *g = group_call(env, info, 1, argv);
  int live = g && !g->closing;
  double vals[3] = { live ? (double)g->rx_count : 0, live ? (double)g->tx_count : 0, live ? (double)g->tx_errors : 0 };
  CHECK(napi_create_array_with_length(env, 3, &arr));
  for (uint32_t i = 0; i < 3; i++) {
    CHECK(napi_create_double(env, vals[i], &v));
    CHECK(napi_set_element(env, arr, i, v));
  }
  return arr;
}

static napi_value Init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    { "group", NULL, NewGroup, NULL, NULL, NULL, napi_default, NULL },
    { "open", NULL, Open, NULL, NULL, NULL, napi_default, NULL },
    { "close", NULL, Close, NULL, NULL, NULL, napi_default, NULL },
    { "closeGroup", NULL, CloseGroup, NULL, NULL, NULL, napi_default, NULL },
    { "flush", NULL, Flush, NULL, NULL, NULL, napi_default, NULL },
    { "stats", NULL, Stats, NULL, NULL, NULL, napi_default, NULL },
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  set_int(env, exports, "BATCH", BATCH);
  set_int(env, exports, "META", META);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
