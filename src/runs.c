/* SPDX-License-Identifier: MIT */
/*
 * The runs each thread is inside (src/once.c's run() pushes and pops them, src/runs.h), so
 * that a call on a once from inside its own fn is EDEADLK rather than a wait for itself; and
 * what happens to those runs when a thread ends inside fn without unwinding. With runs.h, the
 * only place that knows how a platform keeps per-thread records and tells of a thread's end.
 */
#include "runs.h"
#include <wof/once.h>

/*
 * The thread's record, and a thread that ends inside fn.
 *
 * POSIX: cancellation and pthread_exit leave fn through run()'s cleanup handler (abandon), so
 * the record is plain thread-local storage.
 *
 * Windows: C++ exceptions leave through the same handler (thread-exit.h), but a thread that
 * calls ExitThread or _endthreadex inside fn does not unwind at all, and its waiters would
 * wait for ever. So the record lives in fiber-local storage, whose callback runs when the
 * thread ends, with the thread's record, and abandons every run still open in it, innermost
 * first: the next caller claims the run, as after a cancellation. Not in thread-local storage:
 * mingw emulates that, and frees a thread's blocks before the callback runs when the thread
 * ends by winpthreads' pthread_exit. Runs deeper than WOF_INTERNAL_RUNS_MAX are not abandoned there: their
 * entries live in frames that such a thread has already left (by longjmp). The record is
 * allocated at the thread's first run and freed at its end. The DLL that holds the callback is
 * pinned, as -z nodelete pins libwof on Linux: after a FreeLibrary() the callback would be
 * gone while threads still hold records.
 *
 * A thread that cannot have a record (no memory, or no fiber-local slot left in the process)
 * runs fn all the same, unrecorded: a call from inside fn on its own once then waits instead of
 * returning EDEADLK, and its waiters wait if it ends inside fn. No thread-local fallback: mingw
 * would emulate it through winpthreads (posix) or leak it at every thread's end (win32).
 */
#if defined(_WIN32)
#include <windows.h>

static DWORD runs_slot = FLS_OUT_OF_INDEXES;

static void WINAPI runs_at_thread_exit(void *record)
{
	struct wof_internal_runs *runs = record;

	unsigned n = runs->depth < WOF_INTERNAL_RUNS_MAX ? runs->depth : WOF_INTERNAL_RUNS_MAX;

	for (unsigned i = n; i-- > 0;)
		wof_internal_once_abandon(runs->open[i].once, runs->open[i].gen);
	HeapFree(GetProcessHeap(), 0, runs);
}

static DWORD runs_slot_get(void)
{
	/* Relaxed: a slot is an index; FlsAlloc itself makes it valid for every thread. */
	DWORD slot = __atomic_load_n(&runs_slot, __ATOMIC_RELAXED);
	HMODULE self;

	if (slot != FLS_OUT_OF_INDEXES)
		return slot;
	DWORD mine = FlsAlloc(runs_at_thread_exit);
	if (mine == FLS_OUT_OF_INDEXES)
		return mine;
	/* Relaxed: as the load; the loser frees its own slot, which no thread has used. */
	if (!__atomic_compare_exchange_n(&runs_slot, &slot, mine, false, __ATOMIC_RELAXED,
	                                 __ATOMIC_RELAXED)) {
		FlsFree(mine);
		return slot;
	}
	(void)GetModuleHandleExW(GET_MODULE_HANDLE_EX_FLAG_FROM_ADDRESS |
	                                 GET_MODULE_HANDLE_EX_FLAG_PIN,
	                         (LPCWSTR)(const void *)&runs_slot, &self);
	return mine;
}

struct wof_internal_runs *wof_internal_thread_runs(bool create)
{
	DWORD saved_error = GetLastError(); /* the caller's GetLastError() is not ours to change */
	DWORD slot = runs_slot_get();
	struct wof_internal_runs *runs = slot == FLS_OUT_OF_INDEXES ? NULL : FlsGetValue(slot);

	if (!runs && create && slot != FLS_OUT_OF_INDEXES) {
		runs = HeapAlloc(GetProcessHeap(), HEAP_ZERO_MEMORY, sizeof *runs);
		if (runs && !FlsSetValue(slot, runs)) {
			HeapFree(GetProcessHeap(), 0, runs);
			runs = NULL;
		}
	}
	SetLastError(saved_error);
	return runs;
}
#else
_Thread_local struct wof_internal_runs wof_internal_thread_record;
#endif

bool wof_internal_running_here(const wof_once_t *once, uint32_t gen)
{
	const struct wof_internal_runs *runs = wof_internal_thread_runs(false);

	for (unsigned i = 0; runs && i < runs->depth && i < WOF_INTERNAL_RUNS_MAX; i++)
		if (runs->open[i].once == once && runs->open[i].gen == gen)
			return true;
	for (const struct wof_internal_run *r =
	             runs && runs->depth > WOF_INTERNAL_RUNS_MAX ? runs->overflow : NULL;
	     r;
	     r = r->outer)
		if (r->once == once && r->gen == gen)
			return true;
	return false;
}

bool wof_internal_inside_run(void)
{
	const struct wof_internal_runs *runs = wof_internal_thread_runs(false);

	return runs && runs->depth > 0;
}
