/* SPDX-License-Identifier: MIT */
/*
 * WOF_LAZY_STATIC: a typed slot beside a wof_once, in the user's static storage, described by
 * a constant struct wof_internal_lazy_static that the macro defines next to it.
 *
 * The slot is all-zero whenever an init starts: the run zeroes it first (a failed or
 * cancelled init may have left bytes behind) and the wipe hook zeroes it after handing the
 * stale bytes to on_wipe. It is only read through the accessor once the once completed. A
 * lazy static with an on_wipe hook is listed for wof_sweep() by the run that makes it.
 */
#include <errno.h>
#include <string.h>

#include "wof-private.h"
#include <wof/lazy_static.h>

struct run {
	const struct wof_internal_lazy_static *lazy;
	bool listed;  /* the descriptor is a constant for the program's life: list it */
	bool ran;     /* init was called (its errno is the caller's answer)            */
	size_t hooks; /* on_wipe calls made                                             */
};

static void lazy_static_wipe(void *ctx, bool held)
{
	struct run *run = ctx;
	const struct wof_internal_lazy_static *lazy = run->lazy;

	if (held && lazy->on_wipe) {
		wof_internal_call_on_wipe(lazy->on_wipe, lazy->slot);
		run->hooks++;
	}
	memset(lazy->slot, 0, lazy->size);
}

static int lazy_static_run(void *ctx)
{
	struct run *run = ctx;
	const struct wof_internal_lazy_static *lazy = run->lazy;

	run->ran = true;
	memset(lazy->slot, 0, lazy->size);
	int rc = lazy->init(lazy->slot);
	if (rc == 0 && run->listed && lazy->on_wipe)
		wof_internal_sweep_list_lazy_static(lazy);
	return rc;
}

static void *get_slow(const struct wof_internal_lazy_static *lazy, bool listed)
{
	struct run run = { lazy, listed, false, 0 };
	int rc = wof_internal_once_slow(lazy->once, lazy_static_run, &run, lazy_static_wipe, &run);

	if (rc == 0)
		return lazy->slot;
	/* A failed init reports through errno; a code with no init run is wof's own (EDEADLK). */
	if (!run.ran)
		errno = rc;
	return NULL;
}

WOF_API WOF_COLD void *wof_internal_lazy_static_get_slow(const struct wof_internal_lazy_static *lazy)
{
	return get_slow(lazy, true);
}

WOF_API WOF_COLD void *wof_internal_lazy_static_slow(wof_once_t *once, void *slot, size_t size,
                                                     int (*init)(void *),
                                                     void (*on_wipe)(void *))
{
	const struct wof_internal_lazy_static lazy = { once, slot, size, init, on_wipe };

	return get_slow(&lazy, false); /* a temporary: never listed */
}

size_t wof_internal_lazy_static_sweep(const void *lazy)
{
	struct run run = { lazy, true, false, 0 };

	wof_internal_once_sync(run.lazy->once, lazy_static_wipe, &run);
	return run.hooks;
}
