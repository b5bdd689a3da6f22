/*
 * `adsmith import users FILE`: bulk-load user profiles from JSON Lines or a
 * MessagePack stream into the data directory, in batches of one LMDB write
 * transaction each.
 *
 * Resuming. A regular file is identified by its real path, size, mtime and
 * inode. Every batch commits, in the same transaction as its profiles, a
 * checkpoint in the meta database:
 *
 *   key   "import:" + realpath
 *   value msgpack map {"offset": byte after the last record of the batch,
 *                      "size", "mtime" (nanoseconds), "inode",
 *                      "records": profiles imported so far,
 *                      "lines": lines (MessagePack: values) consumed so far,
 *                      "rejected": records rejected so far}
 *
 * so the data and the checkpoint can never disagree: after a crash, a full
 * map or a signal the next run of the same command starts at "offset". The
 * import deletes the checkpoint in its last transaction. Standard input and
 * pipes cannot be re-read, so they are not resumable.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <lmdb.h>
#include <msgpack.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "adsmith/cli.h"
#include "adsmith/config.h"
#include "adsmith/doc.h"
#include "adsmith/mpr.h"
#include "adsmith/profile.h"
#include "adsmith/store.h"
#include "adsmith/users.h"

extern char **environ;

#define IMP_RECORD_MAX (1024 * 1024) /* longest record (line or value), bytes */
#define IMP_READ_CHUNK (1024 * 1024) /* bytes asked of each read(2) at least */
#define IMP_BATCH_DEFAULT 10000
#define IMP_BATCH_MAX 1000000
#define IMP_SHOW_REJECTED 20
#define IMP_IDLE_COMMIT_MS 1000 /* a pipe that goes quiet this long gets its open batch committed */
#define IMP_ZONE_CHUNK (256 * 1024)
#define IMP_KEY_PREFIX "import:"
#define IMP_CHECKPOINT_MAX 256 /* encoded checkpoint value */

/* Set by the SIGINT/SIGTERM handler; the loop finishes the batch and stops. */
static volatile sig_atomic_t imp_stop;

static void imp_on_signal(int signo)
{
    imp_stop = signo;
}

/* What imp_next() found. */
enum imp_next { IMP_REC, IMP_EOF, IMP_OVERLONG, IMP_BROKEN };

struct imp_in {
    int fd;
    bool seekable; /* a regular file */
    char *buf;     /* IMP_RECORD_MAX + IMP_READ_CHUNK bytes */
    size_t cap;
    size_t head, tail; /* unread bytes are buf[head, tail) */
    size_t scan;       /* JSON: buf[head, scan) holds no newline */
    uint64_t offset;   /* input offset of buf[head]: always at a record boundary */
    bool eof;
};

struct imp_ckpt {
    uint64_t offset, size, mtime, inode, records, lines, rejected;
};

struct imp {
    struct store *s;
    MDB_txn *txn; /* the open batch, or NULL */
    enum doc_fmt fmt;
    const char *unit; /* "line" or "record", in messages */
    uint32_t batch;
    uint32_t pending; /* profiles written in the open batch */
    uint64_t now;     /* the batch's time, for created_at / updated_at */
    struct imp_in in;
    msgpack_zone zone;
    struct profile *p;

    bool resumable;
    char key[sizeof(IMP_KEY_PREFIX) + PATH_MAX];
    size_t key_len;
    struct stat st;

    /* Counts over the whole file (all runs), where this run started, and
     * where the last commit left them (what a failed batch falls back to). */
    uint64_t lines, imported, rejected;
    uint64_t base_offset, base_imported, base_rejected;
    uint64_t ck_offset, ck_lines, ck_imported, ck_rejected;
    uint64_t shown; /* rejected records printed by this run */

    bool tty;
    bool bar_drawn; /* the progress bar is on the terminal's last line */
    uint64_t started_ns, last_progress_ns;
};

static uint64_t imp_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void imp_usage(FILE *out)
{
    fprintf(out,
            "usage: adsmith import users FILE [OPTIONS]\n\n"
            "Loads user profiles from FILE (\"-\" reads standard input): JSON Lines (one profile per\n"
            "line; empty lines are skipped) or a MessagePack stream (one map after another). Each\n"
            "record is the document PUT /v1/users/{id} takes, with \"id\" required; a stored profile\n"
            "with that id is replaced. Bad records (invalid, alias owned by another user, longer\n"
            "than %d bytes) are reported and skipped; the exit status is then 1.\n\n"
            "A regular file is committed in batches, each with a checkpoint: after an interruption\n"
            "(Ctrl-C, SIGTERM, a full map, a crash) run the same command again to resume after the\n"
            "last committed batch. Standard input and pipes cannot be resumed.\n\n"
            "options:\n"
            "  --format jsonl|msgpack\n"
            "      input format; default: msgpack for a name ending in .msgpack or .mpk, else jsonl\n"
            "  --batch N\n"
            "      profiles per LMDB commit (default %d, 1-%d)\n"
            "  --restart\n"
            "      ignore a checkpoint of an earlier run and import the whole file\n"
            "  --data-dir DIR, --map-size SIZE, --config FILE\n"
            "      and every other setting of `adsmith serve --help`, from flags, ADSMITH_*\n"
            "      environment variables or the config file\n",
            IMP_RECORD_MAX, IMP_BATCH_DEFAULT, IMP_BATCH_MAX);
}

/* ---- reading records ---- */

/*
 * Refills the buffer, keeping the unread bytes. A pipe is waited for with
 * ppoll so that a signal cannot slip in between the check of imp_stop and
 * the wait; a batch left open while a pipe is quiet is committed, so the
 * writer lock is not held for an idle producer.
 */
static int imp_commit(struct imp *im, bool done);

static int imp_fill(struct imp *im)
{
    struct imp_in *in = &im->in;
    ssize_t n;
    int rc;

    if (in->head > 0) {
        memmove(in->buf, in->buf + in->head, in->tail - in->head);
        in->tail -= in->head;
        in->scan -= in->head;
        in->head = 0;
    }
    for (;;) {
        if (!in->seekable) {
            struct pollfd pfd = {.fd = in->fd, .events = POLLIN};
            struct timespec idle = {IMP_IDLE_COMMIT_MS / 1000, (IMP_IDLE_COMMIT_MS % 1000) * 1000000L};
            sigset_t block, old;

            sigemptyset(&block);
            sigaddset(&block, SIGINT);
            sigaddset(&block, SIGTERM);
            sigprocmask(SIG_BLOCK, &block, &old);
            rc = imp_stop ? -1 : ppoll(&pfd, 1, im->txn != NULL ? &idle : NULL, &old);
            if (rc < 0 && !imp_stop)
                rc = -errno;
            sigprocmask(SIG_SETMASK, &old, NULL);
            if (imp_stop)
                return -EINTR;
            if (rc == 0) {
                if ((rc = imp_commit(im, false)) != 0)
                    return rc;
                continue;
            }
            if (rc < 0 && rc != -EINTR)
                return rc;
            if (rc < 0)
                continue;
        }
        n = read(in->fd, in->buf + in->tail, in->cap - in->tail);
        if (n > 0) {
            in->tail += (size_t)n;
            return 0;
        }
        if (n == 0) {
            in->eof = true;
            return 0;
        }
        if (errno != EINTR && errno != EAGAIN)
            return -errno;
        if (imp_stop)
            return -EINTR;
    }
}

/* The next line. An overlong line is read to its end and discarded. */
static int imp_next_line(struct imp *im, const char **ret, size_t *ret_len)
{
    struct imp_in *in = &im->in;
    uint64_t skipped = 0; /* bytes of an overlong line already discarded */
    int rc;

    for (;;) {
        char *nl = memchr(in->buf + in->scan, '\n', in->tail - in->scan);
        if (nl != NULL || (in->eof && in->tail > in->head)) {
            size_t len = nl != NULL ? (size_t)(nl - (in->buf + in->head)) : in->tail - in->head;
            size_t used = len + (nl != NULL);
            const char *rec = in->buf + in->head;
            in->head += used;
            in->scan = in->head;
            in->offset += skipped + used;
            if (skipped > 0 || len > IMP_RECORD_MAX)
                return IMP_OVERLONG;
            *ret = rec;
            *ret_len = len;
            return IMP_REC;
        }
        if (in->eof) {
            in->offset += skipped;
            return skipped > 0 ? IMP_OVERLONG : IMP_EOF;
        }
        in->scan = in->tail;
        if (in->tail - in->head > IMP_RECORD_MAX) {
            skipped += in->tail - in->head;
            in->head = in->scan = in->tail;
        }
        if ((rc = imp_fill(im)) != 0)
            return rc;
    }
}

/*
 * The next MessagePack value, framed with mpr_skip (which allocates nothing,
 * whatever lengths the input declares). A value that does not end within
 * IMP_RECORD_MAX bytes cannot be framed, so nothing after it can be read.
 */
static int imp_next_value(struct imp *im, const char **ret, size_t *ret_len)
{
    struct imp_in *in = &im->in;
    int rc;

    for (;;) {
        size_t avail = in->tail - in->head;
        struct mpr r;

        if (avail > 0) {
            mpr_init(&r, in->buf + in->head, avail);
            if (mpr_skip(&r) == 0) {
                size_t len = (size_t)(r.p - (const uint8_t *)(in->buf + in->head));
                *ret = in->buf + in->head;
                *ret_len = len;
                in->head += len;
                in->offset += len;
                return len > IMP_RECORD_MAX ? IMP_OVERLONG : IMP_REC;
            }
            if (avail > IMP_RECORD_MAX || in->eof)
                return IMP_BROKEN;
        } else if (in->eof) {
            return IMP_EOF;
        }
        if ((rc = imp_fill(im)) != 0)
            return rc;
    }
}

static int imp_next(struct imp *im, const char **ret, size_t *ret_len)
{
    return im->fmt == DOC_JSON ? imp_next_line(im, ret, ret_len) : imp_next_value(im, ret, ret_len);
}

/* ---- progress and messages ---- */

static void imp_clear_bar(struct imp *im)
{
    if (im->bar_drawn) {
        fputs("\r\033[K", stderr);
        im->bar_drawn = false;
    }
}

static double imp_rate(const struct imp *im, uint64_t now_ns)
{
    double secs = (double)(now_ns - im->started_ns) / 1e9;
    uint64_t n = (im->imported - im->base_imported) + (im->rejected - im->base_rejected);

    return secs > 0 ? (double)n / secs : 0;
}

static void imp_summary(struct imp *im, uint64_t now_ns)
{
    double secs = (double)(now_ns - im->started_ns) / 1e9;

    imp_clear_bar(im);
    fprintf(stderr, "imported %" PRIu64 " records (%" PRIu64 " rejected) in %.1f s: %.0f records/s\n",
            im->imported - im->base_imported, im->rejected - im->base_rejected, secs, imp_rate(im, now_ns));
}

static void imp_bar(struct imp *im, uint64_t now_ns)
{
    double secs = (double)(now_ns - im->started_ns) / 1e9, rate = imp_rate(im, now_ns);
    char bar[31];

    if (im->in.seekable && im->st.st_size > 0) {
        double frac = (double)im->in.offset / (double)im->st.st_size;
        double bytes_per_s = secs > 0 ? (double)(im->in.offset - im->base_offset) / secs : 0;
        double eta = bytes_per_s > 0 ? (double)((uint64_t)im->st.st_size - im->in.offset) / bytes_per_s : 0;
        size_t fill = (size_t)(frac * 30);
        for (size_t i = 0; i < 30; i++)
            bar[i] = i < fill ? '#' : '-';
        bar[30] = '\0';
        fprintf(stderr, "\r[%s] %5.1f%%  %" PRIu64 " records  %.0f records/s  ETA %um%02us\033[K", bar, frac * 100,
                im->imported + im->rejected, rate, (unsigned)(eta / 60), (unsigned)eta % 60);
    } else {
        fprintf(stderr, "\r%" PRIu64 " records  %" PRIu64 " bytes  %.0f records/s\033[K", im->imported + im->rejected,
                im->in.offset, rate);
    }
    im->bar_drawn = true;
}

/* Called every few records: a bar on a terminal at most 10 times a second, else a line every 5 s. */
static void imp_progress(struct imp *im)
{
    uint64_t now = imp_now_ns();

    if (now - im->last_progress_ns < (im->tty ? 100000000u : 5000000000u))
        return;
    im->last_progress_ns = now;
    if (im->tty) {
        imp_bar(im, now);
        return;
    }
    imp_summary(im, now);
    if (im->in.seekable && im->st.st_size > 0)
        fprintf(stderr, "  at byte %" PRIu64 " of %lld (%.1f%%)\n", im->in.offset, (long long)im->st.st_size,
                100.0 * (double)im->in.offset / (double)im->st.st_size);
}

static void imp_reject(struct imp *im, const char *pointer, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void imp_reject(struct imp *im, const char *pointer, const char *fmt, ...)
{
    va_list ap;

    im->rejected++;
    if (im->shown > IMP_SHOW_REJECTED)
        return;
    imp_clear_bar(im);
    if (im->shown++ == IMP_SHOW_REJECTED) {
        fprintf(stderr, "(further rejected records are counted, not shown)\n");
        return;
    }
    fprintf(stderr, "%s %" PRIu64 ": ", im->unit, im->lines);
    if (pointer != NULL && pointer[0] != '\0')
        fprintf(stderr, "%s: ", pointer);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* ---- the checkpoint ---- */

static int imp_pack_write(void *data, const char *bytes, size_t len)
{
    buf_put(data, bytes, len);
    return 0;
}

static void imp_pack_u64(msgpack_packer *pk, const char *key, uint64_t v)
{
    msgpack_pack_str_with_body(pk, key, strlen(key));
    msgpack_pack_uint64(pk, v);
}

static void imp_ckpt_encode(const struct imp_ckpt *c, struct buf *out)
{
    msgpack_packer pk;

    msgpack_packer_init(&pk, out, imp_pack_write);
    msgpack_pack_map(&pk, 7);
    imp_pack_u64(&pk, "offset", c->offset);
    imp_pack_u64(&pk, "size", c->size);
    imp_pack_u64(&pk, "mtime", c->mtime);
    imp_pack_u64(&pk, "inode", c->inode);
    imp_pack_u64(&pk, "records", c->records);
    imp_pack_u64(&pk, "lines", c->lines);
    imp_pack_u64(&pk, "rejected", c->rejected);
}

/* 0 or ADS_EDATA_INVALID. Keys it does not know are skipped; the identity fields are required. */
static int imp_ckpt_decode(const void *data, size_t len, struct imp_ckpt *ret)
{
    static const char *const names[] = {"offset", "size", "mtime", "inode", "records", "lines", "rejected"};
    struct imp_ckpt c = {0, 0, 0, 0, 0, 0, 0};
    uint64_t *slots[] = {&c.offset, &c.size, &c.mtime, &c.inode, &c.records, &c.lines, &c.rejected};
    unsigned seen = 0;
    struct mpr r;
    uint32_t n;

    mpr_init(&r, data, len);
    if (mpr_map(&r, &n) != 0)
        return ADS_EDATA_INVALID;
    for (uint32_t i = 0; i < n; i++) {
        const char *k;
        size_t klen, j;
        if (mpr_str(&r, &k, &klen) != 0)
            return ADS_EDATA_INVALID;
        for (j = 0; j < sizeof(names) / sizeof(names[0]); j++) {
            if (strlen(names[j]) == klen && memcmp(names[j], k, klen) == 0)
                break;
        }
        if (j == sizeof(names) / sizeof(names[0])) {
            if (mpr_skip(&r) != 0)
                return ADS_EDATA_INVALID;
            continue;
        }
        if (mpr_u64(&r, slots[j]) != 0)
            return ADS_EDATA_INVALID;
        seen |= 1u << j;
    }
    if ((seen & 0xf) != 0xf)
        return ADS_EDATA_INVALID;
    *ret = c;
    return 0;
}

static uint64_t imp_mtime_ns(const struct stat *st)
{
    return (uint64_t)st->st_mtim.tv_sec * 1000000000u + (uint64_t)st->st_mtim.tv_nsec;
}

/* Writes (or, when @p done, deletes) the checkpoint in the open transaction. */
static int imp_ckpt_put(struct imp *im, bool done)
{
    MDB_dbi meta = store_dbi(im->s, STORE_DB_META);
    MDB_val key = {im->key_len, im->key}, val;
    struct imp_ckpt c = {im->in.offset,         (uint64_t)im->st.st_size,
                         imp_mtime_ns(&im->st), (uint64_t)im->st.st_ino,
                         im->imported,          im->lines,
                         im->rejected};
    char mem[IMP_CHECKPOINT_MAX];
    struct buf b;
    int rc;

    if (done) {
        rc = mdb_del(im->txn, meta, &key, NULL);
        return rc == 0 || rc == MDB_NOTFOUND ? 0 : store_err(rc);
    }
    buf_init(&b, mem, sizeof(mem));
    imp_ckpt_encode(&c, &b);
    if (b.overflow)
        return ADS_EINTERNAL;
    val.mv_size = b.len;
    val.mv_data = b.base;
    rc = mdb_put(im->txn, meta, &key, &val, 0);
    return rc == 0 ? 0 : store_err(rc);
}

/*
 * Looks for a checkpoint of this file and, if it matches the file as it is
 * now, continues from it. Prints what it decided. 0 or a storage error.
 */
static int imp_ckpt_load(struct imp *im, const char *path, bool restart)
{
    MDB_val key = {im->key_len, im->key}, val;
    struct imp_ckpt c;
    MDB_txn *txn;
    int rc;

    if ((rc = mdb_txn_begin(store_env(im->s), NULL, MDB_RDONLY, &txn)) != 0)
        return store_err(rc);
    rc = mdb_get(txn, store_dbi(im->s, STORE_DB_META), &key, &val);
    if (rc == MDB_NOTFOUND) {
        mdb_txn_abort(txn);
        return 0;
    }
    if (rc != 0) {
        mdb_txn_abort(txn);
        return store_err(rc);
    }
    rc = imp_ckpt_decode(val.mv_data, val.mv_size, &c);
    mdb_txn_abort(txn);
    if (rc != 0) {
        fprintf(stderr, "the checkpoint of an earlier import of %s is unreadable: starting over\n", path);
        return 0;
    }
    if (restart) {
        fprintf(stderr, "--restart: ignoring the checkpoint at byte %" PRIu64 " of an earlier import of %s\n", c.offset,
                path);
        return 0;
    }
    if (c.size != (uint64_t)im->st.st_size || c.mtime != imp_mtime_ns(&im->st) || c.inode != (uint64_t)im->st.st_ino ||
        c.offset > c.size) {
        fprintf(stderr, "%s changed since an earlier import stopped at byte %" PRIu64 " (%s differs): starting over\n",
                path, c.offset,
                c.inode != (uint64_t)im->st.st_ino   ? "inode"
                : c.size != (uint64_t)im->st.st_size ? "size"
                                                     : "modification time");
        return 0;
    }
    if (lseek(im->in.fd, (off_t)c.offset, SEEK_SET) < 0)
        return -errno;
    im->in.offset = im->base_offset = im->ck_offset = c.offset;
    im->imported = im->base_imported = im->ck_imported = c.records;
    im->rejected = im->base_rejected = im->ck_rejected = c.rejected;
    im->lines = im->ck_lines = c.lines;
    fprintf(stderr, "resuming at byte %" PRIu64 " (%" PRIu64 " records already imported)\n", c.offset, c.records);
    return 0;
}

/* ---- writing ---- */

static int imp_txn(struct imp *im)
{
    int rc;

    if (im->txn != NULL)
        return 0;
    if ((rc = mdb_txn_begin(store_env(im->s), NULL, 0, &im->txn)) != 0) {
        im->txn = NULL;
        return store_err(rc);
    }
    im->now = (uint64_t)time(NULL);
    return 0;
}

/*
 * Commits the open batch with the checkpoint of where the input stands; with
 * @p done, deletes the checkpoint instead (in a transaction of its own if no
 * batch is open). On failure the batch is aborted: the data stays as of the
 * last commit, and so does the checkpoint.
 */
static int imp_commit(struct imp *im, bool done)
{
    int rc;

    if (im->txn == NULL && !(done && im->resumable))
        return 0;
    if ((rc = imp_txn(im)) != 0)
        return rc;
    if (im->resumable && (rc = imp_ckpt_put(im, done)) != 0) {
        mdb_txn_abort(im->txn);
        im->txn = NULL;
        return rc;
    }
    rc = mdb_txn_commit(im->txn);
    im->txn = NULL;
    im->pending = 0;
    if (rc != 0)
        return store_err(rc);
    im->ck_offset = im->in.offset;
    im->ck_lines = im->lines;
    im->ck_imported = im->imported;
    im->ck_rejected = im->rejected;
    return 0;
}

/* Finds the string member "id" of a record. 0, or ADS_EINVAL with the record rejected. */
static int imp_record_id(struct imp *im, const msgpack_object *doc, const char **ret, size_t *ret_len)
{
    if (doc->type != MSGPACK_OBJECT_MAP) {
        imp_reject(im, NULL, "a record must be a profile object");
        return ADS_EINVAL;
    }
    for (uint32_t i = 0; i < doc->via.map.size; i++) {
        const msgpack_object_kv *kv = &doc->via.map.ptr[i];
        if (kv->key.via.str.size != 2 || memcmp(kv->key.via.str.ptr, "id", 2) != 0)
            continue;
        if (kv->val.type != MSGPACK_OBJECT_STR || prof_check_id(kv->val.via.str.ptr, kv->val.via.str.size) != 0) {
            imp_reject(im, "/id", "must be a string of 1-%d bytes without control characters", PROF_ID_MAX);
            return ADS_EINVAL;
        }
        *ret = kv->val.via.str.ptr;
        *ret_len = kv->val.via.str.size;
        return 0;
    }
    imp_reject(im, "/id", "is required: a record has no URL to take the user id from");
    return ADS_EINVAL;
}

/* Validates and writes one record. 0 (written or rejected), or a storage error that ends the import. */
static int imp_record(struct imp *im, const char *rec, size_t len)
{
    struct ads_diag diag = {{0}, {0}};
    msgpack_object doc;
    const char *id;
    size_t id_len;
    bool created;
    int rc;

    msgpack_zone_clear(&im->zone);
    if ((rc = doc_parse(im->fmt, rec, len, &im->zone, &doc, &diag)) != 0) {
        if (rc == ADS_ENOMEM)
            return rc;
        imp_reject(im, diag.pointer, "%s", diag.message);
        return 0;
    }
    if (imp_record_id(im, &doc, &id, &id_len) != 0)
        return 0;
    if ((rc = prof_from_doc(&doc, id, id_len, im->p, &diag)) != 0) {
        imp_reject(im, diag.pointer, "%s", diag.message);
        return 0;
    }
    if ((rc = imp_txn(im)) != 0)
        return rc;
    rc = usr_put(im->txn, im->s, im->p, im->now, &diag, &created);
    if (rc == ADS_ECONFLICT || rc == ADS_EINVAL) {
        imp_reject(im, diag.pointer, "%s", diag.message);
        return 0;
    }
    if (rc != 0)
        return rc;
    im->imported++;
    im->pending++;
    return 0;
}

static bool imp_blank(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
            return false;
    }
    return true;
}

/* ---- the command ---- */

struct imp_args {
    const char *file;
    enum doc_fmt fmt;
    bool fmt_given;
    uint32_t batch;
    bool restart;
    bool help;
    char **rest; /* what cfg_load gets; NULL-terminated */
    int nrest;
};

/* 0, or 2 (usage error, already explained). */
static int imp_parse_args(int argc, char **argv, struct imp_args *a)
{
    const char *v;
    size_t flen;

    a->batch = IMP_BATCH_DEFAULT;
    if (argc >= 1 && (strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0)) {
        a->help = true;
        return 0;
    }
    if (argc < 2 || strcmp(argv[0], "users") != 0 || (argv[1][0] == '-' && argv[1][1] != '\0')) {
        fprintf(stderr, "adsmith import: expected `adsmith import users FILE [OPTIONS]` (FILE \"-\" for stdin)\n");
        return 2;
    }
    a->file = argv[1];
    if ((a->rest = calloc((size_t)argc, sizeof(*a->rest))) == NULL) {
        fprintf(stderr, "adsmith import: out of memory\n");
        return 2;
    }
    for (int i = 2; i < argc; i++) {
        if ((v = cli_opt_value(argc, argv, &i, "--format")) != NULL) {
            if (strcmp(v, "jsonl") == 0 || strcmp(v, "json") == 0) {
                a->fmt = DOC_JSON;
            } else if (strcmp(v, "msgpack") == 0) {
                a->fmt = DOC_MSGPACK;
            } else {
                fprintf(stderr, "adsmith import: --format must be jsonl or msgpack, not '%s'\n", v);
                return 2;
            }
            a->fmt_given = true;
        } else if ((v = cli_opt_value(argc, argv, &i, "--batch")) != NULL) {
            char *end;
            unsigned long n;
            errno = 0;
            n = strtoul(v, &end, 10);
            if (v[0] < '0' || v[0] > '9' || *end != '\0' || errno != 0 || n < 1 || n > IMP_BATCH_MAX) {
                fprintf(stderr, "adsmith import: --batch must be a whole number from 1 to %d, not '%s'\n",
                        IMP_BATCH_MAX, v);
                return 2;
            }
            a->batch = (uint32_t)n;
        } else if (strcmp(argv[i], "--restart") == 0) {
            a->restart = true;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            a->help = true;
        } else {
            a->rest[a->nrest++] = argv[i];
        }
    }
    if (!a->fmt_given) {
        flen = strlen(a->file);
        if ((flen > 8 && strcmp(a->file + flen - 8, ".msgpack") == 0) ||
            (flen > 4 && strcmp(a->file + flen - 4, ".mpk") == 0))
            a->fmt = DOC_MSGPACK;
        else
            a->fmt = DOC_JSON;
    }
    return 0;
}

/* Opens the input and decides whether it can be resumed. 0 or 1 (explained). */
static int imp_open_input(struct imp *im, const char *file)
{
    char real[PATH_MAX];

    if (strcmp(file, "-") == 0) {
        im->in.fd = 0;
    } else if ((im->in.fd = open(file, O_RDONLY | O_CLOEXEC)) < 0) {
        /* Opening a FIFO waits for a writer; a signal ends that wait. */
        if (errno == EINTR && imp_stop)
            fprintf(stderr, "interrupted while opening %s: nothing was imported\n", file);
        else
            fprintf(stderr, "adsmith import: cannot open %s: %s\n", file, strerror(errno));
        return 1;
    }
    if (fstat(im->in.fd, &im->st) != 0) {
        fprintf(stderr, "adsmith import: cannot stat %s: %s\n", file, strerror(errno));
        return 1;
    }
    if (S_ISDIR(im->st.st_mode)) {
        fprintf(stderr, "adsmith import: %s is a directory\n", file);
        return 1;
    }
    im->in.seekable = S_ISREG(im->st.st_mode);
    if (!im->in.seekable) {
        fprintf(stderr, "%s is a stream: this import cannot be resumed if it is interrupted\n",
                im->in.fd == 0 ? "standard input" : file);
        return 0;
    }
    if (realpath(file, real) == NULL) {
        fprintf(stderr, "adsmith import: cannot resolve the path of %s: %s\n", file, strerror(errno));
        return 1;
    }
    im->key_len = (size_t)snprintf(im->key, sizeof(im->key), "%s%s", IMP_KEY_PREFIX, real);
    im->resumable = true;
    return 0;
}

static void imp_print_stop(struct imp *im, const char *why)
{
    imp_clear_bar(im);
    if (im->resumable)
        fprintf(stderr,
                "%s: %" PRIu64 " records are committed, up to byte %" PRIu64
                "; run the same command again to resume there\n",
                why, im->imported, im->in.offset);
    else
        fprintf(stderr,
                "%s: %" PRIu64 " records are committed, up to %s %" PRIu64
                " of the stream; a stream cannot be resumed: import the rest, or all of it again "
                "(a profile imported again is replaced)\n",
                why, im->imported, im->unit, im->lines);
}

/* The loop over the records. 0 at the end of the input, or why it stopped. */
static int imp_run(struct imp *im)
{
    const char *rec = NULL;
    size_t len = 0;
    int rc;

    for (;;) {
        if (imp_stop)
            return -EINTR;
        rc = imp_next(im, &rec, &len);
        if (rc < 0)
            return rc;
        if (rc == IMP_EOF)
            return 0;
        im->lines++;
        if (rc == IMP_OVERLONG) {
            imp_reject(im, NULL, "longer than %d bytes", IMP_RECORD_MAX);
        } else if (rc == IMP_BROKEN) {
            imp_reject(im, NULL,
                       "byte %" PRIu64 " does not start a MessagePack value that ends within %d bytes (corrupt, cut "
                       "short, or nested deeper than %d): the rest of the stream cannot be read",
                       im->in.offset, IMP_RECORD_MAX, MPR_MAX_DEPTH);
            return 0;
        } else if (im->fmt == DOC_MSGPACK || !imp_blank(rec, len)) {
            if ((rc = imp_record(im, rec, len)) != 0)
                return rc;
            if (im->pending >= im->batch && (rc = imp_commit(im, false)) != 0)
                return rc;
        } else {
            continue;
        }
        if ((im->lines & 255) == 0)
            imp_progress(im);
    }
}

int cli_import(int argc, char **argv)
{
    struct imp_args a = {0};
    struct ads_diag d = {{0}, {0}};
    struct cfg cfg;
    struct imp *im = NULL;
    struct sigaction sa;
    bool cfg_loaded = false;
    uint64_t failed_at;
    int rc, status = 2;

    if ((status = imp_parse_args(argc, argv, &a)) != 0)
        goto out;
    if (a.help) {
        imp_usage(stdout);
        goto out;
    }
    if ((rc = cfg_load(&cfg, a.nrest, a.rest, environ, &d)) != 0) {
        fprintf(stderr, "adsmith import: %s%s%s (see adsmith import --help)\n", d.pointer[0] != '\0' ? d.pointer : "",
                d.pointer[0] != '\0' ? ": " : "", d.message);
        status = 2;
        goto out;
    }
    cfg_loaded = true;
    if (cfg.want_help) {
        imp_usage(stdout);
        goto out;
    }
    if (cfg.want_print) {
        static char mem[65536];
        struct buf b;
        buf_init(&b, mem, sizeof(mem));
        cfg_print(&cfg, &b);
        fputs(b.base, stdout);
        goto out;
    }
    status = 1;
    if ((im = calloc(1, sizeof(*im))) == NULL || (im->p = malloc(sizeof(*im->p))) == NULL ||
        (im->in.buf = malloc(IMP_RECORD_MAX + IMP_READ_CHUNK + 1)) == NULL ||
        !msgpack_zone_init(&im->zone, IMP_ZONE_CHUNK)) {
        fprintf(stderr, "adsmith import: out of memory\n");
        if (im != NULL)
            im->zone.chunk_size = 0;
        goto out;
    }
    im->in.fd = -1;
    im->in.cap = IMP_RECORD_MAX + IMP_READ_CHUNK + 1;
    im->fmt = a.fmt;
    im->unit = a.fmt == DOC_JSON ? "line" : "record";
    im->batch = a.batch;
    im->tty = isatty(2);

    /* From here on a signal ends the import cleanly at a record boundary,
     * also while opening storage waits for the writer lock. */
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = imp_on_signal;
    sigemptyset(&sa.sa_mask);
    /* No SA_RESTART: a wait for a pipe returns EINTR. SA_RESETHAND: a second
     * Ctrl-C kills at once, which is safe: LMDB keeps the last commit and its
     * checkpoint through any crash. */
    sa.sa_flags = (int)SA_RESETHAND;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    fprintf(stderr, "importing %s (%s) into %s\n", strcmp(a.file, "-") == 0 ? "standard input" : a.file,
            a.fmt == DOC_JSON ? "JSON Lines" : "MessagePack", cfg.data_dir);
    if (imp_open_input(im, a.file) != 0) {
        if (imp_stop)
            status = 128 + imp_stop;
        goto out;
    }

    if ((rc = store_open(cfg.data_dir, cfg.map_size, &d, NULL, &im->s)) != 0) {
        fprintf(stderr, "adsmith import: %s\n", d.message);
        goto out;
    }
    if (im->resumable && im->key_len > (size_t)mdb_env_get_maxkeysize(store_env(im->s))) {
        fprintf(stderr, "the path of %s is too long for a checkpoint: this import cannot be resumed\n", a.file);
        im->resumable = false;
    }
    if (im->resumable && (rc = imp_ckpt_load(im, a.file, a.restart)) != 0) {
        fprintf(stderr, "adsmith import: cannot read the checkpoint: %s\n", ads_err_message(rc));
        goto out;
    }
    im->started_ns = im->last_progress_ns = imp_now_ns();

    rc = imp_run(im);
    if (rc == 0 && (rc = imp_commit(im, true)) == 0) {
        imp_summary(im, imp_now_ns());
        if (im->base_imported > 0 || im->base_rejected > 0)
            fprintf(stderr, "whole file: %" PRIu64 " records imported, %" PRIu64 " rejected\n", im->imported,
                    im->rejected);
        status = im->rejected > 0 ? 1 : 0;
        goto out;
    }
    if (rc == -EINTR) {
        /* Finish cleanly: what was read so far is committed with its checkpoint. */
        if ((rc = imp_commit(im, false)) == 0) {
            imp_summary(im, imp_now_ns());
            imp_print_stop(im, imp_stop == SIGTERM ? "terminated (SIGTERM)" : "interrupted (SIGINT)");
            status = 128 + (imp_stop != 0 ? imp_stop : SIGINT);
            goto out;
        }
    }
    if (im->txn != NULL) {
        mdb_txn_abort(im->txn);
        im->txn = NULL;
    }
    /* The batch in progress is gone: count as of the last commit, which is what the checkpoint says. */
    failed_at = im->lines;
    im->in.offset = im->ck_offset;
    im->lines = im->ck_lines;
    im->imported = im->ck_imported;
    im->rejected = im->ck_rejected;
    imp_clear_bar(im);
    if (rc == ADS_ESTORAGE_FULL)
        fprintf(stderr,
                "adsmith import: the LMDB map is full (map_size %llu bytes): raise --map-size and run the same "
                "command again to resume after the last committed batch\n",
                (unsigned long long)cfg.map_size);
    else if (rc < 0 && rc > -4096)
        fprintf(stderr, "adsmith import: cannot read %s: %s\n", a.file, strerror(-rc));
    else
        fprintf(stderr, "adsmith import: %s failed at %s %" PRIu64 ": %s (%s)%s\n", a.file, im->unit, failed_at,
                ads_err_message(rc), ads_err_name(rc),
                im->resumable ? "; run the same command again to resume after the last committed batch" : "");
    imp_summary(im, imp_now_ns());

out:
    if (im != NULL) {
        if (im->txn != NULL)
            mdb_txn_abort(im->txn);
        store_free(im->s);
        if (im->in.fd > 0)
            close(im->in.fd);
        if (im->zone.chunk_size != 0)
            msgpack_zone_destroy(&im->zone);
        free(im->in.buf);
        free(im->p);
        free(im);
    }
    if (cfg_loaded)
        cfg_done(&cfg);
    free(a.rest);
    return status;
}
