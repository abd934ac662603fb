/* SPDX-License-Identifier: MIT */
/*
 * wof_once_lock_t (and through it wof_lazy_lock_t): a value beside a wof_once.
 *
 * The once is the whole state machine; this file adds one rule on top of it:
 *
 *   once completed in this process   <=>   _wof_value holds this process's value
 *
 * _wof_value is written only by the thread that runs the once (a setter or an init), before
 * the once's completing release, or by the wipe hook that the once runs when a child first
 * touches a lock left by an ancestor: it forgets the stale value and hands it to on_wipe.
 * take() needs the caller's exclusive use and resets the once to all-zero.
 */
#include <errno.h>

#include "wof-private.h"
#include <wof/once_lock.h>


/* Relaxed: published by the once word's release; atomic for the reason given at
 * wof_internal_once_lock_value (include/wof/once_lock.h). A lock with an on_wipe hook is
 * listed for wof_sweep() here, inside the run that fills it, before it completes. */
static void value_store(wof_once_lock_t *lock, void *value)
{
	if (value && lock->_wof_on_wipe)
		wof_internal_sweep_list_once_lock(lock);
	__atomic_store_n(&lock->_wof_value, value, __ATOMIC_RELAXED);
}

/* Runs inside a once run, so at most once per lock per process and before any init.
 * True when it called on_wipe. */
static bool forget_value(wof_once_lock_t *lock, bool held)
{
	void *stale = wof_internal_once_lock_value(lock);

	value_store(lock, NULL);
	if (!held || !stale || !lock->_wof_on_wipe)
		return false;
	wof_internal_call_on_wipe(lock->_wof_on_wipe, stale);
	return true;
}

static void wipe_value(void *ctx, bool held)
{
	(void)forget_value(ctx, held);
}

struct sweep {
	wof_once_lock_t *lock;
	size_t hooks;
};

static void sweep_value(void *ctx, bool held)
{
	struct sweep *sweep = ctx;

	sweep->hooks += forget_value(sweep->lock, held);
}

size_t wof_internal_once_lock_sweep(void *lock)
{
	struct sweep sweep = { lock, 0 };

	wof_internal_once_sync(&sweep.lock->_wof_once, sweep_value, &sweep);
	return sweep.hooks;
}

static int run_locked(wof_once_lock_t *lock, int (*fn)(void *), void *arg)
{
	return wof_internal_once_slow(&lock->_wof_once, fn, arg, wipe_value, lock);
}

struct insert {
	wof_once_lock_t *lock;
	void *value;
	bool stored;
};

static int insert_run(void *arg)
{
	struct insert *insert = arg;

	value_store(insert->lock, insert->value);
	insert->stored = true;
	return 0;
}

WOF_API int wof_once_lock_try_insert(wof_once_lock_t *lock, void *value, void **current)
{
	struct insert insert = { lock, value, false };

	if (!lock || !value)
		return EINVAL;
	int rc = run_locked(lock, insert_run, &insert);
	if (rc)
		return rc;
	if (current)
		*current = wof_internal_once_lock_value(lock);
	return insert.stored ? 0 : EEXIST;
}

WOF_API int wof_once_lock_set(wof_once_lock_t *lock, void *value)
{
	return wof_once_lock_try_insert(lock, value, NULL);
}

WOF_API WOF_COLD void *wof_internal_once_lock_get_slow(wof_once_lock_t *lock)
{
	if (!lock) {
		errno = EINVAL;
		return NULL;
	}
	wof_internal_once_sync(&lock->_wof_once, wipe_value, lock);
	if (!wof_internal_once_done(&lock->_wof_once))
		return NULL;
	return wof_internal_once_lock_value(lock);
}

struct try_init {
	wof_once_lock_t *lock;
	int (*init)(void *, void **);
	void *arg;
};

static int try_init_run(void *arg)
{
	struct try_init *init = arg;
	void *value = NULL;
	int rc = init->init(init->arg, &value);

	if (rc)
		return rc;
	if (!value)
		return EINVAL;
	value_store(init->lock, value);
	return 0;
}

WOF_API int wof_once_lock_get_or_try_init(wof_once_lock_t *lock,
                                          int (*fn)(void *arg, void **out), void *arg,
                                          void **out)
{
	struct try_init init = { lock, fn, arg };

	if (!lock || !fn || !out)
		return EINVAL;
	int rc = run_locked(lock, try_init_run, &init);
	if (rc == 0)
		*out = wof_internal_once_lock_value(lock);
	return rc;
}

WOF_API WOF_COLD void *wof_internal_once_lock_get_or_init_slow(wof_once_lock_t *lock,
                                                               void *(*fn)(void *), void *arg)
{
	struct wof_internal_init init = { fn, arg };
	void *value = NULL;

	if (!lock || !fn) {
		errno = EINVAL;
		return NULL;
	}
	int rc = wof_once_lock_get_or_try_init(lock, wof_internal_init_adapter, &init, &value);
	return wof_internal_init_result(rc, value);
}

WOF_API void *wof_once_lock_wait(wof_once_lock_t *lock)
{
	if (!lock) {
		errno = EINVAL;
		return NULL;
	}
	int rc = wof_internal_once_wait_slow(&lock->_wof_once, wipe_value, lock);
	if (rc) {
		errno = rc;
		return NULL;
	}
	return wof_internal_once_lock_value(lock);
}

WOF_API void *wof_once_lock_take(wof_once_lock_t *lock)
{
	void *value = wof_internal_once_lock_get_slow(lock); /* wipes a stale lock first */

	if (!value)
		return NULL;
	value_store(lock, NULL);
	/* Relaxed: the caller guarantees exclusive use; all-zero is the pristine lock. */
	__atomic_store_n(&lock->_wof_once._wof_word, 0, __ATOMIC_RELAXED);
	return value;
}
