// relayio: batched I/O for TURN relay sockets (Linux recvmmsg/sendmmsg), as a small Node-API
// addon. A worker holds one relay socket per relayed transport address — thousands of them —
// so, unlike the listeners' udpbatch, the buffers are shared by every socket of the process:
// a socket costs its fd and a uv_poll_t. Only the I/O is native: which datagram may pass, and
// where it goes, is decided in TypeScript (src/turn/relayPorts.ts drives this).
//
// Shared with JS (little-endian int32 "meta" slots, META ints per message):
//   rx: BATCH slots of SLOT bytes, rx meta [len, port, family, ip0, ip1, ip2, ip3, truncated]
//   tx: BATCH slots of SLOT bytes, tx meta [sock, len, port, family, ip0, ip1, ip2, ip3]
// ip0..ip3 hold the address bytes in network order (IPv4 in ip0), as raw 32-bit words.
// A readable socket is drained with recvmmsg and handed to JS in one call: onBatch(sock, n).
// JS queues datagrams to send in tx and calls flush(n): they go out with one sendmmsg per socket.
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
#define SLOT 65536
#define META 8
#define MAX_ROUNDS 4

typedef struct {
  int fd;
  int id;
  int closing;
  uv_poll_t poll;
} Sock;

static struct {
  napi_env env;
  napi_ref callback;
  napi_async_context async_ctx;
  uint8_t *rx, *tx;
  int32_t *rxmeta, *txmeta;
  struct mmsghdr rxm[BATCH], txm[BATCH];
  struct iovec rxiov[BATCH], txiov[BATCH];
  struct sockaddr_storage rxaddr[BATCH], txaddr[BATCH];
  Sock **socks;
  int cap, *free_ids, nfree, next_id;
  uint64_t tx_errors;
  int ready;
} G;

#define CHECK(call) do { if ((call) != napi_ok) { napi_throw_error(env, "RELAYIO_NAPI", #call); return NULL; } } while (0)

static void fill_meta(int i) {
  int32_t *m = G.rxmeta + i * META;
  m[0] = (int32_t)G.rxm[i].msg_len;
  m[7] = (G.rxm[i].msg_hdr.msg_flags & MSG_TRUNC) ? 1 : 0;
  if (G.rxaddr[i].ss_family == AF_INET) {
    struct sockaddr_in *a = (struct sockaddr_in *)&G.rxaddr[i];
    m[1] = ntohs(a->sin_port);
    m[2] = 4;
    memcpy(&m[3], &a->sin_addr, 4);
  } else {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)&G.rxaddr[i];
    m[1] = ntohs(a->sin6_port);
    m[2] = 6;
    memcpy(&m[3], &a->sin6_addr, 16);
  }
}

static void on_readable(uv_poll_t *handle, int status, int events) {
  Sock *s = (Sock *)handle->data;
  if (status < 0 || s->closing) return;
  napi_env env = G.env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value cb, recv, argv[2], result;
  napi_get_reference_value(env, G.callback, &cb);
  napi_get_global(env, &recv);
  for (int round = 0; round < MAX_ROUNDS && !s->closing; round++) {
    for (int i = 0; i < BATCH; i++) {
      G.rxiov[i].iov_base = G.rx + (size_t)i * SLOT;
      G.rxiov[i].iov_len = SLOT;
      memset(&G.rxm[i].msg_hdr, 0, sizeof G.rxm[i].msg_hdr);
      G.rxm[i].msg_hdr.msg_iov = &G.rxiov[i];
      G.rxm[i].msg_hdr.msg_iovlen = 1;
      G.rxm[i].msg_hdr.msg_name = &G.rxaddr[i];
      G.rxm[i].msg_hdr.msg_namelen = sizeof G.rxaddr[i];
    }
    int n = recvmmsg(s->fd, G.rxm, BATCH, MSG_DONTWAIT, NULL);
    if (n <= 0) break;
    for (int i = 0; i < n; i++) fill_meta(i);
    napi_create_int32(env, s->id, &argv[0]);
    napi_create_int32(env, n, &argv[1]);
    // make_callback: the handler runs as an event-loop callback, so the microtask that flushes
    // what it queued runs right after it.
    if (napi_make_callback(env, G.async_ctx, recv, cb, 2, argv, &result) != napi_ok) {
      napi_value exc;
      if (napi_get_and_clear_last_exception(env, &exc) == napi_ok) napi_fatal_exception(env, exc);
      break;
    }
    if (n < BATCH) break;
  }
  napi_close_handle_scope(env, scope);
}

static int to_sockaddr(int32_t *m, struct sockaddr_storage *out) {
  memset(out, 0, sizeof *out);
  if (m[3] == 4) {
    struct sockaddr_in *a = (struct sockaddr_in *)out;
    a->sin_family = AF_INET;
    a->sin_port = htons((uint16_t)m[2]);
    memcpy(&a->sin_addr, &m[4], 4);
    return sizeof *a;
  }
  struct sockaddr_in6 *a = (struct sockaddr_in6 *)out;
  a->sin6_family = AF_INET6;
  a->sin6_port = htons((uint16_t)m[2]);
  memcpy(&a->sin6_addr, &m[4], 16);
  return sizeof *a;
}

// Sends tx slots 0..n-1: grouped by socket (order kept within a socket), one sendmmsg per group.
static void flush_tx(int n) {
  if (n <= 0) return;
  if (n > BATCH) n = BATCH;
  int order[BATCH], k = 0;
  for (int i = 0; i < n; i++) order[i] = i;
  // Stable insertion sort by socket id: at most 64 entries, mostly short runs.
  for (int i = 1; i < n; i++) {
    int v = order[i], sid = G.txmeta[v * META];
    int j = i - 1;
    while (j >= 0 && G.txmeta[order[j] * META] > sid) { order[j + 1] = order[j]; j--; }
    order[j + 1] = v;
  }
  while (k < n) {
    int sid = G.txmeta[order[k] * META];
    int start = k;
    while (k < n && G.txmeta[order[k] * META] == sid) k++;
    Sock *s = (sid >= 0 && sid < G.next_id) ? G.socks[sid] : NULL;
    if (!s || s->closing) continue;
    int cnt = 0;
    for (int q = start; q < k; q++) {
      int i = order[q];
      int32_t *m = G.txmeta + i * META;
      int len = m[1];
      if (len < 0 || len > SLOT) len = 0;
      G.txiov[cnt].iov_base = G.tx + (size_t)i * SLOT;
      G.txiov[cnt].iov_len = len;
      memset(&G.txm[cnt].msg_hdr, 0, sizeof G.txm[cnt].msg_hdr);
      G.txm[cnt].msg_hdr.msg_iov = &G.txiov[cnt];
      G.txm[cnt].msg_hdr.msg_iovlen = 1;
      G.txm[cnt].msg_hdr.msg_name = &G.txaddr[cnt];
      G.txm[cnt].msg_hdr.msg_namelen = to_sockaddr(m, &G.txaddr[cnt]);
      cnt++;
    }
    int off = 0;
    while (off < cnt) {
      int r = sendmmsg(s->fd, G.txm + off, cnt - off, 0);
      if (r < 0) {
        if (errno == EINTR) continue;
        // EAGAIN (send buffer full) or an unreachable peer: drop this one, keep the rest.
        G.tx_errors++;
        off++;
        continue;
      }
      off += r;
    }
  }
}

static void finalize_noop(napi_env env, void *data, void *hint) { (void)env; (void)data; (void)hint; }

// init(onBatch: (sock, n) => void) → { rx, rxMeta, tx, txMeta }; once per process.
static napi_value Init_(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (G.ready) { napi_throw_error(env, "RELAYIO_TWICE", "relayio is initialised once per process"); return NULL; }
  G.env = env;
  G.rx = malloc((size_t)BATCH * SLOT);
  G.tx = malloc((size_t)BATCH * SLOT);
  G.rxmeta = calloc(BATCH * META, sizeof(int32_t));
  G.txmeta = calloc(BATCH * META, sizeof(int32_t));
  CHECK(napi_create_reference(env, argv[0], 1, &G.callback));
  napi_value resource, resource_name;
  CHECK(napi_create_object(env, &resource));
  CHECK(napi_create_string_utf8(env, "P2PD_RELAYIO", NAPI_AUTO_LENGTH, &resource_name));
  CHECK(napi_async_init(env, resource, resource_name, &G.async_ctx));
  G.ready = 1;
  napi_value obj, v;
  CHECK(napi_create_object(env, &obj));
  CHECK(napi_create_external_arraybuffer(env, G.rx, (size_t)BATCH * SLOT, finalize_noop, NULL, &v));
  CHECK(napi_set_named_property(env, obj, "rx", v));
  CHECK(napi_create_external_arraybuffer(env, G.rxmeta, BATCH * META * 4, finalize_noop, NULL, &v));
  CHECK(napi_set_named_property(env, obj, "rxMeta", v));
  CHECK(napi_create_external_arraybuffer(env, G.tx, (size_t)BATCH * SLOT, finalize_noop, NULL, &v));
  CHECK(napi_set_named_property(env, obj, "tx", v));
  CHECK(napi_create_external_arraybuffer(env, G.txmeta, BATCH * META * 4, finalize_noop, NULL, &v));
  CHECK(napi_set_named_property(env, obj, "txMeta", v));
  return obj;
}

static int take_id(void) {
  if (G.nfree > 0) return G.free_ids[--G.nfree];
  if (G.next_id == G.cap) {
    int cap = G.cap ? G.cap * 2 : 1024;
    G.socks = realloc(G.socks, cap * sizeof *G.socks);
    G.free_ids = realloc(G.free_ids, cap * sizeof *G.free_ids);
    for (int i = G.cap; i < cap; i++) G.socks[i] = NULL;
    G.cap = cap;
  }
  return G.next_id++;
}

// open(address: string, port: number) → sock id; throws EADDRINUSE when the port is taken.
static napi_value Open(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (!G.ready) { napi_throw_error(env, "RELAYIO_NOT_READY", "call init first"); return NULL; }
  char addr[64];
  size_t alen;
  CHECK(napi_get_value_string_utf8(env, argv[0], addr, sizeof addr, &alen));
  int32_t port;
  CHECK(napi_get_value_int32(env, argv[1], &port));
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof ss);
  socklen_t sslen;
  int family;
  if (strchr(addr, ':')) {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
    a->sin6_family = AF_INET6;
    a->sin6_port = htons((uint16_t)port);
    if (inet_pton(AF_INET6, addr, &a->sin6_addr) != 1) { napi_throw_error(env, "RELAYIO_BAD_ADDRESS", addr); return NULL; }
    sslen = sizeof *a;
    family = AF_INET6;
  } else {
    struct sockaddr_in *a = (struct sockaddr_in *)&ss;
    a->sin_family = AF_INET;
    a->sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, addr, &a->sin_addr) != 1) { napi_throw_error(env, "RELAYIO_BAD_ADDRESS", addr); return NULL; }
    sslen = sizeof *a;
    family = AF_INET;
  }
  int fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) { napi_throw_error(env, errno == EMFILE || errno == ENFILE ? "EMFILE" : "RELAYIO_SOCKET", strerror(errno)); return NULL; }
  if (family == AF_INET6) {
    int one = 1;
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  }
  if (bind(fd, (struct sockaddr *)&ss, sslen) != 0) {
    int e = errno;
    close(fd);
    napi_throw_error(env, e == EADDRINUSE ? "EADDRINUSE" : "RELAYIO_BIND", strerror(e));
    return NULL;
  }
  uv_loop_t *loop;
  CHECK(napi_get_uv_event_loop(env, &loop));
  Sock *s = calloc(1, sizeof *s);
  s->fd = fd;
  s->id = take_id();
  G.socks[s->id] = s;
  uv_poll_init(loop, &s->poll, fd);
  s->poll.data = s;
  uv_poll_start(&s->poll, UV_READABLE, on_readable);
  napi_value v;
  CHECK(napi_create_int32(env, s->id, &v));
  return v;
}

static void on_closed(uv_handle_t *handle) {
  Sock *s = (Sock *)handle->data;
  G.free_ids[G.nfree++] = s->id;
  free(s);
}

// close(sock): the id is reused once libuv has let go of the handle.
static napi_value Close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t id;
  CHECK(napi_get_value_int32(env, argv[0], &id));
  if (id < 0 || id >= G.next_id || !G.socks[id] || G.socks[id]->closing) return NULL;
  Sock *s = G.socks[id];
  s->closing = 1;
  G.socks[id] = NULL;
  uv_poll_stop(&s->poll);
  close(s->fd);
  uv_close((uv_handle_t *)&s->poll, on_closed);
  return NULL;
}

// flush(n): sends tx slots 0..n-1.
static napi_value Flush(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t n;
  CHECK(napi_get_value_int32(env, argv[0], &n));
  flush_tx(n);
  return NULL;
}

// sendErrors() → datagrams the kernel refused (full buffer, unreachable peer).
static napi_value SendErrors(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value v;
  CHECK(napi_create_double(env, (double)G.tx_errors, &v));
  return v;
}

static napi_value Init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    { "init", NULL, Init_, NULL, NULL, NULL, napi_default, NULL },
    { "open", NULL, Open, NULL, NULL, NULL, napi_default, NULL },
    { "close", NULL, Close, NULL, NULL, NULL, napi_default, NULL },
    { "flush", NULL, Flush, NULL, NULL, NULL, napi_default, NULL },
    { "sendErrors", NULL, SendErrors, NULL, NULL, NULL, napi_default, NULL },
  };
  napi_define_properties(env, exports, 5, props);
  napi_value v;
  napi_create_int32(env, BATCH, &v);
  napi_set_named_property(env, exports, "BATCH", v);
  napi_create_int32(env, SLOT, &v);
  napi_set_named_property(env, exports, "SLOT", v);
  napi_create_int32(env, META, &v);
  napi_set_named_property(env, exports, "META", v);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
