/*
 * shm_workers.c: one floodgate table shared by forked worker processes, as
 * Kamailio's children share pipelimit's pipes in shared memory.
 *
 * The parent creates a /dev/shm file (shm_open), sizes it with ftruncate to
 * fg_table_bytes, maps it MAP_SHARED and builds the table with
 * fg_table_init. It then forks 4 workers. Each worker maps the file again
 * (at another address) and opens the table there with fg_table_attach, then
 *   - does N checks on a NOP pipe (each FG_PASS_NOP),
 *   - does M acquire/release pairs on a slot key with max 2, asserting that
 *     the usage is never above 2 (and counting acquired / refused pairs on
 *     two more NOP pipes, so the parent can add them up),
 * unmaps, closes and _exits with a status (0: all good).
 * The parent waits and checks the exact totals: the NOP pipe's counter is
 * 4*N (fg_get), acquired + refused is 4*M, the slot usage is back to 0 with
 * no unmatched release. The /dev/shm file is removed at the end, on failure
 * paths too.
 *
 * Every step prints "ok  <what>: <value>"; any mismatch prints "FAIL ..."
 * and exits with a non-zero status.
 */
#include <floodgate.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

#define WORKERS 4
#define N_CHECKS 2000 /* NOP checks per worker */
#define M_PAIRS 500   /* acquire/release pairs per worker */
#define SLOT_MAX 2
#define S 1000000000ull
#define NOW (1000 * S) /* one fixed time: every count lands in one window */

static char shm_name[64];
static pid_t parent_pid;
static void *parent_map = MAP_FAILED;
static int parent_fd = -1;
static size_t table_bytes;
static pid_t children[WORKERS];
static int n_children;

/* Unmaps, closes and removes the /dev/shm file: in the parent only. */
static void cleanup(void) {
    if (getpid() != parent_pid) return;
    if (parent_map != MAP_FAILED) munmap(parent_map, table_bytes);
    parent_map = MAP_FAILED;
    if (parent_fd >= 0) close(parent_fd);
    parent_fd = -1;
    if (shm_name[0] != '\0' && shm_unlink(shm_name) == 0)
        printf("    removed /dev/shm%s\n", shm_name);
    shm_name[0] = '\0';
}

/* Stops and reaps the workers still running, then cleans up: the parent's
 * failure path, also check.h's check_on_fail (a failed EXPECT). */
static void stop_workers(void) {
    /* (a worker waiting at the gate gets SIGKILL below) */
    for (int i = 0; i < n_children; i++) {
        if (children[i] > 0) {
            kill(children[i], SIGKILL);
            waitpid(children[i], NULL, 0);
        }
    }
    cleanup();
}

/* Parent failure: stop and reap the workers still running, clean up, exit 1. */
static void parent_fail(void) {
    stop_workers();
    exit(1);
}

/* ---- a worker ------------------------------------------------------------ */

/* Worker failure: say what, then _exit with `status` (no atexit, no stdio
 * buffers of the parent flushed twice). */
static void worker_fail(int id, int status, const char *what, int rc) {
    printf("FAIL worker %d (pid %ld): %s: %d (%s)\n", id, (long)getpid(), what, rc, fg_strerror(rc));
    fflush(stdout);
    _exit(status);
}

static int gate[2] = {-1, -1}; /* a pipe: workers start together when the parent closes it */

static void worker(int id) {
    /* Wait at the gate: EOF once the parent has forked every worker. */
    char c;
    close(gate[1]);
    while (read(gate[0], &c, 1) < 0 && errno == EINTR) {
    }
    close(gate[0]);
    int fd = shm_open(shm_name, O_RDWR, 0);
    if (fd < 0) worker_fail(id, 10, "shm_open in the worker", errno);
    void *map = mmap(NULL, table_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) worker_fail(id, 11, "mmap in the worker", errno);
    fg_table t; /* this process's own handle on its own mapping */
    fg_result r = fg_table_attach(map, table_bytes, &t);
    if (r != FG_OK) worker_fail(id, 12, "fg_table_attach", r);

    int acquired = 0, refused = 0;
    uint32_t max_usage = 0;
    for (int i = 0; i < N_CHECKS; i++) {
        r = fg_check(&t, KEY("nop"), NOW);
        if (r != FG_PASS_NOP) worker_fail(id, 13, "fg_check(nop)", r);
        if (i % (N_CHECKS / M_PAIRS) != 0) continue;
        /* One acquire/release pair every N/M checks. */
        uint32_t u = 0;
        r = fg_slot_acquire(&t, KEY("trunk"), SLOT_MAX, NOW);
        if (r == FG_ACQUIRED) {
            acquired++;
            fg_result ru = fg_slot_usage(&t, KEY("trunk"), NOW, &u);
            if (ru != FG_OK) worker_fail(id, 14, "fg_slot_usage", ru);
            if (u < 1 || u > SLOT_MAX) worker_fail(id, 15, "usage while holding a slot (1..2)", (int)u);
            if (u > max_usage) max_usage = u;
            r = fg_check(&t, KEY("trunk-acquired"), NOW);
            if (r != FG_PASS_NOP) worker_fail(id, 16, "fg_check(trunk-acquired)", r);
            sched_yield(); /* hold the slot a moment: the others compete for it */
            r = fg_slot_release(&t, KEY("trunk"), NOW);
            if (r != FG_RELEASED) worker_fail(id, 17, "fg_slot_release", r);
            sched_yield(); /* and give the others a turn */
        } else if (r == FG_REFUSED) {
            refused++;
            r = fg_check(&t, KEY("trunk-refused"), NOW);
            if (r != FG_PASS_NOP) worker_fail(id, 18, "fg_check(trunk-refused)", r);
            sched_yield(); /* a refused caller comes back later */
        } else {
            worker_fail(id, 19, "fg_slot_acquire", r);
        }
    }
    printf("ok  worker %d (pid %ld, own mapping at %p, inherited at %p): %d checks FG_PASS_NOP, "
           "%d pairs acquired, %d refused, highest usage seen %u\n",
           id, (long)getpid(), map, parent_map, N_CHECKS, acquired, refused, max_usage);
    fflush(stdout);
    munmap(map, table_bytes);
    close(fd);
    _exit(0);
}

/* ---- the parent ---------------------------------------------------------- */

int main(void) {
    parent_pid = getpid();
    snprintf(shm_name, sizeof shm_name, "/floodgate-shm-workers-%ld", (long)parent_pid);
    if (atexit(cleanup) != 0) return 1;
    check_on_fail = stop_workers;

    fg_config cfg = {.capacity = 32, .lease_capacity = 0, .interval_ns = 10 * S, .epoch_ns = 0,
                     .seed = 0x5ca1ab1eull};
    EXPECT_RC("fg_table_bytes", fg_table_bytes(&cfg, &table_bytes), FG_OK);
    parent_fd = shm_open(shm_name, O_CREAT | O_EXCL | O_RDWR, 0600);
    if (parent_fd < 0) {
        printf("FAIL shm_open(%s): %s\n", shm_name, strerror(errno));
        shm_name[0] = '\0'; /* not ours to remove */
        return 1;
    }
    printf("ok  created /dev/shm%s\n", shm_name);
    if (ftruncate(parent_fd, (off_t)table_bytes) != 0) {
        printf("FAIL ftruncate: %s\n", strerror(errno));
        parent_fail();
    }
    parent_map = mmap(NULL, table_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, parent_fd, 0);
    if (parent_map == MAP_FAILED) {
        printf("FAIL mmap: %s\n", strerror(errno));
        parent_fail();
    }
    fg_table t;
    EXPECT_RC("fg_table_init in the MAP_SHARED mapping",
              fg_table_init(parent_map, table_bytes, &cfg, &t), FG_OK);
    EXPECT_RC("pl.set_pipe nop NOP", fg_pipe_set(&t, KEY("nop"), FG_ALGO_NOP, 0, NOW), FG_OK);
    EXPECT_RC("pl.set_pipe trunk-acquired NOP",
              fg_pipe_set(&t, KEY("trunk-acquired"), FG_ALGO_NOP, 0, NOW), FG_OK);
    EXPECT_RC("pl.set_pipe trunk-refused NOP",
              fg_pipe_set(&t, KEY("trunk-refused"), FG_ALGO_NOP, 0, NOW), FG_OK);

    if (pipe(gate) != 0) {
        printf("FAIL pipe: %s\n", strerror(errno));
        parent_fail();
    }
    fflush(stdout); /* nothing buffered may be written twice by the children */
    for (int i = 0; i < WORKERS; i++) {
        pid_t pid = fork();
        if (pid < 0) {
            printf("FAIL fork: %s\n", strerror(errno));
            parent_fail();
        }
        if (pid == 0) worker(i); /* never returns */
        children[n_children++] = pid;
    }
    close(gate[0]);
    close(gate[1]); /* open the gate: every worker starts now */
    int bad = 0;
    for (int i = 0; i < n_children; i++) {
        int status = 0;
        if (waitpid(children[i], &status, 0) != children[i]) {
            printf("FAIL waitpid(%ld): %s\n", (long)children[i], strerror(errno));
            bad = 1;
            continue;
        }
        children[i] = 0;
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            printf("FAIL worker %d: %s %d\n", i, WIFEXITED(status) ? "exit status" : "signal",
                   WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
            bad = 1;
        }
    }
    EXPECT("workers that exited with status 0", bad ? 0 : WORKERS, WORKERS);

    fg_entry e;
    EXPECT_RC("fg_get(nop)", fg_get(&t, KEY("nop"), NOW, &e), FG_OK);
    EXPECT("nop counter == 4 workers x N checks", e.counter, WORKERS * N_CHECKS);
    fg_entry a, r;
    EXPECT_RC("fg_get(trunk-acquired)", fg_get(&t, KEY("trunk-acquired"), NOW, &a), FG_OK);
    EXPECT_RC("fg_get(trunk-refused)", fg_get(&t, KEY("trunk-refused"), NOW, &r), FG_OK);
    printf("    acquired %u, refused %u\n", a.counter, r.counter);
    EXPECT("acquired + refused == 4 workers x M pairs", a.counter + r.counter, WORKERS * M_PAIRS);
    EXPECT("some pairs acquired", a.counter > 0, 1);
    uint32_t u = 99;
    EXPECT_RC("limit_usage trunk", fg_slot_usage(&t, KEY("trunk"), NOW, &u), FG_OK);
    EXPECT("trunk usage after all workers", u, 0);
    fg_entry s;
    EXPECT_RC("fg_get(trunk)", fg_get(&t, KEY("trunk"), NOW, &s), FG_OK);
    EXPECT("trunk unmatched releases", s.last_counter, 0);
    EXPECT("trunk max", s.limit, SLOT_MAX);
    EXPECT("trunk algorithm", s.algorithm, FG_ALGO_SLOTS);

    char path[96];
    snprintf(path, sizeof path, "/dev/shm%s", shm_name);
    EXPECT("the /dev/shm file exists before cleanup", access(path, F_OK), 0);
    cleanup();
    EXPECT("the /dev/shm file is gone after cleanup", access(path, F_OK) != 0 && errno == ENOENT, 1);
    printf("shm_workers: all checks passed\n");
    return 0;
}
