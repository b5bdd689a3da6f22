#include <criterion/criterion.h>
#include <string.h>

#include "adsmith/event.h"

#define NOW 1763800000ull

static msgpack_zone zone;
static struct evt evts[EVT_MAX_BATCH];

static void setup(void)
{
    msgpack_zone_init(&zone, 4096);
}

static void teardown(void)
{
    msgpack_zone_destroy(&zone);
}

TestSuite(event, .init = setup, .fini = teardown);

static int batch(const char *json, size_t *n, struct ads_diag *d)
{
    msgpack_object o;
    cr_assert_eq(doc_parse(DOC_JSON, json, strlen(json), &zone, &o, d), 0, "fixture JSON: %s", d->message);
    return evt_batch_from_doc(&o, NOW, evts, n, d);
}

Test(event, parses_every_type)
{
    struct ads_diag d;
    size_t n = 0;

    cr_assert_eq(batch("{\"events\":[{\"id\":\"e1\",\"type\":\"impression\",\"user\":\"u\",\"ts\":1763799000,"
                       "\"campaign\":\"c\",\"variant\":\"v\",\"interests\":[\"a\",\"b\"]},"
                       "{\"type\":\"click\",\"user\":\"b-1\",\"source\":\"buyeruid\",\"ts\":1763799001},"
                       "{\"type\":\"conversion\",\"user\":\"u\",\"ts\":1763799002,\"value\":2500000},"
                       "{\"type\":\"custom\",\"name\":\"signup\",\"user\":\"u\",\"ts\":1763799003,\"weight\":2}]}",
                       &n, &d),
                 0, "%s at %s", d.message, d.pointer);
    cr_assert_eq(n, 4);
    cr_assert_eq(evts[0].type, EVT_IMPRESSION);
    cr_assert_eq(evts[0].id_len, 2);
    cr_assert_eq(evts[0].ninterests, 2);
    cr_assert_float_eq(evts[0].weight, 0.1, 1e-12);
    cr_assert_str_eq(evts[1].source, "buyeruid");
    cr_assert_eq(evts[1].id_len, 0);
    cr_assert_eq(evts[2].value, 2500000);
    cr_assert_float_eq(evts[3].weight, 2.0, 1e-12);
}

Test(event, errors_name_the_event_and_field)
{
    static const struct {
        const char *json, *pointer, *words;
    } cases[] = {
        {"{\"events\":[{\"type\":\"click\",\"user\":\"u\",\"ts\":1763799000},"
         "{\"type\":\"view\",\"user\":\"u\",\"ts\":1763799000}]}",
         "/events/1/type", "not an event type"},
        {"{\"events\":[{\"type\":\"click\",\"ts\":1763799000}]}", "/events/0/user", "required"},
        {"{\"events\":[{\"type\":\"click\",\"user\":\"u\",\"ts\":1763809000}]}", "/events/0/ts", "future"},
        {"{\"events\":[{\"type\":\"click\",\"user\":\"u\",\"ts\":1763799000000}]}", "/events/0/ts", "seconds"},
        {"{\"events\":[{\"type\":\"click\",\"user\":\"u\",\"ts\":900000000}]}", "/events/0/ts", "2000"},
        {"{\"events\":[{\"type\":\"custom\",\"user\":\"u\",\"ts\":1763799000}]}", "/events/0/name", "custom"},
        {"{\"events\":[{\"type\":\"click\",\"user\":\"u\",\"ts\":1763799000,\"colour\":1}]}", "/events/0/colour",
         "not a known field"},
        {"{\"events\":[]}", "/events", "at least one"},
        {"{\"evts\":[]}", "/evts", "not a known field"},
        {"{}", "", "events"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct ads_diag d = {{0}, {0}};
        size_t n;
        cr_assert_eq(batch(cases[i].json, &n, &d), ADS_EINVAL, "accepted %s", cases[i].json);
        cr_assert_str_eq(d.pointer, cases[i].pointer, "%s: pointer %s", cases[i].json, d.pointer);
        cr_assert_not_null(strstr(d.message, cases[i].words), "%s: message '%s'", cases[i].json, d.message);
    }
}

Test(event, batch_limit)
{
    static char json[200000];
    struct ads_diag d;
    struct buf b;
    size_t n;

    buf_init(&b, json, sizeof(json));
    buf_puts(&b, "{\"events\":[");
    for (int i = 0; i <= EVT_MAX_BATCH; i++)
        buf_printf(&b, "%s{\"type\":\"click\",\"user\":\"u\",\"ts\":1763799000}", i ? "," : "");
    buf_puts(&b, "]}");
    cr_assert(!b.overflow);
    cr_assert_eq(batch(json, &n, &d), ADS_EINVAL);
    cr_assert_str_eq(d.pointer, "/events");
}

static struct evt mk(enum evt_type t, uint64_t ts, const char *campaign, const char *interest, double weight)
{
    struct evt e;
    memset(&e, 0, sizeof(e));
    e.type = (uint8_t)t;
    e.ts = ts;
    snprintf(e.campaign, sizeof(e.campaign), "%s", campaign);
    if (interest != NULL) {
        snprintf(e.interests[0], sizeof(e.interests[0]), "%s", interest);
        e.ninterests = 1;
    }
    e.weight = weight;
    return e;
}

Test(event, counters_windows_and_recency)
{
    static struct profile p;
    uint64_t h = 1763798400; /* an hour boundary, also 16 h into a UTC day */
    struct evt e;

    memset(&p, 0, sizeof(p));
    e = mk(EVT_IMPRESSION, h + 10, "c1", NULL, 0);
    evt_apply(&p, &e, 3600);
    e = mk(EVT_IMPRESSION, h + 20, "c1", NULL, 0);
    evt_apply(&p, &e, 3600);
    cr_assert_eq(p.nfreq, 1);
    cr_assert_eq(p.freq[0].hour, 2);
    cr_assert_eq(p.freq[0].hour_start, h);
    e = mk(EVT_IMPRESSION, h + 3600, "c1", NULL, 0);
    evt_apply(&p, &e, 3600);
    cr_assert_eq(p.freq[0].hour, 1, "a new hour restarts the hour window");
    cr_assert_eq(p.freq[0].day, 3);
    cr_assert_eq(p.freq[0].lifetime, 3);
    e = mk(EVT_IMPRESSION, h + 5, "c1", NULL, 0); /* late: an earlier hour */
    evt_apply(&p, &e, 3600);
    cr_assert_eq(p.freq[0].hour, 1);
    cr_assert_eq(p.freq[0].lifetime, 4);
    e = mk(EVT_CLICK, h + 3700, "c1", NULL, 0);
    evt_apply(&p, &e, 3600);
    e = mk(EVT_CONVERSION, h + 3800, "c1", NULL, 0);
    evt_apply(&p, &e, 3600);
    cr_assert_eq(p.freq[0].clicks, 1);
    cr_assert_eq(p.freq[0].conversions, 1);
    cr_assert_eq(p.freq[0].last_at, h + 3800);
    cr_assert_eq(p.recency[PROF_LAST_SEEN], h + 3800);
    cr_assert_eq(p.recency[PROF_LAST_IMPRESSION], h + 3600);
    cr_assert_eq(p.recency[PROF_LAST_CLICK], h + 3700);
    cr_assert_eq(p.recency[PROF_LAST_CONVERSION], h + 3800);
}

Test(event, interests_decay_then_add)
{
    static struct profile p;
    struct evt e;

    memset(&p, 0, sizeof(p));
    e = mk(EVT_CLICK, 1000000, "", "golf", 8.0);
    evt_apply(&p, &e, 60);
    e = mk(EVT_CLICK, 1000000 + 120, "", "golf", 1.0);
    evt_apply(&p, &e, 60);
    cr_assert_eq(p.ninterests, 1);
    cr_assert_float_eq(p.interests[0].weight, 3.0, 1e-9, "8 halved twice, plus 1");
    cr_assert_eq(p.interests[0].at, 1000000 + 120);
    cr_assert_eq(p.nfreq, 0, "no campaign, no counters");
}

Test(event, full_lists_drop_the_least_recent)
{
    static struct profile p;
    struct evt e;
    char c[16];

    memset(&p, 0, sizeof(p));
    for (int i = 0; i < PROF_MAX_FREQ + 1; i++) {
        snprintf(c, sizeof(c), "c%d", i);
        e = mk(EVT_IMPRESSION, 1763700000 + (uint64_t)i, c, NULL, 0);
        evt_apply(&p, &e, 60);
    }
    cr_assert_eq(p.nfreq, PROF_MAX_FREQ);
    for (uint32_t i = 0; i < p.nfreq; i++)
        cr_assert_str_neq(p.freq[i].campaign, "c0", "the oldest campaign is dropped");
}
