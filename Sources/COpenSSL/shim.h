#ifndef EDGE_COPENSSL_SHIM_H
#define EDGE_COPENSSL_SHIM_H
/* OpenSSL 3's libcrypto, for Ed25519 only (Sources/EdgeAgent/Commands/Ed25519.swift). */
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#endif
