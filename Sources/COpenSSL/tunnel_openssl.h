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
