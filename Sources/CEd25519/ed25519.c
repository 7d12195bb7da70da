/* Ed25519 over OpenSSL EVP: see include/edge_ed25519.h. */
#include "edge_ed25519.h"

#include <openssl/evp.h>
#include <openssl/rand.h>

int edge_ed25519_generate(uint8_t private_key[32])
{
	return RAND_bytes(private_key, 32) == 1 ? 0 : -1;
}

int edge_ed25519_public_key(const uint8_t private_key[32], uint8_t public_key[32])
{
	EVP_PKEY *key = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, private_key, 32);
	if (!key)
		return -1;
	size_t length = 32;
	int ok = EVP_PKEY_get_raw_public_key(key, public_key, &length) == 1 && length == 32;
	EVP_PKEY_free(key);
	return ok ? 0 : -1;
}

int edge_ed25519_sign(const uint8_t private_key[32], const uint8_t *message, size_t length, uint8_t signature[64])
{
	EVP_PKEY *key = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, private_key, 32);
	if (!key)
		return -1;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	size_t signature_length = 64;
	int ok = ctx && EVP_DigestSignInit(ctx, NULL, NULL, NULL, key) == 1 &&
		 EVP_DigestSign(ctx, signature, &signature_length, message, length) == 1 && signature_length == 64;
	EVP_MD_CTX_free(ctx);
	EVP_PKEY_free(key);
	return ok ? 0 : -1;
}

int edge_ed25519_verify(const uint8_t public_key[32], const uint8_t *message, size_t length, const uint8_t signature[64])
{
	EVP_PKEY *key = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, public_key, 32);
	if (!key)
		return -1;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int ok = ctx && EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, key) == 1 &&
		 EVP_DigestVerify(ctx, signature, 64, message, length) == 1;
	EVP_MD_CTX_free(ctx);
	EVP_PKEY_free(key);
	return ok ? 0 : -1;
}
