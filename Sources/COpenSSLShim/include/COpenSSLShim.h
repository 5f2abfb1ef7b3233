#ifndef COPENSSL_SHIM_H
#define COPENSSL_SHIM_H
/* OpenSSL's function-like macros and SSL_OP_BIT() constants, which Swift cannot
   import, as real functions and constants. One line each; nothing else. */
#include <stdint.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

int  shim_SSL_set_tlsext_host_name(SSL *ssl, const char *name);
long shim_SSL_CTX_set_min_proto_version(SSL_CTX *ctx, int version);
long shim_SSL_CTX_set_max_proto_version(SSL_CTX *ctx, int version);
long shim_SSL_set_mode(SSL *ssl, long mode);
long shim_SSL_CTX_set_mode(SSL_CTX *ctx, long mode);
long shim_SSL_CTX_set_session_cache_mode(SSL_CTX *ctx, long mode);
int  shim_sk_X509_num(const STACK_OF(X509) *stack);
X509 *shim_sk_X509_value(const STACK_OF(X509) *stack, int index);
void shim_OPENSSL_free(void *pointer);

static const uint64_t shim_SSL_OP_NO_COMPRESSION = SSL_OP_NO_COMPRESSION;
static const uint64_t shim_SSL_OP_NO_RENEGOTIATION = SSL_OP_NO_RENEGOTIATION;
static const uint64_t shim_SSL_OP_IGNORE_UNEXPECTED_EOF = SSL_OP_IGNORE_UNEXPECTED_EOF;
#endif
