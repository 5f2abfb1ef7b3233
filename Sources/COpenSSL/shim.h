#ifndef COPENSSL_H
#define COPENSSL_H
/* The system OpenSSL (Debian libssl-dev), imported whole. */
#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/pem.h>
#include <openssl/bio.h>
#include <openssl/opensslv.h>
#endif
