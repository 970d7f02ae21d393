/* bp_scan_nif.h - NIF resources and functions of the process and port scan
 * (id buffer, top-K, histogram, window table, thread CPU clock).
 *
 * beamprof_nif.c calls bp_scan_open() from load and upgrade and puts
 * BP_SCAN_NIFS into its function table. Every function validates its
 * arguments (badarg) and returns within well under a millisecond: the work
 * per call is bounded (BP_SCAN_PUT_CHUNK, BP_SCAN_TAKE_MAX, BP_TOPK_MAX).
 * Each resource has its own mutex, a leaf lock held only for the call.
 */
#ifndef BP_SCAN_NIF_H
#define BP_SCAN_NIF_H

#include <erl_nif.h>

#define BP_SCAN_PUT_CHUNK 5000u /* ids taken per scan_buf_put call (~0.1 ms) */
#define BP_SCAN_TAKE_MAX 16384u  /* ids given per scan_buf_take call */
#define BP_SCAN_PERCENTILES_MAX 1000u

/* Opens (or takes over) the resource types and makes this file's atoms.
 * Returns 0, or -1 when a type cannot be opened. */
int bp_scan_open(ErlNifEnv *env);

/* Drops what bp_scan_open took (the reaper thread's reference). Unload. */
void bp_scan_close(void);

#define BP_SCAN_NIF_DECL(name) \
    ERL_NIF_TERM name(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]);
BP_SCAN_NIF_DECL(bp_scan_buf_new_nif)
BP_SCAN_NIF_DECL(bp_scan_buf_put_nif)
BP_SCAN_NIF_DECL(bp_scan_buf_take_nif)
BP_SCAN_NIF_DECL(bp_scan_buf_info_nif)
BP_SCAN_NIF_DECL(bp_scan_topk_new_nif)
BP_SCAN_NIF_DECL(bp_scan_topk_add_nif)
BP_SCAN_NIF_DECL(bp_scan_topk_list_nif)
BP_SCAN_NIF_DECL(bp_scan_hist_new_nif)
BP_SCAN_NIF_DECL(bp_scan_hist_add_nif)
BP_SCAN_NIF_DECL(bp_scan_hist_percentiles_nif)
BP_SCAN_NIF_DECL(bp_scan_hist_info_nif)
BP_SCAN_NIF_DECL(bp_scan_window_new_nif)
BP_SCAN_NIF_DECL(bp_scan_window_begin_nif)
BP_SCAN_NIF_DECL(bp_scan_window_update_nif)
BP_SCAN_NIF_DECL(bp_scan_window_cached_nif)
BP_SCAN_NIF_DECL(bp_scan_window_reds_nif)
BP_SCAN_NIF_DECL(bp_scan_window_info_nif)
BP_SCAN_NIF_DECL(bp_scan_thread_cpu_nif)
BP_SCAN_NIF_DECL(bp_scan_ptab_fill_nif)
BP_SCAN_NIF_DECL(bp_scan_window_release_nif)
BP_SCAN_NIF_DECL(bp_scan_buf_release_nif)
BP_SCAN_NIF_DECL(bp_scan_reaper_info_nif)
#undef BP_SCAN_NIF_DECL

/* Entries of beamprof_nif's function table. All but the two releases run on
 * normal schedulers: each call's work is bounded (see above), and
 * scan_topk_list, scan_window_reds and scan_hist_percentiles move to a dirty
 * CPU scheduler themselves beyond a size (1000 entries, 1024 ids, 64
 * percentiles). */
#define BP_SCAN_NIFS                                                   \
    {"scan_buf_new", 0, bp_scan_buf_new_nif, 0},                       \
    {"scan_buf_put", 2, bp_scan_buf_put_nif, 0},                       \
    {"scan_buf_take", 2, bp_scan_buf_take_nif, 0},                     \
    {"scan_buf_info", 1, bp_scan_buf_info_nif, 0},                     \
    {"scan_topk_new", 1, bp_scan_topk_new_nif, 0},                     \
    {"scan_topk_add", 3, bp_scan_topk_add_nif, 0},                     \
    {"scan_topk_list", 1, bp_scan_topk_list_nif, 0},                   \
    {"scan_hist_new", 0, bp_scan_hist_new_nif, 0},                     \
    {"scan_hist_add", 2, bp_scan_hist_add_nif, 0},                     \
    {"scan_hist_percentiles", 2, bp_scan_hist_percentiles_nif, 0},     \
    {"scan_hist_info", 1, bp_scan_hist_info_nif, 0},                   \
    {"scan_window_new", 0, bp_scan_window_new_nif, 0},                 \
    {"scan_window_begin", 2, bp_scan_window_begin_nif, 0},             \
    {"scan_window_update", 4, bp_scan_window_update_nif, 0},           \
    {"scan_window_update", 6, bp_scan_window_update_nif, 0},           \
    {"scan_window_cached", 4, bp_scan_window_cached_nif, 0},           \
    {"scan_window_reds", 4, bp_scan_window_reds_nif, 0},               \
    {"scan_window_info", 1, bp_scan_window_info_nif, 0},               \
    {"scan_thread_cpu", 0, bp_scan_thread_cpu_nif, 0},                 \
    {"scan_ptab_fill", 3, bp_scan_ptab_fill_nif, 0},                   \
    {"scan_window_release", 1, bp_scan_window_release_nif, ERL_NIF_DIRTY_JOB_IO_BOUND}, \
    {"scan_buf_release", 1, bp_scan_buf_release_nif, ERL_NIF_DIRTY_JOB_IO_BOUND}, \
    {"scan_reaper_info", 0, bp_scan_reaper_info_nif, 0}

#endif
