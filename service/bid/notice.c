/* Signed notice URLs (bid.h): HMAC-SHA256 over the canonical parameters. */
#include <errno.h>
#include <inttypes.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/params.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adsmith/bid.h"

const char *bid_notice_kind_name(enum bid_notice_kind k)
{
    switch (k) {
    case BID_NOTICE_WIN: return "win";
    case BID_NOTICE_BILL: return "bill";
    case BID_NOTICE_LOSS: return "loss";
    }
    return "unknown";
}

/*
 * The signed text: a fixed label, the kind, then each parameter on a line of
 * its own. Values cannot hold a newline that would shift a field into the
 * next (ids are checked by the parser; a newline would only ever make the
 * text differ), and every field is present, so two notices sign alike only
 * when they are equal.
 */
static size_t canonical(const struct bid_notice *n, char *out, size_t cap)
{
    int len = snprintf(
        out, cap, "adsmith-notice-1\n%s\n%zu:%s\n%zu:%s\n%zu:%s\n%s\n%s\n%s\n%" PRId64 "\n%zu:%s\n%s\n%d\n%" PRId64,
        bid_notice_kind_name(n->kind), strlen(n->auction), n->auction, strlen(n->bid), n->bid, strlen(n->imp), n->imp,
        n->campaign, n->camp_cur, n->cur, n->bid_micros, strlen(n->user), n->user, n->model, n->test, n->ts);
    /* The variant joined later: only a notice that carries one signs it, so older URLs verify as they did. */
    if (len >= 0 && (size_t)len < cap && n->variant[0] != '\0') {
        int more = snprintf(out + len, cap - (size_t)len, "\nvr:%s", n->variant);
        len = more < 0 ? len : len + more;
    }
    if (len >= 0 && (size_t)len < cap && n->time_zone[0] != '\0') {
        int more = snprintf(out + len, cap - (size_t)len, "\ntz:%s", n->time_zone);
        len = more < 0 ? len : len + more;
    }
    return len < 0 ? 0 : (size_t)len < cap ? (size_t)len : cap - 1;
}

/*
 * One keyed HMAC context per thread. OpenSSL 3's one-shot HMAC() looks the
 * algorithm up in its provider store and hashes the key pads on every call
 * (about 2 us here, three times per bid); re-initialising a keyed context with
 * a NULL key reuses the key, and costs only the hashing of the text.
 */
struct sign_ctx {
    EVP_MAC_CTX *mac;
    uint8_t key[BID_KEY_BYTES];
};

static pthread_key_t sign_key;
static pthread_once_t sign_once = PTHREAD_ONCE_INIT;

static void sign_ctx_free(void *p)
{
    struct sign_ctx *c = p;

    EVP_MAC_CTX_free(c->mac);
    free(c);
}

static void sign_key_init(void)
{
    (void)pthread_key_create(&sign_key, sign_ctx_free);
}

/* This thread's context keyed with @p key, or NULL (out of memory: the caller signs the slow way). */
static EVP_MAC_CTX *sign_ctx(const uint8_t key[BID_KEY_BYTES])
{
    struct sign_ctx *c;
    EVP_MAC *alg;
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string("digest", (char *)"SHA256", 0), OSSL_PARAM_construct_end()};

    pthread_once(&sign_once, sign_key_init);
    if ((c = pthread_getspecific(sign_key)) == NULL) {
        if ((c = calloc(1, sizeof(*c))) == NULL)
            return NULL;
        if ((alg = EVP_MAC_fetch(NULL, "HMAC", NULL)) == NULL || (c->mac = EVP_MAC_CTX_new(alg)) == NULL ||
            EVP_MAC_init(c->mac, key, BID_KEY_BYTES, params) != 1 || pthread_setspecific(sign_key, c) != 0) {
            EVP_MAC_free(alg);
            sign_ctx_free(c);
            return NULL;
        }
        EVP_MAC_free(alg); /* the context holds its own reference */
        memcpy(c->key, key, BID_KEY_BYTES);
        return c->mac;
    }
    if (CRYPTO_memcmp(c->key, key, BID_KEY_BYTES) != 0) {
        if (EVP_MAC_init(c->mac, key, BID_KEY_BYTES, params) != 1)
            return NULL;
        memcpy(c->key, key, BID_KEY_BYTES);
        return c->mac;
    }
    return EVP_MAC_init(c->mac, NULL, 0, NULL) == 1 ? c->mac : NULL;
}

static void sign_raw(const uint8_t key[BID_KEY_BYTES], const struct bid_notice *n, uint8_t mac[32])
{
    char text[4 * ORTB_ID_MAX + PROF_ID_MAX + VAR_ID_LEN + CIDX_TZ_MAX + 256];
    size_t len = canonical(n, text, sizeof(text)), outl = 0;
    unsigned int maclen = 32;
    EVP_MAC_CTX *c = sign_ctx(key);

    if (c != NULL && EVP_MAC_update(c, (const unsigned char *)text, len) == 1 &&
        EVP_MAC_final(c, mac, &outl, 32) == 1 && outl == 32)
        return;
    HMAC(EVP_sha256(), key, BID_KEY_BYTES, (const unsigned char *)text, len, mac, &maclen);
}

void bid_notice_sign(const uint8_t key[BID_KEY_BYTES], const struct bid_notice *n, char ret_hex[BID_SIG_HEX + 1])
{
    static const char hex[] = "0123456789abcdef";
    uint8_t mac[32];

    sign_raw(key, n, mac);
    for (int i = 0; i < 32; i++) {
        ret_hex[2 * i] = hex[mac[i] >> 4];
        ret_hex[2 * i + 1] = hex[mac[i] & 15];
    }
    ret_hex[BID_SIG_HEX] = '\0';
}

bool bid_notice_verify(const uint8_t key[BID_KEY_BYTES], const struct bid_notice *n, const char *sig, size_t len)
{
    char want[BID_SIG_HEX + 1], got[BID_SIG_HEX];

    if (len != BID_SIG_HEX)
        return false;
    bid_notice_sign(key, n, want);
    /* Lower-case what was sent so that an exchange that upper-cases hex still matches. */
    for (size_t i = 0; i < BID_SIG_HEX; i++)
        got[i] = (char)(sig[i] >= 'A' && sig[i] <= 'F' ? sig[i] + 32 : sig[i]);
    return CRYPTO_memcmp(want, got, BID_SIG_HEX) == 0;
}

static int put(struct buf *out, const char *s, size_t n)
{
    if (out->len + n + 1 > out->cap)
        return -ENOBUFS;
    memcpy(out->base + out->len, s, n);
    out->len += n;
    out->base[out->len] = '\0';
    return 0;
}

static int put_enc(struct buf *out, const char *name, const char *v)
{
    static const char hex[] = "0123456789ABCDEF";
    int rc = 0;

    rc |= put(out, "&", 1);
    rc |= put(out, name, strlen(name));
    rc |= put(out, "=", 1);
    for (const unsigned char *p = (const unsigned char *)v; *p != '\0' && rc == 0; p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' ||
            *p == '_' || *p == '.' || *p == '~') {
            rc = put(out, (const char *)p, 1);
        } else {
            char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            rc = put(out, e, 3);
        }
    }
    return rc != 0 ? -ENOBUFS : 0;
}

int bid_notice_url(const uint8_t key[BID_KEY_BYTES], const char *base, const struct bid_notice *n, struct buf *out)
{
    char num[24], sig[BID_SIG_HEX + 1];
    const char *kind = bid_notice_kind_name(n->kind);
    int rc = 0;

    rc |= put(out, base, strlen(base));
    rc |= put(out, "/v1/notice/", 11);
    rc |= put(out, kind, strlen(kind));
    rc |= put(out, "?v=1", 4);
    rc |= put_enc(out, "a", n->auction);
    rc |= put_enc(out, "b", n->bid);
    rc |= put_enc(out, "i", n->imp);
    rc |= put_enc(out, "c", n->campaign);
    rc |= put_enc(out, "cc", n->camp_cur);
    rc |= put_enc(out, "cur", n->cur);
    snprintf(num, sizeof(num), "%" PRId64, n->bid_micros);
    rc |= put_enc(out, "bp", num);
    rc |= put_enc(out, "u", n->user);
    rc |= put_enc(out, "m", n->model);
    rc |= put_enc(out, "t", n->test ? "1" : "0");
    snprintf(num, sizeof(num), "%" PRId64, n->ts);
    rc |= put_enc(out, "ts", num);
    if (n->variant[0] != '\0')
        rc |= put_enc(out, "vr", n->variant);
    if (n->time_zone[0] != '\0')
        rc |= put_enc(out, "tz", n->time_zone);
    if (n->kind == BID_NOTICE_LOSS)
        rc |= put(out, "&l=" ORTB_MACRO_AUCTION_LOSS, 3 + strlen(ORTB_MACRO_AUCTION_LOSS));
    else
        rc |= put(out, "&p=" ORTB_MACRO_AUCTION_PRICE, 3 + strlen(ORTB_MACRO_AUCTION_PRICE));
    bid_notice_sign(key, n, sig);
    rc |= put_enc(out, "sig", sig);
    return rc != 0 ? -ENOBUFS : 0;
}

int bid_price_parse(const char *s, int64_t *ret_micros)
{
    int64_t units = 0, frac = 0;
    int digits = 0, fd = 0;
    const char *p = s;

    while (*p >= '0' && *p <= '9') {
        if (units > 1000000000000LL)
            return ADS_EINVAL;
        units = units * 10 + (*p++ - '0');
        digits++;
    }
    if (*p == '.') {
        p++;
        while (*p >= '0' && *p <= '9') {
            if (fd < 6) {
                frac = frac * 10 + (*p - '0');
                fd++;
            }
            p++;
            digits++;
        }
    }
    if (digits == 0 || *p != '\0' || units > 1000000000000LL)
        return ADS_EINVAL;
    for (; fd < 6; fd++)
        frac *= 10;
    *ret_micros = units * 1000000 + frac;
    return 0;
}
