#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "adsmith/metrics.h"

static const struct met_route routes[] = {{"GET", "/healthz"}, {"POST", "/openrtb2/bid"}};

static char *render(struct metrics *m)
{
    size_t cap = met_render_bound(m);
    char *mem = malloc(cap);
    struct buf b;

    buf_init(&b, mem, cap);
    met_render(m, &b);
    cr_assert(!b.overflow, "met_render_bound was too small");
    return mem;
}

Test(metrics, counts_sum_over_shards_by_route_and_status)
{
    struct metrics *m;
    char *text;

    cr_assert_eq(met_new(2, routes, 2, &m), 0);
    met_record(m, 0, 0, 200, 10000);
    met_record(m, 1, 0, 200, 30000);
    met_record(m, 1, 1, 204, 2000000);
    met_record(m, 0, 2, 404, 1000);
    text = render(m);
    cr_assert_not_null(strstr(text, "adsmith_http_requests_total{method=\"GET\",route=\"/healthz\",code=\"200\"} 2\n"),
                       "%s", text);
    cr_assert_not_null(strstr(text, "{method=\"POST\",route=\"/openrtb2/bid\",code=\"204\"} 1\n"));
    cr_assert_not_null(strstr(text, "{method=\"\",route=\"unmatched\",code=\"404\"} 1\n"));
    cr_assert_null(strstr(text, "code=\"500\""), "zero series are not printed");
    free(text);
    met_free(m);
}

Test(metrics, histogram_is_cumulative_with_sum_and_count)
{
    struct metrics *m;
    char *text;

    cr_assert_eq(met_new(1, routes, 2, &m), 0);
    met_record(m, 0, 0, 200, 20000);      /* <= 25 us */
    met_record(m, 0, 0, 200, 900000);     /* <= 1 ms */
    met_record(m, 0, 0, 200, 5000000000); /* past 1 s: only +Inf */
    text = render(m);
    cr_assert_not_null(strstr(text, "_bucket{method=\"GET\",route=\"/healthz\",le=\"2.5e-05\"} 1\n"), "%s", text);
    cr_assert_not_null(strstr(text, "_bucket{method=\"GET\",route=\"/healthz\",le=\"0.0005\"} 1\n"));
    cr_assert_not_null(strstr(text, "_bucket{method=\"GET\",route=\"/healthz\",le=\"0.001\"} 2\n"));
    cr_assert_not_null(strstr(text, "_bucket{method=\"GET\",route=\"/healthz\",le=\"1\"} 2\n"));
    cr_assert_not_null(strstr(text, "_bucket{method=\"GET\",route=\"/healthz\",le=\"+Inf\"} 3\n"));
    cr_assert_not_null(strstr(text, "_sum{method=\"GET\",route=\"/healthz\"} 5.000920000\n"));
    cr_assert_not_null(strstr(text, "_count{method=\"GET\",route=\"/healthz\"} 3\n"));
    free(text);
    met_free(m);
}

Test(metrics, odd_statuses_fall_into_their_class_and_output_stays_bounded)
{
    struct metrics *m;
    char *text;

    cr_assert_eq(met_new(3, routes, 2, &m), 0);
    for (int status = 100; status < 600; status++) {
        for (size_t r = 0; r <= 2; r++)
            met_record(m, (unsigned)status % 3, r, status, (uint64_t)status * 1000000);
    }
    met_record(m, 0, 99, 200, 1); /* an out-of-range route counts as unmatched */
    met_record(m, 0, 0, 999, 1);  /* an impossible status counts as 5xx */
    met_inflight_add(m, 1, 3);
    met_inflight_add(m, 2, -1);
    met_conn_rejected(m, 0);
    text = render(m);
    /* 100 statuses per class minus those with their own series (15 in 4xx, 6 in 5xx);
     * the impossible 999 adds one to 5xx. */
    cr_assert_null(strstr(text, "code=\"418\""));
    cr_assert_not_null(strstr(text, "{method=\"GET\",route=\"/healthz\",code=\"4xx\"} 85\n"), "%s", text);
    cr_assert_not_null(strstr(text, "{method=\"GET\",route=\"/healthz\",code=\"5xx\"} 95\n"));
    cr_assert_not_null(strstr(text, "{method=\"GET\",route=\"/healthz\",code=\"200\"} 1\n"));
    cr_assert_not_null(strstr(text, "{method=\"\",route=\"unmatched\",code=\"200\"} 2\n"));
    cr_assert_not_null(strstr(text, "adsmith_http_requests_in_flight 2\n"));
    cr_assert_not_null(strstr(text, "adsmith_connections_rejected_total 1\n"));
    free(text);
    met_free(m);
    met_free(NULL);
}
