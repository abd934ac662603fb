/* SPDX-License-Identifier: MIT */
/*
 * The seams between wof's source files. once.c asks generation.c which process it is in and
 * park.c to sleep; nothing else crosses a file boundary.
 */
#pragma once

#include <errno.h>
#include <stdint.h>

#include "config.h"
#include <wof/generation.h>

/* generation.c -- the only file that knows about fork. */
uint32_t wof_internal_generation_refresh(void);

/* The current generation; never 0. Inline fast path, out-of-line refresh. */
static inline uint32_t wof_internal_generation(void)
{
	uint32_t gen = wof_internal_generation_peek();
	return WOF_LIKELY(gen != 0) ? gen : wof_internal_generation_refresh();
}

/*
 * Put errno back as the caller had it, writing it only when it changed (an untouched errno
 * stays untouched; bench-fork measured no page fault saved by this in a fresh child).
 */
static inline void wof_internal_restore_errno(int saved_errno)
{
	if (errno != saved_errno)
		errno = saved_errno;
}

/*
 * park.c -- the only file that knows about futexes and condition variables.
 *
 * wof_internal_park() sleeps while the state half of *word equals the state half of
 * `expected`; it may return early (signals, spurious wake-ups): callers re-read the word.
 * wof_internal_unpark_all() wakes every thread parked on `word`; call it after changing the
 * word. Neither changes errno.
 */
void wof_internal_park(uint64_t *word, uint64_t expected);
void wof_internal_unpark_all(uint64_t *word);
