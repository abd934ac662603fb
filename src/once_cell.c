/* SPDX-License-Identifier: MIT */
/*
 * wof_once_cell_t and wof_lazy_cell_t: the single-threaded value. No atomics beyond reading
 * the generation, no locks. The cell's state is a once's word (include/wof/internal.h), which
 * only the cell's thread writes, so that the fast path is a once's:
 *
 *   (current, COMPLETE)     holds this process's value in _wof_value (never NULL)
 *   (current, RUNNING)      an init is running: a call from inside it is EDEADLK
 *   (current, INCOMPLETE)   empty in this process
 *   (other generation, s)   left by an ancestor (or never used: all-zero): forget it before
 *                           anything; s == COMPLETE means it held a value (on_wipe is due)
 *
 * Forgetting (cell_sync) stamps the cell first and only then calls on_wipe, so on_wipe runs
 * once per cell per process even if it touches the cell. An init that forks leaves the child's
 * cell at (parent's generation, RUNNING), which the child forgets without on_wipe: nothing was
 * held. An init that does not return -- cancelled, pthread_exit, a C++ exception (libwof is
 * built with -fexceptions) -- unwinds through a cleanup handler (thread-exit.h) that makes the
 * cell empty again, so that it is usable afterwards, as a once is after its fn unwinds.
 */
#include <errno.h>

#include "thread-exit.h"
#include "wof-private.h"
#include <wof/once_cell.h>

static uint32_t state_of(const wof_once_cell_t *cell)
{
	return (uint32_t)cell->_wof_state._wof_word;
}

static void set_state(wof_once_cell_t *cell, uint32_t gen, uint32_t state)
{
	cell->_wof_state._wof_word = wof_internal_once_word(gen, state);
}

/* Bring the cell into this process; its state afterwards. */
static uint32_t cell_sync(wof_once_cell_t *cell)
{
	uint32_t gen = wof_internal_generation();
	uint64_t word = cell->_wof_state._wof_word;

	if ((uint32_t)(word >> 32) == gen)
		return (uint32_t)word;
	void *stale = cell->_wof_value;
	bool held = (uint32_t)word == WOF_INTERNAL_ONCE_COMPLETE;

	cell->_wof_value = NULL;
	set_state(cell, gen, WOF_INTERNAL_ONCE_INCOMPLETE);
	if (held && cell->_wof_on_wipe)
		wof_internal_call_on_wipe(cell->_wof_on_wipe, stale);
	return state_of(cell); /* on_wipe may have used the cell */
}

WOF_API WOF_COLD void *wof_internal_once_cell_get_slow(wof_once_cell_t *cell)
{
	if (!cell) {
		errno = EINVAL;
		return NULL;
	}
	return cell_sync(cell) == WOF_INTERNAL_ONCE_COMPLETE ? cell->_wof_value : NULL;
}

WOF_API int wof_once_cell_try_insert(wof_once_cell_t *cell, void *value, void **current)
{
	if (!cell || !value)
		return EINVAL;
	uint32_t state = cell_sync(cell);
	if (state == WOF_INTERNAL_ONCE_COMPLETE) {
		if (current)
			*current = cell->_wof_value;
		return EEXIST;
	}
	if (state == WOF_INTERNAL_ONCE_RUNNING)
		return EDEADLK;
	cell->_wof_value = value;
	set_state(cell, wof_internal_generation(), WOF_INTERNAL_ONCE_COMPLETE);
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

/* Leave the init in progress: the cell is empty again, unless this is a child that init
 * forked, whose cell belongs to the parent's generation and is forgotten on its next use. */
static void busy_end(void *arg)
{
	struct busy *busy = arg;

	if (wof_internal_generation() == busy->gen)
		set_state(busy->cell, busy->gen, WOF_INTERNAL_ONCE_INCOMPLETE);
}

/*
 * Run init with the cell RUNNING and hand its value to *out; store it unless init forked and
 * this is the child, where the cell stays uninitialised (the value was made for the parent's
 * cell) but the caller still gets what its init made. An init that unwinds stores nothing and
 * leaves the cell empty. errno is the caller's again when init succeeds, init's when it fails.
 */
static int cell_run(wof_once_cell_t *cell, int (*run)(void *, void **), void *ctx, void **out)
{
	struct busy busy = { cell, wof_internal_generation() };
	int saved_errno = errno;
	void *value = NULL;
	int rc;

	set_state(cell, busy.gen, WOF_INTERNAL_ONCE_RUNNING);
	/* Cancellation, pthread_exit and (with -fexceptions) C++ exceptions unwind through here. */
	WOF_INTERNAL_CLEANUP_PUSH(busy_end, &busy);
	rc = run(ctx, &value);
	WOF_INTERNAL_CLEANUP_POP(1);
	if (rc)
		return rc;
	if (!value)
		return EINVAL;
	if (wof_internal_generation() == busy.gen) {
		cell->_wof_value = value;
		set_state(cell, busy.gen, WOF_INTERNAL_ONCE_COMPLETE);
	}
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
	uint32_t state = cell_sync(cell);
	if (state == WOF_INTERNAL_ONCE_COMPLETE) {
		*out = cell->_wof_value;
		return 0;
	}
	if (state == WOF_INTERNAL_ONCE_RUNNING)
		return EDEADLK;
	return cell_run(cell, fn, arg, out);
}

WOF_API void *wof_once_cell_take(wof_once_cell_t *cell)
{
	if (!cell) {
		errno = EINVAL;
		return NULL;
	}
	if (cell_sync(cell) != WOF_INTERNAL_ONCE_COMPLETE)
		return NULL;
	void *value = cell->_wof_value;
	cell->_wof_value = NULL;
	set_state(cell, wof_internal_generation(), WOF_INTERNAL_ONCE_INCOMPLETE);
	return value;
}
