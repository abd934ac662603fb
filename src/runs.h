/* SPDX-License-Identifier: MIT */
/*
 * The runs each thread is inside (src/runs.c has the why): the record and its push and pop,
 * inline because every run -- a child's first call on each wiped object among them -- makes
 * both. Only src/once.c's run() includes this; everyone else asks src/wof-private.h.
 *
 * The first RUNS_MAX runs live in an array in the thread's record rather than in a list
 * through the runners' stack frames, so that a run left by longjmp leaves an entry that is
 * merely stale (its once answers EDEADLK to this thread from then on) and never a pointer into
 * a dead frame. Deeper runs are chained through their frames, innermost first.
 */
#pragma once

#include "wof-private.h"

#define WOF_INTERNAL_RUNS_MAX 32
struct wof_internal_runs {
	unsigned depth;
	struct wof_internal_run *overflow; /* the innermost of the runs deeper than RUNS_MAX */
	struct wof_internal_run open[WOF_INTERNAL_RUNS_MAX];
};

/* The calling thread's record, made if `create`; NULL if it has none (Windows only). */
#if defined(_WIN32)
struct wof_internal_runs *wof_internal_thread_runs(bool create);
#else
extern _Thread_local struct wof_internal_runs wof_internal_thread_record;

static inline struct wof_internal_runs *wof_internal_thread_runs(bool create)
{
	(void)create;
	return &wof_internal_thread_record;
}
#endif

static inline void wof_internal_runs_push(struct wof_internal_run *run)
{
	struct wof_internal_runs *runs = run->in = wof_internal_thread_runs(true);

	if (!runs)
		return;
	if (runs->depth < WOF_INTERNAL_RUNS_MAX) {
		runs->open[runs->depth] = *run;
	} else {
		run->outer = runs->overflow;
		runs->overflow = run;
	}
	runs->depth++;
}

static inline void wof_internal_runs_pop(struct wof_internal_run *run)
{
	struct wof_internal_runs *runs = run->in;

	if (runs && --runs->depth >= WOF_INTERNAL_RUNS_MAX)
		runs->overflow = run->outer;
}
