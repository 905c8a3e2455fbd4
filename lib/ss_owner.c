/* ss_owner.c - hashed owner names (ss_owner.h). */
#include <string.h>

#include <openssl/evp.h>

#include "ss_owner.h"

#define OWNER_LABEL "mod_sessstore owner v1"

apr_status_t ss_owner_hash(const char *name, ss_owner_t *owner)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_MD_CTX *ctx;
    int ok;

    if (!name || !*name) {
        return APR_EINVAL;
    }
    ctx = EVP_MD_CTX_new();
    if (!ctx) {
        return APR_ENOMEM;
    }
    /* The label with its NUL: no name can make "label + name" collide with
     * another label's input. */
    ok = EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) &&
         EVP_DigestUpdate(ctx, OWNER_LABEL, sizeof(OWNER_LABEL)) &&
         EVP_DigestUpdate(ctx, name, strlen(name)) && EVP_DigestFinal_ex(ctx, md, &len) &&
         len >= SS_OWNER_BYTES;
    EVP_MD_CTX_free(ctx);
    if (!ok) {
        return APR_EGENERAL;
    }
    memcpy(owner->bytes, md, SS_OWNER_BYTES);
    return APR_SUCCESS;
}

void ss_owner_hex(const ss_owner_t *owner, char *out)
{
    static const char hex[] = "0123456789abcdef";
    int i;

    for (i = 0; i < SS_OWNER_BYTES; i++) {
        out[2 * i] = hex[owner->bytes[i] >> 4];
        out[2 * i + 1] = hex[owner->bytes[i] & 15];
    }
    out[SS_OWNER_HEX_LEN] = '\0';
}
