/* SPDX-License-Identifier: MIT */
/* wof_lazy_lock_t: a thread-safe value with its initialiser, redone on fork (Rust's LazyLock). */
#pragma once

#include <wof/once_lock.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * struct wof_lazy_lock - a wof_once_lock_t that knows how to initialise itself.
 *
 * Declare with WOF_LAZY_LOCK_INIT(init, arg), `void *init(void *arg)`, or
 * WOF_LAZY_LOCK_INIT_ON_WIPE(init, arg, on_wipe) to be told of the parent's stale value in a
 * child (see wof_once_lock_t). An all-zero lazy lock has no init: force() fails with EINVAL.
 */
typedef struct wof_lazy_lock {
	wof_once_lock_t _wof_lock;     /* never touch */
	void *(*_wof_init)(void *);    /* never touch */
	void *_wof_arg;                /* never touch */
} wof_lazy_lock_t;

/**
 * WOF_LAZY_LOCK_INIT() - static initialiser of a lazy lock made by `void *init(void *arg)`.
 *
 * Memory ordering: none; a constant.
 * Fork: init runs on first use in each process.
 */
#define WOF_LAZY_LOCK_INIT(init, arg) { WOF_ONCE_LOCK_INIT, (init), (arg) }
/**
 * WOF_LAZY_LOCK_INIT_ON_WIPE() - WOF_LAZY_LOCK_INIT() with an on_wipe hook.
 *
 * `void on_wipe(void *stale)` as for WOF_ONCE_LOCK_INIT_ON_WIPE().
 *
 * Memory ordering: none; a constant.
 * Fork: on_wipe sees the value held at fork, once per child, before init runs again there.
 */
#define WOF_LAZY_LOCK_INIT_ON_WIPE(init, arg, on_wipe)                                            \
	{ WOF_ONCE_LOCK_INIT_ON_WIPE(on_wipe), (init), (arg) }

/**
 * wof_lazy_lock_force() - this process's value, running init(arg) on first use in each process.
 *
 * If init returns NULL, force returns NULL, nothing is stored and the next force tries again.
 * Rust's LazyLock::force, Deref and force_mut.
 *
 * Memory ordering: acquire: what init wrote happens-before every return of the value.
 * Fork: a child runs init again on first use; the parent's value is forgotten (on_wipe).
 *
 * Return: the value; NULL if init failed (errno as init left it), with errno EDEADLK from
 * inside its own init, EINVAL for a NULL lazy lock or one without init.
 */
static inline void *wof_lazy_lock_force(wof_lazy_lock_t *lazy)
{
	if (WOF_LIKELY(lazy != WOF_INTERNAL_NULL) &&
	    wof_internal_once_done(&lazy->_wof_lock._wof_once))
		return wof_internal_once_lock_value(&lazy->_wof_lock);
	return wof_internal_once_lock_get_or_init_slow(lazy ? &lazy->_wof_lock : WOF_INTERNAL_NULL,
	                                               lazy ? lazy->_wof_init : WOF_INTERNAL_NULL,
	                                               lazy ? lazy->_wof_arg : WOF_INTERNAL_NULL);
}

/**
 * wof_lazy_lock_get() - the value if initialised in this process, else NULL; never runs init.
 *
 * Memory ordering: acquire when non-NULL.
 * Fork: NULL in a child until forced there.
 */
static inline void *wof_lazy_lock_get(wof_lazy_lock_t *lazy)
{
	return wof_once_lock_get(lazy ? &lazy->_wof_lock : WOF_INTERNAL_NULL);
}

#ifdef __cplusplus
}
#endif
