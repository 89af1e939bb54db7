#include <floodgate.h>
#include <stdint.h>
#include <stdio.h>

static uint64_t region[8192]; /* 64 KiB, 8-aligned: shm or a static buffer */

int main(void) {
    fg_config cfg = {.capacity = 128, .lease_capacity = 16, .interval_ns = 10000000000u};
    fg_table t;
    if (fg_table_init(region, sizeof region, &cfg, &t) != FG_OK) return 1;
    for (int i = 0; i < 4; i++) {
        fg_result r = fg_check_create(&t, (const uint8_t *)"10.0.0.1", 8, FG_ALGO_TAILDROP, 3, fg_now_ns());
        printf("request %d: %d (%s)\n", i + 1, r, fg_strerror(r));
    }
    return 0;
}
