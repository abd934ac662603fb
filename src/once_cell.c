/* SPDX-License-Identifier: MIT */
/*
 * wof_once_cell_t and wof_lazy_cell_t: the single-threaded value. No atomics beyond reading
 * the generation, no locks. The cell's state is its generation stamp:
 *
 *   _wof_gen == current   the cell belongs to this process: _wof_value is its value (or NULL)
 *   _wof_gen != current   left by an ancestor (or never used: 0): forget it before anything
 *
 * Forgetting (cell_sync) stamps the cell first and only then calls on_wipe, so on_wipe runs
 * once per cell per process even if it touches the cell. _wof_busy marks an init in progress:
 * a call from inside it is EDEADLK. An init that forks leaves the child's cell stamped with the
 * parent's generation and busy, which the child forgets without on_wipe: nothing was held.
 * An init that does not return -- cancelled, pthread_exit, a C++ exception (libwof is built
 * with -fexceptions) -- unwinds through a cleanup handler (thread-exit.h) that clears
 * _wof_busy, so the cell is empty and usable afterwards, as a once is after its fn unwinds.
 */
#include <errno.h>

#include "thread-exit.h"
#include "wof-private.h"
#include <wof/once_cell.h>

static void cell_sync(wof_once_cell_t *cell)
{
	uint32_t gen = wof_internal_generation();

	if (cell->_wof_gen == gen)
		return;
	void *stale = cell->_wof_value;
	bool held = cell->_wof_gen != 0 && !cell->_wof_busy && stale;

	cell->_wof_value = NULL;
	cell->_wof_busy = 0;
	cell->_wof_gen = gen;
	if (held && cell->_wof_on_wipe)
		wof_internal_call_on_wipe(cell->_wof_on_wipe, stale);
}

WOF_API WOF_COLD void *wof_internal_once_cell_get_slow(wof_once_cell_t *cell)
{
	if (!cell) {
		errno = EINVAL;
		return NULL;
	}
	cell_sync(cell);
	return cell->_wof_value;
}

WOF_API int wof_once_cell_try_insert(wof_once_cell_t *cell, void *value, void **current)
{
	if (!cell || !value)
		return EINVAL;
	cell_sync(cell);
	if (cell->_wof_value) {
		if (current)
			*current = cell->_wof_value;
		return EEXIST;
	}
	if (cell->_wof_busy)
		return EDEADLK;
	cell->_wof_value = value;
	if (current)
		*current = value;
	return 0;
}

WOF_API int wof_once_cell_set(wof_once_cell_t *cell, void *value)
{
	return wof_once_cell_try_insert(cell, value, NULL);
}

struct busy {
	wof_once_cell_t *cell;
	uint32_t gen;
};

/* Leave the init in progress: the cell is no longer busy, unless this is a child that init
 * forked, whose cell belongs to the parent's generation and is forgotten on its next use. */
static void busy_end(void *arg)
{
	struct busy *busy = arg;

	if (wof_internal_generation() == busy->gen)
		busy->cell->_wof_busy = 0;
}

/*
 * Run init with the cell marked busy and hand its value to *out; store it unless init forked
 * and this is the child, where the cell stays uninitialised (the value was made for the
 * parent's cell) but the caller still gets what its init made. An init that unwinds stores
 * nothing and leaves the cell as it found it: empty, not busy. errno is the caller's again
 * when init succeeds, init's when it fails.
 */
static int cell_run(wof_once_cell_t *cell, int (*run)(void *, void **), void *ctx, void **out)
{
	struct busy busy = { cell, cell->_wof_gen };
	int saved_errno = errno;
	void *value = NULL;
	int rc;

	cell->_wof_busy = 1;
	/* Cancellation, pthread_exit and (with -fexceptions) C++ exceptions unwind through here. */
	WOF_INTERNAL_CLEANUP_PUSH(busy_end, &busy);
	rc = run(ctx, &value);
	WOF_INTERNAL_CLEANUP_POP(1);
	bool forked = wof_internal_generation() != busy.gen;
	if (rc)
		return rc;
	if (!value)
		return EINVAL;
	if (!forked)
		cell->_wof_value = value;
	*out = value;
	wof_internal_restore_errno(saved_errno);
	return 0;
}

WOF_API WOF_COLD void *wof_internal_once_cell_get_or_init_slow(wof_once_cell_t *cell,
                                                               void *(*fn)(void *), void *arg)
{
	struct wof_internal_init init = { fn, arg };
	void *value = NULL;

	if (!cell || !fn) {
		errno = EINVAL;
		return NULL;
	}
	int rc = wof_once_cell_get_or_try_init(cell, wof_internal_init_adapter, &init, &value);
	return wof_internal_init_result(rc, value);
}

WOF_API int wof_once_cell_get_or_try_init(wof_once_cell_t *cell,
                                          int (*fn)(void *arg, void **out), void *arg,
                                          void **out)
{
	if (!cell || !fn || !out)
		return EINVAL;
	cell_sync(cell);
	if (cell->_wof_value) {
		*out = cell->_wof_value;
		return 0;
	}
	if (cell->_wof_busy)
		return EDEADLK;
	return cell_run(cell, fn, arg, out);
}

WOF_API void *wof_once_cell_take(wof_once_cell_t *cell)
{
	if (!cell) {
		errno = EINVAL;
		return NULL;
	}
	cell_sync(cell);
	void *value = cell->_wof_value;
	cell->_wof_value = NULL;
	return value;
}
