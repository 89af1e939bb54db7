/*
 * kamailio_pipelimit.c: the pl_check flows of Kamailio's pipelimit module
 * (seed 004, SEMANTICS.md "Kamailio pipelimit") on a floodgate table.
 *
 *   - TAILDROP pipes per source IP created on the fly:
 *       pl_check("$si", "TAILDROP", "$var(invlimit)")  ->  fg_check_create
 *   - RED under 3x overload: the next interval passes exactly one in three
 *   - FEEDBACK driven by pushed CPU load (pl.push_load): 10, 20, 30 percent
 *   - pl_check on a missing pipe: -2; on a NOP pipe: 2
 *   - the 503 / Retry-After decision of pl_drop([min[,max]])
 *
 * Time is explicit uint64_t nanoseconds so every verdict is deterministic;
 * one fg_now_ns() call shows the convenience clock. The table lives in a
 * static 8-aligned buffer, as a Kamailio module would put it in shm.
 * Every step prints "ok  <what>: <value>"; any mismatch prints "FAIL ..."
 * and exits with status 1.
 */
#include <floodgate.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

#define S 1000000000ull        /* one second in ns */
#define TIMER_INTERVAL (10 * S) /* pipelimit's default timer_interval */
#define T0 (1000 * S)           /* start of a window (epoch 0, 10 s windows) */

static uint64_t region[4096]; /* 32 KiB, 8-aligned */
static fg_table pipes;

static fg_entry get(const char *name, uint64_t now) {
    fg_entry e;
    fg_result r = fg_get(&pipes, KEY(name), now, &e);
    if (r != FG_OK) {
        printf("FAIL fg_get(%s): %d (%s)\n", name, r, fg_strerror(r));
        exit(1);
    }
    return e;
}

/* ---- pl_drop([min[,max]]) and the route's decision ---------------------- */

/* What the route does with a request: relay it, or reply 503. */
typedef struct reply {
    int relay;           /* 1: relay the request; 0: reply */
    int code;            /* 503 when not relayed */
    const char *reason;  /* "Server Unavailable" (pipelimit's reply_reason) */
    int retry_after;     /* Retry-After seconds; -1: no header */
} reply;

/* A small deterministic PRNG (xorshift32) for pl_drop's random value. */
static uint32_t rng_state = 0x2545f491u;
static uint32_t rng(void) {
    uint32_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return rng_state = x;
}

/*
 * pl_drop with nargs of (min, max): no header with 0 arguments,
 * "Retry-After: <value>" with one, a value in [min, max] with two.
 */
static reply pl_drop(int nargs, int min, int max) {
    reply r = {0, 503, "Server Unavailable", -1};
    if (nargs == 1) r.retry_after = min;
    if (nargs == 2) r.retry_after = min + (int)(rng() % (uint32_t)(max - min + 1));
    return r;
}

/*
 * The route: `if (!pl_check(...)) { pl_drop(...); exit; }`. In Kamailio a
 * negative return value is false, so a dropped request (-1) and a missing
 * pipe (-2) both get the 503, as do errors (fail closed); 1 and 2 relay.
 */
static reply route(fg_result verdict, int nargs, int min, int max) {
    if (verdict == FG_PASS || verdict == FG_PASS_NOP) {
        reply r = {1, 0, "relay", -1};
        return r;
    }
    return pl_drop(nargs, min, max);
}

static void print_reply(const char *what, reply r) {
    if (r.relay)
        printf("ok  %s: relay\n", what);
    else if (r.retry_after < 0)
        printf("ok  %s: %d %s (no Retry-After)\n", what, r.code, r.reason);
    else
        printf("ok  %s: %d %s, Retry-After: %d\n", what, r.code, r.reason, r.retry_after);
}

/* ---- pl.list / pl.stats through fg_list -------------------------------- */

static int32_t list_cb(const fg_entry *e, void *ctx) {
    int *n = ctx;
    printf("    pipe %.*s algorithm %u limit %" PRId64 " counter %u last %u load %d\n",
           (int)e->key_len, (const char *)e->key, e->algorithm, e->limit, e->counter,
           e->last_counter, e->load);
    ++*n;
    return 0;
}

int main(void) {
    fg_config cfg = {.capacity = 64, .lease_capacity = 0, .interval_ns = TIMER_INTERVAL,
                     .epoch_ns = 0, .seed = 0x5eed1234abcdull};
    size_t need = 0;
    EXPECT_RC("fg_table_bytes(64 pipes)", fg_table_bytes(&cfg, &need), FG_OK);
    EXPECT("table bytes <= static buffer", need <= sizeof region, 1);
    EXPECT_RC("fg_table_init", fg_table_init(region, sizeof region, &cfg, &pipes), FG_OK);

    /* fg_now_ns: CLOCK_MONOTONIC, for callers that do not keep their own. */
    uint64_t c1 = fg_now_ns(), c2 = fg_now_ns();
    EXPECT("fg_now_ns() is not 0", c1 != 0, 1);
    EXPECT("fg_now_ns() does not go backwards", c2 >= c1, 1);

    /* ---- TAILDROP per source IP, created on the fly --------------------
     * if (is_method("INVITE")) { $var(invlimit) = 10;
     *     if (!pl_check("$si", "TAILDROP", "$var(invlimit)")) { pl_drop(); exit; } } */
    {
        static const char *ips[3] = {"10.0.0.1", "10.0.0.2", "192.0.2.7"};
        static const int sent[3] = {14, 5, 10}; /* requests per IP in one interval */
        int passed[3] = {0, 0, 0}, dropped[3] = {0, 0, 0};
        EXPECT_RC("pl_active(10.0.0.1) before any request", fg_active(&pipes, KEY(ips[0])),
                  FG_NO_PIPE);
        /* Interleaved, as requests from several hosts arrive. */
        for (int round = 0; round < 14; round++) {
            for (int i = 0; i < 3; i++) {
                if (round >= sent[i]) continue;
                uint64_t now = T0 + (uint64_t)round * 100000000ull + (uint64_t)i;
                fg_result r = fg_check_create(&pipes, KEY(ips[i]), FG_ALGO_TAILDROP, 10, now);
                if (r == FG_PASS) passed[i]++;
                else if (r == FG_DROP) dropped[i]++;
                else FAIL("pl_check($si) verdict", r, FG_PASS);
            }
        }
        EXPECT("10.0.0.1: 14 INVITEs, passed (limit 10)", passed[0], 10);
        EXPECT("10.0.0.1: dropped", dropped[0], 4);
        EXPECT("10.0.0.2: 5 INVITEs, passed", passed[1], 5);
        EXPECT("10.0.0.2: dropped", dropped[1], 0);
        EXPECT("192.0.2.7: 10 INVITEs, passed", passed[2], 10);
        EXPECT("192.0.2.7: dropped", dropped[2], 0);
        EXPECT_RC("pl_active(10.0.0.1)", fg_active(&pipes, KEY(ips[0])), FG_OK);
        EXPECT_RC("192.0.2.7: 11th INVITE", fg_check(&pipes, KEY(ips[2]), T0 + 9 * S),
                  FG_DROP);
        EXPECT_RC("10.0.0.2: 6th INVITE (its own pipe)", fg_check(&pipes, KEY(ips[1]), T0 + 9 * S),
                  FG_PASS);
        fg_entry e = get(ips[0], T0 + 9 * S);
        EXPECT("pl.list 10.0.0.1 counter (dropped ones count too)", e.counter, 14);
        EXPECT("pl.list 10.0.0.1 limit", e.limit, 10);
        EXPECT("pl.list 10.0.0.1 algorithm", e.algorithm, FG_ALGO_TAILDROP);
        /* Next interval: the counter starts again. */
        EXPECT_RC("10.0.0.1: first INVITE of the next interval",
                  fg_check_create(&pipes, KEY(ips[0]), FG_ALGO_TAILDROP, 10, T0 + TIMER_INTERVAL),
                  FG_PASS);
        e = get(ips[0], T0 + TIMER_INTERVAL);
        EXPECT("10.0.0.1 counter in the next interval", e.counter, 1);
        EXPECT("10.0.0.1 last_counter (previous interval)", e.last_counter, 14);
        /* An existing pipe keeps its algorithm; a limit > 0 replaces its limit. */
        EXPECT_RC("pl_check(10.0.0.1, RED, 20) on the TAILDROP pipe",
                  fg_check_create(&pipes, KEY(ips[0]), FG_ALGO_RED, 20, T0 + TIMER_INTERVAL + 1),
                  FG_PASS);
        e = get(ips[0], T0 + TIMER_INTERVAL + 1);
        EXPECT("algorithm kept", e.algorithm, FG_ALGO_TAILDROP);
        EXPECT("limit replaced (limit > 0)", e.limit, 20);
        EXPECT_RC("pl_check(10.0.0.1, TAILDROP, 0)",
                  fg_check_create(&pipes, KEY(ips[0]), FG_ALGO_TAILDROP, 0, T0 + TIMER_INTERVAL + 2),
                  FG_PASS);
        e = get(ips[0], T0 + TIMER_INTERVAL + 2);
        EXPECT("limit kept (limit 0 does not replace)", e.limit, 20);
    }

    /* ---- RED under 3x overload ---------------------------------------- */
    {
        const char *red = "trunk-red";
        uint64_t w0 = T0 + 2 * TIMER_INTERVAL, w1 = w0 + TIMER_INTERVAL;
        EXPECT_RC("pl.set_pipe trunk-red RED 10", fg_pipe_set(&pipes, KEY(red), FG_ALGO_RED, 10, w0),
                  FG_OK);
        int passed = 0;
        for (int i = 0; i < 30; i++)
            passed += fg_check(&pipes, KEY(red), w0 + (uint64_t)i * 1000) == FG_PASS;
        EXPECT("RED first interval, 30 requests (3x limit 10), passed (load 0)", passed, 30);
        fg_entry e = get(red, w1);
        EXPECT("pl.stats trunk-red load at the next interval (30 / 10)", e.load, 3);
        EXPECT("pl.stats trunk-red last_counter", e.last_counter, 30);
        passed = 0;
        for (int i = 1; i <= 30; i++) {
            fg_result r = fg_check(&pipes, KEY(red), w1 + (uint64_t)i * 1000);
            /* counter % load == 0 passes: requests 3, 6, 9, ... */
            fg_result want = i % 3 == 0 ? FG_PASS : FG_DROP;
            if (r != want) FAIL("RED verdict of request i (pass iff i % 3 == 0)", r, want);
            passed += r == FG_PASS;
        }
        EXPECT("RED next interval, 30 requests at load 3, passed exactly", passed, 10);
        /* An interval without traffic sets load 0: everything passes after it. */
        e = get(red, w1 + 2 * TIMER_INTERVAL);
        EXPECT("RED load after an empty interval", e.load, 0);
    }

    /* ---- FEEDBACK driven by pushed CPU load ----------------------------- */
    {
        const char *fb = "cpu";
        uint64_t w0 = T0 + 10 * TIMER_INTERVAL, w1 = w0 + TIMER_INTERVAL;
        fg_pid pid;
        EXPECT_RC("pl_check(cpu, FEEDBACK, 50) creates the pipe",
                  fg_check_create(&pipes, KEY(fb), FG_ALGO_FEEDBACK, 50, w0), FG_PASS);
        EXPECT_RC("pl.get_pid", fg_pid_get(&pipes, &pid), FG_OK);
        EXPECT_NEAR("setpoint (50 percent)", pid.setpoint, 0.5);
        EXPECT_NEAR("default kp", pid.kp, 0.0);
        EXPECT_NEAR("default ki", pid.ki, -25.0);
        EXPECT_NEAR("default kd", pid.kd, 0.0);
        EXPECT("drop rate before any load", pid.drop_rate, 0);
        static const uint32_t want_rate[3] = {10, 20, 30};
        for (int i = 0; i < 3; i++) {
            uint32_t rate = 999;
            char what[64];
            snprintf(what, sizeof what, "pl.push_load 0.9 (#%d): drop rate", i + 1);
            EXPECT_RC("fg_push_load(0.9)", fg_push_load(&pipes, 0.9, &rate), FG_OK);
            EXPECT(what, rate, want_rate[i]);
        }
        EXPECT_RC("pl.get_pid", fg_pid_get(&pipes, &pid), FG_OK);
        EXPECT_NEAR("int_err (-0.4 x 3)", pid.int_err, -1.2);
        EXPECT_NEAR("last_err (0.5 - 0.9)", pid.last_err, -0.4);
        EXPECT_NEAR("load", pid.load, 0.9);
        EXPECT("drop_rate", pid.drop_rate, 30);
        int dropped = 0;
        for (int i = 0; i < 100; i++) {
            fg_result r = fg_check(&pipes, KEY(fb), w1 + (uint64_t)i * 1000);
            if (r != FG_PASS && r != FG_DROP) FAIL("FEEDBACK verdict", r, FG_DROP);
            dropped += r == FG_DROP;
        }
        EXPECT("FEEDBACK: of the next 100 requests, dropped", dropped, 30);
        EXPECT("FEEDBACK: counter of that interval", get(fb, w1 + S).counter, 100);
    }

    /* ---- NOP and missing pipes ----------------------------------------- */
    EXPECT_RC("pl.set_pipe monitor NOP 0", fg_pipe_set(&pipes, KEY("monitor"), FG_ALGO_NOP, 0, T0),
              FG_OK);
    EXPECT_RC("pl_check(monitor) on a NOP pipe returns 2", fg_check(&pipes, KEY("monitor"), T0), 2);
    EXPECT_RC("pl_check(nosuch) on a missing pipe returns -2",
              fg_check(&pipes, KEY("nosuch"), T0), -2);
    EXPECT_RC("pl_active(nosuch)", fg_active(&pipes, KEY("nosuch")), FG_NO_PIPE);

    /* ---- 503 / Retry-After ----------------------------------------------- */
    {
        reply r = route(fg_check(&pipes, KEY("10.0.0.2"), T0 + 2 * TIMER_INTERVAL), 0, 0, 0);
        print_reply("pass -> route", r);
        EXPECT("FG_PASS relays", r.relay, 1);
        r = route(fg_check(&pipes, KEY("monitor"), T0), 0, 0, 0);
        print_reply("NOP -> route", r);
        EXPECT("FG_PASS_NOP relays", r.relay, 1);
        /* Exhaust 10.0.0.2 in one interval: limit 10. */
        uint64_t w = T0 + 30 * TIMER_INTERVAL;
        fg_result v = FG_PASS;
        for (int i = 0; i < 11; i++) v = fg_check(&pipes, KEY("10.0.0.2"), w);
        EXPECT_RC("10.0.0.2: 11th request of an interval", v, FG_DROP);
        r = route(v, 0, 0, 0);
        print_reply("drop, pl_drop()", r);
        EXPECT("pl_drop(): code", r.code, 503);
        EXPECT("pl_drop(): reason is Server Unavailable", strcmp(r.reason, "Server Unavailable"), 0);
        EXPECT("pl_drop(): no Retry-After", r.retry_after, -1);
        r = route(v, 1, 5, 0);
        print_reply("drop, pl_drop(5)", r);
        EXPECT("pl_drop(5): Retry-After", r.retry_after, 5);
        int lo = 1000, hi = -1;
        for (int i = 0; i < 1000; i++) {
            r = route(v, 2, 5, 15);
            if (r.relay || r.code != 503) FAIL("pl_drop(5,15): 503", r.code, 503);
            if (r.retry_after < 5 || r.retry_after > 15)
                FAIL("pl_drop(5,15): Retry-After in [5,15]", r.retry_after, 5);
            if (r.retry_after < lo) lo = r.retry_after;
            if (r.retry_after > hi) hi = r.retry_after;
        }
        print_reply("drop, pl_drop(5,15) (last of 1000)", r);
        EXPECT("pl_drop(5,15) x1000: smallest Retry-After", lo, 5);
        EXPECT("pl_drop(5,15) x1000: largest Retry-After", hi, 15);
        r = route(fg_check(&pipes, KEY("nosuch"), w), 1, 5, 0);
        print_reply("missing pipe (-2) -> route", r);
        EXPECT("missing pipe gets the 503 too", r.code, 503);
    }

    /* ---- pl.list ----------------------------------------------------------- */
    {
        int n = 0;
        printf("    pl.list:\n");
        EXPECT_RC("fg_list", fg_list(&pipes, T0 + 30 * TIMER_INTERVAL, list_cb, &n), FG_OK);
        EXPECT("pipes listed (3 IPs, trunk-red, cpu, monitor)", n, 6);
    }

    /* ---- A pipe checked on every call: resolve it once --------------------
     * fg_check by name hashes the name and looks it up on every call;
     * fg_check_ref goes straight to the entry. A handle outlives nothing:
     * once its pipe is deleted (pl.rm), evicted or reused, it is FG_E_STALE. */
    {
        uint64_t w = T0 + 40 * TIMER_INTERVAL, h = 0;
        EXPECT_RC("fg_resolve before the pipe exists", fg_resolve(&pipes, KEY("peer-a"), &h),
                  FG_NO_PIPE);
        EXPECT_RC("pl_check(peer-a, TAILDROP, 3)",
                  fg_check_create(&pipes, KEY("peer-a"), FG_ALGO_TAILDROP, 3, w), FG_PASS);
        EXPECT_RC("fg_resolve(peer-a)", fg_resolve(&pipes, KEY("peer-a"), &h), FG_OK);
        EXPECT_RC("2nd request through the handle", fg_check_ref(&pipes, h, w + 1), FG_PASS);
        EXPECT_RC("3rd", fg_check_ref(&pipes, h, w + 2), FG_PASS);
        EXPECT_RC("4th: over the limit of 3", fg_check_ref(&pipes, h, w + 3), FG_DROP);
        EXPECT_RC("by name: the same pipe", fg_check(&pipes, KEY("peer-a"), w + 4), FG_DROP);
        EXPECT_RC("pl.rm peer-a", fg_pipe_remove(&pipes, KEY("peer-a")), FG_OK);
        EXPECT_RC("the handle of a deleted pipe", fg_check_ref(&pipes, h, w + 5), FG_E_STALE);
    }

    printf("kamailio_pipelimit: all checks passed\n");
    return 0;
}
