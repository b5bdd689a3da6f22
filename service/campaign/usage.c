/*
 * usage: what a campaign spent, money and tokens, and what its tokens bought: the
 * current token period (ledger_usage), a report of the token rollups between
 * from and to grouped as asked (ledger_days), and the results of the variants
 * those tokens wrote next to the control arm (variant statistics), with the
 * CTR uplift of generated variants over the base creative and its 95 %
 * confidence interval.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adsmith/usage.h"

#include "adsmith/camps.h"
#include "adsmith/doc.h"
#include "adsmith/ledger.h"
#include "adsmith/variant.h"

#define USAGE_MODEL_MAX 64

static const char *const usage_kinds[LEDGER_KINDS] = {"prompt", "cached", "completion", "reasoning"};

struct usage_row {
    int32_t day;                     /* INT32_MIN when not grouped by day */
    char model[USAGE_MODEL_MAX + 1]; /* "" when not grouped by model */
    int kind;                        /* -1 when not grouped by kind */
    uint64_t tokens, money_micros, generations, estimated;
};

struct usage_report {
    unsigned group;
    struct usage_row *rows;
    size_t n, cap;
    bool truncated;
    uint64_t tokens, money_micros, generations;
};

/* The civil date of a count of days since 1970-01-01 (proleptic Gregorian). */
static void usage_date(int32_t days, char out[24])
{
    int64_t z = (int64_t)days + 719468, era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097, yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t y = yoe + era * 400, doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
    int64_t d = doy - (153 * mp + 2) / 5 + 1, m = mp < 10 ? mp + 3 : mp - 9;

    snprintf(out, 24, "%04d-%02d-%02d", (int)(y + (m <= 2)), (int)m, (int)d);
}

static void usage_add(struct usage_report *rep, int32_t day, const char *model, size_t model_len, int kind,
                      uint64_t tokens, uint64_t money, uint64_t gens, uint64_t est)
{
    struct usage_row key = {.day = INT32_MIN, .kind = -1};

    if (rep->group & USAGE_G_DAY)
        key.day = day;
    if (rep->group & USAGE_G_MODEL) {
        size_t n = model_len < USAGE_MODEL_MAX ? model_len : USAGE_MODEL_MAX;
        memcpy(key.model, model, n);
        key.model[n] = '\0';
    }
    if (rep->group & USAGE_G_KIND)
        key.kind = kind;
    rep->tokens += tokens;
    rep->money_micros += money;
    rep->generations += gens;
    /* Rows arrive in (day, model) order, so a matching row is among the last few. */
    for (size_t i = rep->n; i-- > 0;) {
        struct usage_row *r = &rep->rows[i];
        if (r->day == key.day && r->kind == key.kind && strcmp(r->model, key.model) == 0) {
            r->tokens += tokens;
            r->money_micros += money;
            r->generations += gens;
            r->estimated += est;
            return;
        }
        if ((rep->group & USAGE_G_DAY) && r->day != key.day)
            break;
    }
    if (rep->n == rep->cap) {
        rep->truncated = true;
        return;
    }
    key.tokens = tokens;
    key.money_micros = money;
    key.generations = gens;
    key.estimated = est;
    rep->rows[rep->n++] = key;
}

static int usage_day_cb(const struct ledger_day *d, void *arg)
{
    struct usage_report *rep = arg;

    if (rep->group & USAGE_G_KIND) {
        /* Money and generations are per call, not per kind: they go with the prompt row. */
        for (int k = 0; k < LEDGER_KINDS; k++)
            usage_add(rep, d->day, d->model, d->model_len, k, d->tokens[k], k == 0 ? d->money_micros : 0,
                      k == 0 ? d->generations : 0, k == 0 ? d->estimated : 0);
    } else {
        uint64_t t = 0;
        for (int k = 0; k < LEDGER_KINDS; k++)
            t += d->tokens[k];
        usage_add(rep, d->day, d->model, d->model_len, -1, t, d->money_micros, d->generations, d->estimated);
    }
    return 0;
}

/* A variant's results and the tokens of the generation that wrote it, shared by the variants it wrote. */
struct usage_variant {
    char id[VAR_ID_LEN + 1];
    char request[VAR_NAME_MAX + 1];
    uint8_t state;
    uint64_t created_at, tokens;
    struct var_stats st;
};

struct usage_variants {
    struct usage_variant *v;
    size_t n, cap;
    char last[VAR_ID_LEN + 1];
};

static int usage_variant_cb(void *ctx, const struct var_rec *rec)
{
    struct usage_variants *uv = ctx;
    struct usage_variant *v;

    memcpy(uv->last, rec->id, sizeof(uv->last));
    if (uv->n == uv->cap)
        return 0;
    v = &uv->v[uv->n++];
    memcpy(v->id, rec->id, sizeof(v->id));
    memcpy(v->request, rec->prov.request_id, sizeof(v->request));
    v->state = rec->state;
    v->created_at = rec->prov.created_at;
    v->tokens = rec->prov.prompt_tokens + rec->prov.completion_tokens;
    return 0;
}

static int usage_parse_check(unsigned g)
{
    return (g & USAGE_G_VARIANT) && g != USAGE_G_VARIANT ? ADS_EINVAL : 0;
}

int usage_parse_group(const char *s, unsigned *ret)
{
    unsigned g = 0;

    while (*s != '\0') {
        size_t n = strcspn(s, ",");
        if (n == 3 && memcmp(s, "day", 3) == 0)
            g |= USAGE_G_DAY;
        else if (n == 5 && memcmp(s, "model", 5) == 0)
            g |= USAGE_G_MODEL;
        else if (n == 4 && memcmp(s, "kind", 4) == 0)
            g |= USAGE_G_KIND;
        else if (n == 7 && memcmp(s, "variant", 7) == 0)
            g |= USAGE_G_VARIANT;
        else if (n != 0)
            return ADS_EINVAL;
        s += n + (s[n] == ',');
    }
    if (usage_parse_check(g) != 0)
        return ADS_EINVAL;
    *ret = g;
    return 0;
}

/* CTR uplift of @p g over @p c: relative, with a 95 % interval from the log of the ratio (delta method). */
static void usage_uplift(struct docw *w, const struct var_stats *g, const struct var_stats *c)
{
    double cg, cc, rr, se;

    docw_map(w, 5);
    docw_key(w, "ctr_generated");
    if (g->impressions > 0)
        docw_double(w, (double)g->clicks / (double)g->impressions);
    else
        docw_nil(w);
    docw_key(w, "ctr_control");
    if (c->impressions > 0)
        docw_double(w, (double)c->clicks / (double)c->impressions);
    else
        docw_nil(w);
    if (g->clicks == 0 || c->clicks == 0 || g->impressions == 0 || c->impressions == 0) {
        docw_key(w, "relative");
        docw_nil(w);
        docw_key(w, "ci95");
        docw_nil(w);
    } else {
        cg = (double)g->clicks / (double)g->impressions;
        cc = (double)c->clicks / (double)c->impressions;
        rr = cg / cc;
        se = sqrt(1.0 / (double)g->clicks - 1.0 / (double)g->impressions + 1.0 / (double)c->clicks -
                  1.0 / (double)c->impressions);
        docw_key(w, "relative");
        docw_double(w, rr - 1.0);
        docw_key(w, "ci95");
        docw_array(w, 2);
        docw_double(w, exp(log(rr) - 1.96 * se) - 1.0);
        docw_double(w, exp(log(rr) + 1.96 * se) - 1.0);
        docw_array_end(w);
    }
    docw_key(w, "method");
    docw_cstr(w, "relative CTR difference; 95% interval of the CTR ratio by the delta method on its log");
    docw_map_end(w);
}

static void usage_csv(struct buf *out, const struct usage_report *rep, const struct usage_variants *uv)
{
    struct buf b = *out;
    char date[24];

    if (rep->group & USAGE_G_VARIANT) {
        buf_puts(&b, "variant,state,created_at,tokens,impressions,clicks,conversions\r\n");
        for (size_t i = 0; i < uv->n; i++)
            buf_printf(&b, "%s,%s,%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 "\r\n", uv->v[i].id,
                       var_state_name((enum var_state)uv->v[i].state), uv->v[i].created_at, uv->v[i].tokens,
                       uv->v[i].st.impressions, uv->v[i].st.clicks, uv->v[i].st.conversions);
    } else {
        if (rep->group & USAGE_G_DAY)
            buf_puts(&b, "day,");
        if (rep->group & USAGE_G_MODEL)
            buf_puts(&b, "model,");
        if (rep->group & USAGE_G_KIND)
            buf_puts(&b, "kind,");
        buf_puts(&b, "tokens,money_micros,generations,estimated\r\n");
        for (size_t i = 0; i < rep->n; i++) {
            const struct usage_row *row = &rep->rows[i];
            if (rep->group & USAGE_G_DAY) {
                usage_date(row->day, date);
                buf_printf(&b, "%s,", date);
            }
            if (rep->group & USAGE_G_MODEL) {
                /* Model names are 1-64 bytes a server configures; quote them as RFC 4180 asks. */
                buf_puts(&b, "\"");
                for (const char *p = row->model; *p != '\0'; p++)
                    buf_printf(&b, *p == '"' ? "\"\"" : "%c", *p);
                buf_puts(&b, "\",");
            }
            if (rep->group & USAGE_G_KIND)
                buf_printf(&b, "%s,", usage_kinds[row->kind]);
            buf_printf(&b, "%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 "\r\n", row->tokens, row->money_micros,
                       row->generations, row->estimated);
        }
    }
    *out = b;
}

int usage_report(MDB_txn *txn, struct store *s, const struct camps_rec *rec, const struct usage_query *uq, int64_t now,
                 struct buf *out, struct ads_diag *ret_diag)
{
    struct camps_usage cu;
    struct ledger_usage lu;
    struct ledger_pkg *pkg = NULL;
    struct ledger_zones *zones = NULL;
    struct usage_report rep = {.group = uq->group != 0 ? uq->group : USAGE_G_DAY};
    struct usage_variants uv = {0};
    struct var_stats gen = {0}, control = {0};
    msgpack_zone zone;
    msgpack_object doc;
    char date[24];
    bool has_pkg = false;
    int64_t from = uq->from, to = uq->to >= 0 ? uq->to : now;
    const msgpack_object *budget, *v, *pkgdoc;
    struct docw w;
    struct buf b;
    int rc;

    if (usage_parse_check(rep.group) != 0)
        return ads_diag_set(ret_diag, ADS_EINVAL, "/group",
                            "group is a comma-separated list of day, model and kind, or variant alone");
    msgpack_zone_init(&zone, 4096);
    rep.cap = USAGE_MAX_ROWS;
    uv.cap = VAR_MAX_PER_CAMPAIGN;
    pkg = malloc(sizeof(*pkg));
    rep.rows = malloc(sizeof(*rep.rows) * rep.cap);
    uv.v = malloc(sizeof(*uv.v) * uv.cap);
    if (pkg == NULL || rep.rows == NULL || uv.v == NULL) {
        rc = ADS_ENOMEM;
        goto out;
    }
    memset(&lu, 0, sizeof(lu));
    {
        size_t off = 0;
        rc = msgpack_unpack(rec->doc, rec->doc_len, &off, &zone, &doc) == MSGPACK_UNPACK_SUCCESS &&
                     doc.type == MSGPACK_OBJECT_MAP
                 ? 0
                 : ADS_EDATA_INVALID;
    }
    if (rc == 0)
        rc = camps_usage_get(txn, s, rec->id, &cu);
    if (rc == 0 && (rc = ledger_zones_new(&zones)) == 0) {
        int prc = ledger_pkg_from_doc(&doc, zones, pkg);
        has_pkg = prc == 0;
        if (prc != 0 && prc != ADS_ENOT_FOUND)
            rc = prc;
    }
    if (rc == 0 && has_pkg)
        rc = ledger_usage(txn, s, rec->id, pkg, now, &lu);
    if (rc == 0 && from < 0)
        from = has_pkg ? lu.period_start : to - 30 * 86400;
    if (rc == 0 && (to < from || (to - from) / 86400 > USAGE_MAX_DAYS)) {
        rc = ads_diag_set(ret_diag, ADS_EINVAL, "/to", "to must not be before from, and the range at most %d days",
                          USAGE_MAX_DAYS);
        goto out;
    }
    if (rc == 0 && has_pkg && !(rep.group & USAGE_G_VARIANT))
        rc = ledger_days(txn, s, rec->id, ledger_local_day(pkg, from), ledger_local_day(pkg, to), usage_day_cb, &rep);
    /* The variants (every page), their results and the control arm's. */
    while (rc == 0) {
        uint32_t n = 0;
        size_t before = uv.n;
        rc = var_list(txn, s, rec->id, uv.last, VAR_LIST_MAX, usage_variant_cb, &uv, &n);
        for (size_t i = before; rc == 0 && i < uv.n; i++)
            rc = var_stats_get(txn, s, rec->id, uv.v[i].id, &uv.v[i].st);
        if (n < VAR_LIST_MAX || uv.n == uv.cap)
            break;
    }
    if (rc == 0)
        rc = var_stats_get(txn, s, rec->id, VAR_BASE, &control);
    if (rc != 0)
        goto out;
    /* A generation's tokens are shared by the variants it wrote. */
    for (size_t i = 0; i < uv.n; i++) {
        size_t same = 0;
        for (size_t j = 0; j < uv.n; j++)
            same += strcmp(uv.v[i].request, uv.v[j].request) == 0;
        uv.v[i].tokens /= same;
        gen.impressions += uv.v[i].st.impressions;
        gen.clicks += uv.v[i].st.clicks;
        gen.conversions += uv.v[i].st.conversions;
    }
    if (uq->csv) {
        usage_csv(out, &rep, &uv);
        rc = out->overflow ? -ENOBUFS : 0;
        goto out;
    }

    b = *out;
    docw_init(&w, uq->fmt, &b);
    docw_map(&w, 8);
    docw_key(&w, "id");
    docw_cstr(&w, rec->id);
    docw_key(&w, "advertiser");
    docw_cstr(&w, rec->advertiser);
    docw_key(&w, "status");
    docw_cstr(&w, rec->status);
    docw_key(&w, "currency");
    docw_object(&w, (v = doc_map_get(&doc, "currency")) != NULL ? v : &(msgpack_object){.type = MSGPACK_OBJECT_NIL});

    budget = doc_map_get(&doc, "budget");
    docw_key(&w, "spend");
    docw_map(&w, 6);
    docw_key(&w, "total_micros");
    docw_uint(&w, cu.spend_total_micros);
    docw_key(&w, "day_start");
    docw_uint(&w, cu.spend_day_start);
    docw_key(&w, "day_micros");
    docw_uint(&w, cu.spend_day_micros);
    docw_key(&w, "impressions");
    docw_uint(&w, cu.impressions);
    docw_key(&w, "budget_total_micros");
    docw_object(&w, budget != NULL && (v = doc_map_get(budget, "total_micros")) != NULL
                        ? v
                        : &(msgpack_object){.type = MSGPACK_OBJECT_NIL});
    docw_key(&w, "budget_daily_micros");
    docw_object(&w, budget != NULL && (v = doc_map_get(budget, "daily_micros")) != NULL
                        ? v
                        : &(msgpack_object){.type = MSGPACK_OBJECT_NIL});
    docw_map_end(&w);

    pkgdoc = doc_map_get(&doc, "token_package");
    docw_key(&w, "tokens");
    if (!has_pkg) {
        docw_nil(&w);
    } else {
        docw_map(&w, 16);
        docw_key(&w, "period_start");
        docw_int(&w, lu.period_start);
        docw_key(&w, "period_end");
        docw_int(&w, lu.period_end);
        docw_key(&w, "limit");
        docw_cstr(&w, lu.hard ? "hard" : "soft");
        docw_key(&w, "allowance");
        docw_uint(&w, lu.allowance);
        docw_key(&w, "reserved");
        docw_uint(&w, lu.reserved);
        docw_key(&w, "settled");
        docw_uint(&w, lu.settled);
        docw_key(&w, "remaining");
        docw_uint(&w, lu.remaining);
        docw_key(&w, "overrun");
        docw_uint(&w, lu.overrun);
        docw_key(&w, "by_kind");
        docw_map(&w, LEDGER_KINDS);
        for (int k = 0; k < LEDGER_KINDS; k++) {
            docw_key(&w, usage_kinds[k]);
            docw_uint(&w, lu.tokens[k]);
        }
        docw_map_end(&w);
        docw_key(&w, "money_micros");
        docw_uint(&w, lu.money_micros);
        docw_key(&w, "generations");
        docw_uint(&w, lu.generations);
        docw_key(&w, "refusals");
        docw_uint(&w, lu.refusals);
        docw_key(&w, "estimated");
        docw_uint(&w, lu.estimated);
        docw_key(&w, "unreserved");
        docw_uint(&w, lu.unreserved);
        docw_key(&w, "alerts_raised");
        docw_array(&w, lu.n_raised);
        for (uint32_t i = 0; i < lu.n_raised; i++)
            docw_uint(&w, lu.raised[i]);
        docw_array_end(&w);
        docw_key(&w, "package");
        docw_object(&w, pkgdoc != NULL ? pkgdoc : &(msgpack_object){.type = MSGPACK_OBJECT_NIL});
        docw_map_end(&w);
    }

    docw_key(&w, "report");
    docw_map(&w, 6);
    docw_key(&w, "from");
    docw_int(&w, from);
    docw_key(&w, "to");
    docw_int(&w, to);
    docw_key(&w, "group");
    {
        static const char *const names[] = {"day", "model", "kind", "variant"};
        uint32_t n = 0;
        for (int i = 0; i < 4; i++)
            n += (rep.group >> i) & 1u;
        docw_array(&w, n);
        for (int i = 0; i < 4; i++)
            if ((rep.group >> i) & 1u)
                docw_cstr(&w, names[i]);
        docw_array_end(&w);
    }
    docw_key(&w, "rows");
    if (rep.group & USAGE_G_VARIANT) {
        docw_array(&w, (uint32_t)uv.n);
        for (size_t i = 0; i < uv.n; i++) {
            docw_map(&w, 7);
            docw_key(&w, "variant");
            docw_cstr(&w, uv.v[i].id);
            docw_key(&w, "state");
            docw_cstr(&w, var_state_name((enum var_state)uv.v[i].state));
            docw_key(&w, "created_at");
            docw_uint(&w, uv.v[i].created_at);
            docw_key(&w, "tokens");
            docw_uint(&w, uv.v[i].tokens);
            docw_key(&w, "impressions");
            docw_uint(&w, uv.v[i].st.impressions);
            docw_key(&w, "clicks");
            docw_uint(&w, uv.v[i].st.clicks);
            docw_key(&w, "conversions");
            docw_uint(&w, uv.v[i].st.conversions);
            docw_map_end(&w);
        }
    } else {
        docw_array(&w, (uint32_t)rep.n);
        for (size_t i = 0; i < rep.n; i++) {
            const struct usage_row *row = &rep.rows[i];
            uint32_t nk = 4 + ((rep.group & USAGE_G_DAY) != 0) + ((rep.group & USAGE_G_MODEL) != 0) +
                          ((rep.group & USAGE_G_KIND) != 0);
            docw_map(&w, nk);
            if (rep.group & USAGE_G_DAY) {
                usage_date(row->day, date);
                docw_key(&w, "day");
                docw_cstr(&w, date);
            }
            if (rep.group & USAGE_G_MODEL) {
                docw_key(&w, "model");
                docw_cstr(&w, row->model);
            }
            if (rep.group & USAGE_G_KIND) {
                docw_key(&w, "kind");
                docw_cstr(&w, usage_kinds[row->kind]);
            }
            docw_key(&w, "tokens");
            docw_uint(&w, row->tokens);
            docw_key(&w, "money_micros");
            docw_uint(&w, row->money_micros);
            docw_key(&w, "generations");
            docw_uint(&w, row->generations);
            docw_key(&w, "estimated");
            docw_uint(&w, row->estimated);
            docw_map_end(&w);
        }
    }
    docw_array_end(&w);
    docw_key(&w, "totals");
    docw_map(&w, 3);
    docw_key(&w, "tokens");
    docw_uint(&w, rep.tokens);
    docw_key(&w, "money_micros");
    docw_uint(&w, rep.money_micros);
    docw_key(&w, "generations");
    docw_uint(&w, rep.generations);
    docw_map_end(&w);
    docw_key(&w, "truncated");
    docw_bool(&w, rep.truncated);
    docw_map_end(&w);

    /* What the tokens bought: lifetime results of the generated variants and of the control arm. */
    docw_key(&w, "results");
    docw_map(&w, 6);
    docw_key(&w, "generated");
    docw_map(&w, 4);
    docw_key(&w, "variants");
    docw_uint(&w, uv.n);
    docw_key(&w, "impressions");
    docw_uint(&w, gen.impressions);
    docw_key(&w, "clicks");
    docw_uint(&w, gen.clicks);
    docw_key(&w, "conversions");
    docw_uint(&w, gen.conversions);
    docw_map_end(&w);
    docw_key(&w, "control");
    docw_map(&w, 3);
    docw_key(&w, "impressions");
    docw_uint(&w, control.impressions);
    docw_key(&w, "clicks");
    docw_uint(&w, control.clicks);
    docw_key(&w, "conversions");
    docw_uint(&w, control.conversions);
    docw_map_end(&w);
    {
        /* The report's tokens (every generation in from..to, rejected output included); grouped
         * by variant, the tokens of the stored variants. */
        uint64_t tokens = rep.tokens;
        if (rep.group & USAGE_G_VARIANT)
            for (size_t i = 0; i < uv.n; i++)
                tokens += uv.v[i].tokens;
        docw_key(&w, "tokens");
        docw_uint(&w, tokens);
        docw_key(&w, "tokens_per_click");
        if (gen.clicks > 0)
            docw_double(&w, (double)tokens / (double)gen.clicks);
        else
            docw_nil(&w);
        docw_key(&w, "tokens_per_conversion");
        if (gen.conversions > 0)
            docw_double(&w, (double)tokens / (double)gen.conversions);
        else
            docw_nil(&w);
    }
    docw_key(&w, "uplift");
    usage_uplift(&w, &gen, &control);
    docw_map_end(&w);
    docw_map_end(&w);
    *out = b;
    rc = b.overflow ? -ENOBUFS : 0;
out:
    ledger_zones_free(zones);
    msgpack_zone_destroy(&zone);
    free(uv.v);
    free(rep.rows);
    free(pkg);
    return rc;
}
