#include "adsmith/store.h"

#include <errno.h>
#include <limits.h>
#include <msgpack.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "adsmith/version.h"

struct store {
    MDB_env *env;
    MDB_dbi dbi[STORE_DB_COUNT];
    pthread_key_t read_key; /* each thread's MDB_txn for store_read_begin() */
    bool read_key_made;
};

static const char *const store_db_names[] = {
#define STORE_DB_NAME_(name, str) str,
    STORE_DB_MAP(STORE_DB_NAME_)
#undef STORE_DB_NAME_
};

static const char store_meta_key[] = "schema";

const char *store_db_name(enum store_db db)
{
    return (unsigned)db < STORE_DB_COUNT ? store_db_names[db] : "unknown";
}

int store_err(int mdb_rc)
{
    switch (mdb_rc) {
    case MDB_SUCCESS:
        return 0;
    case MDB_MAP_FULL:
        return ADS_ESTORAGE_FULL;
    case ENOMEM:
        return ADS_ENOMEM;
    default:
        return ADS_ESTORAGE;
    }
}

/* mkdir -p: creates every missing component of @p dir. */
static int store_mkdirs(const char *dir)
{
    char path[PATH_MAX];
    size_t len = strlen(dir);

    if (len == 0 || len >= sizeof(path))
        return -ENAMETOOLONG;
    memcpy(path, dir, len + 1);
    for (size_t i = 1; i <= len; i++) {
        if (path[i] != '/' && path[i] != '\0')
            continue;
        char saved = path[i];
        path[i] = '\0';
        if (mkdir(path, 0750) != 0 && errno != EEXIST)
            return -errno;
        path[i] = saved;
    }
    return 0;
}

static int store_meta_write(struct store *s, MDB_txn *txn)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    MDB_val key = {sizeof(store_meta_key) - 1, (void *)store_meta_key}, val;
    static const char writer[] = "adsmith " ADS_VERSION;
    int rc;

    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 4);
    msgpack_pack_str_with_body(&pk, "format", 6);
    msgpack_pack_uint32(&pk, 1);
    msgpack_pack_str_with_body(&pk, "schema", 6);
    msgpack_pack_uint32(&pk, STORE_SCHEMA_VERSION);
    msgpack_pack_str_with_body(&pk, "created_at", 10);
    msgpack_pack_int64(&pk, (int64_t)time(NULL));
    msgpack_pack_str_with_body(&pk, "writer", 6);
    msgpack_pack_str_with_body(&pk, writer, sizeof(writer) - 1);
    if (sb.data == NULL) {
        msgpack_sbuffer_destroy(&sb);
        return ADS_ENOMEM;
    }
    val.mv_size = sb.size;
    val.mv_data = sb.data;
    rc = mdb_put(txn, s->dbi[STORE_DB_META], &key, &val, 0);
    msgpack_sbuffer_destroy(&sb);
    return store_err(rc);
}

/* Reads "schema" (and "writer", for the message) from the meta record. */
static int store_meta_decode(const MDB_val *val, uint64_t *ret_schema, char *writer, size_t writersz)
{
    msgpack_unpacked up;
    size_t off = 0;
    int rc = ADS_ESTORAGE;

    writer[0] = '\0';
    msgpack_unpacked_init(&up);
    if (msgpack_unpack_next(&up, val->mv_data, val->mv_size, &off) == MSGPACK_UNPACK_SUCCESS &&
        up.data.type == MSGPACK_OBJECT_MAP) {
        const msgpack_object_map *m = &up.data.via.map;
        for (uint32_t i = 0; i < m->size; i++) {
            const msgpack_object *k = &m->ptr[i].key, *v = &m->ptr[i].val;
            if (k->type != MSGPACK_OBJECT_STR)
                continue;
            if (k->via.str.size == 6 && memcmp(k->via.str.ptr, "schema", 6) == 0 &&
                v->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
                *ret_schema = v->via.u64;
                rc = 0;
            } else if (k->via.str.size == 6 && memcmp(k->via.str.ptr, "writer", 6) == 0 &&
                       v->type == MSGPACK_OBJECT_STR) {
                size_t n = v->via.str.size < writersz - 1 ? v->via.str.size : writersz - 1;
                memcpy(writer, v->via.str.ptr, n);
                writer[n] = '\0';
            }
        }
    }
    msgpack_unpacked_destroy(&up);
    return rc;
}

static int store_prepare(struct store *s, const char *dir, struct ads_diag *diag, struct store_open_info *info)
{
    MDB_txn *txn = NULL;
    MDB_val key = {sizeof(store_meta_key) - 1, (void *)store_meta_key}, val;
    uint64_t schema = 0;
    char writer[64];
    int rc;

    MDB_dbi main_dbi;
    MDB_stat main_st;

    if ((rc = mdb_txn_begin(s->env, NULL, 0, &txn)) != 0)
        return ads_diag_set(diag, store_err(rc), "", "cannot start an LMDB transaction in %s: %s", dir, mdb_strerror(rc));
    /* adsmith creates its databases and the meta record in one transaction, so
     * an environment that holds anything at all must hold that record too. */
    if ((rc = mdb_dbi_open(txn, NULL, 0, &main_dbi)) != 0 || (rc = mdb_stat(txn, main_dbi, &main_st)) != 0) {
        rc = ads_diag_set(diag, store_err(rc), "", "cannot read the LMDB environment in %s: %s", dir, mdb_strerror(rc));
        goto abort;
    }
    for (int i = 0; i < STORE_DB_COUNT; i++) {
        if ((rc = mdb_dbi_open(txn, store_db_names[i], MDB_CREATE, &s->dbi[i])) != 0) {
            rc = ads_diag_set(diag, store_err(rc), "", "cannot open database '%s' in %s: %s", store_db_names[i], dir,
                              mdb_strerror(rc));
            goto abort;
        }
    }
    rc = mdb_get(txn, s->dbi[STORE_DB_META], &key, &val);
    if (rc == MDB_NOTFOUND && main_st.ms_entries > 0) {
        rc = ads_diag_set(diag, ADS_EDATA_INVALID, "",
                          "%s holds an LMDB environment without adsmith's meta record: another program's data? "
                          "choose another data_dir",
                          dir);
        goto abort;
    } else if (rc == MDB_NOTFOUND) {
        if ((rc = store_meta_write(s, txn)) != 0) {
            rc = ads_diag_set(diag, rc, "", "cannot write the meta record in %s: %s", dir, ads_err_message(rc));
            goto abort;
        }
        info->created = 1;
        schema = STORE_SCHEMA_VERSION;
    } else if (rc != 0) {
        rc = ads_diag_set(diag, store_err(rc), "", "cannot read the meta record in %s: %s", dir, mdb_strerror(rc));
        goto abort;
    } else if (store_meta_decode(&val, &schema, writer, sizeof(writer)) != 0) {
        rc = ads_diag_set(diag, ADS_EDATA_INVALID, "",
                          "the meta record in %s is unreadable; is this an adsmith data directory?", dir);
        goto abort;
    } else if (schema > STORE_SCHEMA_VERSION) {
        rc = ads_diag_set(diag, ADS_EDATA_TOO_NEW, "",
                          "%s holds schema version %llu (written by %s); this adsmith (%s) reads up to version %d: "
                          "run a newer adsmith or choose another data_dir",
                          dir, (unsigned long long)schema, writer[0] != '\0' ? writer : "an unknown writer", ADS_VERSION,
                          STORE_SCHEMA_VERSION);
        goto abort;
    }
    info->schema = (uint32_t)schema;
    if ((rc = mdb_txn_commit(txn)) != 0)
        return ads_diag_set(diag, store_err(rc), "", "cannot commit to %s: %s", dir, mdb_strerror(rc));
    return 0;

abort:
    mdb_txn_abort(txn);
    return rc;
}

/* A thread's read transaction lives in thread-specific data, aborted by the
 * key's destructor when the thread exits (workers exit before the store is
 * freed) or by store_free() for the thread that frees the store. */
static void store_read_txn_dtor(void *txn)
{
    mdb_txn_abort(txn);
}

int store_read_begin(struct store *s, MDB_txn **ret_txn)
{
    MDB_txn *txn = pthread_getspecific(s->read_key);
    int rc;

    if (txn != NULL) {
        if ((rc = mdb_txn_renew(txn)) != 0)
            return store_err(rc);
    } else {
        if ((rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn)) != 0)
            return store_err(rc);
        if (pthread_setspecific(s->read_key, txn) != 0) {
            mdb_txn_abort(txn);
            return ADS_ENOMEM;
        }
    }
    *ret_txn = txn;
    return 0;
}

void store_read_end(MDB_txn *txn)
{
    mdb_txn_reset(txn);
}

int store_open(const char *dir, uint64_t map_size, struct ads_diag *ret_diag, struct store_open_info *ret_info,
               struct store **ret_store)
{
    struct store_open_info info = {0};
    struct store *s;
    int rc;

    if ((rc = store_mkdirs(dir)) != 0)
        return ads_diag_set(ret_diag, ADS_ESTORAGE, "", "cannot create data directory %s: %s", dir, strerror(-rc));
    if ((s = calloc(1, sizeof(*s))) == NULL)
        return ads_diag_set(ret_diag, ADS_ENOMEM, "", "out of memory");
    if ((rc = mdb_env_create(&s->env)) != 0) {
        free(s);
        return ads_diag_set(ret_diag, store_err(rc), "", "cannot create an LMDB environment: %s", mdb_strerror(rc));
    }
    mdb_env_set_maxdbs(s->env, STORE_DB_COUNT + 8);
    mdb_env_set_maxreaders(s->env, STORE_MAX_READERS);
    if ((rc = mdb_env_set_mapsize(s->env, (size_t)map_size)) != 0) {
        rc = ads_diag_set(ret_diag, ADS_ESTORAGE, "/map_size", "LMDB refused map_size %llu: %s",
                          (unsigned long long)map_size, mdb_strerror(rc));
        goto fail;
    }
    if ((rc = mdb_env_open(s->env, dir, 0, 0640)) != 0) {
        rc = ads_diag_set(ret_diag, store_err(rc), "", "cannot open the LMDB environment in %s: %s", dir, mdb_strerror(rc));
        goto fail;
    }
    /* Reader slots left by processes that died inside a read transaction pin old
     * pages forever; free them before anything else runs. */
    if ((rc = mdb_reader_check(s->env, &info.stale_readers_cleared)) != 0) {
        rc = ads_diag_set(ret_diag, store_err(rc), "", "cannot check LMDB readers in %s: %s", dir, mdb_strerror(rc));
        goto fail;
    }
    if ((rc = store_prepare(s, dir, ret_diag, &info)) != 0)
        goto fail;
    if (pthread_key_create(&s->read_key, store_read_txn_dtor) != 0) {
        rc = ads_diag_set(ret_diag, ADS_ENOMEM, "", "cannot create a thread key for read transactions");
        goto fail;
    }
    s->read_key_made = true;
    if (ret_info != NULL)
        *ret_info = info;
    *ret_store = s;
    return 0;

fail:
    mdb_env_close(s->env);
    free(s);
    return rc;
}

void store_free(struct store *s)
{
    MDB_txn *txn;

    if (s == NULL)
        return;
    if (s->read_key_made) {
        if ((txn = pthread_getspecific(s->read_key)) != NULL)
            mdb_txn_abort(txn);
        pthread_key_delete(s->read_key);
    }
    mdb_env_close(s->env);
    free(s);
}

MDB_env *store_env(struct store *s)
{
    return s->env;
}

MDB_dbi store_dbi(const struct store *s, enum store_db db)
{
    return s->dbi[db];
}

int store_stats(struct store *s, struct store_stats *ret_stats)
{
    MDB_envinfo info;
    MDB_stat st;

    if (mdb_env_info(s->env, &info) != 0 || mdb_env_stat(s->env, &st) != 0)
        return ADS_ESTORAGE;
    ret_stats->map_size = info.me_mapsize;
    ret_stats->map_used = ((uint64_t)info.me_last_pgno + 1) * st.ms_psize;
    ret_stats->readers = info.me_numreaders;
    ret_stats->max_readers = info.me_maxreaders;
    return 0;
}
