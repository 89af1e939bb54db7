/*
 * check.h: the checks the C examples share (header-only, C99).
 *
 *   KEY(s)                        a key from a C string: (bytes, length)
 *   EXPECT(what, got, want)       integers, compared as long long
 *   EXPECT_RC(what, got, want)    result codes, printed with fg_strerror
 *   EXPECT_NEAR(what, got, want)  doubles: |got - want| < 1e-9
 *   FAIL(what, got, want)         a mismatch the example found itself
 *   FAIL_RC(what, got, want)      the same for result codes
 *
 * A passing check prints "ok  <what>: <value>"; a failing one prints
 * "FAIL <what>: got X, want Y (file:line)", calls check_on_fail when the
 * example has set it (to clean up: stop workers, remove files) and exits
 * with status 1. An example may set check_code_name to show a code's name
 * too: "-1 FG_DROP (drop)" instead of "-1 (drop)".
 */
#ifndef FLOODGATE_EXAMPLES_CHECK_H
#define FLOODGATE_EXAMPLES_CHECK_H

#include <floodgate.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A key from a C string: (bytes, length). */
#define KEY(s) (const uint8_t *)(s), strlen(s)

/* Called on a failed check before exit(1); NULL: nothing to clean up. */
static void (*check_on_fail)(void) = NULL;

/* Names a result code in EXPECT_RC / FAIL_RC lines; NULL: no name. */
static const char *(*check_code_name)(int code) = NULL;

static inline void check_exit(void) {
    if (check_on_fail != NULL) check_on_fail();
    exit(1);
}

static inline void check_fail(const char *what, long long got, long long want, const char *file,
                              int line) {
    printf("FAIL %s: got %lld, want %lld (%s:%d)\n", what, got, want, file, line);
    check_exit();
}

static inline void check_fail_near(const char *what, double got, double want, const char *file,
                                   int line) {
    printf("FAIL %s: got %.17g, want %.17g (%s:%d)\n", what, got, want, file, line);
    check_exit();
}

/* "<code> (<fg_strerror>)", or "<code> <name> (<fg_strerror>)". */
static inline void check_print_rc(int rc) {
    if (check_code_name != NULL)
        printf("%d %s (%s)", rc, check_code_name(rc), fg_strerror(rc));
    else
        printf("%d (%s)", rc, fg_strerror(rc));
}

static inline void check_fail_rc(const char *what, int got, int want, const char *file, int line) {
    printf("FAIL %s: got ", what);
    check_print_rc(got);
    printf(", want ");
    check_print_rc(want);
    printf(" (%s:%d)\n", file, line);
    check_exit();
}

/* "ok  <what>: <code> (<fg_strerror>)<tail>" */
static inline void check_ok_rc(const char *what, int rc, const char *tail) {
    printf("ok  %s: ", what);
    check_print_rc(rc);
    printf("%s\n", tail);
}

#define FAIL(what, got, want) check_fail((what), (got), (want), __FILE__, __LINE__)
#define FAIL_RC(what, got, want) check_fail_rc((what), (got), (want), __FILE__, __LINE__)

/* Checks got == want and prints an "ok" line. */
#define EXPECT(what, got, want)                                                   \
    do {                                                                          \
        long long g_ = (long long)(got), w_ = (long long)(want);                  \
        if (g_ != w_) check_fail((what), g_, w_, __FILE__, __LINE__);             \
        printf("ok  %s: %lld\n", (what), g_);                                     \
    } while (0)

/* Checks an fg_result and prints it with its fg_strerror text. */
#define EXPECT_RC(what, got, want)                                                \
    do {                                                                          \
        int g_ = (int)(got), w_ = (int)(want);                                    \
        if (g_ != w_) check_fail_rc((what), g_, w_, __FILE__, __LINE__);          \
        check_ok_rc((what), g_, "");                                              \
    } while (0)

/* Checks |got - want| < 1e-9 for doubles. */
#define EXPECT_NEAR(what, got, want)                                              \
    do {                                                                          \
        double g_ = (got), w_ = (want);                                           \
        if (!(fabs(g_ - w_) < 1e-9))                                              \
            check_fail_near((what), g_, w_, __FILE__, __LINE__);                  \
        printf("ok  %s: %g\n", (what), g_);                                       \
    } while (0)

#endif /* FLOODGATE_EXAMPLES_CHECK_H */
