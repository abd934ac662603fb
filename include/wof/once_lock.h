/* SPDX-License-Identifier: MIT */
/* wof_once_lock_t: a thread-safe set-once value, forgotten on fork (Rust's OnceLock). */
#pragma once

#include <wof/once.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * struct wof_once_lock - a value set at most once per process, thread-safely.
 *
 * All-zero bytes (WOF_ONCE_LOCK_INIT, static storage, calloc) are a valid empty lock. Values
 * are non-NULL pointers that the caller owns; wof never frees them. In a child the parent's
 * value is forgotten: wof frees and closes nothing. WOF_ONCE_LOCK_INIT_ON_WIPE(on_wipe) names a
 * `void on_wipe(void *stale)` that wof calls in each child exactly once, with the value the
 * lock held at fork, on the child's first call on the lock and before any re-initialisation;
 * never in the process that set the value, never for a lock that held nothing at fork.
 */
typedef struct wof_once_lock {
	wof_once_t _wof_once;          /* never touch: completed once the value is set */
	void *_wof_value;              /* never touch: valid when _wof_once completed   */
	void (*_wof_on_wipe)(void *);  /* never touch: from WOF_ONCE_LOCK_INIT_ON_WIPE  */
} wof_once_lock_t;

/**
 * WOF_ONCE_LOCK_INIT - static initialiser of an empty wof_once_lock_t; the same as all-zero.
 *
 * Memory ordering: none; a constant.
 * Fork: empty in every process until a value is set there.
 */
#define WOF_ONCE_LOCK_INIT { WOF_ONCE_INIT, WOF_INTERNAL_NULL, WOF_INTERNAL_NULL }
/**
 * WOF_ONCE_LOCK_INIT_ON_WIPE() - static initialiser of an empty lock with an on_wipe hook.
 *
 * `void on_wipe(void *stale)` is called in each child as described for struct wof_once_lock.
 *
 * Memory ordering: none; a constant.
 * Fork: on_wipe sees the value held at fork, once per child, before any re-initialisation.
 */
#define WOF_ONCE_LOCK_INIT_ON_WIPE(on_wipe) { WOF_ONCE_INIT, WOF_INTERNAL_NULL, (on_wipe) }

/* The value, once the once is seen completed. Relaxed: ordered by the once word's acquire;
 * atomic only so that race detectors, which lose track of threads across fork, stay quiet. */
static inline void *wof_internal_once_lock_value(const wof_once_lock_t *lock)
{
	return __atomic_load_n(&lock->_wof_value, __ATOMIC_RELAXED);
}

/* Out-of-line slow paths (src/once_lock.c). Never call them directly. */
WOF_API WOF_COLD void *wof_internal_once_lock_get_slow(wof_once_lock_t *lock);
WOF_API WOF_COLD void *wof_internal_once_lock_get_or_init_slow(wof_once_lock_t *lock,
                                                               void *(*init)(void *),
                                                               void *arg);

/**
 * wof_once_lock_get() - the value set in this process, or NULL (errno unchanged) if none.
 *
 * Never waits. Async-signal-safe when the value was set in this process.
 * Memory ordering: acquire when non-NULL: what the setter wrote before setting is visible.
 * Fork: NULL in a child until the child sets a value; the first call runs on_wipe if due.
 */
static inline void *wof_once_lock_get(wof_once_lock_t *lock)
{
	if (WOF_LIKELY(lock != WOF_INTERNAL_NULL) && wof_internal_once_done(&lock->_wof_once))
		return wof_internal_once_lock_value(lock);
	return wof_internal_once_lock_get_slow(lock);
}

/**
 * wof_once_lock_set() - store `value` unless a value is set in this process.
 *
 * If another thread is initialising the lock, waits for it first.
 * Memory ordering: release: a thread that gets `value` sees what was written before set.
 * Fork: a value set in an ancestor does not count.
 *
 * Return: 0 when stored; EEXIST when a value is already set (nothing stored, the caller keeps
 * ownership of `value`); EINVAL for a NULL lock or value; EDEADLK from inside the lock's init.
 */
WOF_API int wof_once_lock_set(wof_once_lock_t *lock, void *value);

/**
 * wof_once_lock_try_insert() - wof_once_lock_set() that also says what is there.
 *
 * `*current` (if `current` is not NULL) receives the lock's value after the call: `value` on
 * 0, the value already set on EEXIST. Rust's OnceLock::try_insert.
 *
 * Memory ordering: as wof_once_lock_set(); acquire on EEXIST.
 * Fork: as wof_once_lock_set().
 *
 * Return: 0, EEXIST, EINVAL (NULL lock or value) or EDEADLK, as wof_once_lock_set().
 */
WOF_API int wof_once_lock_try_insert(wof_once_lock_t *lock, void *value, void **current);

/**
 * wof_once_lock_get_or_init() - the value, running init(arg) first if none is set here.
 *
 * One init at a time; concurrent callers sleep. An init returning NULL stores nothing: that
 * caller gets NULL (errno as init left it) and a waiting or later caller runs its own init.
 * Cancellation of init stores nothing; a waiting caller takes over.
 *
 * Memory ordering: acquire: what init wrote happens-before every return of the value.
 * Fork: in a child, the parent's value is forgotten and init runs again on first use.
 *
 * Return: the value; NULL if init failed, or with errno EDEADLK when called from inside its
 * own init, EINVAL for a NULL lock or init.
 */
static inline void *wof_once_lock_get_or_init(wof_once_lock_t *lock, void *(*init)(void *arg),
                                              void *arg)
{
	if (WOF_LIKELY(lock != WOF_INTERNAL_NULL && init != WOF_INTERNAL_NULL) &&
	    wof_internal_once_done(&lock->_wof_once))
		return wof_internal_once_lock_value(lock);
	return wof_internal_once_lock_get_or_init_slow(lock, init, arg);
}

/**
 * wof_once_lock_get_or_try_init() - as get_or_init, for an init that reports an error.
 *
 * init returns 0 and fills *out, or a nonzero error. On 0 from this function, *out holds the
 * value. An init that returns 0 but leaves *out NULL stores nothing and yields EINVAL.
 *
 * Memory ordering: as wof_once_lock_get_or_init().
 * Fork: as wof_once_lock_get_or_init().
 *
 * Return: 0; init's nonzero error; EINVAL (NULL lock, init or out, or a NULL value);
 * EDEADLK from inside its own init.
 */
WOF_API int wof_once_lock_get_or_try_init(wof_once_lock_t *lock,
                                          int (*init)(void *arg, void **out), void *arg,
                                          void **out);

/**
 * wof_once_lock_wait() - sleep until a value is set in this process; return it.
 *
 * Memory ordering: acquire, as wof_once_lock_get().
 * Fork: a value set in an ancestor does not end the wait.
 *
 * Return: the value; NULL with errno EDEADLK from inside the lock's own init, EINVAL for NULL.
 */
WOF_API void *wof_once_lock_wait(wof_once_lock_t *lock);

/**
 * wof_once_lock_take() - return the value set in this process (or NULL) and empty the lock.
 *
 * The caller must guarantee that no other thread uses the lock meanwhile. on_wipe is not
 * called for a taken value: it is the caller's again. Rust's take() and into_inner().
 *
 * Memory ordering: none beyond the caller's exclusive access.
 * Fork: a value set in an ancestor is not returned (its on_wipe runs instead, if due).
 *
 * Return: the value, or NULL (errno unchanged; EINVAL for a NULL lock).
 */
WOF_API void *wof_once_lock_take(wof_once_lock_t *lock);

#ifdef __cplusplus
}
#endif
