#ifndef EDGE_ED25519_H
#define EDGE_ED25519_H
/*
 * Ed25519 (RFC 8032) through OpenSSL's libcrypto, for toolchains that cannot build swift-crypto
 * (Swift < 6.2 here: Debian 13's swiftlang 6.0.3; see Package.swift). Keys are raw 32 bytes,
 * signatures raw 64 bytes. Every call returns 0 on success, -1 on failure.
 */
#include <stddef.h>
#include <stdint.h>

int edge_ed25519_generate(uint8_t private_key[32]);
int edge_ed25519_public_key(const uint8_t private_key[32], uint8_t public_key[32]);
int edge_ed25519_sign(const uint8_t private_key[32], const uint8_t *message, size_t length, uint8_t signature[64]);
/* 0: the signature verifies; -1: it does not, or the key is not a valid Ed25519 public key. */
int edge_ed25519_verify(const uint8_t public_key[32], const uint8_t *message, size_t length, const uint8_t signature[64]);

#endif
