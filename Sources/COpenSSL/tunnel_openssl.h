/*
 * OpenSSL surface used by TunnelTLS.
 *
 * Swift cannot call C function-like macros, and OpenSSL 3 implements many of its
 * public calls (protocol bounds, stack accessors, SNI, memory-BIO access) as macros.
 * Each shim below wraps exactly one such macro so the Swift side stays a thin,
 * auditable layer. All shims are prefixed `tunnel_` to avoid clashing with OpenSSL.
 */
#ifndef TUNNEL_OPENSSL_H
#define TUNNEL_OPENSSL_H

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <pthread.h>
#include <string.h>

/* MARK: Error queue */

static inline int tunnel_err_get_lib(unsigned long code) { return ERR_GET_LIB(code); }
static inline int tunnel_err_get_reason(unsigned long code) { return ERR_GET_REASON(code); }

/* MARK: Memory */

static inline void tunnel_openssl_free(void *pointer) { OPENSSL_free(pointer); }

/* MARK: Session resumption (TLS 1.3 tickets) */

/* Clients: every new session (each NewSessionTicket) goes to the new-session callback and
 * nowhere else; TunnelTLS keeps it for the next dial. */
static inline void tunnel_ssl_ctx_set_session_cache_client(SSL_CTX *ctx) {
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
}
/* Servers: keys a ticket's HMAC-SHA256 (the ticket key callback's MAC context). */
static inline int tunnel_ticket_mac_init(EVP_MAC_CTX *mac, const unsigned char *key, size_t length) {
    static char digest[] = "SHA256";
    OSSL_PARAM parameters[] = {
        OSSL_PARAM_construct_octet_string("key", (void *)key, length),
        OSSL_PARAM_construct_utf8_string("digest", digest, 0),
        OSSL_PARAM_construct_end(),
    };
    return EVP_MAC_CTX_set_params(mac, parameters);
}

/* MARK: SSL_CTX configuration */

static inline int tunnel_ssl_ctx_set_min_proto_version(SSL_CTX *ctx, int version) {
    return (int)SSL_CTX_set_min_proto_version(ctx, version);
}
static inline int tunnel_ssl_ctx_set_max_proto_version(SSL_CTX *ctx, int version) {
    return (int)SSL_CTX_set_max_proto_version(ctx, version);
}
static inline int tunnel_ssl_ctx_add1_chain_cert(SSL_CTX *ctx, X509 *certificate) {
    return (int)SSL_CTX_add1_chain_cert(ctx, certificate);
}
static inline void tunnel_ssl_ctx_set_session_cache_off(SSL_CTX *ctx) {
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
}
/* SSL_OP_* constants are built with SSL_OP_BIT(), which Swift cannot import. */
static inline uint64_t tunnel_ssl_op_no_ticket(void) { return SSL_OP_NO_TICKET; }
static inline uint64_t tunnel_ssl_op_no_renegotiation(void) { return SSL_OP_NO_RENEGOTIATION; }
static inline uint64_t tunnel_ssl_op_no_compression(void) { return SSL_OP_NO_COMPRESSION; }
static inline uint64_t tunnel_ssl_op_cipher_server_preference(void) { return SSL_OP_CIPHER_SERVER_PREFERENCE; }
static inline uint64_t tunnel_ssl_op_prioritize_chacha(void) { return SSL_OP_PRIORITIZE_CHACHA; }
static inline void tunnel_ssl_ctx_set_mode(SSL_CTX *ctx, long mode) { SSL_CTX_set_mode(ctx, mode); }
static inline int tunnel_ssl_ctx_set1_groups_list(SSL_CTX *ctx, const char *list) { return (int)SSL_CTX_set1_groups_list(ctx, list); }

/* MARK: SSL connection */

static inline int tunnel_ssl_set_tlsext_host_name(SSL *ssl, const char *name) {
    return (int)SSL_set_tlsext_host_name(ssl, name);
}

/* MARK: Memory BIOs */

static inline long tunnel_bio_get_mem_data(BIO *bio, char **data) { return BIO_get_mem_data(bio, data); }
static inline void tunnel_bio_set_mem_eof_return(BIO *bio, int value) { BIO_set_mem_eof_return(bio, value); }
/* The size a memory BIO's buffer has grown to: it never shrinks by itself. */
static inline size_t tunnel_bio_mem_capacity(BIO *bio) {
    BUF_MEM *memory = NULL;
    BIO_get_mem_ptr(bio, &memory);
    return memory != NULL ? memory->max : 0;
}
/* Gives a drained memory BIO a fresh, empty buffer and frees the old one (its end-of-data
   setting stays). 0 if the new buffer could not be allocated; the BIO is then unchanged. */
static inline int tunnel_bio_mem_renew(BIO *bio) {
    BUF_MEM *fresh = BUF_MEM_new();
    if (fresh == NULL) return 0;
    BIO_set_mem_buf(bio, fresh, BIO_CLOSE);
    return 1;
}

/* MARK: Ciphertext sink */

/* A write-only BIO for the ciphertext OpenSSL produces: its writes append to one growable buffer
   whose pending bytes the owner sends straight from where they lie and then marks as taken, so
   ciphertext is copied once (record buffer to sink), where a memory BIO took two copies (into the
   BIO, and out of it with BIO_read). Bytes taken move a start offset; the buffer is compacted
   only when a write would not fit behind them. */
typedef struct {
    unsigned char *bytes;
    size_t start;    /* the first pending byte */
    size_t end;      /* one past the last pending byte */
    size_t capacity;
} tunnel_sink;

static inline tunnel_sink *tunnel_sink_of(BIO *bio) { return (tunnel_sink *)BIO_get_data(bio); }

static inline int tunnel_sink_write(BIO *bio, const char *data, int length) {
    tunnel_sink *sink = tunnel_sink_of(bio);
    if (sink == NULL || length < 0) return -1;
    size_t count = (size_t)length;
    size_t pending = sink->end - sink->start;
    if (pending == 0) sink->start = sink->end = 0;
    if (sink->end + count > sink->capacity) {
        if (pending + count <= sink->capacity && sink->start > 0) {
            memmove(sink->bytes, sink->bytes + sink->start, pending);
        } else {
            size_t capacity = sink->capacity * 2 > pending + count ? sink->capacity * 2 : pending + count;
            if (capacity < 4096) capacity = 4096;
            unsigned char *grown = OPENSSL_malloc(capacity);
            if (grown == NULL) return -1;
            if (pending > 0) memcpy(grown, sink->bytes + sink->start, pending);
            OPENSSL_free(sink->bytes);
            sink->bytes = grown;
            sink->capacity = capacity;
        }
        sink->start = 0;
        sink->end = pending;
    }
    memcpy(sink->bytes + sink->end, data, count);
    sink->end += count;
    return length;
}

static inline long tunnel_sink_ctrl(BIO *bio, int command, long number, void *pointer) {
    (void)number;
    (void)pointer;
    tunnel_sink *sink = tunnel_sink_of(bio);
    switch (command) {
    case BIO_CTRL_FLUSH: return 1;
    case BIO_CTRL_PENDING:
    case BIO_CTRL_WPENDING: return sink != NULL ? (long)(sink->end - sink->start) : 0;
    default: return 0;
    }
}

static inline int tunnel_sink_create(BIO *bio) {
    tunnel_sink *sink = OPENSSL_zalloc(sizeof *sink);
    if (sink == NULL) return 0;
    BIO_set_data(bio, sink);
    BIO_set_init(bio, 1);
    return 1;
}

static inline int tunnel_sink_destroy(BIO *bio) {
    tunnel_sink *sink = tunnel_sink_of(bio);
    if (sink != NULL) {
        OPENSSL_free(sink->bytes);
        OPENSSL_free(sink);
    }
    BIO_set_data(bio, NULL);
    return 1;
}

static inline BIO_METHOD **tunnel_sink_method_slot(void) {
    static BIO_METHOD *method;
    return &method;
}

static inline void tunnel_sink_method_make(void) {
    BIO_METHOD *method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "tunnel ciphertext sink");
    if (method == NULL) return;
    BIO_meth_set_write(method, tunnel_sink_write);
    BIO_meth_set_ctrl(method, tunnel_sink_ctrl);
    BIO_meth_set_create(method, tunnel_sink_create);
    BIO_meth_set_destroy(method, tunnel_sink_destroy);
    *tunnel_sink_method_slot() = method;
}

/* A new, empty sink; NULL when out of memory. The method is made once, by whichever thread asks first. */
static inline BIO *tunnel_sink_new(void) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, tunnel_sink_method_make);
    BIO_METHOD *method = *tunnel_sink_method_slot();
    return method != NULL ? BIO_new(method) : NULL;
}

/* The pending bytes, in place: valid until the next write to the sink. */
static inline const unsigned char *tunnel_sink_pending_bytes(BIO *bio) {
    tunnel_sink *sink = tunnel_sink_of(bio);
    return sink->bytes + sink->start;
}

static inline size_t tunnel_sink_pending(BIO *bio) {
    tunnel_sink *sink = tunnel_sink_of(bio);
    return sink->end - sink->start;
}

/* Marks `count` pending bytes (at most all of them) as sent. */
static inline void tunnel_sink_take(BIO *bio, size_t count) {
    tunnel_sink *sink = tunnel_sink_of(bio);
    size_t pending = sink->end - sink->start;
    sink->start += count < pending ? count : pending;
    if (sink->start == sink->end) sink->start = sink->end = 0;
}

static inline size_t tunnel_sink_capacity(BIO *bio) { return tunnel_sink_of(bio)->capacity; }

/* Frees a drained sink's buffer; the next write allocates a new one. */
static inline void tunnel_sink_release(BIO *bio) {
    tunnel_sink *sink = tunnel_sink_of(bio);
    if (sink->end != sink->start) return;
    OPENSSL_free(sink->bytes);
    sink->bytes = NULL;
    sink->start = sink->end = sink->capacity = 0;
}

/* MARK: Stacks */

static inline int tunnel_sk_X509_num(const STACK_OF(X509) *stack) { return sk_X509_num(stack); }
static inline X509 *tunnel_sk_X509_value(const STACK_OF(X509) *stack, int index) { return sk_X509_value(stack, index); }
static inline STACK_OF(X509) *tunnel_sk_X509_new_null(void) { return sk_X509_new_null(); }
static inline int tunnel_sk_X509_push(STACK_OF(X509) *stack, X509 *certificate) { return sk_X509_push(stack, certificate); }
/* Frees the stack only; the certificates stay owned by whoever owned them before. */
static inline void tunnel_sk_X509_free(STACK_OF(X509) *stack) { sk_X509_free(stack); }

static inline int tunnel_sk_GENERAL_NAME_num(const GENERAL_NAMES *names) { return sk_GENERAL_NAME_num(names); }
static inline GENERAL_NAME *tunnel_sk_GENERAL_NAME_value(const GENERAL_NAMES *names, int index) {
    return sk_GENERAL_NAME_value(names, index);
}
static inline int tunnel_sk_GENERAL_NAME_push(GENERAL_NAMES *names, GENERAL_NAME *name) {
    return sk_GENERAL_NAME_push(names, name);
}

/* MARK: Constants Swift cannot import (defined through other macros) */

static inline int tunnel_mbstring_utf8(void) { return MBSTRING_UTF8; }

#endif
