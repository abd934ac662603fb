/* SPDX-License-Identifier: MIT */
/* wof_once_cell_t: a single-threaded set-once value, forgotten on fork (Rust's OnceCell). */
#pragma once

#include <wof/generation.h>
#include <wof/once.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * struct wof_once_cell - a value set at most once per process, for one thread only.
 *
 * No locks, no read-modify-write atomics: use it for state that one thread owns, such as a
 * `_Thread_local` PRNG that a forked child must not reuse. Concurrent use from several threads
 * is a data race. Otherwise as wof_once_lock_t: all-zero is empty (WOF_ONCE_CELL_INIT), values
 * are non-NULL, a child forgets the parent's value and WOF_ONCE_CELL_INIT_ON_WIPE(on_wipe) is
 * told of it once.
 */
typedef struct wof_once_cell {
	void *_wof_value;              /* never touch: the value, valid when _wof_state is complete */
	wof_once_t _wof_state;         /* never touch: a once's word, kept by the cell's one thread */
	void (*_wof_on_wipe)(void *);  /* never touch: from WOF_ONCE_CELL_INIT_ON_WIPE              */
} wof_once_cell_t;

/**
 * WOF_ONCE_CELL_INIT - static initialiser of an empty wof_once_cell_t; the same as all-zero.
 *
 * Memory ordering: none; a constant.
 * Fork: empty in every process until a value is set there.
 */
#define WOF_ONCE_CELL_INIT { WOF_INTERNAL_NULL, WOF_ONCE_INIT, WOF_INTERNAL_NULL }
/**
 * WOF_ONCE_CELL_INIT_ON_WIPE() - static initialiser of an empty cell with an on_wipe hook.
 *
 * `void on_wipe(void *stale)` as for WOF_ONCE_LOCK_INIT_ON_WIPE().
 *
 * Memory ordering: none; a constant.
 * Fork: on_wipe sees the value held at fork, once per child, before any re-initialisation.
 */
#define WOF_ONCE_CELL_INIT_ON_WIPE(on_wipe) { WOF_INTERNAL_NULL, WOF_ONCE_INIT, (on_wipe) }

/* Out-of-line slow paths (src/once_cell.c). Never call them directly. */
WOF_API WOF_COLD void *wof_internal_once_cell_get_slow(wof_once_cell_t *cell);
WOF_API WOF_COLD void *wof_internal_once_cell_get_or_init_slow(wof_once_cell_t *cell,
                                                               void *(*init)(void *),
                                                               void *arg);

/*
 * True when the cell holds a value of this process: its state is a completed once of this
 * generation, recognised as a once's fast path recognises one (src/once_cell.c has the states).
 * A plain load: the cell has one thread.
 */
static inline bool wof_internal_once_cell_held(const wof_once_cell_t *cell)
{
	return WOF_LIKELY(wof_internal_generation_xor(cell->_wof_state._wof_word) ==
	                  WOF_INTERNAL_ONCE_COMPLETE);
}

/**
 * wof_once_cell_get() - the value set in this process, or NULL (errno unchanged).
 *
 * Memory ordering: none (single-threaded).
 * Fork: NULL in a child until set there; the first call runs on_wipe if due.
 */
static inline void *wof_once_cell_get(wof_once_cell_t *cell)
{
	if (WOF_LIKELY(cell != WOF_INTERNAL_NULL) && wof_internal_once_cell_held(cell))
		return cell->_wof_value;
	return wof_internal_once_cell_get_slow(cell);
}

/**
 * wof_once_cell_set() - store `value` unless one is set in this process.
 *
 * Memory ordering: none (single-threaded).
 * Fork: a value set in an ancestor does not count.
 *
 * Return: 0; EEXIST (nothing stored, the caller keeps `value`); EINVAL for a NULL cell or
 * value; EDEADLK from inside the cell's own init.
 */
WOF_API int wof_once_cell_set(wof_once_cell_t *cell, void *value);

/**
 * wof_once_cell_try_insert() - wof_once_cell_set() that also returns what is there.
 *
 * `*current` (if not NULL) receives the value after the call. Rust's OnceCell::try_insert.
 *
 * Memory ordering: none. Fork: as wof_once_cell_set().
 * Return: as wof_once_cell_set().
 */
WOF_API int wof_once_cell_try_insert(wof_once_cell_t *cell, void *value, void **current);

/**
 * wof_once_cell_get_or_init() - the value, running init(arg) first if none is set here.
 *
 * init returning NULL stores nothing (NULL returned, errno as init left it; the next call
 * tries again). Calling the cell from inside its own init returns NULL with errno EDEADLK.
 *
 * Memory ordering: none (single-threaded).
 * Fork: a child runs init again on first use; the parent's value is forgotten (on_wipe).
 */
static inline void *wof_once_cell_get_or_init(wof_once_cell_t *cell, void *(*init)(void *arg),
                                              void *arg)
{
	if (WOF_LIKELY(cell != WOF_INTERNAL_NULL && init != WOF_INTERNAL_NULL) &&
	    wof_internal_once_cell_held(cell))
		return cell->_wof_value;
	return wof_internal_once_cell_get_or_init_slow(cell, init, arg);
}

/**
 * wof_once_cell_get_or_try_init() - as get_or_init, for an init that reports an error.
 *
 * init returns 0 and fills *out, or a nonzero error returned unchanged. 0 with *out NULL
 * stores nothing and yields EINVAL.
 *
 * Memory ordering: none. Fork: as wof_once_cell_get_or_init().
 * Return: 0 (*out holds the value), init's error, EINVAL, or EDEADLK from inside init.
 */
WOF_API int wof_once_cell_get_or_try_init(wof_once_cell_t *cell,
                                          int (*init)(void *arg, void **out), void *arg,
                                          void **out);

/**
 * wof_once_cell_take() - return the value set in this process (or NULL) and empty the cell.
 *
 * on_wipe is not called for a taken value. Rust's take() and into_inner().
 *
 * Memory ordering: none. Fork: a value set in an ancestor is not returned.
 */
WOF_API void *wof_once_cell_take(wof_once_cell_t *cell);

#ifdef __cplusplus
}
#endif
