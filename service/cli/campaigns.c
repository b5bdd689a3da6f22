/*
 * `adsmith campaigns validate [--json] [--format json|msgpack] FILE...`:
 * checks campaign documents offline with the service's own validator (the
 * embedded schema, then the semantic rules), so that a file can be fixed
 * before it is sent. One validator, one read buffer, one parse zone and one
 * report serve every file, so thousands of files cost no more than their
 * reading.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "adsmith/campaign.h"
#include "adsmith/cli.h"
#include "adsmith/doc.h"
#include "adsmith/vrep.h"

/* One --json line: VREP_MAX problems with every byte escaped, and a long file name, fit well below. */
#define CMP_LINE_MAX (512 * 1024)

/* The CLI has no server configuration: the offline generator is the one backend it knows. */
static const char *const cmp_backends[] = {"builtin"};

struct cmp {
    bool json;
    bool fmt_given;
    enum doc_fmt fmt;
    struct camp_validator *v;
    char *body; /* CAMP_DOC_MAX + 1 bytes: one more tells a file that is too large */
    char *line; /* CMP_LINE_MAX bytes */
    msgpack_zone zone;
    struct vrep rep;
};

static void cmp_usage(FILE *out)
{
    fprintf(out,
            "usage: adsmith campaigns validate [--json] [--format json|msgpack] FILE...\n\n"
            "Checks campaign documents (schemas/campaign.schema.json) with the service's own\n"
            "validator: the JSON Schema, then the rules it cannot state (flight end after start,\n"
            "budgets and caps consistent, known currency and time zone, every {{slot}} declared,\n"
            "byte limits, integers without fraction, ...). Every problem is listed with the JSON\n"
            "pointer of the value at fault. Nothing is stored and no daemon is needed.\n\n"
            "FILE is JSON, or MessagePack when its name ends in .msgpack or .mp; \"-\" reads\n"
            "standard input. A file may hold at most %d bytes (the API takes up to max_body,\n"
            "256 KiB by default).\n"
            "A campaign's generation.backend must be \"builtin\" here (the daemon checks the\n"
            "backends of its own configuration).\n\n"
            "options:\n"
            "  --json            one JSON object per file, one per line:\n"
            "                    {\"file\",\"valid\",\"problems\",\"errors\":[{\"pointer\",\"message\",\"rule\"}]}\n"
            "  --format FORMAT   read every FILE as json or msgpack, whatever its name\n\n"
            "Without --json: \"FILE: valid\", or \"FILE: N problems\" and one line per problem,\n"
            "\"  /pointer: message (rule)\".\n\n"
            "exit status: 0 every file is valid, 1 a file is invalid or unreadable, 2 usage error\n",
            CAMP_DOC_MAX);
}

static bool ends_with(const char *s, const char *tail)
{
    size_t n = strlen(s), t = strlen(tail);

    return n > t && strcmp(s + n - t, tail) == 0;
}

/* Reads @p file ("-": stdin) into c->body. 0 with *ret_len, or a problem added to c->rep (rule "read"). */
static int cmp_read(struct cmp *c, const char *file, size_t *ret_len)
{
    bool std = strcmp(file, "-") == 0;
    int fd = std ? STDIN_FILENO : open(file, O_RDONLY | O_CLOEXEC);
    size_t len = 0;
    ssize_t n = 0;

    if (fd < 0) {
        vrep_add(&c->rep, "read", "", 0, "cannot be opened: %s", strerror(errno));
        return -1;
    }
    while (len <= CAMP_DOC_MAX) {
        n = read(fd, c->body + len, CAMP_DOC_MAX + 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    if (n < 0)
        vrep_add(&c->rep, "read", "", 0, "cannot be read: %s", strerror(errno));
    else if (len > CAMP_DOC_MAX)
        vrep_add(&c->rep, "read", "", 0,
                 "is larger than %d bytes, the most this command reads (the API refuses anything past max_body)",
                 CAMP_DOC_MAX);
    if (!std)
        close(fd);
    if (n < 0 || len > CAMP_DOC_MAX)
        return -1;
    *ret_len = len;
    return 0;
}

/* Validates one file into c->rep. */
static void cmp_check(struct cmp *c, const char *file)
{
    const struct camp_rules rules = {cmp_backends, sizeof(cmp_backends) / sizeof(cmp_backends[0])};
    enum doc_fmt fmt = c->fmt;
    struct ads_diag d;
    msgpack_object root;
    size_t len;
    int rc;

    vrep_init(&c->rep);
    if (cmp_read(c, file, &len) != 0)
        return;
    if (!c->fmt_given)
        fmt = ends_with(file, ".msgpack") || ends_with(file, ".mp") ? DOC_MSGPACK : DOC_JSON;
    memset(&d, 0, sizeof(d));
    rc = doc_parse(fmt, c->body, len, &c->zone, &root, &d);
    if (rc == 0)
        camp_validate(c->v, &root, &rules, &c->rep);
    else if (rc == ADS_ENOMEM)
        vrep_add(&c->rep, "parse", "", 0, "is too large to parse in the memory available");
    else
        vrep_add(&c->rep, "parse", d.pointer, strlen(d.pointer), "%s", d.message);
    msgpack_zone_clear(&c->zone);
}

/* Prints c->rep for @p file. 0, or 1 when the --json line did not fit (explained on stderr). */
static int cmp_print(struct cmp *c, const char *file)
{
    const struct vrep *r = &c->rep;
    struct docw w;
    struct buf b;

    if (!c->json) {
        if (vrep_ok(r)) {
            printf("%s: valid\n", file);
            return 0;
        }
        printf("%s: %zu problem%s\n", file, r->total, r->total == 1 ? "" : "s");
        for (size_t i = 0; i < r->count; i++)
            printf("  %s: %s (%s)\n", r->items[i].pointer, r->items[i].message, r->items[i].rule);
        if (r->total > r->count)
            printf("  ... and %zu more (only the first %d are listed)\n", r->total - r->count, VREP_MAX);
        return 0;
    }
    buf_init(&b, c->line, CMP_LINE_MAX);
    docw_init(&w, DOC_JSON, &b);
    docw_map(&w, 4);
    docw_key(&w, "file");
    docw_cstr(&w, file);
    docw_key(&w, "valid");
    docw_bool(&w, vrep_ok(r));
    docw_key(&w, "problems");
    docw_uint(&w, r->total);
    docw_key(&w, "errors");
    vrep_write(r, &w);
    docw_map_end(&w);
    if (b.overflow) {
        fprintf(stderr, "adsmith campaigns: the report of %s does not fit in one line; this is a bug\n", file);
        return 1;
    }
    fwrite(b.base, 1, b.len, stdout);
    putchar('\n');
    return 0;
}

/* 0, or 2 after explaining the usage error. The FILE arguments go to @p files (room for argc). */
static int cmp_args(struct cmp *c, int argc, char **argv, char **files, int *ret_nfiles, bool *ret_help)
{
    bool options = true;
    const char *v;
    int nfiles = 0;

    for (int i = 1; i < argc; i++) {
        if (!options || strcmp(argv[i], "-") == 0 || argv[i][0] != '-') {
            files[nfiles++] = argv[i];
        } else if (strcmp(argv[i], "--") == 0) {
            options = false;
        } else if (strcmp(argv[i], "--json") == 0) {
            c->json = true;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            *ret_help = true;
        } else if ((v = cli_opt_value(argc, argv, &i, "--format")) != NULL) {
            if (strcmp(v, "json") == 0) {
                c->fmt = DOC_JSON;
            } else if (strcmp(v, "msgpack") == 0) {
                c->fmt = DOC_MSGPACK;
            } else {
                fprintf(stderr, "adsmith campaigns: --format must be json or msgpack, not '%s'\n", v);
                return 2;
            }
            c->fmt_given = true;
        } else {
            fprintf(stderr, "adsmith campaigns: unknown option '%s'; see 'adsmith campaigns --help'\n", argv[i]);
            return 2;
        }
    }
    if (nfiles == 0 && !*ret_help) {
        fprintf(stderr, "adsmith campaigns: no FILE given; see 'adsmith campaigns --help'\n");
        return 2;
    }
    *ret_nfiles = nfiles;
    return 0;
}

static int cmp_validate(int argc, char **argv)
{
    struct ads_diag d;
    struct cmp *c = calloc(1, sizeof(*c));
    char **files = calloc((size_t)argc + 1, sizeof(*files));
    bool help = false, zone = false;
    int nfiles = 0, status = 0;

    if (c == NULL || files == NULL) {
        fprintf(stderr, "adsmith campaigns: out of memory\n");
        status = 1;
        goto out;
    }
    status = cmp_args(c, argc, argv, files, &nfiles, &help);
    if (status != 0)
        goto out;
    if (help) {
        cmp_usage(stdout);
        goto out;
    }
    c->body = malloc(CAMP_DOC_MAX + 1);
    c->line = malloc(CMP_LINE_MAX);
    zone = msgpack_zone_init(&c->zone, 64 * 1024);
    if (c->body == NULL || c->line == NULL || !zone) {
        fprintf(stderr, "adsmith campaigns: out of memory\n");
        status = 1;
        goto out;
    }
    if (camp_validator_new(&c->v, &d) != 0) {
        fprintf(stderr, "adsmith campaigns: the embedded campaign schema does not compile (a bug): %s at %s\n",
                d.message, d.pointer[0] != '\0' ? d.pointer : "its root");
        status = 1;
        goto out;
    }
    for (int i = 0; i < nfiles; i++) {
        cmp_check(c, files[i]);
        if (cmp_print(c, files[i]) != 0 || !vrep_ok(&c->rep))
            status = 1;
    }
    if (fflush(stdout) != 0) {
        fprintf(stderr, "adsmith campaigns: cannot write the report: %s\n", strerror(errno));
        status = 1;
    }
out:
    if (c != NULL) {
        camp_validator_free(c->v);
        if (zone)
            msgpack_zone_destroy(&c->zone);
        free(c->body);
        free(c->line);
    }
    free(c);
    free(files);
    return status;
}

int cli_campaigns(int argc, char **argv)
{
    if (argc >= 1 && (strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0 || strcmp(argv[0], "help") == 0)) {
        cmp_usage(stdout);
        return 0;
    }
    if (argc >= 1 && strcmp(argv[0], "validate") == 0)
        return cmp_validate(argc, argv);
    if (argc == 0)
        fprintf(stderr, "adsmith campaigns: expected `adsmith campaigns validate [--json] FILE...`\n\n");
    else
        fprintf(stderr, "adsmith campaigns: unknown subcommand '%s'\n\n", argv[0]);
    cmp_usage(stderr);
    return 2;
}
