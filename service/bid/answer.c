/* The BidResponse of a decision (bid.h): creatives with their slots filled, signed notice URLs. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "adsmith/bid.h"
#include "adsmith/doc.h"

static struct cidx_str str_of(const msgpack_object *o)
{
    if (o == NULL || o->type != MSGPACK_OBJECT_STR)
        return (struct cidx_str){NULL, 0};
    return (struct cidx_str){o->via.str.ptr, o->via.str.size};
}

static int64_t int_of(const msgpack_object *o)
{
    if (o == NULL)
        return 0;
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
        return (int64_t)o->via.u64;
    if (o->type == MSGPACK_OBJECT_FLOAT64 || o->type == MSGPACK_OBJECT_FLOAT32)
        return (int64_t)o->via.f64;
    return 0;
}

static void html_escape(struct buf *b, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        switch (s[i]) {
        case '<':
            buf_puts(b, "&lt;");
            break;
        case '>':
            buf_puts(b, "&gt;");
            break;
        case '&':
            buf_puts(b, "&amp;");
            break;
        case '"':
            buf_puts(b, "&quot;");
            break;
        case '\'':
            buf_puts(b, "&#39;");
            break;
        default:
            buf_put(b, &s[i], 1);
        }
    }
}

/* The value of slot @p name (@p n bytes) for this user: the profile's attribute, or the slot's fallback. */
static struct cidx_str slot_value(const msgpack_object *slots, const char *name, size_t n, const struct prof_view *pv)
{
    static const char *const attrs[PROF_NATTR] = {"attributes.country", "attributes.region", "attributes.city",
                                                  "attributes.language", "attributes.device", "attributes.os"};
    const msgpack_object *slot = slots != NULL ? doc_map_getn(slots, name, n) : NULL;
    struct cidx_str src, fb;
    int64_t max;

    if (slot == NULL)
        return (struct cidx_str){"", 0};
    src = str_of(doc_map_get(slot, "source"));
    fb = str_of(doc_map_get(slot, "fallback"));
    max = int_of(doc_map_get(slot, "max_length"));
    if (pv != NULL && src.len > 0) {
        for (int a = 0; a < PROF_NATTR; a++) {
            if (src.len == strlen(attrs[a]) && memcmp(src.ptr, attrs[a], src.len) == 0 && pv->attr[a] != NULL &&
                pv->attr_len[a] > 0 && (int64_t)pv->attr_len[a] <= max)
                return (struct cidx_str){pv->attr[a], pv->attr_len[a]};
        }
    }
    return fb.ptr != NULL ? fb : (struct cidx_str){"", 0};
}

/* Appends @p t with each {{slot}} replaced by its value; @p html: values HTML-escaped. */
static void fill(struct buf *b, struct cidx_str t, const msgpack_object *slots, const struct prof_view *pv, bool html)
{
    size_t i = 0;

    while (i < t.len) {
        const char *open = memmem(t.ptr + i, t.len - i, "{{", 2);
        const char *close;
        struct cidx_str v;

        if (open == NULL || (close = memmem(open + 2, t.len - (size_t)(open + 2 - t.ptr), "}}", 2)) == NULL) {
            buf_put(b, t.ptr + i, t.len - i);
            return;
        }
        buf_put(b, t.ptr + i, (size_t)(open - (t.ptr + i)));
        v = slot_value(slots, open + 2, (size_t)(close - open - 2), pv);
        if (html)
            html_escape(b, v.ptr, v.len);
        else
            buf_put(b, v.ptr, v.len);
        i = (size_t)(close + 2 - t.ptr);
    }
}

/* A slot-filled text as a JSON string (for native). */
static void json_filled(struct docw *w, struct buf *tmp, struct cidx_str t, const msgpack_object *slots,
                        const struct prof_view *pv)
{
    tmp->len = 0;
    tmp->overflow = false;
    fill(tmp, t, slots, pv, false);
    docw_str(w, tmp->base, tmp->len);
}

static void native_adm(struct buf *b, const msgpack_object *nat, const msgpack_object *slots,
                       const struct prof_view *pv)
{
    char mem[2048];
    struct buf tmp;
    struct docw w;
    const msgpack_object *img = doc_map_get(nat, "image");
    struct cidx_str desc = str_of(doc_map_get(nat, "description"));

    buf_init(&tmp, mem, sizeof(mem));
    docw_init(&w, DOC_JSON, b);
    docw_map(&w, 1);
    docw_key(&w, "native");
    docw_map(&w, 3);
    docw_key(&w, "ver");
    docw_cstr(&w, "1.2");
    docw_key(&w, "assets");
    docw_array(&w, desc.len > 0 ? 4 : 3);
    docw_map(&w, 2);
    docw_key(&w, "id");
    docw_int(&w, 1);
    docw_key(&w, "title");
    docw_map(&w, 1);
    docw_key(&w, "text");
    json_filled(&w, &tmp, str_of(doc_map_get(nat, "title")), slots, pv);
    docw_map_end(&w);
    docw_map_end(&w);
    docw_map(&w, 2);
    docw_key(&w, "id");
    docw_int(&w, 2);
    docw_key(&w, "img");
    docw_map(&w, 3);
    docw_key(&w, "url");
    {
        struct cidx_str url = str_of(img != NULL ? doc_map_get(img, "url") : NULL);
        docw_str(&w, url.ptr != NULL ? url.ptr : "", url.len);
    }
    docw_key(&w, "w");
    docw_int(&w, img != NULL ? int_of(doc_map_get(img, "w")) : 0);
    docw_key(&w, "h");
    docw_int(&w, img != NULL ? int_of(doc_map_get(img, "h")) : 0);
    docw_map_end(&w);
    docw_map_end(&w);
    docw_map(&w, 2);
    docw_key(&w, "id");
    docw_int(&w, 3);
    docw_key(&w, "data");
    docw_map(&w, 1);
    docw_key(&w, "value");
    json_filled(&w, &tmp, str_of(doc_map_get(nat, "sponsored_by")), slots, pv);
    docw_map_end(&w);
    docw_map_end(&w);
    if (desc.len > 0) {
        docw_map(&w, 2);
        docw_key(&w, "id");
        docw_int(&w, 4);
        docw_key(&w, "data");
        docw_map(&w, 1);
        docw_key(&w, "value");
        json_filled(&w, &tmp, desc, slots, pv);
        docw_map_end(&w);
        docw_map_end(&w);
    }
    docw_array_end(&w);
    docw_key(&w, "link");
    docw_map(&w, 1);
    docw_key(&w, "url");
    json_filled(&w, &tmp, str_of(doc_map_get(nat, "click_url")), slots, pv);
    docw_map_end(&w);
    docw_map_end(&w);
    docw_map_end(&w);
}

/* Writes the markup of @p fmt ("banner", "native", "video") of @p doc; false when the document has none. */
static bool write_adm(struct buf *b, const msgpack_object *doc, int32_t mtype, const char *cid,
                      const struct prof_view *pv)
{
    const msgpack_object *cr = doc_map_get(doc, "creatives"), *slots, *c;

    if (cr == NULL || cr->type != MSGPACK_OBJECT_MAP)
        return false;
    slots = doc_map_get(cr, "slots");
    switch (mtype) {
    case 1:
        if ((c = doc_map_get(cr, "banner")) == NULL || str_of(doc_map_get(c, "html_template")).len == 0)
            return false;
        fill(b, str_of(doc_map_get(c, "html_template")), slots, pv, true);
        return true;
    case 4:
        if ((c = doc_map_get(cr, "native")) == NULL || c->type != MSGPACK_OBJECT_MAP)
            return false;
        native_adm(b, c, slots, pv);
        return true;
    case 2: {
        struct cidx_str url;
        if ((c = doc_map_get(cr, "video")) == NULL || (url = str_of(doc_map_get(c, "vast_url"))).len == 0 ||
            memmem(url.ptr, url.len, "]]>", 3) != NULL)
            return false;
        buf_puts(b, "<VAST version=\"4.0\"><Ad id=\"");
        html_escape(b, cid, strlen(cid));
        buf_puts(b, "\"><Wrapper><AdSystem>adsmith</AdSystem><VASTAdTagURI><![CDATA[");
        buf_put(b, url.ptr, url.len);
        buf_puts(b, "]]></VASTAdTagURI></Wrapper></Ad></VAST>");
        return true;
    }
    default:
        return false;
    }
}

/* OpenRTB cattax of a cidx taxonomy (the inverse of ortb_cattax_to_cidx). */
static int32_t ortb_cattax(enum cidx_taxonomy t)
{
    static const int32_t map[] = {0, 1, 2, 5, 6, 7, 9};
    return (unsigned)t < sizeof(map) / sizeof(map[0]) ? map[t] : 0;
}

/* Copies @p s into @p mem; the copy, or an empty string when it did not fit. */
static struct cidx_str keep(struct buf *mem, const char *s, size_t n)
{
    size_t at = mem->len;

    buf_put(mem, s, n);
    buf_put(mem, "", 1); /* a NUL, so the copy is a C string too */
    if (mem->overflow)
        return (struct cidx_str){NULL, 0};
    return (struct cidx_str){mem->base + at, n};
}

static void cstr_n(char *dst, size_t cap, struct cidx_str s)
{
    size_t n = s.len < cap - 1 ? s.len : cap - 1;
    memcpy(dst, s.ptr, n);
    dst[n] = '\0';
}

int bid_answer(const struct ortb_req *req, const struct bid_result *res, const struct bid_answer_ctx *ctx,
               struct bid_answer *ret)
{
    static const char *const fmt[] = {"", "banner", "video", "audio", "native"};
    uint32_t n = 0;

    memset(&ret->seatbid, 0, sizeof(ret->seatbid));
    memset(&ret->resp, 0, sizeof(ret->resp));
    ret->resp.id = req->id;
    ret->resp.nbr = res->nbr;

    for (uint32_t k = 0; k < res->npicks; k++) {
        const struct bid_pick *p = &res->picks[k];
        const struct ortb_imp *imp = &req->imps[p->imp];
        struct ortb_bid *b = &ret->bids[n];
        static const enum bid_notice_kind kinds[3] = {BID_NOTICE_WIN, BID_NOTICE_BILL, BID_NOTICE_LOSS};
        struct cidx_str *urls[3] = {&b->nurl, &b->burl, &b->lurl};
        struct bid_notice nt;
        msgpack_object doc;
        char t[ORTB_ID_MAX + 80];
        size_t at;
        int len;

        if (ctx->doc(ctx->doc_ctx, p->camp->id, ctx->zone, &doc) != 0)
            continue;
        memset(b, 0, sizeof(*b));
        at = ctx->mem->len;
        if (!write_adm(ctx->mem, &doc, p->mtype, p->camp->id, res->privacy == 0 ? ctx->profile : NULL))
            continue;
        b->adm = (struct cidx_str){ctx->mem->base + at, ctx->mem->len - at};
        buf_put(ctx->mem, "", 1);
        if (imp->secure == 1 && memmem(b->adm.ptr, b->adm.len, "http://", 7) != NULL) {
            ctx->mem->len = at;
            continue;
        }
        len = snprintf(t, sizeof(t), "%.*s-%u", (int)req->id.len, req->id.ptr, p->imp);
        b->id = keep(ctx->mem, t, (size_t)len < sizeof(t) ? (size_t)len : sizeof(t) - 1);
        b->impid = imp->id;
        b->price_micros = p->price_micros;
        b->cid = (struct cidx_str){p->camp->id, strlen(p->camp->id)};
        len = snprintf(t, sizeof(t), "%s/%s", p->camp->id, fmt[p->mtype]);
        b->crid = keep(ctx->mem, t, (size_t)len);
        b->adomain = p->camp->adomain.v;
        b->nadomain = p->camp->adomain.n;
        if (p->camp->creative_categories.n > 0 && ortb_cattax(p->camp->creative_taxonomy) > 0) {
            b->cat = p->camp->creative_categories.v;
            b->ncat = p->camp->creative_categories.n;
            b->cattax = ortb_cattax(p->camp->creative_taxonomy);
        }
        b->w = p->w;
        b->h = p->h;
        b->mtype = p->mtype;
        if (p->deal != NULL)
            b->dealid = p->deal->id;
        b->model = keep(ctx->mem, res->model_version, strlen(res->model_version));

        memset(&nt, 0, sizeof(nt));
        cstr_n(nt.auction, sizeof(nt.auction), req->id);
        cstr_n(nt.bid, sizeof(nt.bid), b->id);
        cstr_n(nt.imp, sizeof(nt.imp), imp->id);
        snprintf(nt.campaign, sizeof(nt.campaign), "%s", p->camp->id);
        memcpy(nt.camp_cur, p->camp->currency, 4);
        memcpy(nt.cur, res->cur, 4);
        nt.bid_micros = p->price_micros;
        if (res->privacy == 0 && ctx->profile != NULL && ctx->profile->id_len <= PROF_ID_MAX)
            cstr_n(nt.user, sizeof(nt.user), (struct cidx_str){ctx->profile->id, ctx->profile->id_len});
        snprintf(nt.model, sizeof(nt.model), "%s", res->model_version);
        nt.test = req->test == 1;
        nt.ts = ctx->now;
        for (int u = 0; u < 3; u++) {
            nt.kind = kinds[u];
            at = ctx->mem->len;
            if (bid_notice_url(ctx->key, ctx->notice_base, &nt, ctx->mem) != 0)
                return -ENOBUFS;
            *urls[u] = (struct cidx_str){ctx->mem->base + at, ctx->mem->len - at};
            buf_put(ctx->mem, "", 1);
        }
        if (ctx->mem->overflow)
            return -ENOBUFS;
        n++;
    }
    if (n == 0)
        return 0;
    ret->seatbid.seat = (struct cidx_str){BID_SEAT, sizeof(BID_SEAT) - 1};
    ret->seatbid.bids = ret->bids;
    ret->seatbid.nbids = n;
    ret->resp.seatbids = &ret->seatbid;
    ret->resp.nseatbids = 1;
    ret->resp.bidid = ret->bids[0].id;
    if (strcmp(res->cur, "USD") != 0)
        ret->resp.cur = (struct cidx_str){res->cur, 3};
    return 0;
}
