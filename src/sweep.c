/* SPDX-License-Identifier: MIT */
/*
 * The sweep list: every thread-safe object with an on_wipe hook that has held a value in this
 * process or an ancestor, so that wof_sweep() can wipe them all in a child without waiting for
 * each one's first use.
 *
 * One fixed array of words in ordinary (inherited) memory, no allocation and no lock:
 *
 *   entries[i] == 0                 a slot not filled (yet, or a fork came between the two
 *                                   steps of an append: `used` taken, the entry not written)
 *   entries[i] == p                 a wof_once_lock_t (wof_lazy_lock_t begins with one) at p
 *   entries[i] == p | LAZY_STATIC   a lazy static's descriptor at p
 *
 * An object is listed by the thread that runs it, inside the run, before its completion is
 * published, so every object that reads as complete anywhere is listed there. Listing first
 * looks for the entry (comparing words, never reading through them), then appends with one
 * fetch-add and one store; a fork between any two steps leaves at worst an empty slot or an
 * object listed twice, and wiping is idempotent. Only wof_sweep() reads through entries, which
 * is why a listed object must outlive the process. SWEEP_MAX objects at most: later ones are
 * wiped on first use only.
 */
#include <stdint.h>

#include "wof-private.h"

#define SWEEP_MAX 4096
#define LAZY_STATIC ((uintptr_t)1)

static uintptr_t entries[SWEEP_MAX];
static unsigned used;

static void list(uintptr_t entry)
{
	/* Relaxed throughout: the entries are read by wof_sweep() of a later process (a child) or
	 * of this one, where the once words themselves order everything that matters. */
	unsigned n = __atomic_load_n(&used, __ATOMIC_RELAXED);

	for (unsigned i = 0; i < n && i < SWEEP_MAX; i++)
		if (__atomic_load_n(&entries[i], __ATOMIC_RELAXED) == entry)
			return;
	unsigned slot = __atomic_fetch_add(&used, 1, __ATOMIC_RELAXED);
	if (slot < SWEEP_MAX)
		__atomic_store_n(&entries[slot], entry, __ATOMIC_RELAXED);
	else
		__atomic_store_n(&used, SWEEP_MAX, __ATOMIC_RELAXED); /* full: stay full */
}

void wof_internal_sweep_list_once_lock(void *lock)
{
	list((uintptr_t)lock);
}

void wof_internal_sweep_list_lazy_static(const void *lazy)
{
	list((uintptr_t)lazy | LAZY_STATIC);
}

WOF_API size_t wof_sweep(void)
{
	int saved_errno = errno;
	/* Relaxed, as in list(): each object's own once word orders its wipe. */
	unsigned n = __atomic_load_n(&used, __ATOMIC_RELAXED);
	size_t hooks = 0;

	for (unsigned i = 0; i < n && i < SWEEP_MAX; i++) {
		uintptr_t entry = __atomic_load_n(&entries[i], __ATOMIC_RELAXED);
		if (entry & LAZY_STATIC)
			hooks += wof_internal_lazy_static_sweep((const void *)(entry & ~LAZY_STATIC));
		else if (entry)
			hooks += wof_internal_once_lock_sweep((void *)entry);
	}
	wof_internal_restore_errno(saved_errno);
	return hooks;
}
