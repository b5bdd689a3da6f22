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

/* A slot-filled text as a JSON string (for native). */
static void json_filled(struct docw *w, struct buf *tmp, struct cidx_str t, const msgpack_object *slots,
                        const struct vpick_slot_ctx *sc)
{
    tmp->len = 0;
    tmp->overflow = false;
    vpick_fill(tmp, t, slots, sc, false);
    docw_str(w, tmp->base, tmp->len);
}

/* A text of variant @p var (its slots compiled into the snapshot), or of the base creative when @p var is NULL. */
static void json_text(struct docw *w, struct buf *tmp, struct cidx_str t, const msgpack_object *slots,
                      const struct vpick_slot_ctx *sc, const struct vpick_variant *var)
{
    if (var == NULL) {
        json_filled(w, tmp, t, slots, sc);
        return;
    }
    tmp->len = 0;
    tmp->overflow = false;
    vpick_fill_variant(tmp, var, t, sc, false);
    docw_str(w, tmp->base, tmp->len);
}

static struct cidx_str cstr(const char *s)
{
    return (struct cidx_str){s, strlen(s)};
}

/* A data asset {"id": id, "data": {"value": filled text}} (@p var: a variant's text, see json_text). */
static void data_asset(struct docw *w, struct buf *tmp, int id, struct cidx_str t, const msgpack_object *slots,
                       const struct vpick_slot_ctx *sc, const struct vpick_variant *var)
{
    docw_map(w, 2);
    docw_key(w, "id");
    docw_int(w, id);
    docw_key(w, "data");
    docw_map(w, 1);
    docw_key(w, "value");
    json_text(w, tmp, t, slots, sc, var);
    docw_map_end(w);
    docw_map_end(w);
}

/* The native response; @p var (may be NULL) replaces title, description and cta and labels the sponsor. */
static void native_adm(struct buf *b, const msgpack_object *nat, const msgpack_object *slots,
                       const struct vpick_slot_ctx *sc, const struct vpick_variant *var)
{
    char mem[2048], lab[VAR_LABEL_MAX + 160];
    struct buf tmp, label;
    struct docw w;
    const msgpack_object *img = doc_map_get(nat, "image");
    struct cidx_str title = str_of(doc_map_get(nat, "title")), desc = str_of(doc_map_get(nat, "description"));
    struct cidx_str cta = str_of(doc_map_get(nat, "cta")), sponsor = str_of(doc_map_get(nat, "sponsored_by"));
    const struct vpick_variant *desc_var = NULL, *cta_var = NULL;

    if (var != NULL) {
        title = cstr(var->title);
        if (var->description[0] != '\0') {
            desc = cstr(var->description);
            desc_var = var;
        }
        if (var->cta[0] != '\0') {
            cta = cstr(var->cta);
            cta_var = var;
        }
        /* The disclosure travels with the sponsor: every native layout shows sponsored-by. */
        buf_init(&label, lab, sizeof(lab));
        buf_put(&label, sponsor.ptr != NULL ? sponsor.ptr : "", sponsor.len);
        buf_puts(&label, " \xc2\xb7 ");
        buf_puts(&label, var->ai_label);
        if (!label.overflow)
            sponsor = (struct cidx_str){label.base, label.len};
    }
    buf_init(&tmp, mem, sizeof(mem));
    docw_init(&w, DOC_JSON, b);
    docw_map(&w, 1);
    docw_key(&w, "native");
    docw_map(&w, 3);
    docw_key(&w, "ver");
    docw_cstr(&w, "1.2");
    docw_key(&w, "assets");
    docw_array(&w, 3 + (desc.len > 0) + (cta.len > 0));
    docw_map(&w, 2);
    docw_key(&w, "id");
    docw_int(&w, 1);
    docw_key(&w, "title");
    docw_map(&w, 1);
    docw_key(&w, "text");
    json_text(&w, &tmp, title, slots, sc, var);
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
    data_asset(&w, &tmp, 3, sponsor, slots, sc, NULL);
    if (desc.len > 0)
        data_asset(&w, &tmp, 4, desc, slots, sc, desc_var);
    if (cta.len > 0)
        data_asset(&w, &tmp, 5, cta, slots, sc, cta_var);
    docw_array_end(&w);
    docw_key(&w, "link");
    docw_map(&w, 1);
    docw_key(&w, "url");
    json_filled(&w, &tmp, str_of(doc_map_get(nat, "click_url")), slots, sc);
    docw_map_end(&w);
    docw_map_end(&w);
    docw_map_end(&w);
}

/* Writes the markup of @p fmt ("banner", "native", "video") of @p doc; false when the document has none. */
static bool write_adm(struct buf *b, const msgpack_object *doc, int32_t mtype, const char *cid,
                      const struct vpick_slot_ctx *sc, const struct vpick_variant *var)
{
    const msgpack_object *cr = doc_map_get(doc, "creatives"), *slots, *c;

    if (cr == NULL || cr->type != MSGPACK_OBJECT_MAP)
        return false;
    slots = doc_map_get(cr, "slots");
    switch (mtype) {
    case 1:
        if ((c = doc_map_get(cr, "banner")) == NULL || str_of(doc_map_get(c, "html_template")).len == 0)
            return false;
        vpick_fill(b, str_of(doc_map_get(c, "html_template")), slots, sc, true);
        return true;
    case 4:
        if ((c = doc_map_get(cr, "native")) == NULL || c->type != MSGPACK_OBJECT_MAP)
            return false;
        native_adm(b, c, slots, sc, var);
        return true;
    case 2: {
        struct cidx_str url;
        if ((c = doc_map_get(cr, "video")) == NULL || (url = str_of(doc_map_get(c, "vast_url"))).len == 0 ||
            memmem(url.ptr, url.len, "]]>", 3) != NULL)
            return false;
        buf_puts(b, "<VAST version=\"4.0\"><Ad id=\"");
        vpick_html_escape(b, cid, strlen(cid));
        buf_puts(b, "\"><Wrapper><AdSystem>adsmith</AdSystem><VASTAdTagURI><![CDATA[");
        buf_put(b, url.ptr, url.len);
        buf_puts(b, "]]></VASTAdTagURI></Wrapper></Ad></VAST>");
        return true;
    }
    default: return false;
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
    return bid_answer_variants(req, res, ctx, NULL, ret);
}

int bid_answer_variants(const struct ortb_req *req, const struct bid_result *res, const struct bid_answer_ctx *ctx,
                        const struct bid_variant_ctx *vctx, struct bid_answer *ret)
{
    const struct vpick_set *vset = vctx != NULL && vctx->rng != NULL ? vctx->set : NULL;
    static const char *const fmt[] = {"", "banner", "video", "audio", "native"};
    const struct prof_view *pv = res->privacy == 0 ? ctx->profile : NULL;
    struct cidx_str segs[VPICK_MAX_SEGS];
    uint32_t n = 0, nsegs = 0;

    /* The user's segments choose among segment variants only when the profile may be used. */
    if (pv != NULL && vset != NULL) {
        struct mpr it = pv->segments;
        struct prof_tag_ref tag;
        for (uint32_t i = 0; i < pv->nsegments && nsegs < VPICK_MAX_SEGS && prof_view_next_tag(&it, &tag) == 0; i++)
            segs[nsegs++] = (struct cidx_str){tag.id, tag.id_len};
    }

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

        const struct vpick_slot_ctx sc = {pv, p->camp->zone, ctx->now};
        const struct vpick_variant *var = NULL;

        if (ctx->doc(ctx->doc_ctx, p->camp->id, ctx->zone, &doc) != 0)
            continue;
        memset(b, 0, sizeof(*b));
        ret->variant[n][0] = '\0';
        if (p->mtype == 4 && vset != NULL) {
            var =
                vpick_choose(vset, p->camp->id, segs, nsegs, req->device.language, vctx->rng, vctx->control_pct, NULL);
            snprintf(ret->variant[n], sizeof(ret->variant[n]), "%s", var != NULL ? var->id : VAR_BASE);
        }
        at = ctx->mem->len;
        if (!write_adm(ctx->mem, &doc, p->mtype, p->camp->id, &sc, var))
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
        if (var != NULL)
            len = snprintf(t, sizeof(t), "%s/%s/%s", p->camp->id, fmt[p->mtype], var->id);
        else
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
        if (ret->variant[n][0] != '\0')
            b->variant = (struct cidx_str){ret->variant[n], strlen(ret->variant[n])};

        memset(&nt, 0, sizeof(nt));
        cstr_n(nt.auction, sizeof(nt.auction), req->id);
        cstr_n(nt.bid, sizeof(nt.bid), b->id);
        cstr_n(nt.imp, sizeof(nt.imp), imp->id);
        snprintf(nt.campaign, sizeof(nt.campaign), "%s", p->camp->id);
        memcpy(nt.camp_cur, p->camp->currency, 4);
        memcpy(nt.cur, res->cur, 4);
        nt.bid_micros = p->price_micros;
        if (pv != NULL && pv->id_len <= PROF_ID_MAX)
            cstr_n(nt.user, sizeof(nt.user), (struct cidx_str){pv->id, pv->id_len});
        snprintf(nt.model, sizeof(nt.model), "%s", res->model_version);
        nt.test = req->test == 1;
        nt.ts = ctx->now;
        memcpy(nt.variant, ret->variant[n], sizeof(nt.variant));
        /* UTC, the most common zone, is left out: shorter URLs, and old notices read the same. */
        if (strcmp(p->camp->time_zone, "UTC") != 0)
            snprintf(nt.time_zone, sizeof(nt.time_zone), "%s", p->camp->time_zone);
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
