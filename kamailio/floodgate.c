/*
 * floodgate: a Kamailio module that is a drop-in for pipelimit, on a
 * floodgate table in Kamailio's shared memory.
 *
 * Same script functions and return values as pipelimit 5.6:
 *   pl_check(name)                    -> fg_check          1, -1, -2, 2
 *   pl_check(name, algorithm, limit)  -> fg_check_create   1, -1, -2, 2
 *   pl_active(name)                   -> fg_active         1, -1
 *   pl_drop(), pl_drop(retry), pl_drop(min, max): reply_code / reply_reason
 *                                       (503 "Server Unavailable") with an
 *                                       optional Retry-After header
 * Same RPC commands: pl.list [name], pl.stats, pl.get_pipes, pl.set_pipe,
 * pl.get_pid, pl.set_pid, pl.push_load. Same KEMI exports (registered as
 * KSR.floodgate.* and, for scripts written for pipelimit, KSR.pipelimit.*).
 *
 * And, beyond pipelimit, concurrent call limits (a slot per dialog, taken
 * atomically, given back when the dialog ends; needs dialog.so):
 *   fg_dlg_acquire(key, max[, hold])  1 taken, 2 this dialog holds one
 *                                     already, -1 over max, -2 no dialog,
 *                                     -3 table or lease records full,
 *                                     -4 other errors
 *   fg_dlg_release(key)               1 given back, -1 none held, -2, -4
 *   RPC floodgate.usage key           slots held on key
 *   KEMI KSR.floodgate.fg_dlg_acquire, fg_dlg_acquire_hold, fg_dlg_release
 *
 * Modparams (module name "floodgate"):
 *   hash_size       log2 of the table's capacity in pipes (default 10: 1024
 *                   pipes, 114 KiB of shm). pipelimit's hash_size is the
 *                   log2 of its bucket count with unbounded chains; here it
 *                   bounds the number of pipes (size it for 90% load:
 *                   inserts can fail from about 92% when no pipe is idle).
 *   timer_interval  window length in seconds (default 10): the table's
 *                   interval. Counters roll over lazily at each window edge
 *                   (windows aligned to mod_init time): no timer resets them.
 *   reply_code, reply_reason   pl_drop's reply (503, "Server Unavailable").
 *   clean_unused    delete pipes idle for that many whole windows (0: never).
 *   load_source     where FEEDBACK's load comes from: 0 = cpu (sampled from
 *                   load_stat_file, /proc/stat by default, every
 *                   timer_interval, all CPUs together),
 *                   1 = external (only pl.push_load). Default 0.
 *   load_stat_file  the file the CPU sampler reads, in /proc/stat's format
 *                   (its aggregate "cpu" line). Default "/proc/stat". For
 *                   tests (a file they write) and for containers that want
 *                   the /proc/stat of another namespace; empty is refused.
 *   load_fetch      pipelimit's switch: 0 = sample neither CPU nor network
 *                   load (FEEDBACK then moves only with pl.push_load, NETWORK
 *                   pipes see 0 bytes waiting). Default 1.
 *   timer_mode      which Kamailio timer samples the load and cleans unused
 *                   pipes: 0 main fast timer, 1 secondary wheel timer.
 *   lease_capacity  slots fg_dlg_acquire can hold at once, over all keys
 *                   (default 4096, 20 bytes of shm each; 0: none).
 *   dlg_hold        fg_dlg_acquire's default hold in seconds (default 43200,
 *                   the dialog module's default_timeout): a slot whose
 *                   dialog never reports its end is reclaimed after it.
 *   db_url and the plp_* columns are accepted for configuration
 *   compatibility, but loading pipes from a database is not supported:
 *   setting db_url makes mod_init fail.
 *
 * The table lives in shm_malloc'd memory made in mod_init, before Kamailio
 * forks, so every child shares it and its one FEEDBACK controller. The
 * fg_table handle is a plain global that the children inherit; libfloodgate
 * refreshes its lock owner id (the pid) after fork with pthread_atfork.
 */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../core/sr_module.h"
#include "../../core/mem/mem.h"
#include "../../core/mem/shm_mem.h"
#include "../../core/dprint.h"
#include "../../core/str.h"
#include "../../core/ut.h"
#include "../../core/timer.h"
#include "../../core/timer_ticks.h"
#include "../../core/timer_proc.h"
#include "../../core/mod_fix.h"
#include "../../core/data_lump_rpl.h"
#include "../../core/rpc.h"
#include "../../core/rpc_lookup.h"
#include "../../core/rand/kam_rand.h"
#include "../../core/kemi.h"
#include "../../modules/sl/sl.h"
#include "../../modules/dialog/dlg_load.h"

#include <floodgate.h>

/* Bytes waiting on Kamailio's sockets, for NETWORK pipes: pipelimit's own
 * pl_statistics.c, compiled from the fetched Kamailio source. */
#include "pl_statistics.h"

MODULE_VERSION

#define FG_NS_PER_S 1000000000ull

enum { LOAD_SOURCE_CPU = 0, LOAD_SOURCE_EXTERNAL = 1 };

/* ---- modparams ----------------------------------------------------------- */
static int fgm_hash_size = 10;
static int fgm_timer_interval = 10;
static int fgm_timer_mode = 0;
static int fgm_reply_code = 503;
static str fgm_reply_reason = str_init("Server Unavailable");
static int fgm_clean_unused = 0;
static int fgm_load_source = LOAD_SOURCE_CPU;
static int fgm_load_fetch = 1;
static str fgm_load_stat_file = str_init("/proc/stat");
static str fgm_db_url = STR_NULL;
static int fgm_lease_capacity = 4096;
static int fgm_dlg_hold = 43200;
static str fgm_db_unused = STR_NULL;

/* ---- state ---------------------------------------------------------------- */
static fg_table fgm_table;        /* inherited by every child */
static void *fgm_shm = NULL;      /* what shm_malloc returned */
static int fgm_ready = 0;
static struct timer_ln *fgm_timer = NULL;
static sl_api_t fgm_slb;
static struct dlg_binds fgm_dlgb; /* dialog API, if dialog.so is loaded */
static int fgm_dlg_bound = 0;
static uint64_t fgm_instance = 0; /* random per start: tags dialog variables */

static int mod_init(void);
static void mod_destroy(void);
static int w_pl_check(sip_msg_t *msg, char *p1, char *p2);
static int w_pl_check3(sip_msg_t *msg, char *p1, char *p2, char *p3);
static int w_pl_active(sip_msg_t *msg, char *p1, char *p2);
static int w_pl_drop_default(sip_msg_t *msg, char *p1, char *p2);
static int w_pl_drop_forced(sip_msg_t *msg, char *p1, char *p2);
static int w_pl_drop(sip_msg_t *msg, char *p1, char *p2);
static int fixup_pl_check3(void **param, int param_no);
static int fixup_free_pl_check3(void **param, int param_no);
static int w_fg_dlg_acquire2(sip_msg_t *msg, char *p1, char *p2);
static int w_fg_dlg_acquire3(sip_msg_t *msg, char *p1, char *p2, char *p3);
static int w_fg_dlg_release(sip_msg_t *msg, char *p1, char *p2);
static int fixup_fg_dlg(void **param, int param_no);
static int fixup_free_fg_dlg(void **param, int param_no);

/* clang-format off */
static cmd_export_t cmds[] = {
	{"pl_check",  (cmd_function)w_pl_check,  1, fixup_spve_null,
		fixup_free_spve_null, ANY_ROUTE},
	{"pl_check",  (cmd_function)w_pl_check3, 3, fixup_pl_check3,
		fixup_free_pl_check3, ANY_ROUTE},
	{"pl_active", (cmd_function)w_pl_active, 1, fixup_spve_null,
		fixup_free_spve_null, ANY_ROUTE},
	{"pl_drop",   (cmd_function)w_pl_drop_default, 0, 0, 0,
		REQUEST_ROUTE|BRANCH_ROUTE|FAILURE_ROUTE|ONSEND_ROUTE},
	{"pl_drop",   (cmd_function)w_pl_drop_forced, 1, fixup_uint_null, 0,
		REQUEST_ROUTE|BRANCH_ROUTE|FAILURE_ROUTE|ONSEND_ROUTE},
	{"pl_drop",   (cmd_function)w_pl_drop, 2, fixup_uint_uint, 0,
		REQUEST_ROUTE|BRANCH_ROUTE|FAILURE_ROUTE|ONSEND_ROUTE},
	{"fg_dlg_acquire", (cmd_function)w_fg_dlg_acquire2, 2, fixup_fg_dlg,
		fixup_free_fg_dlg, REQUEST_ROUTE|BRANCH_ROUTE|FAILURE_ROUTE},
	{"fg_dlg_acquire", (cmd_function)w_fg_dlg_acquire3, 3, fixup_fg_dlg,
		fixup_free_fg_dlg, REQUEST_ROUTE|BRANCH_ROUTE|FAILURE_ROUTE},
	{"fg_dlg_release", (cmd_function)w_fg_dlg_release, 1, fixup_fg_dlg,
		fixup_free_fg_dlg, ANY_ROUTE},
	{0, 0, 0, 0, 0, 0}
};

static param_export_t params[] = {
	{"hash_size",            INT_PARAM, &fgm_hash_size},
	{"timer_interval",       INT_PARAM, &fgm_timer_interval},
	{"timer_mode",           INT_PARAM, &fgm_timer_mode},
	{"reply_code",           INT_PARAM, &fgm_reply_code},
	{"reply_reason",         PARAM_STR, &fgm_reply_reason},
	{"clean_unused",         INT_PARAM, &fgm_clean_unused},
	{"load_source",          INT_PARAM, &fgm_load_source},
	{"load_fetch",           INT_PARAM, &fgm_load_fetch},
	{"load_stat_file",       PARAM_STR, &fgm_load_stat_file},
	{"lease_capacity",       INT_PARAM, &fgm_lease_capacity},
	{"dlg_hold",             INT_PARAM, &fgm_dlg_hold},
	{"db_url",               PARAM_STR, &fgm_db_url},
	{"plp_table_name",       PARAM_STR, &fgm_db_unused},
	{"plp_pipeid_column",    PARAM_STR, &fgm_db_unused},
	{"plp_limit_column",     PARAM_STR, &fgm_db_unused},
	{"plp_algorithm_column", PARAM_STR, &fgm_db_unused},
	{0, 0, 0}
};
/* clang-format on */

static rpc_export_t rpc_methods[];

struct module_exports exports = {
	"floodgate",     /* module name */
	DEFAULT_DLFLAGS, /* dlopen flags */
	cmds,            /* cmd exports */
	params,          /* param exports */
	rpc_methods,     /* RPC method exports */
	0,               /* exported pseudo-variables */
	0,               /* response handling function */
	mod_init,        /* module initialization function */
	0,               /* per-child init: children inherit the handle */
	mod_destroy      /* module exit function */
};

/* ---- keys and algorithm names -------------------------------------------- */

/* Algorithm numbers to names, for listings (fg_algorithm_from_name parses). */
static const char *fgm_algo_name(uint32_t a)
{
	static const char *names[] = {"TAILDROP", "RED", "FEEDBACK", "NETWORK",
			"NOP", "INTERVAL", "SLOTS", "GCRA", "REDP", "SLIDING"};
	return a < sizeof(names) / sizeof(names[0]) ? names[a] : "UNKNOWN";
}

/* A pipe name as a table key. Names of up to FG_MAX_KEY_LEN (56) bytes are
 * used as they are; longer ones (pipelimit takes any length) become their
 * first FGM_KEY_PREFIX (39) bytes, '~' and 16 hex digits of a 64-bit FNV-1a
 * hash of the whole name. buf must hold FG_MAX_KEY_LEN bytes. */
#define FGM_KEY_PREFIX (FG_MAX_KEY_LEN - 17)
static void fgm_key(const str *name, char *buf, const uint8_t **key, size_t *len)
{
	uint64_t h = 0xcbf29ce484222325ull;
	int i;

	if(name->len <= FG_MAX_KEY_LEN) {
		*key = (const uint8_t *)name->s;
		*len = (size_t)name->len;
		return;
	}
	for(i = 0; i < name->len; i++) {
		h ^= (unsigned char)name->s[i];
		h *= 0x100000001b3ull;
	}
	memcpy(buf, name->s, FGM_KEY_PREFIX);
	buf[FGM_KEY_PREFIX] = '~';
	for(i = 0; i < 16; i++)
		buf[FGM_KEY_PREFIX + 1 + i] =
				"0123456789abcdef"[(h >> (60 - 4 * i)) & 0xf];
	*key = (const uint8_t *)buf;
	*len = FG_MAX_KEY_LEN;
}

/* Verdicts go back unchanged (1, -1, -2, 2); an error is logged and becomes
 * -2, as pipelimit returns -2 when it cannot find or add a pipe. FG_E_BUSY
 * (the pipe's lock stayed held by a process that is stopped or stuck, for
 * libfloodgate's bounded wait) is an error like the others: -2, logged. */
static int fgm_verdict(fg_result r, const str *name)
{
	switch(r) {
		case FG_PASS:
		case FG_DROP:
		case FG_PASS_NOP:
			return (int)r;
		case FG_NO_PIPE:
			LM_DBG("pipe not found [%.*s]\n", name->len, name->s);
			return -2;
		case FG_E_BUSY:
			LM_ERR("pipe [%.*s]: busy: its lock stayed held by a stopped or"
				   " stuck process (%d)\n",
					name->len, name->s, (int)r);
			return -2;
		default:
			LM_ERR("pipe [%.*s]: %s (%d)\n", name->len, name->s,
					fg_strerror(r), (int)r);
			return -2;
	}
}

/* ---- pl_check, pl_active --------------------------------------------------- */

/* The table key of pipe `pipeid` (see fgm_key), or -1, logged, when the
 * module is not ready or the id is empty. */
static int fgm_pipe_key(
		const str *pipeid, char *buf, const uint8_t **key, size_t *len)
{
	if(!fgm_ready || pipeid == NULL || pipeid->s == NULL || pipeid->len <= 0) {
		LM_ERR("invalid pipe id\n");
		return -1;
	}
	fgm_key(pipeid, buf, key, len);
	return 0;
}

static int ki_pl_check(sip_msg_t *msg, str *pipeid)
{
	char buf[FG_MAX_KEY_LEN];
	const uint8_t *k;
	size_t kl;

	if(fgm_pipe_key(pipeid, buf, &k, &kl) < 0)
		return -1;
	return fgm_verdict(fg_check(&fgm_table, k, kl, fg_now_ns()), pipeid);
}

static int ki_pl_check_limit(sip_msg_t *msg, str *pipeid, str *alg, int limit)
{
	char buf[FG_MAX_KEY_LEN];
	const uint8_t *k;
	size_t kl;
	uint32_t algo;
	fg_entry e;
	fg_result r;
	uint64_t now = fg_now_ns();

	if(fgm_pipe_key(pipeid, buf, &k, &kl) < 0)
		return -1;
	if(limit < 0) {
		LM_ERR("invalid limit value: %d\n", limit);
		return -1;
	}
	if(alg == NULL || alg->s == NULL
			|| fg_algorithm_from_name(alg->s, (size_t)alg->len, &algo) != FG_OK) {
		/* pipelimit ignores the algorithm of an existing pipe, and fails
		 * to add a pipe with an unknown one (-2). */
		r = fg_get(&fgm_table, k, kl, now, &e);
		if(r == FG_E_BUSY)
			return fgm_verdict(r, pipeid);
		if(r != FG_OK) {
			LM_ERR("cannot find algorithm [%.*s] for new pipe [%.*s]\n",
					alg ? alg->len : 0, alg && alg->s ? alg->s : "",
					pipeid->len, pipeid->s);
			return -2;
		}
		algo = e.algorithm;
	}
	return fgm_verdict(
			fg_check_create(&fgm_table, k, kl, algo, (int64_t)limit, now),
			pipeid);
}

static int ki_pl_active(sip_msg_t *msg, str *pipeid)
{
	char buf[FG_MAX_KEY_LEN];
	const uint8_t *k;
	size_t kl;

	if(fgm_pipe_key(pipeid, buf, &k, &kl) < 0)
		return -1;
	return fg_active(&fgm_table, k, kl) == FG_OK ? 1 : -1;
}

static int w_pl_check(sip_msg_t *msg, char *p1, char *p2)
{
	str pipeid = STR_NULL;

	if(fixup_get_svalue(msg, (gparam_t *)p1, &pipeid) != 0 || pipeid.s == 0) {
		LM_ERR("invalid pipeid parameter\n");
		return -1;
	}
	return ki_pl_check(msg, &pipeid);
}

static int w_pl_check3(sip_msg_t *msg, char *p1, char *p2, char *p3)
{
	int limit = 0;
	str pipeid = STR_NULL;
	str alg = STR_NULL;

	if(msg == NULL)
		return -1;
	if(fixup_get_ivalue(msg, (gparam_t *)p3, &limit) != 0 || limit < 0) {
		LM_ERR("invalid limit value: %d\n", limit);
		return -1;
	}
	if(fixup_get_svalue(msg, (gparam_t *)p1, &pipeid) != 0 || pipeid.s == 0) {
		LM_ERR("invalid pipeid parameter\n");
		return -1;
	}
	if(fixup_get_svalue(msg, (gparam_t *)p2, &alg) != 0 || alg.s == 0) {
		LM_ERR("invalid algorithm parameter\n");
		return -1;
	}
	return ki_pl_check_limit(msg, &pipeid, &alg, limit);
}

static int fixup_pl_check3(void **param, int param_no)
{
	if(param_no == 1 || param_no == 2)
		return fixup_spve_null(param, 1);
	if(param_no == 3)
		return fixup_igp_null(param, 1);
	return 0;
}

static int fixup_free_pl_check3(void **param, int param_no)
{
	if(param_no == 1 || param_no == 2)
		return fixup_free_spve_null(param, 1);
	if(param_no == 3)
		return fixup_free_igp_null(param, 1);
	return 0;
}

static int w_pl_active(sip_msg_t *msg, char *p1, char *p2)
{
	str pipeid = STR_NULL;

	if(fixup_get_svalue(msg, (gparam_t *)p1, &pipeid) != 0 || pipeid.s == 0) {
		LM_ERR("invalid pipeid parameter\n");
		return -1;
	}
	return ki_pl_active(msg, &pipeid);
}

/* ---- pl_drop ------------------------------------------------------------- */

static int fgm_drop(sip_msg_t *msg, unsigned int low, unsigned int high)
{
	char hdr[64];
	int len;

	if(fgm_slb.freply == 0) {
		LM_ERR("cannot send reply\n");
		return 0;
	}
	if(low != 0 && high != 0) {
		if(high <= low)
			len = snprintf(hdr, sizeof(hdr), "Retry-After: %u\r\n", low);
		else
			len = snprintf(hdr, sizeof(hdr), "Retry-After: %u\r\n",
					low + (unsigned int)kam_rand() % (high - low + 1));
		/* add_lump_rpl copies the header (no LUMP_RPL_NODUP). */
		if(add_lump_rpl(msg, hdr, len, LUMP_RPL_HDR) == 0) {
			LM_ERR("cannot add Retry-After header\n");
			return 0;
		}
	}
	return fgm_slb.freply(msg, fgm_reply_code, &fgm_reply_reason);
}

static int w_pl_drop(sip_msg_t *msg, char *p1, char *p2)
{
	unsigned int low = (unsigned int)(unsigned long)p1;
	unsigned int high = (unsigned int)(unsigned long)p2;
	return fgm_drop(msg, low, high < low ? low : high);
}

static int w_pl_drop_forced(sip_msg_t *msg, char *p1, char *p2)
{
	unsigned int i = p1 ? (unsigned int)(unsigned long)p1 : 5;
	return fgm_drop(msg, i, i);
}

static int w_pl_drop_default(sip_msg_t *msg, char *p1, char *p2)
{
	return fgm_drop(msg, 0, 0);
}

static int ki_pl_drop(sip_msg_t *msg)
{
	return fgm_drop(msg, 0, 0);
}

static int ki_pl_drop_retry(sip_msg_t *msg, int rafter)
{
	return fgm_drop(msg, (unsigned int)rafter, (unsigned int)rafter);
}

static int ki_pl_drop_range(sip_msg_t *msg, int rmin, int rmax)
{
	return fgm_drop(msg, (unsigned int)rmin,
			rmax < rmin ? (unsigned int)rmin : (unsigned int)rmax);
}

/* ---- concurrent call limits: a slot per dialog ------------------------------
 *
 * fg_dlg_acquire(key, max[, hold]) takes one slot of `key` for the message's
 * dialog with fg_lease_acquire: the check against max and the increment are
 * one step under the key's lock in shared memory, so two INVITEs handled at
 * once by two processes can never both take the last slot (dialog profiles'
 * get_profile_size() then set_dlg_profile() are two steps: both can see
 * max - 1). The lease is given back by a dialog callback (terminated,
 * failed, expired, and destroy as a safety net) or by fg_dlg_release(key);
 * fg_lease_release is idempotent, so the callback firing more than once, in
 * any process, gives back at most one slot. The lease's hold bounds how
 * long a slot can stay taken if no callback ever runs.
 *
 * The lease handle is kept twice: in the callback's parameter (shm, freed
 * by the dialog module with the dialog) and in the dialog variable
 * "fg_slot:<key>", which fg_dlg_release and a second acquire on the same
 * key and dialog (a spiral) read. The variable is "<instance>:<lease>" in
 * hex: a dialog loaded back from the dialog module's database after a
 * restart carries a variable of an older table, whose lease numbers the new
 * table hands out again; the instance (random per start) tells them apart,
 * and such a variable counts as no slot held. */

#define FGM_DLG_TAKEN 1
#define FGM_DLG_HELD 2
#define FGM_DLG_REFUSED -1
#define FGM_DLG_NO_DIALOG -2
#define FGM_DLG_FULL -3
#define FGM_DLG_ERROR -4

#define FGM_DLG_VAR_PREFIX "fg_slot:"

typedef struct fgm_dlg_slot {
	uint64_t lease;
} fgm_dlg_slot_t;

static void fgm_dlg_slot_free(void *param)
{
	if(param)
		shm_free(param);
}

static const char *fgm_dlgcb_name(int type)
{
	switch(type) {
		case DLGCB_TERMINATED:
			return "terminated";
		case DLGCB_FAILED:
			return "failed";
		case DLGCB_EXPIRED:
			return "expired";
		case DLGCB_DESTROY:
			return "destroy";
		default:
			return "other";
	}
}

/* Dialog ended (or is being destroyed): give the slot back. Runs in any
 * process, possibly several times for one dialog (terminated, then destroy):
 * a second release of the same lease is FG_ALREADY_RELEASED, no change. */
static void fgm_dlg_cb(struct dlg_cell *dlg, int type, struct dlg_cb_params *p)
{
	fgm_dlg_slot_t *slot;
	fg_result r;

	if(!fgm_ready || p == NULL || p->param == NULL || *p->param == NULL)
		return;
	slot = (fgm_dlg_slot_t *)*p->param;
	r = fg_lease_release(&fgm_table, slot->lease, fg_now_ns());
	if(r == FG_RELEASED)
		LM_DBG("dialog %s: slot released (lease %" PRIu64 ")\n",
				fgm_dlgcb_name(type), slot->lease);
	else if(r == FG_ALREADY_RELEASED)
		LM_DBG("dialog %s: slot already released or reclaimed (lease %" PRIu64
			   ")\n",
				fgm_dlgcb_name(type), slot->lease);
	else
		LM_ERR("dialog %s: releasing lease %" PRIu64 ": %s (%d)\n",
				fgm_dlgcb_name(type), slot->lease, fg_strerror(r), (int)r);
}

/* The dialog variable's name for key `name`: "fg_slot:<name>" in buf. */
static int fgm_dlg_var(const str *name, char *buf, int size, str *out)
{
	int n = snprintf(buf, size, FGM_DLG_VAR_PREFIX "%.*s", name->len, name->s);
	if(n <= 0 || n >= size)
		return -1;
	out->s = buf;
	out->len = n;
	return 0;
}

/* The lease in a dialog variable's value, if it is "<instance>:<lease>" of
 * this start's table: 0, else -1 (absent, another table's, or changed). */
static int fgm_dlg_var_lease(const str *val, uint64_t *lease)
{
	char buf[40];
	char *end;
	uint64_t inst;

	if(val->s == NULL || val->len != 33)
		return -1;
	memcpy(buf, val->s, val->len);
	buf[val->len] = '\0';
	if(buf[16] != ':')
		return -1;
	buf[16] = '\0';
	errno = 0;
	inst = strtoull(buf, &end, 16);
	if(errno != 0 || *end != '\0' || inst != fgm_instance)
		return -1;
	*lease = strtoull(buf + 17, &end, 16);
	if(errno != 0 || *end != '\0')
		return -1;
	return 0;
}

/* The message's dialog (with a reference: release_dlg it), or NULL. */
static struct dlg_cell *fgm_dlg_get(sip_msg_t *msg, const char *fn)
{
	struct dlg_cell *dlg;

	if(!fgm_dlg_bound) {
		LM_ERR("%s: the dialog module is not loaded (loadmodule"
			   " \"dialog.so\")\n",
				fn);
		return NULL;
	}
	dlg = fgm_dlgb.get_dlg(msg);
	if(dlg == NULL)
		LM_WARN("%s: no dialog for this message: call dlg_manage() (or"
				" dlg_flag) on the INVITE first\n",
				fn);
	return dlg;
}

static int fgm_dlg_acquire(sip_msg_t *msg, str *name, int max, int hold)
{
	char kbuf[FG_MAX_KEY_LEN];
	char vbuf[FG_MAX_KEY_LEN + 2 * sizeof(FGM_DLG_VAR_PREFIX) + 256];
	char lbuf[40];
	const uint8_t *k;
	size_t kl;
	str vname, val;
	struct dlg_cell *dlg;
	fgm_dlg_slot_t *slot;
	uint64_t lease = 0;
	fg_result r;
	int ret;

	if(!fgm_ready || name == NULL || name->s == NULL || name->len <= 0) {
		LM_ERR("fg_dlg_acquire: empty key\n");
		return FGM_DLG_ERROR;
	}
	if(hold <= 0) {
		LM_ERR("fg_dlg_acquire [%.*s]: invalid hold %d (seconds, > 0)\n",
				name->len, name->s, hold);
		return FGM_DLG_ERROR;
	}
	if(name->len > 256) {
		LM_ERR("fg_dlg_acquire: key longer than 256 bytes\n");
		return FGM_DLG_ERROR;
	}
	if((dlg = fgm_dlg_get(msg, "fg_dlg_acquire")) == NULL)
		return FGM_DLG_NO_DIALOG;
	if(fgm_dlg_var(name, vbuf, sizeof(vbuf), &vname) < 0) {
		ret = FGM_DLG_ERROR;
		goto done;
	}
	if(fgm_dlgb.get_dlg_varval(dlg, &vname, &val) == 0
			&& fgm_dlg_var_lease(&val, &lease) == 0) {
		/* A spiral, or the script calling twice: one slot per key and
		 * dialog. */
		LM_DBG("fg_dlg_acquire [%.*s]: the dialog holds a slot already\n",
				name->len, name->s);
		ret = FGM_DLG_HELD;
		goto done;
	}
	slot = (fgm_dlg_slot_t *)shm_malloc(sizeof(*slot));
	if(slot == NULL) {
		SHM_MEM_ERROR;
		ret = FGM_DLG_ERROR;
		goto done;
	}
	fgm_key(name, kbuf, &k, &kl);
	r = fg_lease_acquire(&fgm_table, k, kl, (int32_t)max,
			(uint64_t)hold * FG_NS_PER_S, fg_now_ns(), &lease);
	if(r != FG_ACQUIRED) {
		shm_free(slot);
		switch(r) {
			case FG_REFUSED:
				LM_DBG("fg_dlg_acquire [%.*s]: refused (max %d)\n", name->len,
						name->s, max);
				ret = FGM_DLG_REFUSED;
				break;
			case FG_E_FULL:
			case FG_E_LEASES_FULL:
				LM_ERR("fg_dlg_acquire [%.*s]: %s (%d): raise %s\n", name->len,
						name->s, fg_strerror(r), (int)r,
						r == FG_E_FULL ? "hash_size" : "lease_capacity");
				ret = FGM_DLG_FULL;
				break;
			case FG_E_WRONG_ALGORITHM:
				LM_ERR("fg_dlg_acquire [%.*s]: the key is a rate-limit pipe"
					   " (pl_check), not a slot counter\n",
						name->len, name->s);
				ret = FGM_DLG_ERROR;
				break;
			default:
				LM_ERR("fg_dlg_acquire [%.*s]: %s (%d)\n", name->len, name->s,
						fg_strerror(r), (int)r);
				ret = FGM_DLG_ERROR;
		}
		goto done;
	}
	slot->lease = lease;
	if(fgm_dlgb.register_dlgcb(dlg,
			   DLGCB_TERMINATED | DLGCB_FAILED | DLGCB_EXPIRED | DLGCB_DESTROY,
			   fgm_dlg_cb, slot, fgm_dlg_slot_free)
			!= 0) {
		LM_ERR("fg_dlg_acquire [%.*s]: cannot register the dialog callback:"
			   " slot given back\n",
				name->len, name->s);
		fg_lease_release(&fgm_table, lease, fg_now_ns());
		shm_free(slot);
		ret = FGM_DLG_ERROR;
		goto done;
	}
	val.s = lbuf;
	val.len = snprintf(lbuf, sizeof(lbuf), "%016" PRIx64 ":%016" PRIx64,
			fgm_instance, lease);
	if(fgm_dlgb.set_dlg_var(dlg, &vname, &val) != 0) {
		/* The callback stays registered: its release is a no-op now. */
		LM_ERR("fg_dlg_acquire [%.*s]: cannot set dialog variable %.*s:"
			   " slot given back\n",
				name->len, name->s, vname.len, vname.s);
		fg_lease_release(&fgm_table, lease, fg_now_ns());
		ret = FGM_DLG_ERROR;
		goto done;
	}
	LM_DBG("fg_dlg_acquire [%.*s]: slot taken (max %d, hold %d s, lease %" PRIu64
		   ")\n",
			name->len, name->s, max, hold, lease);
	ret = FGM_DLG_TAKEN;
done:
	fgm_dlgb.release_dlg(dlg);
	return ret;
}

static int fgm_dlg_release(sip_msg_t *msg, str *name)
{
	char vbuf[FG_MAX_KEY_LEN + 2 * sizeof(FGM_DLG_VAR_PREFIX) + 256];
	str vname, val;
	struct dlg_cell *dlg;
	uint64_t lease;
	fg_result r;
	int ret;

	if(!fgm_ready || name == NULL || name->s == NULL || name->len <= 0
			|| name->len > 256) {
		LM_ERR("fg_dlg_release: empty key or longer than 256 bytes\n");
		return FGM_DLG_ERROR;
	}
	if((dlg = fgm_dlg_get(msg, "fg_dlg_release")) == NULL)
		return FGM_DLG_NO_DIALOG;
	if(fgm_dlg_var(name, vbuf, sizeof(vbuf), &vname) < 0) {
		ret = FGM_DLG_ERROR;
		goto done;
	}
	if(fgm_dlgb.get_dlg_varval(dlg, &vname, &val) != 0
			|| fgm_dlg_var_lease(&val, &lease) != 0) {
		ret = -1; /* this dialog took no slot on that key (in this table) */
		goto done;
	}
	r = fg_lease_release(&fgm_table, lease, fg_now_ns());
	if(r == FG_RELEASED) {
		ret = 1;
	} else if(r == FG_ALREADY_RELEASED) {
		ret = -1; /* reclaimed after its hold, or released before */
	} else {
		LM_ERR("fg_dlg_release [%.*s]: %s (%d)\n", name->len, name->s,
				fg_strerror(r), (int)r);
		ret = FGM_DLG_ERROR;
		goto done;
	}
	/* Forget it: a later fg_dlg_acquire on this key takes a new slot. */
	fgm_dlgb.set_dlg_var(dlg, &vname, NULL);
done:
	fgm_dlgb.release_dlg(dlg);
	return ret;
}

static int ki_fg_dlg_acquire(sip_msg_t *msg, str *key, int max)
{
	return fgm_dlg_acquire(msg, key, max, fgm_dlg_hold);
}

static int ki_fg_dlg_acquire_hold(sip_msg_t *msg, str *key, int max, int hold)
{
	return fgm_dlg_acquire(msg, key, max, hold);
}

static int ki_fg_dlg_release(sip_msg_t *msg, str *key)
{
	return fgm_dlg_release(msg, key);
}

/* fg_dlg_acquire's script parameters; p3 (hold) NULL: the dlg_hold default. */
static int fgm_dlg_acquire_params(sip_msg_t *msg, char *p1, char *p2, char *p3)
{
	str key = STR_NULL;
	int max = 0, hold = fgm_dlg_hold;

	if(fixup_get_svalue(msg, (gparam_t *)p1, &key) != 0 || key.s == NULL) {
		LM_ERR("fg_dlg_acquire: invalid key parameter\n");
		return FGM_DLG_ERROR;
	}
	if(fixup_get_ivalue(msg, (gparam_t *)p2, &max) != 0) {
		LM_ERR("fg_dlg_acquire: invalid max parameter\n");
		return FGM_DLG_ERROR;
	}
	if(p3 != NULL && fixup_get_ivalue(msg, (gparam_t *)p3, &hold) != 0) {
		LM_ERR("fg_dlg_acquire: invalid hold parameter\n");
		return FGM_DLG_ERROR;
	}
	return fgm_dlg_acquire(msg, &key, max, hold);
}

static int w_fg_dlg_acquire2(sip_msg_t *msg, char *p1, char *p2)
{
	return fgm_dlg_acquire_params(msg, p1, p2, NULL);
}

static int w_fg_dlg_acquire3(sip_msg_t *msg, char *p1, char *p2, char *p3)
{
	return fgm_dlg_acquire_params(msg, p1, p2, p3);
}

static int w_fg_dlg_release(sip_msg_t *msg, char *p1, char *p2)
{
	str key = STR_NULL;

	if(fixup_get_svalue(msg, (gparam_t *)p1, &key) != 0 || key.s == NULL) {
		LM_ERR("fg_dlg_release: invalid key parameter\n");
		return FGM_DLG_ERROR;
	}
	return fgm_dlg_release(msg, &key);
}

/* Fixups run after every mod_init: a config that uses fg_dlg_* without the
 * dialog module (or without lease records) fails at start-up, not at the
 * first call. */
static int fixup_fg_dlg(void **param, int param_no)
{
	if(param_no == 1) {
		if(!fgm_dlg_bound) {
			LM_ERR("fg_dlg_acquire/fg_dlg_release need the dialog module:"
				   " loadmodule \"dialog.so\" before using them\n");
			return E_CFG;
		}
		if(fgm_lease_capacity <= 0) {
			LM_ERR("fg_dlg_acquire/fg_dlg_release need lease records:"
				   " modparam(\"floodgate\", \"lease_capacity\", N > 0)\n");
			return E_CFG;
		}
		return fixup_spve_null(param, 1);
	}
	return fixup_igp_null(param, 1);
}

static int fixup_free_fg_dlg(void **param, int param_no)
{
	if(param_no == 1)
		return fixup_free_spve_null(param, 1);
	return fixup_free_igp_null(param, 1);
}

/* ---- load sampling and clean_unused (the only timer) ---------------------- */

/* CPU load from the aggregate "cpu" line of /proc/stat (load_stat_file),
 * which already sums every CPU: load = 1 - idle_delta / total_delta between
 * two samples. (5.6's pipelimit further divided idle by the number of CPUs,
 * which reads 75% on a two-core machine with one core busy.) Returns 0 and
 * writes *load, or -1 on the first sample and on errors. */
static int fgm_cpu_load(double *load)
{
	static unsigned long long o_total = 0, o_idle = 0;
	static int have_old = 0;
	unsigned long long v[8] = {0}, total = 0, d_total, d_idle;
	FILE *f;
	int n, i;

	/* PARAM_STR values are zero-terminated (so is the default). */
	f = fopen(fgm_load_stat_file.s, "r");
	if(f == NULL) {
		LM_ERR("cannot open %s: %s\n", fgm_load_stat_file.s, strerror(errno));
		return -1;
	}
	n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1],
			&v[2], &v[3], &v[4], &v[5], &v[6], &v[7]);
	fclose(f);
	if(n < 4) {
		LM_ERR("cannot parse %s (/proc/stat's format: the \"cpu\" line"
			   " first)\n", fgm_load_stat_file.s);
		return -1;
	}
	/* user nice system idle iowait irq softirq steal (guest time is
	 * already counted in user and nice). */
	for(i = 0; i < 8; i++)
		total += v[i];
	if(!have_old || total <= o_total) {
		have_old = 1;
		o_total = total;
		o_idle = v[3];
		return -1;
	}
	d_total = total - o_total;
	d_idle = v[3] >= o_idle ? v[3] - o_idle : 0;
	o_total = total;
	o_idle = v[3];
	*load = 1.0 - (double)d_idle / (double)d_total;
	if(*load < 0.0)
		*load = 0.0;
	if(*load > 1.0)
		*load = 1.0;
	return 0;
}

static void fgm_refresh(void)
{
	double load;
	uint32_t rate = 0;
	size_t removed = 0;
	fg_result r;
	int bytes;

	if(!fgm_ready)
		return;
	if(fgm_load_fetch != 0) {
		if(fgm_load_source == LOAD_SOURCE_CPU && fgm_cpu_load(&load) == 0) {
			r = fg_push_load(&fgm_table, load, &rate);
			if(r != FG_OK)
				LM_ERR("fg_push_load(%f): %s\n", load, fg_strerror(r));
			else
				LM_DBG("cpu load %.3f, drop rate %u%%\n", load, rate);
		}
		bytes = get_total_bytes_waiting();
		fg_push_network(&fgm_table, bytes > 0 ? (uint64_t)bytes : 0);
	}
	if(fgm_clean_unused > 0) {
		r = fg_clean_unused(&fgm_table, (uint32_t)fgm_clean_unused, fg_now_ns(),
				&removed);
		if(r != FG_OK)
			LM_ERR("fg_clean_unused: %s\n", fg_strerror(r));
		else if(removed)
			LM_DBG("removed %zu unused pipes\n", removed);
	}
}

static ticks_t fgm_timer_handle(ticks_t ticks, struct timer_ln *tl, void *data)
{
	fgm_refresh();
	return (ticks_t)(-1); /* periodic */
}

static void fgm_timer_exec(unsigned int ticks, void *param)
{
	fgm_refresh();
}

/* ---- mod_init / destroy ----------------------------------------------------- */

static uint64_t fgm_seed(void)
{
	uint64_t s = 0;
	int fd = open("/dev/urandom", O_RDONLY);
	if(fd >= 0) {
		if(read(fd, &s, sizeof(s)) != (ssize_t)sizeof(s))
			s = 0;
		close(fd);
	}
	if(s == 0)
		s = fg_now_ns() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)kam_rand();
	return s;
}

static int mod_init(void)
{
	fg_config cfg;
	size_t need = 0;
	uintptr_t p;
	fg_result r;

	if(fgm_db_url.s != NULL && fgm_db_url.len > 0) {
		LM_ERR("db_url: loading pipes from a database is not supported by"
			   " floodgate; create pipes with pl_check(name, algorithm,"
			   " limit)\n");
		return -1;
	}
	if(fgm_hash_size <= 0 || fgm_hash_size > 24) {
		LM_ERR("invalid hash_size %d (1..24: capacity 2^hash_size pipes)\n",
				fgm_hash_size);
		return -1;
	}
	if(fgm_timer_interval <= 0) {
		LM_ERR("invalid timer_interval %d\n", fgm_timer_interval);
		return -1;
	}
	if(fgm_load_source != LOAD_SOURCE_CPU
			&& fgm_load_source != LOAD_SOURCE_EXTERNAL) {
		LM_ERR("invalid load_source %d (0 cpu, 1 external)\n", fgm_load_source);
		return -1;
	}
	if(fgm_load_stat_file.s == NULL || fgm_load_stat_file.len <= 0) {
		LM_ERR("invalid load_stat_file: empty (the file the CPU sampler"
			   " reads, default /proc/stat)\n");
		return -1;
	}
	if(fgm_clean_unused < 0)
		fgm_clean_unused = 0;
	if(fgm_lease_capacity < 0 || fgm_lease_capacity > (1 << 24)) {
		LM_ERR("invalid lease_capacity %d (0..16777216 slots held by"
			   " fg_dlg_acquire at once)\n",
				fgm_lease_capacity);
		return -1;
	}
	if(fgm_dlg_hold <= 0) {
		LM_ERR("invalid dlg_hold %d (seconds, > 0)\n", fgm_dlg_hold);
		return -1;
	}

	memset(&cfg, 0, sizeof(cfg));
	cfg.capacity = 1u << fgm_hash_size;
	cfg.lease_capacity = (uint32_t)fgm_lease_capacity;
	cfg.interval_ns = (uint64_t)fgm_timer_interval * FG_NS_PER_S;
	cfg.epoch_ns = fg_now_ns(); /* windows start here, as pipelimit's timer */
	cfg.seed = fgm_seed();
	fgm_instance = fgm_seed();
	r = fg_table_bytes(&cfg, &need);
	if(r != FG_OK) {
		LM_ERR("fg_table_bytes: %s\n", fg_strerror(r));
		return -1;
	}
	/* shm_malloc aligns to at least 8 on every allocator Kamailio has;
	 * allocate 8 more and round up anyway, then check. */
	fgm_shm = shm_malloc(need + 8);
	if(fgm_shm == NULL) {
		LM_ERR("no shm for a table of %u pipes (%zu bytes)\n", cfg.capacity,
				need);
		return -1;
	}
	p = ((uintptr_t)fgm_shm + 7u) & ~(uintptr_t)7u;
	if(p % 8 != 0) {
		LM_CRIT("table region misaligned\n");
		return -1;
	}
	r = fg_table_init((void *)p, need, &cfg, &fgm_table);
	if(r != FG_OK) {
		LM_ERR("fg_table_init: %s\n", fg_strerror(r));
		shm_free(fgm_shm);
		fgm_shm = NULL;
		return -1;
	}
	fgm_ready = 1;

	if(sl_load_api(&fgm_slb) != 0) {
		LM_ERR("cannot bind to the SL API (load sl.so first)\n");
		return -1;
	}

	/* The dialog module is optional: only fg_dlg_* need it (their fixups
	 * fail without it; from KEMI they return -2 and log why). */
	if(find_export("load_dlg", 0, 0) != NULL) {
		if(load_dlg_api(&fgm_dlgb) != 0) {
			LM_ERR("cannot bind to the dialog API\n");
			return -1;
		}
		fgm_dlg_bound = 1;
	}

	/* Counters need no timer. One timer samples the CPU and network load
	 * (load_fetch) and cleans unused pipes (clean_unused). */
	if(fgm_load_fetch != 0 || fgm_clean_unused > 0) {
		if(fgm_timer_mode == 0) {
			if((fgm_timer = timer_alloc()) == NULL) {
				LM_ERR("cannot allocate timer\n");
				return -1;
			}
			timer_init(fgm_timer, fgm_timer_handle, 0, F_TIMER_FAST);
			timer_add(fgm_timer, MS_TO_TICKS(1000 * fgm_timer_interval));
		} else if(sr_wtimer_add(fgm_timer_exec, NULL, fgm_timer_interval) < 0) {
			LM_ERR("cannot add wheel timer\n");
			return -1;
		}
	}
	LM_INFO("floodgate %s: %u pipes (%zu bytes of shm at %p), %d s windows,"
			" load_source %s (load_stat_file %s), load_fetch %d,"
			" clean_unused %d, %d lease records, dlg_hold %d s, dialog"
			" module %s\n",
			fg_version_string(), cfg.capacity, need, (void *)p,
			fgm_timer_interval,
			fgm_load_source == LOAD_SOURCE_CPU ? "cpu" : "external",
			fgm_load_stat_file.s, fgm_load_fetch, fgm_clean_unused,
			fgm_lease_capacity, fgm_dlg_hold,
			fgm_dlg_bound ? "bound" : "not loaded");
	return 0;
}

static void mod_destroy(void)
{
	if(fgm_timer) {
		timer_free(fgm_timer);
		fgm_timer = NULL;
	}
	/* The region stays until shm is torn down: other processes may still
	 * hold the handle while Kamailio shuts down. */
	fgm_ready = 0;
}

/* ---- RPC --------------------------------------------------------------------- */

static const char *rpc_pl_stats_doc[2] = {
		"Print pipelimit statistics (string output): <id> <load> <counter>", 0};
static const char *rpc_pl_get_pipes_doc[2] = {
		"Print pipes info (string output): <id> <algorithm> <limit> <counter>",
		0};
static const char *rpc_pl_list_doc[2] = {
		"List details for one or all pipes", 0};
static const char *rpc_pl_set_pipe_doc[2] = {
		"Sets a pipe params: <pipe_id> <pipe_algorithm> <pipe_limit>", 0};
static const char *rpc_pl_get_pid_doc[2] = {
		"Print PID Controller parameters for the FEEDBACK algorithm:"
		" <ki> <kp> <kd>",
		0};
static const char *rpc_pl_set_pid_doc[2] = {
		"Sets the PID Controller parameters for the FEEDBACK algorithm:"
		" <ki> <kp> <kd>",
		0};
static const char *rpc_pl_push_load_doc[2] = {
		"Force the value of the load parameter for FEEDBACK algorithm: <load>",
		0};

/* The fault of an RPC whose fg_ call failed with r: FG_E_BUSY is 503
 * "busy" (logged: a process holding the lock is stopped or stuck), any
 * other error `code` with its description. */
static void fgm_rpc_fault(rpc_t *rpc, void *c, int code, fg_result r)
{
	if(r == FG_E_BUSY) {
		LM_ERR("RPC: busy: a lock stayed held by a stopped or stuck process"
			   " (%d)\n",
				(int)r);
		rpc->fault(c, 503, "busy");
		return;
	}
	rpc->fault(c, code, "%s", fg_strerror(r));
}

typedef struct fgm_rpc_ctx {
	rpc_t *rpc;
	void *c;
	int mode; /* 0 stats, 1 get_pipes, 2 list */
	int err;
} fgm_rpc_ctx_t;

/* pipelimit keeps the count of idle windows; the C ABI shows the current and
 * the previous window, so this is 0 when the previous window had requests
 * and 1 (a lower bound) when it had none. */
static int fgm_unused_intervals(const fg_entry *e)
{
	return (e->counter > 0 || e->last_counter > 0) ? 0 : 1;
}

/* pipelimit's load as its listings show it: at each tick it sets
 * load = counter / limit for every pipe but NOP and NETWORK (RED uses it;
 * TAILDROP and FEEDBACK only show it). floodgate keeps it for RED and
 * NETWORK; the others get it from the previous window's count here. */
static int fgm_load(const fg_entry *e)
{
	if((e->algorithm == FG_ALGO_TAILDROP || e->algorithm == FG_ALGO_FEEDBACK)
			&& e->limit > 0)
		return (int)(e->last_counter / (uint64_t)e->limit);
	return e->load;
}

static int fgm_rpc_pipe(rpc_t *rpc, void *c, const fg_entry *e)
{
	char name[FG_MAX_KEY_LEN + 1];
	void *th;

	memcpy(name, e->key, e->key_len);
	name[e->key_len] = '\0';
	if(rpc->add(c, "{", &th) < 0) {
		rpc->fault(c, 500, "Internal pipe structure");
		return -1;
	}
	if(rpc->struct_add(th, "ssddddd", "name", name, "algorithm",
			   fgm_algo_name(e->algorithm), "limit", (int)e->limit, "counter",
			   (int)e->counter, "last_counter", (int)e->last_counter,
			   "unused_intervals", fgm_unused_intervals(e), "load", fgm_load(e))
			< 0) {
		rpc->fault(c, 500, "Internal error address list structure");
		return -1;
	}
	return 0;
}

static int32_t fgm_rpc_list_cb(const fg_entry *e, void *ctx)
{
	fgm_rpc_ctx_t *x = (fgm_rpc_ctx_t *)ctx;

	if(e->algorithm == FG_ALGO_NOP)
		return 0; /* pipelimit does not list NOP pipes */
	switch(x->mode) {
		case 0:
			x->err = x->rpc->rpl_printf(x->c, "PIPE: id=%.*s load=%d counter=%u",
							 (int)e->key_len, (const char *)e->key, fgm_load(e),
							 e->last_counter)
					 < 0;
			break;
		case 1:
			x->err = x->rpc->rpl_printf(x->c,
							 "PIPE: id=%.*s algorithm=%s limit=%d counter=%u",
							 (int)e->key_len, (const char *)e->key,
							 fgm_algo_name(e->algorithm), (int)e->limit,
							 e->counter)
					 < 0;
			break;
		default:
			x->err = fgm_rpc_pipe(x->rpc, x->c, e) < 0;
	}
	return x->err;
}

static void fgm_rpc_walk(rpc_t *rpc, void *c, int mode)
{
	fgm_rpc_ctx_t x = {rpc, c, mode, 0};
	fg_result r = fg_list(&fgm_table, fg_now_ns(), fgm_rpc_list_cb, &x);
	if(r != FG_OK)
		fgm_rpc_fault(rpc, c, 500, r);
}

static void rpc_pl_stats(rpc_t *rpc, void *c)
{
	fgm_rpc_walk(rpc, c, 0);
}

static void rpc_pl_get_pipes(rpc_t *rpc, void *c)
{
	fgm_rpc_walk(rpc, c, 1);
}

static void rpc_pl_list(rpc_t *rpc, void *c)
{
	str pipeid = STR_NULL;
	char buf[FG_MAX_KEY_LEN];
	const uint8_t *k;
	size_t kl;
	fg_entry e;
	fg_result r;

	if(rpc->scan(c, "*S", &pipeid) < 1 || pipeid.len <= 0) {
		fgm_rpc_walk(rpc, c, 2);
		return;
	}
	fgm_key(&pipeid, buf, &k, &kl);
	r = fg_get(&fgm_table, k, kl, fg_now_ns(), &e);
	if(r == FG_E_BUSY) {
		fgm_rpc_fault(rpc, c, 500, r);
		return;
	}
	if(r != FG_OK) {
		rpc->fault(c, 400, "Unknown pipe id %.*s", pipeid.len, pipeid.s);
		return;
	}
	if(e.algorithm != FG_ALGO_NOP)
		fgm_rpc_pipe(rpc, c, &e);
}

typedef struct fgm_fb_ctx {
	int setpoint;
	int mismatch;
} fgm_fb_ctx_t;

static int32_t fgm_fb_cb(const fg_entry *e, void *ctx)
{
	fgm_fb_ctx_t *x = (fgm_fb_ctx_t *)ctx;
	if(e->algorithm != FG_ALGO_FEEDBACK)
		return 0;
	if(x->setpoint == -1)
		x->setpoint = (int)e->limit;
	else if((int)e->limit != x->setpoint)
		x->mismatch = 1;
	return 0;
}

static void rpc_pl_set_pipe(rpc_t *rpc, void *c)
{
	int limit = 0;
	uint32_t algo;
	str pipeid, alg;
	char buf[FG_MAX_KEY_LEN];
	const uint8_t *k;
	size_t kl;
	fg_result r;
	fgm_fb_ctx_t fb = {-1, 0};

	if(rpc->scan(c, "SSd", &pipeid, &alg, &limit) < 3)
		return;
	if(fg_algorithm_from_name(alg.s, (size_t)alg.len, &algo) != FG_OK) {
		LM_ERR("unknown algorithm: '%.*s'\n", alg.len, alg.s);
		rpc->fault(c, 400, "Unknown algorithm");
		return;
	}
	fgm_key(&pipeid, buf, &k, &kl);
	/* As pipelimit: pl.set_pipe changes an existing pipe only. */
	if(fg_active(&fgm_table, k, kl) != FG_OK) {
		LM_ERR("no pipe: %.*s\n", pipeid.len, pipeid.s);
		rpc->fault(c, 400, "Unknown pipe id %.*s", pipeid.len, pipeid.s);
		return;
	}
	r = fg_pipe_set(&fgm_table, k, kl, algo, (int64_t)limit, fg_now_ns());
	if(r != FG_OK) {
		fgm_rpc_fault(rpc, c, 400, r);
		return;
	}
	/* As pipelimit: every FEEDBACK pipe must have the same setpoint. */
	fg_list(&fgm_table, fg_now_ns(), fgm_fb_cb, &fb);
	if(fb.mismatch) {
		LM_ERR("feedback limits don't match\n");
		rpc->fault(c, 400, "Feedback limits don't match");
	}
}

static void rpc_pl_get_pid(rpc_t *rpc, void *c)
{
	fg_pid pid;
	fg_result r = fg_pid_get(&fgm_table, &pid);
	if(r != FG_OK) {
		fgm_rpc_fault(rpc, c, 500, r);
		return;
	}
	/* pipelimit's line, then what floodgate keeps in the shared table. */
	rpc->rpl_printf(c, "ki[%f] kp[%f] kd[%f] ", pid.ki, pid.kp, pid.kd);
	rpc->rpl_printf(c,
			"setpoint[%f] load[%f] int_err[%f] last_err[%f] drop_rate[%u]",
			pid.setpoint, pid.load, pid.int_err, pid.last_err, pid.drop_rate);
}

static void rpc_pl_set_pid(rpc_t *rpc, void *c)
{
	double ki, kp, kd;
	fg_result r;

	if(rpc->scan(c, "fff", &ki, &kp, &kd) < 3)
		return;
	r = fg_pid_set(&fgm_table, ki, kp, kd);
	if(r != FG_OK)
		fgm_rpc_fault(rpc, c, 400, r);
}

static void rpc_pl_push_load(rpc_t *rpc, void *c)
{
	double value;
	uint32_t rate = 0;
	fg_result r;

	if(rpc->scan(c, "f", &value) < 1)
		return;
	if(!(value >= 0.0 && value <= 1.0)) {
		LM_ERR("value out of range: %0.3f in not in [0.0,1.0]\n", value);
		rpc->fault(c, 400, "Value out of range");
		return;
	}
	r = fg_push_load(&fgm_table, value, &rate);
	if(r != FG_OK) {
		fgm_rpc_fault(rpc, c, 400, r);
		return;
	}
	LM_DBG("pushed load %.3f: drop rate %u%%\n", value, rate);
}

static const char *rpc_fg_usage_doc[2] = {
		"Slots held on a key (fg_dlg_acquire), after reclaiming leases past"
		" their hold: <key>",
		0};

/* floodgate.usage key: {name, slots, max}; a key that does not exist (never
 * used, or cleaned) holds 0 slots and has no max. */
static void rpc_fg_usage(rpc_t *rpc, void *c)
{
	str name = STR_NULL;
	char buf[FG_MAX_KEY_LEN];
	char zname[FG_MAX_KEY_LEN + 1];
	const uint8_t *k;
	size_t kl;
	uint32_t used = 0;
	uint64_t now = fg_now_ns();
	fg_entry e;
	fg_result r;
	void *th;

	if(rpc->scan(c, "S", &name) < 1)
		return;
	if(name.len <= 0) {
		rpc->fault(c, 400, "Empty key");
		return;
	}
	fgm_key(&name, buf, &k, &kl);
	memcpy(zname, k, kl);
	zname[kl] = '\0';
	r = fg_slot_usage(&fgm_table, k, kl, now, &used);
	if(r == FG_NO_PIPE) {
		if(rpc->add(c, "{", &th) < 0
				|| rpc->struct_add(th, "sd", "name", zname, "slots", 0) < 0)
			rpc->fault(c, 500, "Internal error");
		return;
	}
	if(r == FG_E_WRONG_ALGORITHM) {
		rpc->fault(c, 400, "Key %.*s is a rate-limit pipe, not a slot counter",
				name.len, name.s);
		return;
	}
	if(r != FG_OK) {
		fgm_rpc_fault(rpc, c, 500, r);
		return;
	}
	r = fg_get(&fgm_table, k, kl, now, &e);
	if(rpc->add(c, "{", &th) < 0
			|| rpc->struct_add(th, "sdd", "name", zname, "slots", (int)used,
					   "max", r == FG_OK ? (int)e.limit : -1)
					   < 0)
		rpc->fault(c, 500, "Internal error");
}

/* clang-format off */
static rpc_export_t rpc_methods[] = {
	{"floodgate.usage", rpc_fg_usage, rpc_fg_usage_doc,  0},
	{"pl.stats",     rpc_pl_stats,     rpc_pl_stats_doc,     RET_ARRAY},
	{"pl.list",      rpc_pl_list,      rpc_pl_list_doc,      RET_ARRAY},
	{"pl.get_pipes", rpc_pl_get_pipes, rpc_pl_get_pipes_doc, RET_ARRAY},
	{"pl.set_pipe",  rpc_pl_set_pipe,  rpc_pl_set_pipe_doc,  0},
	{"pl.get_pid",   rpc_pl_get_pid,   rpc_pl_get_pid_doc,   0},
	{"pl.set_pid",   rpc_pl_set_pid,   rpc_pl_set_pid_doc,   0},
	{"pl.push_load", rpc_pl_push_load, rpc_pl_push_load_doc, 0},
	{0, 0, 0, 0}
};

/* KEMI: the same functions as pipelimit, under KSR.floodgate and, so that
 * KEMI scripts written for pipelimit run unchanged, KSR.pipelimit. */
#define FGM_KEMI(MOD) \
	{ str_init(MOD), str_init("pl_check"), SR_KEMIP_INT, ki_pl_check, \
		{ SR_KEMIP_STR, SR_KEMIP_NONE, SR_KEMIP_NONE, \
			SR_KEMIP_NONE, SR_KEMIP_NONE, SR_KEMIP_NONE } }, \
	{ str_init(MOD), str_init("pl_check_limit"), SR_KEMIP_INT, ki_pl_check_limit, \
		{ SR_KEMIP_STR, SR_KEMIP_STR, SR_KEMIP_INT, \
			SR_KEMIP_NONE, SR_KEMIP_NONE, SR_KEMIP_NONE } }, \
	{ str_init(MOD), str_init("pl_active"), SR_KEMIP_INT, ki_pl_active, \
		{ SR_KEMIP_STR, SR_KEMIP_NONE, SR_KEMIP_NONE, \
			SR_KEMIP_NONE, SR_KEMIP_NONE, SR_KEMIP_NONE } }, \
	{ str_init(MOD), str_init("pl_drop"), SR_KEMIP_INT, ki_pl_drop, \
		{ SR_KEMIP_NONE, SR_KEMIP_NONE, SR_KEMIP_NONE, \
			SR_KEMIP_NONE, SR_KEMIP_NONE, SR_KEMIP_NONE } }, \
	{ str_init(MOD), str_init("pl_drop_retry"), SR_KEMIP_INT, ki_pl_drop_retry, \
		{ SR_KEMIP_INT, SR_KEMIP_NONE, SR_KEMIP_NONE, \
			SR_KEMIP_NONE, SR_KEMIP_NONE, SR_KEMIP_NONE } }, \
	{ str_init(MOD), str_init("pl_drop_range"), SR_KEMIP_INT, ki_pl_drop_range, \
		{ SR_KEMIP_INT, SR_KEMIP_INT, SR_KEMIP_NONE, \
			SR_KEMIP_NONE, SR_KEMIP_NONE, SR_KEMIP_NONE } }

static sr_kemi_t sr_kemi_floodgate_exports[] = {
	FGM_KEMI("floodgate"),
	{ str_init("floodgate"), str_init("fg_dlg_acquire"), SR_KEMIP_INT,
		ki_fg_dlg_acquire,
		{ SR_KEMIP_STR, SR_KEMIP_INT, SR_KEMIP_NONE,
			SR_KEMIP_NONE, SR_KEMIP_NONE, SR_KEMIP_NONE } },
	{ str_init("floodgate"), str_init("fg_dlg_acquire_hold"), SR_KEMIP_INT,
		ki_fg_dlg_acquire_hold,
		{ SR_KEMIP_STR, SR_KEMIP_INT, SR_KEMIP_INT,
			SR_KEMIP_NONE, SR_KEMIP_NONE, SR_KEMIP_NONE } },
	{ str_init("floodgate"), str_init("fg_dlg_release"), SR_KEMIP_INT,
		ki_fg_dlg_release,
		{ SR_KEMIP_STR, SR_KEMIP_NONE, SR_KEMIP_NONE,
			SR_KEMIP_NONE, SR_KEMIP_NONE, SR_KEMIP_NONE } },
	{ {0, 0}, {0, 0}, 0, NULL, { 0, 0, 0, 0, 0, 0 } }
};

static sr_kemi_t sr_kemi_pipelimit_exports[] = {
	FGM_KEMI("pipelimit"),
	{ {0, 0}, {0, 0}, 0, NULL, { 0, 0, 0, 0, 0, 0 } }
};
/* clang-format on */

int mod_register(char *path, int *dlflags, void *p1, void *p2)
{
	sr_kemi_modules_add(sr_kemi_floodgate_exports);
	sr_kemi_modules_add(sr_kemi_pipelimit_exports);
	return 0;
}
