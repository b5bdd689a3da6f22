/*
 * From a parsed BidRequest to the campaign index's question (struct
 * cidx_query), one impression at a time. Nothing is copied: the query points
 * into the request.
 */
#include <string.h>

#include "adsmith/ortb.h"

_Static_assert(ORTB_MAX_CATS > CIDX_Q_MAX_CATEGORIES, "a truncated category list must read as too long to cidx");

enum cidx_taxonomy ortb_cattax_to_cidx(int64_t cattax)
{
    /* AdCOM 1.0 List: Category Taxonomies. 3 (Ad Product 1.0), 4 (Audience
     * 1.1), 8 (Ad Product 2.0) and 500+ (vendor) are not content taxonomies
     * campaigns can target. */
    switch (cattax) {
    case 1: return CIDX_TAX_CONTENT_1_0;
    case 2: return CIDX_TAX_CONTENT_2_0;
    case 5: return CIDX_TAX_CONTENT_2_1;
    case 6: return CIDX_TAX_CONTENT_2_2;
    case 7: return CIDX_TAX_CONTENT_3_0;
    case 9: return CIDX_TAX_CONTENT_3_1;
    default: return CIDX_TAX_NONE;
    }
}

const char *ortb_devicetype_name(int64_t devicetype)
{
    /* AdCOM 1.0 List: Device Types. 1 is "mobile/tablet, general": most such
     * traffic is phones, and a campaign that wants tablets only is better
     * served by the senders that say 5. */
    switch (devicetype) {
    case 1:
    case 4: return "phone";
    case 5: return "tablet";
    case 2: return "desktop";
    case 3:
    case 7: return "ctv";
    case 6:
    case 8: return "other";
    default: return NULL;
    }
}

int32_t ortb_imp_find(const struct ortb_req *req, struct cidx_str id)
{
    for (uint32_t i = 0; i < req->nimps; i++) {
        const struct cidx_str *x = &req->imps[i].id;
        if (x->len == id.len && id.len > 0 && memcmp(x->ptr, id.ptr, id.len) == 0)
            return (int32_t)i;
    }
    return -1;
}

static struct cidx_str cstr(const char *s)
{
    struct cidx_str r = {s, s != NULL ? strlen(s) : 0};
    return r;
}

/* The host of a page URL ("https://www.example.com:8080/x" -> "www.example.com"), or empty. */
static struct cidx_str url_host(struct cidx_str url)
{
    struct cidx_str h = {NULL, 0};
    const char *p, *end, *s;

    if (url.ptr == NULL || url.len == 0)
        return h;
    p = url.ptr;
    end = url.ptr + url.len;
    for (s = p; s + 2 < end; s++) {
        if (s[0] == ':' && s[1] == '/' && s[2] == '/') {
            p = s + 3;
            break;
        }
        if (s[0] == '/' || s[0] == '?' || s[0] == '#')
            return h; /* no scheme: not a URL we read */
    }
    if (p == url.ptr)
        return h;
    for (s = p; s < end && *s != '/' && *s != '?' && *s != '#'; s++) {
        if (*s == '@')
            p = s + 1; /* userinfo */
    }
    end = s;
    for (s = p; s < end && *s != ':'; s++)
        ;
    if (s > p) {
        h.ptr = p;
        h.len = (size_t)(s - p);
    }
    return h;
}

int ortb_imp_query(const struct ortb_req *req, uint32_t imp, int64_t now, struct cidx_query *ret_q)
{
    const struct ortb_imp *im;
    const struct ortb_geo *geo;
    const struct ortb_site *inv;
    struct cidx_query q;

    if (imp >= req->nimps)
        return ADS_EINVAL;
    im = &req->imps[imp];
    memset(&q, 0, sizeof(q));

    geo = req->device.geo.country.len > 0 || req->device.geo.region.len > 0 ? &req->device.geo : &req->user.geo;
    /* OpenRTB sends alpha-3 and cidx compares codes as written; campaigns
     * and profiles mostly write alpha-2, so a known code goes in as alpha-2. */
    q.country = geo->country2.len > 0 ? geo->country2 : geo->country;
    q.region = geo->region_code;
    q.device = cstr(ortb_devicetype_name(req->device.devicetype));
    q.os = req->device.os_full;
    q.language = req->device.language;

    if (req->site.present) {
        q.domain = req->site.domain.len > 0 ? req->site.domain : url_host(req->site.page);
    }
    if (q.domain.len == 0 && req->app.present)
        q.domain = req->app.domain;
    if (req->app.present)
        q.bundle = req->app.bundle;

    inv = req->site.present ? &req->site : req->app.present ? &req->app : NULL;
    if (inv != NULL && inv->cat.n > 0) {
        q.cattax = ortb_cattax_to_cidx(inv->cattax);
        q.categories = inv->cat.v;
        /* A list cut short at ORTB_MAX_CATS may hide an excluded category;
         * its count is above CIDX_Q_MAX_CATEGORIES, which cidx reads as
         * "too long": matching every exclusion. */
        q.ncategories = inv->cat.n;
    }
    q.segments = req->user.segments.v;
    q.nsegments = req->user.segments.n;

    if (im->has_banner) {
        q.formats |= CIDX_FMT_BANNER;
        q.banner_sizes = im->formats;
        q.nbanner_sizes = im->nformats;
    }
    if (im->has_native)
        q.formats |= CIDX_FMT_NATIVE;
    if (im->has_video) {
        q.formats |= CIDX_FMT_VIDEO;
        q.video_size = im->video_size;
    }
    q.deals = im->deal_ids;
    q.ndeals = im->ndeals;
    q.private_auction = im->private_auction == 1;
    q.now = now;
    *ret_q = q;
    return 0;
}
