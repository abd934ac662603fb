/* SPDX-License-Identifier: MIT */
/* wof_lazy_cell_t: a single-threaded value with its initialiser, redone on fork (LazyCell). */
#pragma once

#include <wof/once_cell.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * struct wof_lazy_cell - a wof_once_cell_t that knows how to initialise itself.
 *
 * WOF_LAZY_CELL_INIT(init, arg) with `void *init(void *arg)`, or
 * WOF_LAZY_CELL_INIT_ON_WIPE(init, arg, on_wipe). Single-threaded, as wof_once_cell_t.
 */
typedef struct wof_lazy_cell {
	wof_once_cell_t _wof_cell;     /* never touch */
	void *(*_wof_init)(void *);    /* never touch */
	void *_wof_arg;                /* never touch */
} wof_lazy_cell_t;

/**
 * WOF_LAZY_CELL_INIT() - static initialiser of a lazy cell made by `void *init(void *arg)`.
 *
 * Memory ordering: none; a constant.
 * Fork: init runs on first use in each process.
 */
#define WOF_LAZY_CELL_INIT(init, arg) { WOF_ONCE_CELL_INIT, (init), (arg) }
/**
 * WOF_LAZY_CELL_INIT_ON_WIPE() - WOF_LAZY_CELL_INIT() with an on_wipe hook.
 *
 * `void on_wipe(void *stale)` as for WOF_ONCE_LOCK_INIT_ON_WIPE().
 *
 * Memory ordering: none; a constant.
 * Fork: on_wipe sees the value held at fork, once per child, before init runs again there.
 */
#define WOF_LAZY_CELL_INIT_ON_WIPE(init, arg, on_wipe)                                            \
	{ WOF_ONCE_CELL_INIT_ON_WIPE(on_wipe), (init), (arg) }

/**
 * wof_lazy_cell_force() - this process's value, running init(arg) on first use in each process.
 *
 * If init returns NULL, nothing is stored and the next force tries again. From inside its own
 * init: NULL with errno EDEADLK. Rust's LazyCell::force and force_mut.
 *
 * Memory ordering: none (single-threaded).
 * Fork: a child runs init again on first use; the parent's value is forgotten (on_wipe).
 */
static inline void *wof_lazy_cell_force(wof_lazy_cell_t *lazy)
{
	if (WOF_LIKELY(lazy != WOF_INTERNAL_NULL) && wof_internal_once_cell_held(&lazy->_wof_cell))
		return lazy->_wof_cell._wof_value;
	return wof_internal_once_cell_get_or_init_slow(lazy ? &lazy->_wof_cell : WOF_INTERNAL_NULL,
	                                               lazy ? lazy->_wof_init : WOF_INTERNAL_NULL,
	                                               lazy ? lazy->_wof_arg : WOF_INTERNAL_NULL);
}

/**
 * wof_lazy_cell_get() - the value if initialised in this process, else NULL; never runs init.
 *
 * Memory ordering: none. Fork: NULL in a child until forced there.
 */
static inline void *wof_lazy_cell_get(wof_lazy_cell_t *lazy)
{
	return wof_once_cell_get(lazy ? &lazy->_wof_cell : WOF_INTERNAL_NULL);
}

#ifdef __cplusplus
}
#endif
