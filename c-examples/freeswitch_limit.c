/*
 * freeswitch_limit.c: FreeSWITCH's `limit` application and API (seeds 001,
 * 002, 003; SEMANTICS.md "FreeSWITCH limit") on a floodgate table.
 *
 *   limit hiredis default exclusive_limit 3           -> fg_slot_acquire / fg_slot_release
 *   limit hiredis default exclusive_interval_limit 2/30 -> fg_rate_check
 *   limit hash outbound carrier1 5/1                    -> fg_rate_check
 *   the same, on a key resolved once (fg_resolve)       -> fg_rate_check_ref
 *   limit_usage                                         -> fg_slot_usage
 *   limit ... -1 (counter only), limit ... 0            -> max < 0, max == 0
 *   limit_interval_reset                                -> fg_interval_reset
 *   a transferred (REFER) call that never hangs up      -> fg_lease_acquire with a hold time
 *   deleting one entry at run time                      -> fg_pipe_remove
 *
 * A key is "realm/resource". Time is explicit uint64_t nanoseconds. The table
 * lives in a malloc'd region (8-aligned). Every step prints "ok  <what>: ...";
 * any mismatch prints "FAIL ..." and exits with status 1.
 */
#include <floodgate.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

#define S 1000000000ull  /* one second in ns */
#define MS 1000000ull    /* one millisecond in ns */
#define T0 (3000 * S)    /* a multiple of 30 s and 1 s: aligned windows start here */

static fg_table t;

/* limit_usage realm resource */
static uint32_t usage(const char *key, uint64_t now) {
    uint32_t n = 0xdeadbeef;
    fg_result r = fg_slot_usage(&t, KEY(key), now, &n);
    if (r != FG_OK) {
        printf("FAIL limit_usage %s: %d (%s)\n", key, r, fg_strerror(r));
        exit(1);
    }
    return n;
}

static fg_entry get(const char *key, uint64_t now) {
    fg_entry e;
    fg_result r = fg_get(&t, KEY(key), now, &e);
    if (r != FG_OK) {
        printf("FAIL fg_get %s: %d (%s)\n", key, r, fg_strerror(r));
        exit(1);
    }
    return e;
}

static int32_t count_cb(const fg_entry *e, void *ctx) {
    (void)e;
    ++*(int *)ctx;
    return 0;
}

static int entries(uint64_t now) {
    int n = 0;
    fg_result r = fg_list(&t, now, count_cb, &n);
    if (r != FG_OK) {
        printf("FAIL fg_list: %d (%s)\n", r, fg_strerror(r));
        exit(1);
    }
    return n;
}

/* `limit ... max/interval` as mod_hiredis counts (windows aligned to the epoch). */
static fg_result hiredis_rate(const char *key, int32_t max, uint64_t interval, uint64_t now) {
    return fg_rate_check(&t, KEY(key), max, interval, FG_ANCHOR_ALIGNED, FG_MAX_ZERO_UNLIMITED, now);
}

int main(void) {
    fg_config cfg = {.capacity = 64, .lease_capacity = 16, .interval_ns = S, .epoch_ns = 0,
                     .seed = 0xf5f5f5f5ull};
    size_t bytes = 0;
    EXPECT_RC("fg_table_bytes", fg_table_bytes(&cfg, &bytes), FG_OK);
    void *region = malloc(bytes);
    if (region == NULL) {
        printf("FAIL malloc(%zu)\n", bytes);
        return 1;
    }
    EXPECT("malloc'd region is 8-aligned", (uintptr_t)region % 8, 0);
    EXPECT_RC("fg_table_init", fg_table_init(region, bytes, &cfg, &t), FG_OK);

    /* ---- exclusive_room: limit hiredis default exclusive_limit 3 ------------ */
    {
        const char *room = "default/exclusive_limit";
        uint64_t now = T0;
        for (int caller = 1; caller <= 3; caller++) {
            char what[64];
            snprintf(what, sizeof what, "caller %d dials 3000", caller);
            EXPECT_RC(what, fg_slot_acquire(&t, KEY(room), 3, now), FG_ACQUIRED);
        }
        EXPECT("limit_usage default exclusive_limit", usage(room, now), 3);
        EXPECT_RC("caller 4 dials 3000 (-> limit_exceeded)", fg_slot_acquire(&t, KEY(room), 3, now),
                  FG_REFUSED);
        EXPECT("limit_usage after the refusal (nothing taken)", usage(room, now), 3);
        EXPECT_RC("caller 2 hangs up", fg_slot_release(&t, KEY(room), now + 5 * S), FG_RELEASED);
        EXPECT("limit_usage", usage(room, now + 5 * S), 2);
        EXPECT_RC("caller 5 dials 3000 (a slot was freed)",
                  fg_slot_acquire(&t, KEY(room), 3, now + 6 * S), FG_ACQUIRED);
        EXPECT_RC("caller 6 dials 3000", fg_slot_acquire(&t, KEY(room), 3, now + 7 * S), FG_REFUSED);
        for (int i = 0; i < 3; i++)
            EXPECT_RC("a caller in the room hangs up", fg_slot_release(&t, KEY(room), now + 60 * S),
                      FG_RELEASED);
        EXPECT("limit_usage after all hung up", usage(room, now + 60 * S), 0);
        EXPECT_RC("a second hangup event for the same call",
                  fg_slot_release(&t, KEY(room), now + 61 * S), FG_UNMATCHED);
        EXPECT("limit_usage never goes below 0", usage(room, now + 61 * S), 0);
        EXPECT("unmatched releases (fg_get last_counter)", get(room, now + 61 * S).last_counter, 1);
        uint32_t n = 12345;
        EXPECT_RC("limit_usage of a resource never limited",
                  fg_slot_usage(&t, KEY("default/never_used"), now, &n), FG_NO_PIPE);
        EXPECT("its out-pointer is left alone", n, 12345);
    }

    /* ---- exclusive_interval_limit 2/30 (mod_hiredis: aligned windows) ------- */
    {
        const char *k = "default/exclusive_interval_limit";
        uint64_t iv = 30 * S;
        EXPECT_RC("2/30: new caller at +1 s", hiredis_rate(k, 2, iv, T0 + 1 * S), FG_PASS);
        EXPECT_RC("2/30: new caller at +5 s", hiredis_rate(k, 2, iv, T0 + 5 * S), FG_PASS);
        EXPECT_RC("2/30: new caller at +10 s", hiredis_rate(k, 2, iv, T0 + 10 * S), FG_DROP);
        EXPECT_RC("2/30: new caller at +29.999 s", hiredis_rate(k, 2, iv, T0 + 30 * S - MS), FG_DROP);
        EXPECT("2/30: count in the window (refused ones too)", get(k, T0 + 30 * S - MS).counter, 4);
        EXPECT_RC("2/30: new caller at +30 s (next window)", hiredis_rate(k, 2, iv, T0 + 30 * S),
                  FG_PASS);
        EXPECT_RC("2/30: new caller at +31 s", hiredis_rate(k, 2, iv, T0 + 31 * S), FG_PASS);
        EXPECT_RC("2/30: new caller at +32 s", hiredis_rate(k, 2, iv, T0 + 32 * S), FG_DROP);

        /* limit_interval_reset default exclusive_interval_limit */
        EXPECT_RC("limit_interval_reset", fg_interval_reset(&t, KEY(k), T0 + 33 * S), FG_OK);
        EXPECT("count after the reset", get(k, T0 + 33 * S).counter, 0);
        EXPECT_RC("2/30: new caller at +34 s (after the reset)", hiredis_rate(k, 2, iv, T0 + 34 * S),
                  FG_PASS);
        EXPECT_RC("2/30: new caller at +35 s", hiredis_rate(k, 2, iv, T0 + 35 * S), FG_PASS);
        EXPECT_RC("2/30: new caller at +36 s", hiredis_rate(k, 2, iv, T0 + 36 * S), FG_DROP);
        EXPECT_RC("limit_interval_reset of an unknown resource",
                  fg_interval_reset(&t, KEY("default/unknown"), T0), FG_NO_PIPE);
    }

    /* ---- 5/1: five calls per second -------------------------------------- */
    {
        const char *k = "outbound/carrier1";
        int passed = 0;
        for (int i = 0; i < 7; i++)
            passed += hiredis_rate(k, 5, S, T0 + 100 * S + (uint64_t)i * 100 * MS) == FG_PASS;
        EXPECT("5/1 (aligned): of 7 calls within one second, passed", passed, 5);
        EXPECT("5/1: count of that second", get(k, T0 + 100 * S + 700 * MS).counter, 7);
        passed = 0;
        for (int i = 0; i < 7; i++)
            passed += hiredis_rate(k, 5, S, T0 + 101 * S + (uint64_t)i * 100 * MS) == FG_PASS;
        EXPECT("5/1 (aligned): of 7 calls in the next second, passed", passed, 5);
        EXPECT("5/1: last_counter (the second before)", get(k, T0 + 101 * S + 700 * MS).last_counter,
               7);

        /* mod_hash: the window starts at the first call, not at the second. */
        const char *h = "outbound/carrier2";
        uint64_t first = T0 + 200 * S + 500 * MS;
        for (int i = 0; i < 5; i++)
            EXPECT_RC("5/1 (mod_hash): call in the window opened at +0.5 s",
                      fg_rate_check(&t, KEY(h), 5, S, FG_ANCHOR_FIRST_EVENT, FG_MAX_ZERO_MOD_HASH,
                                    first + (uint64_t)i * MS),
                      FG_PASS);
        EXPECT_RC("5/1 (mod_hash): 6th call at +1.2 s (same window, which ends at +1.5 s)",
                  fg_rate_check(&t, KEY(h), 5, S, FG_ANCHOR_FIRST_EVENT, FG_MAX_ZERO_MOD_HASH,
                                first + 700 * MS),
                  FG_DROP);
        EXPECT_RC("5/1 (mod_hash): call at +1.5 s (a new window)",
                  fg_rate_check(&t, KEY(h), 5, S, FG_ANCHOR_FIRST_EVENT, FG_MAX_ZERO_MOD_HASH,
                                first + S),
                  FG_PASS);
        /* The same calls with aligned windows: +1.2 s is already the next second. */
        const char *a = "outbound/carrier3";
        for (int i = 0; i < 5; i++)
            (void)hiredis_rate(a, 5, S, first + (uint64_t)i * MS);
        EXPECT_RC("5/1 (aligned): 6th call at +1.2 s (next aligned second)",
                  hiredis_rate(a, 5, S, first + 700 * MS), FG_PASS);

        /* A carrier limited on every call: resolve its key once, then
         * fg_rate_check_ref skips hashing and looking the key up. The entry
         * keeps its interval and anchor; each call's max applies. */
        uint64_t ref = 0;
        EXPECT_RC("fg_resolve(outbound/carrier2)", fg_resolve(&t, KEY(h), &ref), FG_OK);
        EXPECT_RC("5/1 (mod_hash) through the handle: 2nd call of the window opened at +1.5 s",
                  fg_rate_check_ref(&t, ref, 5, first + S + 100 * MS), FG_PASS);
        EXPECT_RC("through the handle, max now 2: 3rd call of that window",
                  fg_rate_check_ref(&t, ref, 2, first + S + 200 * MS), FG_DROP);
        EXPECT("by key: that window's count", get(h, first + S + 200 * MS).counter, 3);
        EXPECT_RC("through the handle at +2.5 s (a new window)",
                  fg_rate_check_ref(&t, ref, 2, first + 2 * S), FG_PASS);
        uint64_t slots_ref = 0;
        EXPECT_RC("fg_resolve(default/exclusive_limit)",
                  fg_resolve(&t, KEY("default/exclusive_limit"), &slots_ref), FG_OK);
        EXPECT_RC("a concurrent limit through fg_rate_check_ref",
                  fg_rate_check_ref(&t, slots_ref, 5, first + 2 * S), FG_E_WRONG_ALGORITHM);
        EXPECT_RC("fg_pipe_remove(outbound/carrier2)", fg_pipe_remove(&t, KEY(h)), FG_OK);
        EXPECT_RC("its handle after the removal", fg_rate_check_ref(&t, ref, 5, first + 2 * S),
                  FG_E_STALE);
    }

    /* ---- counter only: max -1 never refuses, counts ------------------------- */
    {
        const char *k = "inbound/15142223333";
        int admitted = 0;
        for (int i = 0; i < 25; i++) admitted += fg_slot_acquire(&t, KEY(k), -1, T0) == FG_ACQUIRED;
        EXPECT("limit ... -1: of 25 calls, admitted", admitted, 25);
        EXPECT("limit ... -1: limit_usage", usage(k, T0), 25);
        for (int i = 0; i < 25; i++) (void)fg_slot_release(&t, KEY(k), T0 + S);
        EXPECT("limit_usage after 25 hangups", usage(k, T0 + S), 0);
        const char *r = "inbound/rate_counter";
        int passed = 0;
        for (int i = 0; i < 100; i++) passed += hiredis_rate(r, -1, S, T0 + (uint64_t)i) == FG_PASS;
        EXPECT("limit ... -1/1: 100 calls in one second, passed", passed, 100);
        EXPECT("limit ... -1/1: counted", get(r, T0 + 100).counter, 100);
    }

    /* ---- max 0 -------------------------------------------------------------- */
    {
        EXPECT_RC("limit ... 0 (concurrent): refused",
                  fg_slot_acquire(&t, KEY("default/closed"), 0, T0), FG_REFUSED);
        EXPECT("limit_usage", usage("default/closed", T0), 0);
        const char *k = "default/zero_documented";
        int passed = 0;
        for (int i = 0; i < 3; i++)
            passed += fg_rate_check(&t, KEY(k), 0, S, FG_ANCHOR_ALIGNED, FG_MAX_ZERO_REFUSE_ALL,
                                    T0 + (uint64_t)i * 400 * MS) == FG_PASS;
        EXPECT("0/1, FG_MAX_ZERO_REFUSE_ALL (documented): of 3 calls over 1.2 s, passed", passed, 0);
        k = "default/zero_mod_hash";
        fg_result v[4];
        for (int i = 0; i < 3; i++)
            v[i] = fg_rate_check(&t, KEY(k), 0, S, FG_ANCHOR_FIRST_EVENT, FG_MAX_ZERO_MOD_HASH,
                                 T0 + (uint64_t)i * 100 * MS);
        v[3] = fg_rate_check(&t, KEY(k), 0, S, FG_ANCHOR_FIRST_EVENT, FG_MAX_ZERO_MOD_HASH, T0 + S);
        EXPECT_RC("0/1, FG_MAX_ZERO_MOD_HASH: 1st call of the window", v[0], FG_PASS);
        EXPECT_RC("0/1, FG_MAX_ZERO_MOD_HASH: 2nd call", v[1], FG_DROP);
        EXPECT_RC("0/1, FG_MAX_ZERO_MOD_HASH: 3rd call", v[2], FG_DROP);
        EXPECT_RC("0/1, FG_MAX_ZERO_MOD_HASH: 1st call of the next window", v[3], FG_PASS);
        k = "default/zero_hiredis";
        passed = 0;
        for (int i = 0; i < 3; i++)
            passed += fg_rate_check(&t, KEY(k), 0, S, FG_ANCHOR_ALIGNED, FG_MAX_ZERO_UNLIMITED,
                                    T0 + (uint64_t)i) == FG_PASS;
        EXPECT("0/1, FG_MAX_ZERO_UNLIMITED (mod_hiredis): of 3 calls, passed", passed, 3);
    }

    /* ---- a transferred call that never hangs up: a lease with a hold time --- */
    {
        const char *gw = "outbound/gateway1";
        uint64_t hold = 60 * S, now = T0 + 1000 * S;
        uint64_t a = 0, b = 0, c = 0, d = 0;
        EXPECT_RC("call A takes a slot (max 2, hold 60 s)",
                  fg_lease_acquire(&t, KEY(gw), 2, hold, now, &a), FG_ACQUIRED);
        EXPECT_RC("call B takes a slot", fg_lease_acquire(&t, KEY(gw), 2, hold, now + S, &b),
                  FG_ACQUIRED);
        EXPECT_RC("call C is refused", fg_lease_acquire(&t, KEY(gw), 2, hold, now + 2 * S, &c),
                  FG_REFUSED);
        EXPECT("limit_usage", usage(gw, now + 2 * S), 2);
        EXPECT_RC("call B hangs up", fg_lease_release(&t, b, now + 10 * S), FG_RELEASED);
        EXPECT_RC("call B's hangup seen twice (idempotent)", fg_lease_release(&t, b, now + 11 * S),
                  FG_ALREADY_RELEASED);
        EXPECT("limit_usage", usage(gw, now + 11 * S), 1);
        /* Call A is transferred with REFER: its hangup never comes. */
        EXPECT("limit_usage at +59.999 s (A still held)", usage(gw, now + hold - MS), 1);
        EXPECT("limit_usage at +60 s (A's hold time passed: reclaimed)", usage(gw, now + hold), 0);
        EXPECT_RC("A's late release", fg_lease_release(&t, a, now + hold + S), FG_ALREADY_RELEASED);
        EXPECT("limit_usage", usage(gw, now + hold + S), 0);
        EXPECT_RC("call D takes a slot (hold 0: until released)",
                  fg_lease_acquire(&t, KEY(gw), 2, 0, now + hold + S, &d), FG_ACQUIRED);
        EXPECT("limit_usage a day later (hold 0 never expires)", usage(gw, now + 86400 * S), 1);

        /* ---- deleting one entry at run time ------------------------------ */
        int before = entries(now + 86400 * S);
        EXPECT_RC("delete entry outbound/gateway1", fg_pipe_remove(&t, KEY(gw)), FG_OK);
        EXPECT("entries after the delete", entries(now + 86400 * S), before - 1);
        EXPECT_RC("fg_active outbound/gateway1", fg_active(&t, KEY(gw)), FG_NO_PIPE);
        uint32_t n = 777;
        EXPECT_RC("limit_usage outbound/gateway1", fg_slot_usage(&t, KEY(gw), now, &n), FG_NO_PIPE);
        EXPECT_RC("call D's hangup after the delete (its lease ended)",
                  fg_lease_release(&t, d, now + 86400 * S), FG_ALREADY_RELEASED);
        EXPECT_RC("delete it again", fg_pipe_remove(&t, KEY(gw)), FG_NO_PIPE);
        EXPECT("other entries untouched: limit_usage default exclusive_limit",
               usage("default/exclusive_limit", now), 0);
        EXPECT_RC("a new call recreates outbound/gateway1",
                  fg_slot_acquire(&t, KEY(gw), 2, now + 86400 * S), FG_ACQUIRED);
        EXPECT("limit_usage outbound/gateway1", usage(gw, now + 86400 * S), 1);
        EXPECT_RC("its hangup", fg_slot_release(&t, KEY(gw), now + 86401 * S), FG_RELEASED);
    }

    printf("freeswitch_limit: all checks passed\n");
    free(region);
    return 0;
}
