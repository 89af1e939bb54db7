/*
 * bad_input.c: every kind of bad input the floodgate C ABI refuses, each
 * with its expected code and fg_strerror text, and after each failed call
 * a check that the table is unchanged where that is observable (a pipe's
 * counter and limit, the entry count of fg_list, a slot's usage, the shared
 * FEEDBACK controller) and that out-pointers were not written.
 *
 * Also: fg_version() against FG_VERSION_MAJOR/MINOR/PATCH,
 * fg_version_string() against FG_VERSION_STRING, fg_strerror of unknown codes.
 *
 * Every step prints "ok  <what>: <code> <NAME> (<fg_strerror>)"; any mismatch
 * prints "FAIL ..." and exits with status 1.
 */
#include <floodgate.h>
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

#define S 1000000000ull
#define NOW (100 * S)

static const char *code_name(int c) {
    switch (c) {
    case FG_OK: return "FG_OK";
    case FG_PASS: return "FG_PASS";
    case FG_PASS_NOP: return "FG_PASS_NOP";
    case FG_ACQUIRED: return "FG_ACQUIRED";
    case FG_RELEASED: return "FG_RELEASED";
    case FG_UNMATCHED: return "FG_UNMATCHED";
    case FG_ALREADY_RELEASED: return "FG_ALREADY_RELEASED";
    case FG_DROP: return "FG_DROP";
    case FG_NO_PIPE: return "FG_NO_PIPE";
    case FG_REFUSED: return "FG_REFUSED";
    case FG_GROUP_FULL: return "FG_GROUP_FULL";
    case FG_E_NULL: return "FG_E_NULL";
    case FG_E_EMPTY_KEY: return "FG_E_EMPTY_KEY";
    case FG_E_KEY_TOO_LONG: return "FG_E_KEY_TOO_LONG";
    case FG_E_UNKNOWN_ALGORITHM: return "FG_E_UNKNOWN_ALGORITHM";
    case FG_E_ZERO_INTERVAL: return "FG_E_ZERO_INTERVAL";
    case FG_E_INVALID_LIMIT: return "FG_E_INVALID_LIMIT";
    case FG_E_INVALID_BURST: return "FG_E_INVALID_BURST";
    case FG_E_RATE_TOO_HIGH: return "FG_E_RATE_TOO_HIGH";
    case FG_E_INVALID_LOAD: return "FG_E_INVALID_LOAD";
    case FG_E_INVALID_GAIN: return "FG_E_INVALID_GAIN";
    case FG_E_WRONG_ALGORITHM: return "FG_E_WRONG_ALGORITHM";
    case FG_E_FULL: return "FG_E_FULL";
    case FG_E_LEASES_FULL: return "FG_E_LEASES_FULL";
    case FG_E_INVALID_CAPACITY: return "FG_E_INVALID_CAPACITY";
    case FG_E_REGION_TOO_SMALL: return "FG_E_REGION_TOO_SMALL";
    case FG_E_MISALIGNED: return "FG_E_MISALIGNED";
    case FG_E_NOT_A_TABLE: return "FG_E_NOT_A_TABLE";
    case FG_E_LAYOUT_MISMATCH: return "FG_E_LAYOUT_MISMATCH";
    case FG_E_INVALID_GROUP: return "FG_E_INVALID_GROUP";
    case FG_E_DUPLICATE_MEMBER: return "FG_E_DUPLICATE_MEMBER";
    case FG_E_CORRUPT: return "FG_E_CORRUPT";
    case FG_E_BAD_HANDLE: return "FG_E_BAD_HANDLE";
    case FG_E_INVALID_ARGUMENT: return "FG_E_INVALID_ARGUMENT";
    case FG_E_PANIC: return "FG_E_PANIC";
    case FG_E_BUSY: return "FG_E_BUSY";
    case FG_E_STALE: return "FG_E_STALE";
    default: return "?";
    }
}

/* The main table and what can be observed of it. */
static fg_table t;
static void *t_region;
static size_t t_bytes;

typedef struct snapshot {
    uint32_t base_counter, base_last;
    int64_t base_limit;
    uint32_t base_algorithm;
    int entries;
    uint32_t slot_usage;
    fg_pid pid;
} snapshot;

static snapshot baseline;

static int32_t count_cb(const fg_entry *e, void *ctx) {
    (void)e;
    ++*(int *)ctx;
    return 0;
}

static snapshot take(void) {
    snapshot s;
    fg_entry e;
    memset(&s, 0, sizeof s);
    int r = fg_get(&t, KEY("base"), NOW, &e);
    if (r != FG_OK) FAIL_RC("snapshot: fg_get(base)", r, FG_OK);
    s.base_counter = e.counter;
    s.base_last = e.last_counter;
    s.base_limit = e.limit;
    s.base_algorithm = e.algorithm;
    r = fg_list(&t, NOW, count_cb, &s.entries);
    if (r != FG_OK) FAIL_RC("snapshot: fg_list", r, FG_OK);
    r = fg_slot_usage(&t, KEY("slot"), NOW, &s.slot_usage);
    if (r != FG_OK) FAIL_RC("snapshot: fg_slot_usage(slot)", r, FG_OK);
    r = fg_pid_get(&t, &s.pid);
    if (r != FG_OK) FAIL_RC("snapshot: fg_pid_get", r, FG_OK);
    return s;
}

static int pid_eq(const fg_pid *a, const fg_pid *b) {
    return a->setpoint == b->setpoint && a->kp == b->kp && a->ki == b->ki && a->kd == b->kd &&
           a->int_err == b->int_err && a->last_err == b->last_err && a->load == b->load &&
           a->drop_rate == b->drop_rate;
}

/* The table still shows exactly the baseline. */
static void check_unchanged(const char *what, int line) {
    snapshot s = take();
    if (s.base_counter != baseline.base_counter || s.base_last != baseline.base_last ||
        s.base_limit != baseline.base_limit || s.base_algorithm != baseline.base_algorithm) {
        printf("FAIL %s: pipe 'base' changed: counter %u->%u limit %" PRId64 "->%" PRId64
               " (bad_input.c:%d)\n",
               what, baseline.base_counter, s.base_counter, baseline.base_limit, s.base_limit, line);
        exit(1);
    }
    if (s.entries != baseline.entries) {
        printf("FAIL %s: fg_list count changed %d -> %d (bad_input.c:%d)\n", what, baseline.entries,
               s.entries, line);
        exit(1);
    }
    if (s.slot_usage != baseline.slot_usage) {
        printf("FAIL %s: usage of 'slot' changed %u -> %u (bad_input.c:%d)\n", what,
               baseline.slot_usage, s.slot_usage, line);
        exit(1);
    }
    if (!pid_eq(&s.pid, &baseline.pid)) {
        printf("FAIL %s: the FEEDBACK controller changed (bad_input.c:%d)\n", what, line);
        exit(1);
    }
}

/* A call that must return `want`, leaving the table as it was. */
#define BAD(what, call, want)                                                     \
    do {                                                                          \
        int g_ = (int)(call), w_ = (int)(want);                                   \
        if (g_ != w_) FAIL_RC((what), g_, w_);                                    \
        check_unchanged((what), __LINE__);                                        \
        check_ok_rc((what), g_, "; table unchanged");                             \
    } while (0)

/* A call with no table involved (or on another table) that must return `want`. */
#define CODE(what, call, want) EXPECT_RC(what, call, want)

static int all_bytes(const void *p, size_t n, unsigned char v) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i] != v) return 0;
    return 1;
}

int main(void) {
    check_code_name = code_name; /* codes print as "-1 FG_DROP (drop)" */

    /* ---- version --------------------------------------------------------- */
    EXPECT("fg_version() == FG_VERSION_MAJOR<<16 | MINOR<<8 | PATCH", fg_version(),
           (FG_VERSION_MAJOR << 16) | (FG_VERSION_MINOR << 8) | FG_VERSION_PATCH);
    printf("    fg_version_string() = \"%s\", FG_VERSION_STRING = \"%s\"\n", fg_version_string(),
           FG_VERSION_STRING);
    EXPECT("fg_version_string() equals FG_VERSION_STRING",
           strcmp(fg_version_string(), FG_VERSION_STRING), 0);
    {
        char built[32];
        snprintf(built, sizeof built, "%d.%d.%d", FG_VERSION_MAJOR, FG_VERSION_MINOR,
                 FG_VERSION_PATCH);
        EXPECT("FG_VERSION_STRING equals MAJOR.MINOR.PATCH", strcmp(built, FG_VERSION_STRING), 0);
    }
    {
        static const int32_t unknown[4] = {12345, -99, 7, INT32_MIN};
        for (int i = 0; i < 4; i++) {
            const char *s = fg_strerror(unknown[i]);
            if (s == NULL) {
                printf("FAIL fg_strerror(%d) is NULL\n", unknown[i]);
                return 1;
            }
            printf("ok  fg_strerror(%d) (unknown code) is not NULL: \"%s\"\n", unknown[i], s);
        }
    }

    /* ---- the main table: a TAILDROP pipe, a held slot --------------------- */
    fg_config cfg = {.capacity = 32, .lease_capacity = 2, .interval_ns = 10 * S, .epoch_ns = 0,
                     .seed = 0xbad1ull};
    CODE("fg_table_bytes", fg_table_bytes(&cfg, &t_bytes), FG_OK);
    t_region = malloc(t_bytes);
    if (t_region == NULL) return 1;
    CODE("fg_table_init", fg_table_init(t_region, t_bytes, &cfg, &t), FG_OK);
    CODE("pl_check(base, TAILDROP, 5)", fg_check_create(&t, KEY("base"), FG_ALGO_TAILDROP, 5, NOW),
         FG_PASS);
    CODE("pl_check(base)", fg_check(&t, KEY("base"), NOW), FG_PASS);
    CODE("slot: take one", fg_slot_acquire(&t, KEY("slot"), 3, NOW), FG_ACQUIRED);
    CODE("pl.set_pid ki=-25 kp=0.5 kd=0.25 (argument order ki, kp, kd)",
         fg_pid_set(&t, -25.0, 0.5, 0.25), FG_OK);
    baseline = take();
    EXPECT("pl.get_pid ki (first argument)", baseline.pid.ki == -25.0, 1);
    EXPECT("pl.get_pid kp (second argument)", baseline.pid.kp == 0.5, 1);
    EXPECT("pl.get_pid kd (third argument)", baseline.pid.kd == 0.25, 1);
    printf("    baseline: base counter %u limit %" PRId64 ", %d entries, slot usage %u\n",
           baseline.base_counter, baseline.base_limit, baseline.entries, baseline.slot_usage);

    /* ---- NULL pointers ------------------------------------------------------ */
    {
        size_t n = 4242;
        fg_entry e;
        uint32_t u = 4242, algo = 4242, rate = 4242;
        uint64_t lease = 4242;
        size_t member = 4242, removed = 4242;
        fg_pid pid;
        fg_table h;
        memset(&e, 0x5a, sizeof e);
        memset(&pid, 0x5a, sizeof pid);
        memset(&h, 0, sizeof h);
        const uint8_t *mk[2] = {(const uint8_t *)"m1", (const uint8_t *)"m2"};
        const uint8_t *mk_null[2] = {(const uint8_t *)"m1", NULL};
        size_t ml[2] = {2, 2};

        CODE("fg_table_bytes(NULL config)", fg_table_bytes(NULL, &n), FG_E_NULL);
        CODE("fg_table_bytes(NULL out)", fg_table_bytes(&cfg, NULL), FG_E_NULL);
        EXPECT("  out-pointer not written", n, 4242);
        BAD("fg_table_init(NULL region)", fg_table_init(NULL, t_bytes, &cfg, &h), FG_E_NULL);
        BAD("fg_table_init(the table's region, NULL config)",
            fg_table_init(t_region, t_bytes, NULL, &h), FG_E_NULL);
        BAD("fg_table_init(the table's region, NULL out)",
            fg_table_init(t_region, t_bytes, &cfg, NULL), FG_E_NULL);
        BAD("fg_table_attach(NULL region)", fg_table_attach(NULL, t_bytes, &h), FG_E_NULL);
        BAD("fg_table_attach(NULL out)", fg_table_attach(t_region, t_bytes, NULL), FG_E_NULL);
        EXPECT("  handle not written by the failed calls", all_bytes(&h, sizeof h, 0), 1);
        BAD("fg_check(NULL handle)", fg_check(NULL, KEY("base"), NOW), FG_E_NULL);
        BAD("fg_check(NULL key, 4)", fg_check(&t, NULL, 4, NOW), FG_E_NULL);
        BAD("fg_check(NULL key, 0)", fg_check(&t, NULL, 0, NOW), FG_E_NULL);
        BAD("fg_check_create(NULL handle)",
            fg_check_create(NULL, KEY("new"), FG_ALGO_TAILDROP, 5, NOW), FG_E_NULL);
        BAD("fg_check_create(NULL key)", fg_check_create(&t, NULL, 3, FG_ALGO_TAILDROP, 5, NOW),
            FG_E_NULL);
        BAD("fg_active(NULL handle)", fg_active(NULL, KEY("base")), FG_E_NULL);
        BAD("fg_active(NULL key)", fg_active(&t, NULL, 4), FG_E_NULL);
        BAD("fg_pipe_set(NULL handle)", fg_pipe_set(NULL, KEY("base"), FG_ALGO_RED, 9, NOW),
            FG_E_NULL);
        BAD("fg_pipe_set(NULL key)", fg_pipe_set(&t, NULL, 4, FG_ALGO_RED, 9, NOW), FG_E_NULL);
        BAD("fg_pipe_remove(NULL handle)", fg_pipe_remove(NULL, KEY("base")), FG_E_NULL);
        BAD("fg_pipe_remove(NULL key)", fg_pipe_remove(&t, NULL, 4), FG_E_NULL);
        BAD("fg_get(NULL handle)", fg_get(NULL, KEY("base"), NOW, &e), FG_E_NULL);
        BAD("fg_get(NULL key)", fg_get(&t, NULL, 4, NOW, &e), FG_E_NULL);
        BAD("fg_get(NULL out)", fg_get(&t, KEY("base"), NOW, NULL), FG_E_NULL);
        EXPECT("  fg_entry not written", all_bytes(&e, sizeof e, 0x5a), 1);
        BAD("fg_list(NULL handle)", fg_list(NULL, NOW, count_cb, &n), FG_E_NULL);
        BAD("fg_list(NULL callback)", fg_list(&t, NOW, NULL, &n), FG_E_NULL);
        BAD("fg_slot_acquire(NULL handle)", fg_slot_acquire(NULL, KEY("slot"), 3, NOW), FG_E_NULL);
        BAD("fg_slot_acquire(NULL key)", fg_slot_acquire(&t, NULL, 4, 3, NOW), FG_E_NULL);
        BAD("fg_slot_release(NULL handle)", fg_slot_release(NULL, KEY("slot"), NOW), FG_E_NULL);
        BAD("fg_slot_release(NULL key)", fg_slot_release(&t, NULL, 4, NOW), FG_E_NULL);
        BAD("fg_slot_usage(NULL handle)", fg_slot_usage(NULL, KEY("slot"), NOW, &u), FG_E_NULL);
        BAD("fg_slot_usage(NULL key)", fg_slot_usage(&t, NULL, 4, NOW, &u), FG_E_NULL);
        BAD("fg_slot_usage(NULL out)", fg_slot_usage(&t, KEY("slot"), NOW, NULL), FG_E_NULL);
        EXPECT("  usage out-pointer not written", u, 4242);
        BAD("fg_lease_acquire(NULL handle)", fg_lease_acquire(NULL, KEY("slot"), 3, S, NOW, &lease),
            FG_E_NULL);
        BAD("fg_lease_acquire(NULL key)", fg_lease_acquire(&t, NULL, 4, 3, S, NOW, &lease),
            FG_E_NULL);
        BAD("fg_lease_acquire(NULL lease out): no slot taken",
            fg_lease_acquire(&t, KEY("slot"), 3, S, NOW, NULL), FG_E_NULL);
        EXPECT("  lease out-pointer not written", lease, 4242);
        BAD("fg_lease_release(NULL handle)", fg_lease_release(NULL, 0, NOW), FG_E_NULL);
        BAD("fg_rate_check(NULL handle)",
            fg_rate_check(NULL, KEY("rate"), 5, S, FG_ANCHOR_ALIGNED, FG_MAX_ZERO_REFUSE_ALL, NOW),
            FG_E_NULL);
        BAD("fg_rate_check(NULL key)",
            fg_rate_check(&t, NULL, 4, 5, S, FG_ANCHOR_ALIGNED, FG_MAX_ZERO_REFUSE_ALL, NOW),
            FG_E_NULL);
        BAD("fg_interval_reset(NULL handle)", fg_interval_reset(NULL, KEY("base"), NOW), FG_E_NULL);
        BAD("fg_interval_reset(NULL key)", fg_interval_reset(&t, NULL, 4, NOW), FG_E_NULL);
        BAD("fg_balance_acquire(NULL handle)",
            fg_balance_acquire(NULL, mk, ml, 2, 5, -1, 0, NOW, &member, NULL), FG_E_NULL);
        BAD("fg_balance_acquire(NULL keys)",
            fg_balance_acquire(&t, NULL, ml, 2, 5, -1, 0, NOW, &member, NULL), FG_E_NULL);
        BAD("fg_balance_acquire(NULL key_lens)",
            fg_balance_acquire(&t, mk, NULL, 2, 5, -1, 0, NOW, &member, NULL), FG_E_NULL);
        BAD("fg_balance_acquire(NULL member out): no slot taken",
            fg_balance_acquire(&t, mk, ml, 2, 5, -1, 0, NOW, NULL, NULL), FG_E_NULL);
        BAD("fg_balance_acquire(a NULL member key): no member created",
            fg_balance_acquire(&t, mk_null, ml, 2, 5, -1, 0, NOW, &member, NULL), FG_E_NULL);
        EXPECT("  member out-pointer not written", member, 4242);
        BAD("fg_pid_set(NULL handle)", fg_pid_set(NULL, 1, 1, 1), FG_E_NULL);
        BAD("fg_pid_get(NULL handle)", fg_pid_get(NULL, &pid), FG_E_NULL);
        BAD("fg_pid_get(NULL out)", fg_pid_get(&t, NULL), FG_E_NULL);
        EXPECT("  fg_pid not written", all_bytes(&pid, sizeof pid, 0x5a), 1);
        BAD("fg_pid_setpoint(NULL handle)", fg_pid_setpoint(NULL, 50), FG_E_NULL);
        BAD("fg_push_load(NULL handle)", fg_push_load(NULL, 0.5, &rate), FG_E_NULL);
        EXPECT("  drop rate out-pointer not written", rate, 4242);
        BAD("fg_push_network(NULL handle)", fg_push_network(NULL, 1000), FG_E_NULL);
        BAD("fg_clean_unused(NULL handle)", fg_clean_unused(NULL, 1, NOW, &removed), FG_E_NULL);
        EXPECT("  removed out-pointer not written", removed, 4242);
        CODE("fg_algorithm_from_name(NULL name)", fg_algorithm_from_name(NULL, 3, &algo), FG_E_NULL);
        CODE("fg_algorithm_from_name(NULL out)", fg_algorithm_from_name("RED", 3, NULL), FG_E_NULL);
        EXPECT("  algorithm out-pointer not written", algo, 4242);
    }

    /* ---- key length 0 and 57 (FG_MAX_KEY_LEN + 1) ----------------------------- */
    {
        uint8_t klong[FG_MAX_KEY_LEN + 1], kmax[FG_MAX_KEY_LEN];
        memset(klong, 'k', sizeof klong);
        memset(kmax, 'k', sizeof kmax);
        fg_entry e;
        uint32_t u = 4242;
        size_t member = 4242;
        const uint8_t *mk[2] = {(const uint8_t *)"m1", klong};
        size_t ml[2] = {2, FG_MAX_KEY_LEN + 1};
        size_t ml0[2] = {2, 0};
        BAD("fg_check(base, length 0)", fg_check(&t, (const uint8_t *)"base", 0, NOW), FG_E_EMPTY_KEY);
        BAD("fg_check(57-byte key)", fg_check(&t, klong, FG_MAX_KEY_LEN + 1, NOW), FG_E_KEY_TOO_LONG);
        BAD("fg_check_create(length 0): nothing created",
            fg_check_create(&t, klong, 0, FG_ALGO_TAILDROP, 5, NOW), FG_E_EMPTY_KEY);
        BAD("fg_check_create(57-byte key): nothing created",
            fg_check_create(&t, klong, FG_MAX_KEY_LEN + 1, FG_ALGO_TAILDROP, 5, NOW), FG_E_KEY_TOO_LONG);
        BAD("fg_pipe_set(57-byte key)", fg_pipe_set(&t, klong, FG_MAX_KEY_LEN + 1, FG_ALGO_NOP, 0, NOW),
            FG_E_KEY_TOO_LONG);
        BAD("fg_active(length 0)", fg_active(&t, klong, 0), FG_E_EMPTY_KEY);
        BAD("fg_get(57-byte key)", fg_get(&t, klong, FG_MAX_KEY_LEN + 1, NOW, &e), FG_E_KEY_TOO_LONG);
        BAD("fg_slot_acquire(length 0)", fg_slot_acquire(&t, klong, 0, 3, NOW), FG_E_EMPTY_KEY);
        BAD("fg_slot_acquire(57-byte key)", fg_slot_acquire(&t, klong, FG_MAX_KEY_LEN + 1, 3, NOW), FG_E_KEY_TOO_LONG);
        BAD("fg_slot_release(slot, length 0)", fg_slot_release(&t, (const uint8_t *)"slot", 0, NOW),
            FG_E_EMPTY_KEY);
        BAD("fg_slot_usage(57-byte key)", fg_slot_usage(&t, klong, FG_MAX_KEY_LEN + 1, NOW, &u), FG_E_KEY_TOO_LONG);
        BAD("fg_rate_check(57-byte key)",
            fg_rate_check(&t, klong, FG_MAX_KEY_LEN + 1, 5, S, FG_ANCHOR_ALIGNED, FG_MAX_ZERO_REFUSE_ALL, NOW),
            FG_E_KEY_TOO_LONG);
        BAD("fg_pipe_remove(57-byte key)", fg_pipe_remove(&t, klong, FG_MAX_KEY_LEN + 1),
            FG_E_KEY_TOO_LONG);
        BAD("fg_balance_acquire(a 57-byte member): the valid member is not created either",
            fg_balance_acquire(&t, mk, ml, 2, 5, -1, 0, NOW, &member, NULL), FG_E_KEY_TOO_LONG);
        BAD("fg_balance_acquire(a member of length 0)",
            fg_balance_acquire(&t, mk, ml0, 2, 5, -1, 0, NOW, &member, NULL), FG_E_EMPTY_KEY);
        CODE("fg_active(m1): not created", fg_active(&t, KEY("m1")), FG_NO_PIPE);
        EXPECT("  member out-pointer not written", member, 4242);
        /* The boundary: FG_MAX_KEY_LEN (56) bytes is a valid key. */
        CODE("fg_pipe_set(56-byte key) is fine",
             fg_pipe_set(&t, kmax, FG_MAX_KEY_LEN, FG_ALGO_NOP, 0, NOW), FG_OK);
        CODE("fg_check(56-byte key)", fg_check(&t, kmax, FG_MAX_KEY_LEN, NOW), FG_PASS_NOP);
        CODE("fg_pipe_remove(56-byte key)", fg_pipe_remove(&t, kmax, FG_MAX_KEY_LEN), FG_OK);
        check_unchanged("after the 56-byte key came and went", __LINE__);
    }

    /* ---- unknown algorithm ------------------------------------------------------ */
    {
        uint32_t algo = 4242;
        BAD("fg_check_create(algorithm 99): nothing created",
            fg_check_create(&t, KEY("new"), 99, 5, NOW), FG_E_UNKNOWN_ALGORITHM);
        BAD("fg_check_create(base, algorithm 99): not counted",
            fg_check_create(&t, KEY("base"), 99, 5, NOW), FG_E_UNKNOWN_ALGORITHM);
        BAD("fg_pipe_set(base, algorithm 99, 7): limit kept",
            fg_pipe_set(&t, KEY("base"), 99, 7, NOW), FG_E_UNKNOWN_ALGORITHM);
        BAD("fg_pipe_set(algorithm 10, one past FG_ALGO_SLIDING)",
            fg_pipe_set(&t, KEY("new"), FG_ALGO_SLIDING + 1, 7, NOW), FG_E_UNKNOWN_ALGORITHM);
        BAD("fg_pipe_set(algorithm 0x100, a valid one in the low byte)",
            fg_pipe_set(&t, KEY("new"), 0x100 + FG_ALGO_RED, 7, NOW), FG_E_UNKNOWN_ALGORITHM);
        CODE("fg_algorithm_from_name(\"BOGUS\")", fg_algorithm_from_name("BOGUS", 5, &algo),
             FG_E_UNKNOWN_ALGORITHM);
        CODE("fg_algorithm_from_name(\"\")", fg_algorithm_from_name("", 0, &algo),
             FG_E_UNKNOWN_ALGORITHM);
        CODE("fg_algorithm_from_name(\"RED \") (trailing space)",
             fg_algorithm_from_name("RED ", 4, &algo), FG_E_UNKNOWN_ALGORITHM);
        EXPECT("  algorithm out-pointer not written", algo, 4242);
        CODE("fg_algorithm_from_name(\"taildrop\") (any case)",
             fg_algorithm_from_name("taildrop", 8, &algo), FG_OK);
        EXPECT("  = FG_ALGO_TAILDROP", algo, FG_ALGO_TAILDROP);
        CODE("fg_algorithm_from_name(\"FEEDBACK\")", fg_algorithm_from_name("FEEDBACK", 8, &algo),
             FG_OK);
        EXPECT("  = FG_ALGO_FEEDBACK", algo, FG_ALGO_FEEDBACK);
    }

    /* ---- interval 0 ------------------------------------------------------------- */
    {
        fg_config c0 = cfg;
        size_t n = 4242;
        fg_table h;
        memset(&h, 0, sizeof h);
        c0.interval_ns = 0;
        BAD("fg_rate_check(interval 0): nothing created",
            fg_rate_check(&t, KEY("rate"), 5, 0, FG_ANCHOR_ALIGNED, FG_MAX_ZERO_REFUSE_ALL, NOW),
            FG_E_ZERO_INTERVAL);
        BAD("fg_rate_check(interval 0, mod_hash windows)",
            fg_rate_check(&t, KEY("rate"), 5, 0, FG_ANCHOR_FIRST_EVENT, FG_MAX_ZERO_MOD_HASH, NOW),
            FG_E_ZERO_INTERVAL);
        CODE("fg_table_bytes(interval_ns 0)", fg_table_bytes(&c0, &n), FG_E_ZERO_INTERVAL);
        EXPECT("  out-pointer not written", n, 4242);
        BAD("fg_table_init(the table's region, interval_ns 0): region not zeroed",
            fg_table_init(t_region, t_bytes, &c0, &h), FG_E_ZERO_INTERVAL);
        EXPECT("  handle not written", all_bytes(&h, sizeof h, 0), 1);
    }

    /* ---- capacity -------------------------------------------------------------- */
    {
        fg_config c = cfg;
        size_t n = 4242;
        fg_table h;
        memset(&h, 0, sizeof h);
        c.capacity = 0;
        CODE("fg_table_bytes(capacity 0)", fg_table_bytes(&c, &n), FG_E_INVALID_CAPACITY);
        BAD("fg_table_init(the table's region, capacity 0): region not zeroed",
            fg_table_init(t_region, t_bytes, &c, &h), FG_E_INVALID_CAPACITY);
        c.capacity = (1u << 24) + 1;
        CODE("fg_table_bytes(capacity 2^24 + 1)", fg_table_bytes(&c, &n), FG_E_INVALID_CAPACITY);
        c.capacity = 8;
        c.lease_capacity = (1u << 24) + 1;
        CODE("fg_table_bytes(lease_capacity 2^24 + 1)", fg_table_bytes(&c, &n),
             FG_E_INVALID_CAPACITY);
        EXPECT("  out-pointer not written", n, 4242);
        c.capacity = 1u << 24;
        c.lease_capacity = 0;
        CODE("fg_table_bytes(capacity 2^24) is fine", fg_table_bytes(&c, &n), FG_OK);
        EXPECT("  bytes for 2^24 entries (192 + (2 + 112) x 2^24: header, tags, entries)", n,
               192 + 114ull * (1u << 24));
    }

    /* ---- region too small, misaligned, not a table, another layout ---------------- */
    {
        fg_table h;
        memset(&h, 0, sizeof h);
        uint64_t *fresh = calloc(t_bytes / 8 + 2, 8); /* zeroed, 8-aligned, one word spare */
        if (fresh == NULL) return 1;
        BAD("fg_table_init(the table's region, len - 1): region not zeroed",
            fg_table_init(t_region, t_bytes - 1, &cfg, &h), FG_E_REGION_TOO_SMALL);
        CODE("fg_table_init(fresh region, len - 8)", fg_table_init(fresh, t_bytes - 8, &cfg, &h),
             FG_E_REGION_TOO_SMALL);
        BAD("fg_table_init(the table's region + 4): misaligned, region not zeroed",
            fg_table_init((char *)t_region + 4, t_bytes - 4, &cfg, &h), FG_E_MISALIGNED);
        CODE("fg_table_init(fresh region + 1)", fg_table_init((char *)fresh + 1, t_bytes, &cfg, &h),
             FG_E_MISALIGNED);
        EXPECT("  the fresh region is still all zero", all_bytes(fresh, t_bytes, 0), 1);
        BAD("fg_table_attach(the table's region, len - 1)",
            fg_table_attach(t_region, t_bytes - 1, &h), FG_E_REGION_TOO_SMALL);
        BAD("fg_table_attach(the table's region, 16 bytes: less than a header)",
            fg_table_attach(t_region, 16, &h), FG_E_REGION_TOO_SMALL);
        BAD("fg_table_attach(the table's region + 4)",
            fg_table_attach((char *)t_region + 4, t_bytes - 4, &h), FG_E_MISALIGNED);
        CODE("fg_table_attach(zeroed memory)", fg_table_attach(fresh, t_bytes, &h), FG_E_NOT_A_TABLE);
        memset(fresh, 0xa5, t_bytes);
        CODE("fg_table_attach(memory of 0xa5 bytes)", fg_table_attach(fresh, t_bytes, &h),
             FG_E_NOT_A_TABLE);
        EXPECT("  handle not written by any of these", all_bytes(&h, sizeof h, 0), 1);
        fg_entry e;
        CODE("fg_get on the never-filled handle", fg_get(&h, KEY("base"), NOW, &e), FG_E_BAD_HANDLE);

        /* Another layout version: the second uint32_t of the region. */
        fg_table v;
        CODE("fg_table_init(another region)", fg_table_init(fresh, t_bytes, &cfg, &v), FG_OK);
        CODE("  a pipe in it", fg_pipe_set(&v, KEY("v"), FG_ALGO_NOP, 0, NOW), FG_OK);
        uint32_t *words = (uint32_t *)(void *)fresh;
        uint32_t version = words[1];
        printf("    header version word = %u; setting it to 999\n", version);
        words[1] = 999;
        CODE("fg_table_attach(table of layout version 999)", fg_table_attach(fresh, t_bytes, &h),
             FG_E_LAYOUT_MISMATCH);
        EXPECT("  handle not written", all_bytes(&h, sizeof h, 0), 1);
        words[1] = version;
        CODE("fg_table_attach(version word restored)", fg_table_attach(fresh, t_bytes, &h), FG_OK);
        CODE("  its pipe is there", fg_check(&h, KEY("v"), NOW), FG_PASS_NOP);

        /* A lock that stays held by a live process (pid 1 here; in real life
         * a process stopped in a debugger or by SIGSTOP, or a lock word
         * overwritten): the call gives up after a bounded wait with
         * FG_E_BUSY and changes nothing. The insert lock is the header's
         * uint32_t 12 (the internal layout, which only this test knows). */
        uint32_t insert_lock = words[12];
        words[12] = 1;
        CODE("fg_check_create(new pipe) while the insert lock stays held by pid 1",
             fg_check_create(&h, KEY("new"), FG_ALGO_TAILDROP, 5, NOW), FG_E_BUSY);
        CODE("  the new pipe was not made", fg_active(&h, KEY("new")), FG_NO_PIPE);
        CODE("  an existing pipe needs no insert", fg_check(&h, KEY("v"), NOW), FG_PASS_NOP);
        words[12] = insert_lock;
        CODE("fg_check_create(new pipe) once the insert lock is free",
             fg_check_create(&h, KEY("new"), FG_ALGO_TAILDROP, 5, NOW), FG_PASS);
        free(fresh);
    }

    /* ---- loads and gains ----------------------------------------------------------- */
    {
        uint32_t rate = 4242;
        BAD("fg_push_load(NaN)", fg_push_load(&t, NAN, &rate), FG_E_INVALID_LOAD);
        BAD("fg_push_load(-0.1)", fg_push_load(&t, -0.1, &rate), FG_E_INVALID_LOAD);
        BAD("fg_push_load(1.5)", fg_push_load(&t, 1.5, &rate), FG_E_INVALID_LOAD);
        BAD("fg_push_load(+infinity)", fg_push_load(&t, INFINITY, &rate), FG_E_INVALID_LOAD);
        BAD("fg_push_load(-infinity)", fg_push_load(&t, -INFINITY, &rate), FG_E_INVALID_LOAD);
        EXPECT("  drop rate out-pointer not written", rate, 4242);
        BAD("fg_pid_set(ki NaN)", fg_pid_set(&t, NAN, 0, 0), FG_E_INVALID_GAIN);
        BAD("fg_pid_set(kp +infinity)", fg_pid_set(&t, -25, INFINITY, 0), FG_E_INVALID_GAIN);
        BAD("fg_pid_set(kd -infinity)", fg_pid_set(&t, -25, 0, -INFINITY), FG_E_INVALID_GAIN);
        BAD("fg_pid_set(all NaN)", fg_pid_set(&t, NAN, NAN, NAN), FG_E_INVALID_GAIN);
        BAD("fg_pid_setpoint(101)", fg_pid_setpoint(&t, 101), FG_E_INVALID_LIMIT);
        BAD("fg_pid_setpoint(UINT32_MAX)", fg_pid_setpoint(&t, UINT32_MAX), FG_E_INVALID_LIMIT);
        BAD("fg_check_create(FEEDBACK, limit 101): nothing created, setpoint kept",
            fg_check_create(&t, KEY("fb"), FG_ALGO_FEEDBACK, 101, NOW), FG_E_INVALID_LIMIT);
        BAD("fg_pipe_set(FEEDBACK, limit -1): setpoint kept",
            fg_pipe_set(&t, KEY("fb"), FG_ALGO_FEEDBACK, -1, NOW), FG_E_INVALID_LIMIT);
    }

    /* ---- limits out of range, wrong algorithm ------------------------------------- */
    {
        uint32_t u = 4242;
        BAD("fg_check_create(RED, limit 0): nothing created",
            fg_check_create(&t, KEY("red"), FG_ALGO_RED, 0, NOW), FG_E_INVALID_LIMIT);
        BAD("fg_pipe_set(base, TAILDROP, -1): limit kept",
            fg_pipe_set(&t, KEY("base"), FG_ALGO_TAILDROP, -1, NOW), FG_E_INVALID_LIMIT);
        BAD("fg_check_create(base, TAILDROP, 2^40): not counted, limit kept",
            fg_check_create(&t, KEY("base"), FG_ALGO_TAILDROP, (int64_t)1 << 40, NOW),
            FG_E_INVALID_LIMIT);
        BAD("fg_pipe_set(GCRA, rate 0)", fg_pipe_set(&t, KEY("gcra"), FG_ALGO_GCRA, 0, NOW),
            FG_E_INVALID_LIMIT);
        BAD("fg_pipe_set(GCRA, rate 2^32)",
            fg_pipe_set(&t, KEY("gcra"), FG_ALGO_GCRA, (int64_t)1 << 32, NOW), FG_E_INVALID_LIMIT);
        BAD("fg_check_create(SLOTS): a slot entry cannot be checked, nothing created",
            fg_check_create(&t, KEY("slots2"), FG_ALGO_SLOTS, 3, NOW), FG_E_WRONG_ALGORITHM);
        BAD("fg_check(slot): a rate check on a SLOTS entry", fg_check(&t, KEY("slot"), NOW),
            FG_E_WRONG_ALGORITHM);
        BAD("fg_rate_check(slot)",
            fg_rate_check(&t, KEY("slot"), 5, S, FG_ANCHOR_ALIGNED, FG_MAX_ZERO_REFUSE_ALL, NOW),
            FG_E_WRONG_ALGORITHM);
        BAD("fg_slot_acquire(base): a slot on a TAILDROP pipe", fg_slot_acquire(&t, KEY("base"), 3, NOW),
            FG_E_WRONG_ALGORITHM);
        BAD("fg_slot_release(base)", fg_slot_release(&t, KEY("base"), NOW), FG_E_WRONG_ALGORITHM);
        BAD("fg_slot_usage(base)", fg_slot_usage(&t, KEY("base"), NOW, &u), FG_E_WRONG_ALGORITHM);
        BAD("fg_pipe_set(slot, TAILDROP, 5): a SLOTS entry holding slots is not replaced",
            fg_pipe_set(&t, KEY("slot"), FG_ALGO_TAILDROP, 5, NOW), FG_E_WRONG_ALGORITHM);
        EXPECT("  usage out-pointer not written", u, 4242);
    }

    /* ---- missing entries: verdicts, nothing created -------------------------------- */
    {
        fg_entry e;
        uint32_t u = 4242;
        memset(&e, 0x5a, sizeof e);
        BAD("fg_check(missing)", fg_check(&t, KEY("missing"), NOW), FG_NO_PIPE);
        BAD("fg_get(missing)", fg_get(&t, KEY("missing"), NOW, &e), FG_NO_PIPE);
        EXPECT("  fg_entry not written", all_bytes(&e, sizeof e, 0x5a), 1);
        BAD("fg_slot_release(missing)", fg_slot_release(&t, KEY("missing"), NOW), FG_NO_PIPE);
        BAD("fg_slot_usage(missing)", fg_slot_usage(&t, KEY("missing"), NOW, &u), FG_NO_PIPE);
        EXPECT("  usage out-pointer not written", u, 4242);
        BAD("fg_pipe_remove(missing)", fg_pipe_remove(&t, KEY("missing")), FG_NO_PIPE);
        BAD("fg_interval_reset(missing)", fg_interval_reset(&t, KEY("missing"), NOW), FG_NO_PIPE);
        BAD("fg_lease_release(a handle never issued)",
            fg_lease_release(&t, 0xdeadbeef00000001ull, NOW), FG_ALREADY_RELEASED);
        BAD("fg_lease_release(0)", fg_lease_release(&t, 0, NOW), FG_ALREADY_RELEASED);
    }

    /* ---- an uninitialized (zeroed) handle ------------------------------------------ */
    {
        fg_table z;
        fg_entry e;
        fg_pid pid;
        uint32_t u = 4242, rate = 4242;
        uint64_t lease = 4242;
        size_t member = 4242;
        const uint8_t *mk[1] = {(const uint8_t *)"m1"};
        size_t ml[1] = {2};
        memset(&z, 0, sizeof z);
        BAD("fg_check(zeroed handle)", fg_check(&z, KEY("base"), NOW), FG_E_BAD_HANDLE);
        BAD("fg_check_create(zeroed handle)",
            fg_check_create(&z, KEY("base"), FG_ALGO_TAILDROP, 5, NOW), FG_E_BAD_HANDLE);
        BAD("fg_get(zeroed handle)", fg_get(&z, KEY("base"), NOW, &e), FG_E_BAD_HANDLE);
        BAD("fg_list(zeroed handle)", fg_list(&z, NOW, count_cb, &u), FG_E_BAD_HANDLE);
        BAD("fg_slot_acquire(zeroed handle)", fg_slot_acquire(&z, KEY("slot"), 3, NOW),
            FG_E_BAD_HANDLE);
        BAD("fg_slot_usage(zeroed handle)", fg_slot_usage(&z, KEY("slot"), NOW, &u), FG_E_BAD_HANDLE);
        BAD("fg_lease_acquire(zeroed handle)", fg_lease_acquire(&z, KEY("slot"), 3, S, NOW, &lease),
            FG_E_BAD_HANDLE);
        BAD("fg_balance_acquire(zeroed handle)",
            fg_balance_acquire(&z, mk, ml, 1, 5, -1, 0, NOW, &member, NULL), FG_E_BAD_HANDLE);
        BAD("fg_pid_get(zeroed handle)", fg_pid_get(&z, &pid), FG_E_BAD_HANDLE);
        BAD("fg_push_load(zeroed handle)", fg_push_load(&z, 0.5, &rate), FG_E_BAD_HANDLE);
        BAD("fg_clean_unused(zeroed handle)", fg_clean_unused(&z, 1, NOW, NULL), FG_E_BAD_HANDLE);
        memset(&z, 0xff, sizeof z);
        BAD("fg_check(handle of 0xff bytes)", fg_check(&z, KEY("base"), NOW), FG_E_BAD_HANDLE);
        EXPECT("  out-pointers not written", u == 4242 && rate == 4242 && lease == 4242 && member == 4242,
               1);
    }

    /* ---- balancing groups ------------------------------------------------------------ */
    {
        static const char *names[17] = {"g0", "g1", "g2",  "g3",  "g4",  "g5",  "g6",  "g7", "g8",
                                        "g9", "g10", "g11", "g12", "g13", "g14", "g15", "g16"};
        const uint8_t *k[17];
        size_t l[17];
        size_t member = 4242;
        uint64_t lease = 4242;
        for (int i = 0; i < 17; i++) {
            k[i] = (const uint8_t *)names[i];
            l[i] = strlen(names[i]);
        }
        BAD("fg_balance_acquire(0 members)", fg_balance_acquire(&t, k, l, 0, 5, -1, 0, NOW, &member, NULL),
            FG_E_INVALID_GROUP);
        BAD("fg_balance_acquire(17 members): none created",
            fg_balance_acquire(&t, k, l, 17, 5, -1, 0, NOW, &member, NULL), FG_E_INVALID_GROUP);
        const uint8_t *dk[3] = {(const uint8_t *)"g0", (const uint8_t *)"g1", (const uint8_t *)"g0"};
        size_t dl[3] = {2, 2, 2};
        BAD("fg_balance_acquire(g0, g1, g0): none created",
            fg_balance_acquire(&t, dk, dl, 3, 5, -1, 0, NOW, &member, NULL), FG_E_DUPLICATE_MEMBER);
        /* The same bytes through another pointer are the same key. */
        static const char other_g1[] = "g1";
        const uint8_t *dk2[2] = {(const uint8_t *)"g1", (const uint8_t *)other_g1};
        BAD("fg_balance_acquire(g1, g1 at another address), with a lease",
            fg_balance_acquire(&t, dk2, dl, 2, 5, -1, 0, NOW, &member, &lease), FG_E_DUPLICATE_MEMBER);
        EXPECT("  member and lease out-pointers not written", member == 4242 && lease == 4242, 1);
        CODE("fg_active(g0): not created", fg_active(&t, KEY("g0")), FG_NO_PIPE);
        /* 16 members is the most: fine. */
        CODE("fg_balance_acquire(16 members) is fine",
             fg_balance_acquire(&t, k, l, 16, 5, -1, 0, NOW, &member, NULL), FG_ACQUIRED);
        EXPECT("  on the first member", member, 0);
        CODE("  give it back", fg_slot_release(&t, k[0], l[0], NOW), FG_RELEASED);
        for (int i = 0; i < 16; i++) (void)fg_pipe_remove(&t, k[i], l[i]);
        check_unchanged("after the 16-member group came and went", __LINE__);
    }

    /* ---- unknown fg_anchor / fg_max_zero -------------------------------------------- */
    BAD("fg_rate_check(anchor 2): nothing created",
        fg_rate_check(&t, KEY("rate"), 5, S, 2, FG_MAX_ZERO_REFUSE_ALL, NOW), FG_E_INVALID_ARGUMENT);
    BAD("fg_rate_check(anchor UINT32_MAX)",
        fg_rate_check(&t, KEY("rate"), 5, S, UINT32_MAX, FG_MAX_ZERO_REFUSE_ALL, NOW),
        FG_E_INVALID_ARGUMENT);
    BAD("fg_rate_check(max_zero 3)", fg_rate_check(&t, KEY("rate"), 5, S, FG_ANCHOR_ALIGNED, 3, NOW),
        FG_E_INVALID_ARGUMENT);
    CODE("fg_active(rate): not created", fg_active(&t, KEY("rate")), FG_NO_PIPE);

    /* ---- leases and the table full ---------------------------------------------------- */
    {
        uint64_t l1 = 0, l2 = 0, l3 = 4242;
        uint32_t u = 0;
        CODE("lease 1 of 2 records", fg_lease_acquire(&t, KEY("leased"), -1, 0, NOW, &l1), FG_ACQUIRED);
        CODE("lease 2 of 2 records", fg_lease_acquire(&t, KEY("leased"), -1, 0, NOW, &l2), FG_ACQUIRED);
        CODE("lease 3: no record left", fg_lease_acquire(&t, KEY("leased"), -1, 0, NOW, &l3),
             FG_E_LEASES_FULL);
        CODE("lease on a new key: no record left", fg_lease_acquire(&t, KEY("leased2"), -1, 0, NOW, &l3),
             FG_E_LEASES_FULL);
        CODE("  fg_active(leased2): not created", fg_active(&t, KEY("leased2")), FG_NO_PIPE);
        EXPECT("  lease out-pointer not written", l3, 4242);
        CODE("  usage of leased", fg_slot_usage(&t, KEY("leased"), NOW, &u), FG_OK);
        EXPECT("  usage stays 2", u, 2);
        CODE("  release lease 1", fg_lease_release(&t, l1, NOW), FG_RELEASED);
        CODE("  release lease 2", fg_lease_release(&t, l2, NOW), FG_RELEASED);
        CODE("  remove leased", fg_pipe_remove(&t, KEY("leased")), FG_OK);
        check_unchanged("after the leases", __LINE__);

        /* A table of 2 entries, both holding slots: nothing is evictable. */
        fg_config small = {.capacity = 2, .lease_capacity = 0, .interval_ns = S, .epoch_ns = 0,
                           .seed = 1};
        size_t bytes = 0;
        fg_table st;
        int n = 0;
        CODE("fg_table_bytes(2 entries)", fg_table_bytes(&small, &bytes), FG_OK);
        uint64_t *sr = calloc(bytes / 8 + 1, 8);
        if (sr == NULL) return 1;
        CODE("fg_table_init(2 entries)", fg_table_init(sr, bytes, &small, &st), FG_OK);
        CODE("  slot a", fg_slot_acquire(&st, KEY("a"), 5, NOW), FG_ACQUIRED);
        CODE("  slot b", fg_slot_acquire(&st, KEY("b"), 5, NOW), FG_ACQUIRED);
        CODE("fg_slot_acquire(c) in a full table", fg_slot_acquire(&st, KEY("c"), 5, NOW), FG_E_FULL);
        CODE("fg_check_create(c) in a full table",
             fg_check_create(&st, KEY("c"), FG_ALGO_TAILDROP, 5, NOW), FG_E_FULL);
        CODE("fg_lease_acquire(c) in a full table without lease records",
             fg_lease_acquire(&st, KEY("c"), 5, 0, NOW, &l3), FG_E_LEASES_FULL);
        CODE("  fg_list", fg_list(&st, NOW, count_cb, &n), FG_OK);
        EXPECT("  entries still 2", n, 2);
        CODE("  fg_active(c)", fg_active(&st, KEY("c")), FG_NO_PIPE);
        /* GCRA: rate per table interval (1 s here), at most one per ns. */
        CODE("fg_pipe_set(GCRA, 2e9 per 1 s: emission interval 0.5 ns)",
             fg_pipe_set(&st, KEY("a"), FG_ALGO_GCRA, 2000000000ll, NOW), FG_E_RATE_TOO_HIGH);
        CODE("  slot a still holds its slot", fg_slot_usage(&st, KEY("a"), NOW, &u), FG_OK);
        EXPECT("  usage of a", u, 1);
        CODE("  slot a given back (now evictable)", fg_slot_release(&st, KEY("a"), NOW), FG_RELEASED);
        CODE("fg_slot_acquire(c) evicts idle a", fg_slot_acquire(&st, KEY("c"), 5, NOW), FG_ACQUIRED);
        free(sr);
    }

    check_unchanged("at the end", __LINE__);
    printf("bad_input: all checks passed\n");
    free(t_region);
    return 0;
}
