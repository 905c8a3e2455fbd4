/* fuzz_shm_model.c - a model check of the shm store.
 *
 * Random sequences of operations (new saves, updates, loads, removes, with
 * random sizes, keys, users, limits and clocks) from several simulated
 * children, each with its own ss_store_t over one arena (and its locks), are
 * played against the store through its ss_store_ops_t and against a plain
 * array of what each key should hold. After every operation:
 *   - the result is the one the model predicts (EEXIST, NOTFOUND, EEXPIRED, ENOSPC,
 *     SS_ECONFLICT, the record loaded byte for byte with its revision, the
 *     last access a touch rewrote, a sealed record a miss for a key without
 *     its seal key, a record in clear removed by a child requiring seals);
 *   - ss_shm_check walks the whole arena and finds it consistent, and it
 *     was never rebuilt;
 *   - exactly the keys the model holds are in the arena. A save may evict:
 *     the keys that vanished must be as many as the eviction counters say,
 *     all from the stripe of the key saved (each stripe has its own ring
 *     and clock hand); a live one that was referenced (loaded or updated
 *     since the hand last passed it) goes only after the hand has gone
 *     round the whole stripe, clearing every other reference there (CLOCK;
 *     dead ones may go any time the hand reaches them); a live one goes
 *     only if the stripe, the save's record counted, was short of room;
 *   - a record loaded or updated is referenced, a new one is not;
 *   - the entry count and the bytes used match the model.
 * Membership is read without side effects by the test-only
 * ss_shm_fault_field (this harness builds ss_shm.c with SS_FAULT_POINTS,
 * like tests/unit/test_shm); everything else goes through the public API.
 *
 * Input: the geometry (bits 0-1 the arena size, 2-3 at most 1, 2, 4 stripes
 * or as many as fit, bit 4 large records) and the record limit, the number of children (1-4, and
 * for each a bit: it refuses records in clear) and the record format each
 * writes (sealed, clear, format 1: 2 bits each),
 * two locations' idle and absolute timeouts (the store keeps records for
 * the more lenient of them), then operations of 6 bytes each: child, kind,
 * location and clock skew; key; clock advance (2 bytes); size variation;
 * extras (bit 0: a load with the store key alone, bit 1: an update over a
 * revision it did not load). */
#include <stdlib.h>
#include <string.h>

#include <apr_strings.h>

#include "fuzz.h"
#include "ss_shm.h"

#define NKEYS 40
#define MAX_CHILDREN 4
#define MAX_OPS 400
#define T0 apr_time_from_sec(1700000000)

typedef struct {
    int present;
    apr_time_t created;
    apr_time_t accessed;
    apr_time_t deadline; /* as the store keeps it (0: none) */
    const char *user;
    const char *payload;
    apr_size_t payload_len;
    apr_uint32_t revision; /* as stored: 0 in a format 1 record */
    int sealed;            /* written sealed: a key without its seal key cannot open it */
    apr_size_t len;        /* encoded bytes */
} model_t;

typedef struct {
    apr_pool_t *p;
    void *base;
    apr_size_t size;
    apr_size_t max_record;
    ss_store_t *child[MAX_CHILDREN];
    int nchildren;
    ss_key_t clear_keys[NKEYS]; /* the same store keys without their seal keys */
    ss_expiry_t judge[2];
    ss_expiry_t keep;
    ss_key_t keys[NKEYS];
    model_t m[NKEYS];
    unsigned seq; /* operation number */
} world_t;

static void no_fault(const char *step)
{
    (void)step;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    ss_shm_fault_hook = no_fault; /* never the SS_FAULT_FILE lookup */
    return 0;
}

/* Keys share buckets in groups of three: chains have several entries.
 * Each has a seal key of its own (as ss_id_key gives). */
static void make_key(ss_key_t *key, ss_key_t *clear, int i)
{
    memset(key, 0, sizeof(*key));
    key->bytes[0] = (unsigned char)(i / 3);
    key->bytes[4] = (unsigned char)i;
    key->bytes[31] = 0xa5;
    memset(key->seal, 0x30 + i, sizeof(key->seal));
    key->sealable = 1;
    *clear = *key;
    memset(clear->seal, 0, sizeof(clear->seal));
    clear->sealable = 0;
}

/* What the harness knows of a slot's meta word (see ss_shm.c): units << 8
 * | spare bytes << 4 | flags, SLOT_REF 2 the reference bit. */
#define META_REF 2u

static int in_arena(world_t *w, int k)
{
    return ss_shm_fault_field(w->base, "meta", &w->keys[k]) != NULL;
}

/* Key k is in the arena, referenced since the hand last passed it. */
static int referenced(world_t *w, int k)
{
    apr_uint32_t *meta = ss_shm_fault_field(w->base, "meta", &w->keys[k]);

    return meta && (*meta & META_REF);
}

static int owned(const model_t *m)
{
    return *m->user != '\0';
}

/* Dead for the store: its slots keep a deadline in seconds, rounded up (a
 * record stays up to a second past its own; loads judge by the record's
 * timestamps). */
static int dead_at(const model_t *m, apr_time_t now)
{
    apr_time_t secs = (m->deadline + APR_USEC_PER_SEC - 1) / APR_USEC_PER_SEC;

    return m->deadline > 0 && apr_time_from_sec(secs) <= now;
}

static ss_store_stats_t stats_of(world_t *w)
{
    ss_store_stats_t st;

    FUZZ_CHECK(w->child[0]->ops->stats(w->child[0], &st) == APR_SUCCESS, "stats");
    return st;
}

/* The arena walks clean and holds what the model holds. */
static void check_world(world_t *w, const char *after)
{
    ss_store_stats_t st = stats_of(w);
    apr_uint64_t entries = 0, used = 0;
    const char *why = NULL;
    int k;

    FUZZ_CHECK(ss_shm_check(w->base, w->size, w->max_record, &why) == APR_SUCCESS,
               "after %s (op %u): the arena is damaged: %s", after, w->seq, why ? why : "?");
    FUZZ_CHECK(ss_shm_rebuilds(w->base) == 0 && st.rebuilds == 0, "after %s: rebuilt", after);
    for (k = 0; k < NKEYS; k++) {
        FUZZ_CHECK(in_arena(w, k) == w->m[k].present, "after %s (op %u): key %d %s", after, w->seq,
                   k, w->m[k].present ? "vanished" : "appeared");
        if (w->m[k].present) {
            entries++;
            used += ss_shm_footprint(w->m[k].len, owned(&w->m[k]));
        }
    }
    FUZZ_CHECK(st.entries == entries, "after %s: %lu entries, the model %lu", after,
               (unsigned long)st.entries, (unsigned long)entries);
    FUZZ_CHECK(st.used_bytes == used, "after %s: %lu bytes used, the model %lu", after,
               (unsigned long)st.used_bytes, (unsigned long)used);
}

/* A load with the store key alone (clear) is what a tool holding no ID
 * does: a sealed record is a miss it leaves alone. */
static void op_load(world_t *w, ss_store_t *s, int k, const ss_expiry_t *judge, apr_time_t now,
                    int clear)
{
    model_t *m = &w->m[k];
    ss_record_t rec;
    apr_status_t rv;

    memset(&rec, 0, sizeof(rec));
    rv = s->ops->load(s, clear ? &w->clear_keys[k] : &w->keys[k], judge, &w->keep, now, w->p, &rec);
    fuzz_trace("op %u: %sload key %d at +%lds: %d (%s)", w->seq, clear ? "clear " : "", k,
               (long)apr_time_sec(now - T0), rv, m->present ? "present" : "absent");
    if (!m->present) {
        FUZZ_CHECK(rv == APR_NOTFOUND, "load of absent key %d: %d", k, rv);
        return;
    }
    if (clear && m->sealed) {
        FUZZ_CHECK(rv == APR_NOTFOUND, "a sealed record loaded without its seal key: %d", rv);
        return;
    }
    if (s->sealed_only && !m->sealed) {
        FUZZ_CHECK(rv == APR_NOTFOUND, "a record in clear served where seals are required: %d", rv);
        m->present = 0; /* malformed there: removed */
        return;
    }
    if (ss_expiry_check(&w->keep, m->created, m->accessed, now) != SS_LIVE) {
        FUZZ_CHECK(rv == SS_EEXPIRED, "load of key %d, dead everywhere: %d", k, rv);
        m->present = 0; /* the load removes it */
        return;
    }
    if (ss_expiry_check(judge, m->created, m->accessed, now) != SS_LIVE) {
        FUZZ_CHECK(rv == SS_EEXPIRED, "load of key %d, dead here: %d", k, rv);
        return; /* kept for the other location */
    }
    FUZZ_CHECK(rv == APR_SUCCESS, "load of live key %d: %d", k, rv);
    if (ss_expiry_touch_due(judge, m->accessed, now)) {
        m->accessed = now;
        m->deadline = ss_expiry_deadline(&w->keep, m->created, now);
    }
    FUZZ_CHECK(rec.created == m->created && rec.accessed == m->accessed &&
                   rec.revision == m->revision,
               "key %d: times %ld/%ld, revision %u; the model %ld/%ld, %u", k, (long)rec.created,
               (long)rec.accessed, rec.revision, (long)m->created, (long)m->accessed, m->revision);
    FUZZ_CHECK(!strcmp(rec.user, m->user) && rec.payload_len == m->payload_len &&
                   !memcmp(rec.payload, m->payload, m->payload_len),
               "key %d: the record differs from the one saved", k);
    FUZZ_CHECK(referenced(w, k), "op %u: key %d loaded, not referenced", w->seq, k);
}

/* Vanished keys: as many as the counters say, all from the stripe of the
 * key saved; a live one referenced before the save only if the hand went
 * round the stripe, so that no key that stayed there is referenced still
 * (but the one saved); a live one at all only if the stripe's live bytes
 * and the saved record's together came near its capacity (ss_shm.c evicts
 * a live slot only when the live ones, moved together, would not leave
 * twice the record's slot and 1/32 of the stripe). */
static void check_evictions(world_t *w, int saved, const ss_store_stats_t *before,
                            const int *was_referenced, apr_uint64_t stripe_live,
                            apr_size_t saved_fp, apr_time_t now)
{
    apr_uint32_t stripe = saved >= 0 ? ss_shm_fault_stripe_of(w->base, &w->keys[saved]) : 0;
    ss_store_stats_t after = stats_of(w);
    apr_uint64_t evicted = (after.evicted_lru + after.evicted_expired) -
                           (before->evicted_lru + before->evicted_expired);
    apr_uint64_t gone = 0, stripe_bytes = after.capacity_bytes / ss_shm_stripes(w->base);
    int k, referenced_gone = -1, referenced_kept = -1, live_gone = -1;

    for (k = 0; k < NKEYS; k++) {
        model_t *m = &w->m[k];

        if (k == saved || !m->present) {
            continue;
        }
        if (in_arena(w, k)) {
            if (saved >= 0 && ss_shm_fault_stripe_of(w->base, &w->keys[k]) == stripe &&
                referenced(w, k)) {
                referenced_kept = k;
            }
            continue;
        }
        FUZZ_CHECK(saved >= 0 && ss_shm_fault_stripe_of(w->base, &w->keys[k]) == stripe,
                   "op %u: key %d vanished from another stripe than the save's", w->seq, k);
        gone++;
        if (!dead_at(m, now)) {
            live_gone = k;
            if (was_referenced[k]) {
                referenced_gone = k;
            }
        }
        m->present = 0;
    }
    if (gone) {
        fuzz_trace("op %u: %lu evicted", w->seq, (unsigned long)gone);
    }
    FUZZ_CHECK(gone == evicted, "op %u: %lu keys vanished, %lu evictions counted", w->seq,
               (unsigned long)gone, (unsigned long)evicted);
    FUZZ_CHECK(referenced_gone < 0 || referenced_kept < 0,
               "op %u: key %d evicted though referenced, key %d kept referenced", w->seq,
               referenced_gone, referenced_kept);
    FUZZ_CHECK(live_gone < 0 || stripe_live + 2 * saved_fp + stripe_bytes / 32 > stripe_bytes,
               "op %u: live key %d evicted from a stripe with %lu of %lu bytes live", w->seq,
               live_gone, (unsigned long)stripe_live, (unsigned long)stripe_bytes);
}

/* The footprints of the keys the model holds in key k's stripe. */
static apr_uint64_t stripe_live_bytes(world_t *w, int k)
{
    apr_uint32_t stripe = ss_shm_fault_stripe_of(w->base, &w->keys[k]);
    apr_uint64_t live = 0;
    int j;

    for (j = 0; j < NKEYS; j++) {
        if (w->m[j].present && ss_shm_fault_stripe_of(w->base, &w->keys[j]) == stripe) {
            live += ss_shm_footprint(w->m[j].len, owned(&w->m[j]));
        }
    }
    return live;
}

/* A save from child s. An update normally writes the revision after the
 * stored one; stale writes one that is not (another request's). */
static void op_save(world_t *w, int child, int k, ss_save_mode_e mode, apr_time_t now,
                    unsigned plen, unsigned ulen, int tight, int stale)
{
    ss_store_t *s = w->child[child];
    model_t *m = &w->m[k], next;
    ss_store_stats_t before = stats_of(w);
    int was_referenced[NKEYS];
    apr_uint64_t stripe_live = stripe_live_bytes(w, k);
    char *payload = apr_palloc(w->p, plen + 1), *user = apr_palloc(w->p, ulen + 1);
    int live = m->present && !dead_at(m, now);
    apr_size_t len, limit;
    ss_record_t rec;
    apr_status_t rv, want;
    unsigned i;

    for (i = 0; i < plen; i++) {
        payload[i] = (char)('!' + (w->seq + i) % 90); /* printable, never NUL */
    }
    payload[plen] = '\0';
    for (i = 0; i < ulen; i++) {
        user[i] = (char)('a' + (w->seq * 7 + i) % 26);
    }
    user[ulen] = '\0';
    rec.created = mode == SS_SAVE_UPDATE && m->present ? m->created : now;
    rec.accessed = now;
    rec.user = user;
    rec.payload = payload;
    rec.payload_len = plen;
    rec.revision = mode == SS_SAVE_UPDATE && m->present ? m->revision + 1 + (stale ? 7 : 0)
                                                        : 1 + (stale ? w->seq : 0);
    len = ss_record_size(&rec, s->form);
    limit = tight ? len - 1 : w->max_record * 2;
    next.present = 1;
    next.created = rec.created;
    next.accessed = now;
    next.deadline = ss_expiry_deadline(&w->keep, rec.created, now);
    next.user = user;
    next.payload = payload;
    next.payload_len = plen;
    next.revision = s->form == SS_RECORD_FORM_V1 ? 0 : rec.revision;
    next.sealed = s->form == SS_RECORD_FORM_SEALED;
    next.len = len;
    for (i = 0; i < NKEYS; i++) {
        was_referenced[i] = referenced(w, (int)i);
    }

    if (len > limit || len > w->max_record) {
        want = APR_ENOSPC;
    } else if (mode == SS_SAVE_NEW) {
        want = live ? APR_EEXIST : APR_SUCCESS;
    } else if (!live) {
        want = APR_NOTFOUND;
    } else {
        want = rec.revision - 1 == m->revision ? APR_SUCCESS : SS_ECONFLICT;
    }
    rv = s->ops->save(s, &w->keys[k], &rec, next.deadline, mode, limit, w->p);
    fuzz_trace("op %u: child %d %s save key %d revision %u, %lu bytes, at +%lds: %d", w->seq, child,
               mode == SS_SAVE_NEW ? "new" : "update", k, rec.revision, (unsigned long)len,
               (long)apr_time_sec(now - T0), rv);
    FUZZ_CHECK(rv == want, "op %u: %s save of key %d (%lu bytes, limit %lu, %s): %d, expected %d",
               w->seq, mode == SS_SAVE_NEW ? "new" : "update", k, (unsigned long)len,
               (unsigned long)limit, m->present ? (live ? "live" : "dead") : "absent", rv, want);
    if (rv == APR_SUCCESS) {
        *m = next;
        /* An update is a use; a new record is not, until it is loaded. */
        FUZZ_CHECK(referenced(w, k) == (mode == SS_SAVE_UPDATE), "op %u: key %d saved %s, %s",
                   w->seq, k, mode == SS_SAVE_UPDATE ? "as an update" : "new",
                   referenced(w, k) ? "referenced" : "not referenced");
    }
    check_evictions(w, rv == APR_SUCCESS ? k : -1, &before, was_referenced, stripe_live,
                    ss_shm_footprint(len, *user != '\0'), now);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const apr_size_t sizes[] = {SS_SHM_MIN_SIZE, SS_SHM_MIN_SIZE + 40000,
                                       4 * SS_SHM_MIN_SIZE};
    world_t w;
    fuzz_reader_t r;
    apr_time_t now = T0;
    unsigned geometry, children, forms;
    int i;

    memset(&w, 0, sizeof(w));
    fuzz_reader_init(&r, data, size);
    w.p = fuzz_pool();
    geometry = fuzz_u8(&r);
    w.size = sizes[(geometry & 3) % 3];
    /* At most 1, 2 or 4 stripes, or as many as fit (0). */
    ss_shm_fault_max_stripes = (apr_uint32_t[]){1, 2, 4, 0}[(geometry >> 2) & 3];
    /* Small records leave room for stripes; large ones for long chains. */
    w.max_record = SS_RECORD_MIN_LEN + fuzz_u16(&r) % (geometry & 0x10 ? 8192 : 400);
    while (!ss_shm_fits(w.size, w.max_record)) {
        w.max_record = SS_RECORD_MIN_LEN + (w.max_record - SS_RECORD_MIN_LEN) / 2;
    }
    w.base = malloc(w.size); /* exactly the arena: ASan sees a step past its end */
    FUZZ_CHECK(ss_shm_format(w.base, w.size, w.max_record) == APR_SUCCESS, "format");
    fuzz_trace("arena of %lu bytes, records up to %lu, %u stripes", (unsigned long)w.size,
               (unsigned long)w.max_record, ss_shm_stripes(w.base));
    children = fuzz_u8(&r);
    w.nchildren = 1 + (int)(children % MAX_CHILDREN);
    forms = fuzz_u8(&r);
    for (i = 0; i < w.nchildren; i++) {
        static const ss_record_form_e form[4] = {SS_RECORD_FORM_SEALED, SS_RECORD_FORM_CLEAR,
                                                 SS_RECORD_FORM_V1, SS_RECORD_FORM_SEALED};

        FUZZ_CHECK(ss_shm_open(&w.child[i], w.base, w.p) == APR_SUCCESS, "open");
        FUZZ_CHECK(w.child[i]->ops->child_init(w.child[i], w.p) == APR_SUCCESS, "child_init");
        /* Children that write different formats: a rolling upgrade; some
         * refuse records in clear (SessionStoreSeal Required). */
        w.child[i]->form = form[(forms >> (2 * i)) & 3];
        w.child[i]->sealed_only = (children >> (2 + i)) & 1;
    }
    w.keep.idle = w.keep.absolute = SS_EXPIRY_NARROWEST;
    for (i = 0; i < 2; i++) {
        unsigned idle = fuzz_u16(&r), absolute = fuzz_u16(&r);

        w.judge[i].idle = idle % 4 ? apr_time_from_sec(1 + idle % 900) : 0;
        w.judge[i].absolute = absolute % 4 ? apr_time_from_sec(1 + absolute % 3600) : 0;
        ss_expiry_widen(&w.keep, &w.judge[i]);
    }
    for (i = 0; i < NKEYS; i++) {
        make_key(&w.keys[i], &w.clear_keys[i], i);
    }

    while (!fuzz_reader_done(&r) && w.seq < MAX_OPS) {
        unsigned b = fuzz_u8(&r), k = fuzz_u8(&r) % NKEYS, dt = fuzz_u16(&r), v = fuzz_u8(&r);
        unsigned x = fuzz_u8(&r);
        int child = (int)(b % (unsigned)w.nchildren);
        ss_store_t *s = w.child[child];
        const ss_expiry_t *judge = &w.judge[(b >> 4) & 1];
        /* Each child reads its clock before it waits for the lock. */
        apr_time_t t = now - (apr_time_t)((b >> 5) & 7) * 1000;
        unsigned plen = (unsigned)(((apr_uint64_t)v * v * w.max_record) >> 16) + (v & 7);

        w.seq++;
        now += (apr_time_t)dt * 2000; /* up to about two minutes */
        switch ((b >> 2) & 3) {
        case 0:
            op_load(&w, s, (int)k, judge, t, x & 1);
            check_world(&w, "a load");
            break;
        case 1:
        case 2:
            op_save(&w, child, (int)k, (b >> 2) & 1 ? SS_SAVE_NEW : SS_SAVE_UPDATE, t, plen, v % 13,
                    (v & 0xf0) == 0xf0, (x & 2) != 0);
            check_world(&w, "a save");
            break;
        default:
            FUZZ_CHECK(s->ops->remove(s, &w.keys[k]) == APR_SUCCESS, "remove");
            w.m[k].present = 0;
            check_world(&w, "a remove");
            break;
        }
    }
    apr_pool_destroy(w.p);
    free(w.base);
    return 0;
}
