// udpbatch: batched UDP I/O for the STUN/TURN listeners (Linux recvmmsg/sendmmsg), as a small
// Node-API addon. Node's dgram makes two syscalls and several JS objects per datagram; here one
// wake-up receives up to BATCH datagrams into a buffer shared with JS, JS answers them in place,
// and one sendmmsg sends every answer. Only the I/O is native: parsing and policy stay in
// TypeScript (src/transport/batchUdp.ts drives this).
//
// Layout shared with JS (all little-endian int32 "meta" slots, MSG_META ints per message):
//   rx data: BATCH slots of SLOT bytes        rx meta: [len, port, family, ip0, ip1, ip2, ip3]
//   tx data: BATCH slots of SLOT bytes        tx meta: same layout, filled by JS
// ip0..ip3 hold the address bytes (IPv4 in ip0) in network order, as raw 32-bit words.
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
#define SLOT 2048
#define MSG_META 7
#define MAX_ROUNDS 16

typedef struct {
  int fd;
  int family;
  int closing;
  uv_poll_t poll;
  napi_env env;
  napi_ref callback;
  napi_async_context async_ctx;
  uint8_t *rx, *tx;
  int32_t *rxmeta, *txmeta;
  struct mmsghdr rxm[BATCH], txm[BATCH];
  struct iovec rxiov[BATCH], txiov[BATCH];
  struct sockaddr_storage rxaddr[BATCH], txaddr[BATCH];
  uint64_t rx_count, tx_count, tx_errors;
} Sock;

#define CHECK(call) do { if ((call) != napi_ok) { napi_throw_error(env, "UDPBATCH_NAPI", #call); return NULL; } } while (0)

static void fill_meta(Sock *s, int i) {
  int32_t *m = s->rxmeta + i * MSG_META;
  m[0] = (int32_t)s->rxm[i].msg_len;
  if (s->rxaddr[i].ss_family == AF_INET) {
    struct sockaddr_in *a = (struct sockaddr_in *)&s->rxaddr[i];
    m[1] = ntohs(a->sin_port);
    m[2] = 4;
    memcpy(&m[3], &a->sin_addr, 4);
  } else {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)&s->rxaddr[i];
    m[1] = ntohs(a->sin6_port);
    m[2] = 6;
    memcpy(&m[3], &a->sin6_addr, 16);
  }
}

static int to_sockaddr(int32_t *m, struct sockaddr_storage *out) {
  memset(out, 0, sizeof *out);
  if (m[2] == 4) {
    struct sockaddr_in *a = (struct sockaddr_in *)out;
    a->sin_family = AF_INET;
    a->sin_port = htons((uint16_t)m[1]);
    memcpy(&a->sin_addr, &m[3], 4);
    return sizeof *a;
  }
  struct sockaddr_in6 *a = (struct sockaddr_in6 *)out;
  a->sin6_family = AF_INET6;
  a->sin6_port = htons((uint16_t)m[1]);
  memcpy(&a->sin6_addr, &m[3], 16);
  return sizeof *a;
}

// Sends tx slots first..first+n-1.
static void flush_tx(Sock *s, int first, int n) {
  if (n <= 0 || first < 0 || first >= BATCH) return;
  if (first + n > BATCH) n = BATCH - first;
  int end = first + n;
  for (int i = first; i < end; i++) {
    int32_t *m = s->txmeta + i * MSG_META;
    int len = m[0];
    if (len < 0 || len > SLOT) len = 0;
    s->txiov[i].iov_base = s->tx + i * SLOT;
    s->txiov[i].iov_len = len;
    memset(&s->txm[i].msg_hdr, 0, sizeof s->txm[i].msg_hdr);
    s->txm[i].msg_hdr.msg_iov = &s->txiov[i];
    s->txm[i].msg_hdr.msg_iovlen = 1;
    s->txm[i].msg_hdr.msg_name = &s->txaddr[i];
    s->txm[i].msg_hdr.msg_namelen = to_sockaddr(m, &s->txaddr[i]);
  }
  int off = first;
  while (off < end) {
    int r = sendmmsg(s->fd, s->txm + off, end - off, 0);
    if (r < 0) {
      if (errno == EINTR) continue;
      // EAGAIN (send buffer full) or an unreachable destination: drop this one, keep the rest.
      s->tx_errors++;
      off++;
      continue;
    }
    s->tx_count += r;
    off += r;
  }
}

static void on_readable(uv_poll_t *handle, int status, int events) {
  Sock *s = (Sock *)handle->data;
  if (status < 0 || s->closing) return;
  napi_env env = s->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value cb, recv, argv[1], result;
  napi_get_reference_value(env, s->callback, &cb);
  napi_get_global(env, &recv);
  for (int round = 0; round < MAX_ROUNDS && !s->closing; round++) {
    for (int i = 0; i < BATCH; i++) {
      s->rxiov[i].iov_base = s->rx + i * SLOT;
      s->rxiov[i].iov_len = SLOT;
      memset(&s->rxm[i].msg_hdr, 0, sizeof s->rxm[i].msg_hdr);
      s->rxm[i].msg_hdr.msg_iov = &s->rxiov[i];
      s->rxm[i].msg_hdr.msg_iovlen = 1;
      s->rxm[i].msg_hdr.msg_name = &s->rxaddr[i];
      s->rxm[i].msg_hdr.msg_namelen = sizeof s->rxaddr[i];
    }
    int n = recvmmsg(s->fd, s->rxm, BATCH, MSG_DONTWAIT, NULL);
    if (n <= 0) break;
    s->rx_count += n;
    for (int i = 0; i < n; i++) fill_meta(s, i);
    napi_create_int32(env, n, &argv[0]);
    // make_callback (not call_function): runs the handler as an event-loop callback, so the
    // promises and nextTicks it queues run right after it, as for any dgram 'message' handler.
    if (napi_make_callback(env, s->async_ctx, recv, cb, 1, argv, &result) != napi_ok) {
      napi_value exc;
      if (napi_get_and_clear_last_exception(env, &exc) == napi_ok) napi_fatal_exception(env, exc);
      break;
    }
    int32_t m = 0;
    napi_get_value_int32(env, result, &m);
    flush_tx(s, 0, m);
    if (n < BATCH) break;
  }
  napi_close_handle_scope(env, scope);
}

static void on_closed(uv_handle_t *handle) {
  Sock *s = (Sock *)handle->data;
  free(s->rx);
  free(s->tx);
  free(s->rxmeta);
  free(s->txmeta);
  free(s);
}

static void finalize_noop(napi_env env, void *data, void *hint) { (void)env; (void)data; (void)hint; }

// open(address: string, port: number, reusePort: boolean, ipv6Only: boolean, onBatch: (n) => number)
//   → { handle, rx, rxMeta, tx, txMeta, port }
static napi_value Open(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  char addr[64];
  size_t alen;
  CHECK(napi_get_value_string_utf8(env, argv[0], addr, sizeof addr, &alen));
  int32_t port;
  CHECK(napi_get_value_int32(env, argv[1], &port));
  bool reuse, v6only;
  CHECK(napi_get_value_bool(env, argv[2], &reuse));
  CHECK(napi_get_value_bool(env, argv[3], &v6only));

  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof ss);
  socklen_t sslen;
  int family;
  if (strchr(addr, ':')) {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
    a->sin6_family = AF_INET6;
    a->sin6_port = htons((uint16_t)port);
    if (inet_pton(AF_INET6, addr, &a->sin6_addr) != 1) { napi_throw_error(env, "UDPBATCH_BAD_ADDRESS", addr); return NULL; }
    sslen = sizeof *a;
    family = AF_INET6;
  } else {
    struct sockaddr_in *a = (struct sockaddr_in *)&ss;
    a->sin_family = AF_INET;
    a->sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, addr, &a->sin_addr) != 1) { napi_throw_error(env, "UDPBATCH_BAD_ADDRESS", addr); return NULL; }
    sslen = sizeof *a;
    family = AF_INET;
  }
  int fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) { napi_throw_error(env, "UDPBATCH_SOCKET", strerror(errno)); return NULL; }
  int one = 1, size = 4 << 20;
  if (reuse) {
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  }
  if (family == AF_INET6) {
    int v = v6only ? 1 : 0;
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v, sizeof v);
  }
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
  setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
  if (bind(fd, (struct sockaddr *)&ss, sslen) != 0) {
    int e = errno;
    close(fd);
    napi_throw_error(env, e == EADDRINUSE ? "EADDRINUSE" : "UDPBATCH_BIND", strerror(e));
    return NULL;
  }
  struct sockaddr_storage bound;
  socklen_t blen = sizeof bound;
  getsockname(fd, (struct sockaddr *)&bound, &blen);
  int bound_port = family == AF_INET ? ntohs(((struct sockaddr_in *)&bound)->sin_port) : ntohs(((struct sockaddr_in6 *)&bound)->sin6_port);

  Sock *s = calloc(1, sizeof *s);
  s->fd = fd;
  s->family = family;
  s->env = env;
  s->rx = malloc(BATCH * SLOT);
  s->tx = malloc(BATCH * SLOT);
  s->rxmeta = calloc(BATCH * MSG_META, sizeof(int32_t));
  s->txmeta = calloc(BATCH * MSG_META, sizeof(int32_t));
  CHECK(napi_create_reference(env, argv[4], 1, &s->callback));
  napi_value resource, resource_name;
  CHECK(napi_create_object(env, &resource));
  CHECK(napi_create_string_utf8(env, "P2PD_UDPBATCH", NAPI_AUTO_LENGTH, &resource_name));
  CHECK(napi_async_init(env, resource, resource_name, &s->async_ctx));
  uv_loop_t *loop;
  CHECK(napi_get_uv_event_loop(env, &loop));
  uv_poll_init(loop, &s->poll, fd);
  s->poll.data = s;
  uv_poll_start(&s->poll, UV_READABLE, on_readable);

  napi_value obj, v;
  CHECK(napi_create_object(env, &obj));
  CHECK(napi_create_external(env, s, NULL, NULL, &v));
  CHECK(napi_set_named_property(env, obj, "handle", v));
  CHECK(napi_create_external_arraybuffer(env, s->rx, BATCH * SLOT, finalize_noop, NULL, &v));
  CHECK(napi_set_named_property(env, obj, "rx", v));
  CHECK(napi_create_external_arraybuffer(env, s->rxmeta, BATCH * MSG_META * 4, finalize_noop, NULL, &v));
  CHECK(napi_set_named_property(env, obj, "rxMeta", v));
  CHECK(napi_create_external_arraybuffer(env, s->tx, BATCH * SLOT, finalize_noop, NULL, &v));
  CHECK(napi_set_named_property(env, obj, "tx", v));
  CHECK(napi_create_external_arraybuffer(env, s->txmeta, BATCH * MSG_META * 4, finalize_noop, NULL, &v));
  CHECK(napi_set_named_property(env, obj, "txMeta", v));
  CHECK(napi_create_int32(env, bound_port, &v));
  CHECK(napi_set_named_property(env, obj, "port", v));
  return obj;
}

static Sock *get_sock(napi_env env, napi_value v) {
  void *p = NULL;
  if (napi_get_value_external(env, v, &p) != napi_ok) return NULL;
  return (Sock *)p;
}

// flush(handle, first, n): sends tx slots first..first+n-1 now.
static napi_value Flush(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  Sock *s = get_sock(env, argv[0]);
  int32_t first, n;
  CHECK(napi_get_value_int32(env, argv[1], &first));
  CHECK(napi_get_value_int32(env, argv[2], &n));
  if (s && !s->closing) flush_tx(s, first, n);
  return NULL;
}

// close(handle)
static napi_value Close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  Sock *s = get_sock(env, argv[0]);
  if (!s || s->closing) return NULL;
  s->closing = 1;
  uv_poll_stop(&s->poll);
  close(s->fd);
  napi_delete_reference(env, s->callback);
  napi_async_destroy(env, s->async_ctx);
  uv_close((uv_handle_t *)&s->poll, on_closed);
  return NULL;
}

// stats(handle) → [received, sent, sendErrors]
static napi_value Stats(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], arr, v;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  Sock *s = get_sock(env, argv[0]);
  CHECK(napi_create_array_with_length(env, 3, &arr));
  double vals[3] = { s ? (double)s->rx_count : 0, s ? (double)s->tx_count : 0, s ? (double)s->tx_errors : 0 };
  for (int i = 0; i < 3; i++) {
    CHECK(napi_create_double(env, vals[i], &v));
    CHECK(napi_set_element(env, arr, i, v));
  }
  return arr;
}

static napi_value Init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    { "open", NULL, Open, NULL, NULL, NULL, napi_default, NULL },
    { "flush", NULL, Flush, NULL, NULL, NULL, napi_default, NULL },
    { "close", NULL, Close, NULL, NULL, NULL, napi_default, NULL },
    { "stats", NULL, Stats, NULL, NULL, NULL, napi_default, NULL },
  };
  napi_define_properties(env, exports, 4, props);
  napi_value v;
  napi_create_int32(env, BATCH, &v);
  napi_set_named_property(env, exports, "BATCH", v);
  napi_create_int32(env, SLOT, &v);
  napi_set_named_property(env, exports, "SLOT", v);
  napi_create_int32(env, MSG_META, &v);
  napi_set_named_property(env, exports, "MSG_META", v);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
