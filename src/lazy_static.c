/* SPDX-License-Identifier: MIT */
/*
 * WOF_LAZY_STATIC: a typed slot beside a wof_once, in the user's static storage.
 *
 * The slot is all-zero whenever an init starts: the run zeroes it first (a failed or
 * cancelled init may have left bytes behind) and the wipe hook zeroes it after handing the
 * stale bytes to on_wipe. It is only read through the accessor once the once completed.
 */
#include <errno.h>
#include <string.h>

#include "wof-private.h"
#include <wof/lazy_static.h>

struct lazy_static {
	void *slot;
	size_t size;
	int (*init)(void *);
	void (*on_wipe)(void *);
	bool ran;
};

static void lazy_static_wipe(void *ctx, bool held)
{
	struct lazy_static *lazy = ctx;

	if (held && lazy->on_wipe) {
		int saved_errno = errno; /* the hook's errno is not the caller's */
		lazy->on_wipe(lazy->slot);
		wof_internal_restore_errno(saved_errno);
	}
	memset(lazy->slot, 0, lazy->size);
}

static int lazy_static_run(void *ctx)
{
	struct lazy_static *lazy = ctx;

	lazy->ran = true;
	memset(lazy->slot, 0, lazy->size);
	return lazy->init(lazy->slot);
}

WOF_API WOF_COLD void *wof_internal_lazy_static_slow(wof_once_t *once, void *slot, size_t size,
                                                     int (*init)(void *),
                                                     void (*on_wipe)(void *))
{
	struct lazy_static lazy = { slot, size, init, on_wipe, false };
	int rc = wof_internal_once_slow(once, lazy_static_run, &lazy, lazy_static_wipe, &lazy);

	if (rc == 0)
		return slot;
	/* A failed init reports through errno; a code with no init run is wof's own (EDEADLK). */
	if (!lazy.ran)
		errno = rc;
	return NULL;
}
