/*
 * allstar_hub.c: the hamvoip / AllStarLink hub of seed 000 (SEMANTICS.md
 * "hamvoip / AllStarLink") on a floodgate table.
 *
 * One public node (68500) in front of 4 virtual nodes (168501..168504), at
 * most 50 links each and 200 in all; link 201 goes to the dump node
 * (168505), which plays a message and disconnects. Where the seed's dialplan
 * reads four global link counts and compares them (racy: two connects read
 * the same counts), each connect here is one atomic fg_balance_acquire and
 * each disconnect one fg_slot_release.
 *
 *   1. one link at a time: round robin 0,1,2,3,..., link 201 -> FG_GROUP_FULL,
 *      disconnects free slots and the next link lands on the freed node
 *   2. 8 threads connecting at once until FG_GROUP_FULL: exactly 200 links,
 *      never more than 50 on a node (sampled during, checked after), then all
 *      disconnect and every node is back to 0
 *
 * Every step prints "ok  <what>: <value>"; any mismatch prints "FAIL ..."
 * and exits with status 1.
 */
#include <floodgate.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

#define NODES 4
#define PER_NODE 50
#define TOTAL 200
#define THREADS 8
#define T0 5000000000000ull /* a fixed time: plain slots do not depend on it */

static const char *const node_name[NODES] = {"168501", "168502", "168503", "168504"};
static const char *const dump_node = "168505";
static const uint8_t *node_key[NODES];
static size_t node_len[NODES];
static fg_table hub;

/* A new link to 68500: the least-loaded virtual node, or FG_GROUP_FULL. */
static fg_result connect_link(size_t *node) {
    return fg_balance_acquire(&hub, node_key, node_len, NODES, PER_NODE, TOTAL, 0, T0, node, NULL);
}

/* A link on virtual node i drops. */
static fg_result disconnect_link(size_t i) {
    return fg_slot_release(&hub, node_key[i], node_len[i], T0);
}

/* RPT_NUMALINKS of virtual node i; -1000 - code on an error. */
static long long links(size_t i) {
    uint32_t n = 0;
    fg_result r = fg_slot_usage(&hub, node_key[i], node_len[i], T0, &n);
    return r == FG_OK ? (long long)n : -1000 + (long long)r;
}

/* ---- phase 2: threads --------------------------------------------------- */

typedef struct worker {
    pthread_t tid;
    int id;
    int acquired[NODES];   /* links this thread connected, per node */
    int full;              /* FG_GROUP_FULL verdicts seen */
    long long max_seen;    /* highest node usage sampled */
    long long max_total;   /* highest sum of the sampled usages */
    int bad_rc;            /* an unexpected code, 0 if none */
    const char *bad_what;  /* which call returned it */
} worker;

static pthread_barrier_t start_line;

static void *connect_until_full(void *arg) {
    worker *w = arg;
    pthread_barrier_wait(&start_line);
    for (;;) {
        size_t node = 99;
        fg_result r = connect_link(&node);
        if (r == FG_GROUP_FULL) {
            w->full++;
            break;
        }
        if (r != FG_ACQUIRED || node >= NODES) {
            w->bad_rc = r;
            w->bad_what = "fg_balance_acquire";
            break;
        }
        w->acquired[node]++;
        /* Sample every node while the others keep connecting. */
        long long total = 0;
        for (size_t i = 0; i < NODES; i++) {
            long long n = links(i);
            if (n < 0) {
                w->bad_rc = (int)(n + 1000);
                w->bad_what = "fg_slot_usage";
                return NULL;
            }
            if (n > w->max_seen) w->max_seen = n;
            total += n;
        }
        if (total > w->max_total) w->max_total = total;
        /* Let the other connects in (a real link takes a while to set up). */
        sched_yield();
    }
    return NULL;
}

static void *disconnect_all(void *arg) {
    worker *w = arg;
    pthread_barrier_wait(&start_line);
    for (size_t i = 0; i < NODES; i++) {
        for (; w->acquired[i] > 0; w->acquired[i]--) {
            fg_result r = disconnect_link(i);
            if (r != FG_RELEASED) {
                w->bad_rc = r;
                w->bad_what = "fg_slot_release";
                return NULL;
            }
        }
    }
    return NULL;
}

static void run_threads(worker *w, void *(*fn)(void *)) {
    if (pthread_barrier_init(&start_line, NULL, THREADS) != 0) {
        printf("FAIL pthread_barrier_init\n");
        exit(1);
    }
    for (int i = 0; i < THREADS; i++) {
        if (pthread_create(&w[i].tid, NULL, fn, &w[i]) != 0) {
            printf("FAIL pthread_create %d\n", i);
            exit(1);
        }
    }
    for (int i = 0; i < THREADS; i++) pthread_join(w[i].tid, NULL);
    pthread_barrier_destroy(&start_line);
    for (int i = 0; i < THREADS; i++) {
        if (w[i].bad_rc != 0) {
            printf("FAIL thread %d: %s returned %d (%s)\n", i, w[i].bad_what, w[i].bad_rc,
                   fg_strerror(w[i].bad_rc));
            exit(1);
        }
    }
}

int main(void) {
    for (size_t i = 0; i < NODES; i++) {
        node_key[i] = (const uint8_t *)node_name[i];
        node_len[i] = strlen(node_name[i]);
    }
    fg_config cfg = {.capacity = 16, .lease_capacity = 4, .interval_ns = 10000000000ull,
                     .epoch_ns = 0, .seed = 0x68500ull};
    size_t bytes = 0;
    EXPECT_RC("fg_table_bytes", fg_table_bytes(&cfg, &bytes), FG_OK);
    void *region = malloc(bytes);
    if (region == NULL) {
        printf("FAIL malloc\n");
        return 1;
    }
    EXPECT_RC("fg_table_init", fg_table_init(region, bytes, &cfg, &hub), FG_OK);

    /* ---- 1. one link at a time ------------------------------------------- */
    {
        int per_node[NODES] = {0, 0, 0, 0};
        for (int link = 1; link <= TOTAL; link++) {
            size_t node = 99;
            fg_result r = connect_link(&node);
            if (r != FG_ACQUIRED) EXPECT_RC("link connects", r, FG_ACQUIRED);
            /* Ties to the lowest index: the seed's "in succession starting with 168501". */
            if ((int)node != (link - 1) % NODES) EXPECT("round-robin node of link", node, (link - 1) % NODES);
            if (link <= 8) {
                char what[80];
                snprintf(what, sizeof what, "link %d -> virtual node index (%s)", link, node_name[node]);
                EXPECT(what, node, (link - 1) % NODES);
            }
            per_node[node]++;
        }
        printf("ok  links 9..200 kept the round robin 0,1,2,3,...\n");
        for (size_t i = 0; i < NODES; i++) {
            char what[64];
            snprintf(what, sizeof what, "RPT_NUMALINKS of %s", node_name[i]);
            EXPECT(what, links(i), PER_NODE);
            EXPECT("links the balancer put there", per_node[i], PER_NODE);
        }
        size_t node = 99;
        EXPECT_RC("link 201", connect_link(&node), FG_GROUP_FULL);
        EXPECT("link 201: member_out left alone", node, 99);
        /* The dump node plays its message, then disconnects the link (*76). */
        EXPECT_RC("link 201 -> dump node 168505 (count only)",
                  fg_slot_acquire(&hub, KEY(dump_node), -1, T0), FG_ACQUIRED);
        EXPECT_RC("dump node disconnects it", fg_slot_release(&hub, KEY(dump_node), T0), FG_RELEASED);
        for (size_t i = 0; i < NODES; i++) {
            long long n = links(i);
            if (n != PER_NODE) EXPECT("usage unchanged by the refused link", n, PER_NODE);
        }
        printf("ok  the refused link changed no node's usage\n");

        EXPECT_RC("a link on 168503 (index 2) drops", disconnect_link(2), FG_RELEASED);
        EXPECT("RPT_NUMALINKS of 168503", links(2), PER_NODE - 1);
        EXPECT_RC("next link", connect_link(&node), FG_ACQUIRED);
        EXPECT("next link lands on the freed node", node, 2);
        EXPECT_RC("a link on 168504 (index 3) drops", disconnect_link(3), FG_RELEASED);
        EXPECT_RC("a link on 168502 (index 1) drops", disconnect_link(1), FG_RELEASED);
        EXPECT_RC("next link", connect_link(&node), FG_ACQUIRED);
        EXPECT("it lands on the lowest freed node", node, 1);
        EXPECT_RC("next link", connect_link(&node), FG_ACQUIRED);
        EXPECT("then on the other freed node", node, 3);
        EXPECT_RC("next link (hub full again)", connect_link(&node), FG_GROUP_FULL);

        /* The same with a lease handle: released through fg_lease_release. */
        uint64_t lease = 0;
        EXPECT_RC("a link on 168501 drops", disconnect_link(0), FG_RELEASED);
        EXPECT_RC("next link, with a lease handle",
                  fg_balance_acquire(&hub, node_key, node_len, NODES, PER_NODE, TOTAL, 0, T0, &node,
                                     &lease),
                  FG_ACQUIRED);
        EXPECT("it lands on 168501", node, 0);
        EXPECT_RC("that link drops (fg_lease_release)", fg_lease_release(&hub, lease, T0), FG_RELEASED);
        EXPECT("RPT_NUMALINKS of 168501", links(0), PER_NODE - 1);
        EXPECT_RC("a link connects again", connect_link(&node), FG_ACQUIRED);
        EXPECT("on 168501", node, 0);

        /* Everybody disconnects. */
        for (size_t i = 0; i < NODES; i++) {
            for (int k = 0; k < PER_NODE; k++) {
                fg_result r = disconnect_link(i);
                if (r != FG_RELEASED) EXPECT_RC("disconnect", r, FG_RELEASED);
            }
        }
        for (size_t i = 0; i < NODES; i++) EXPECT("RPT_NUMALINKS after all disconnect", links(i), 0);
        EXPECT_RC("a disconnect event too many", disconnect_link(0), FG_UNMATCHED);
        EXPECT("RPT_NUMALINKS of 168501 stays 0", links(0), 0);
    }

    /* ---- 2. 8 threads connecting at once --------------------------------- */
    {
        worker w[THREADS];
        memset(w, 0, sizeof w);
        for (int i = 0; i < THREADS; i++) w[i].id = i;
        run_threads(w, connect_until_full);
        int total = 0, full = 0, per_node[NODES] = {0, 0, 0, 0};
        long long max_seen = 0, max_total = 0;
        for (int i = 0; i < THREADS; i++) {
            int mine = 0;
            for (size_t n = 0; n < NODES; n++) {
                per_node[n] += w[i].acquired[n];
                mine += w[i].acquired[n];
            }
            printf("    thread %d connected %d links (%d/%d/%d/%d)\n", i, mine, w[i].acquired[0],
                   w[i].acquired[1], w[i].acquired[2], w[i].acquired[3]);
            total += mine;
            full += w[i].full;
            if (w[i].max_seen > max_seen) max_seen = w[i].max_seen;
            if (w[i].max_total > max_total) max_total = w[i].max_total;
        }
        EXPECT("8 threads: links connected in total", total, TOTAL);
        EXPECT("8 threads: FG_GROUP_FULL verdicts (one per thread)", full, THREADS);
        EXPECT("highest node usage sampled during the run <= 50", max_seen <= PER_NODE, 1);
        printf("    (highest sampled: %lld per node, %lld in all)\n", max_seen, max_total);
        EXPECT("highest sampled sum <= 200", max_total <= TOTAL, 1);
        for (size_t i = 0; i < NODES; i++) {
            char what[64];
            snprintf(what, sizeof what, "RPT_NUMALINKS of %s after the run", node_name[i]);
            EXPECT(what, links(i), PER_NODE);
            EXPECT("links the threads got there", per_node[i], PER_NODE);
        }
        size_t node = 99;
        EXPECT_RC("one more link after the run", connect_link(&node), FG_GROUP_FULL);

        run_threads(w, disconnect_all);
        for (size_t i = 0; i < NODES; i++) {
            char what[64];
            snprintf(what, sizeof what, "RPT_NUMALINKS of %s after all disconnect", node_name[i]);
            EXPECT(what, links(i), 0);
        }
    }

    printf("allstar_hub: all checks passed\n");
    free(region);
    return 0;
}
