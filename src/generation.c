/* SPDX-License-Identifier: MIT */
/*
 * Fork detection: the only file in wof that knows processes fork.
 *
 * A process's generation lives in one 32-bit *cell* that reads 0 in every new process:
 *
 *   cell == 0    this process has not taken a generation yet (every child starts here)
 *   cell == g    this process's generation; set once, by the first thread that needs it
 *                (and replaced only by wof_wipe_all(), which makes the process a new one)
 *
 * Two mechanisms zero the cell in a child:
 *   - the kernel, when the cell is on a private anonymous page marked MADV_WIPEONFORK (the
 *     *wipe page*): in every child that copies the address space -- fork(), _Fork(),
 *     syscall(SYS_fork), clone() without CLONE_VM -- with no code running in the child;
 *   - a pthread_atfork child handler, for fork() only: the one mechanism where MADV_WIPEONFORK
 *     is missing or untrusted, a harmless repeat where it works. It also zeroes secret memory
 *     that the kernel does not wipe.
 * Nothing is walked at fork: objects compare their recorded generation with the cell on their
 * next use.
 *
 * Setting up can fail part-way, and what failed is retried on later slow paths rather than
 * given up for the life of the process and its descendants:
 *
 *   cell           pristine (read-only zero) -> static_cell -> wipe page    (only forwards)
 *   atfork_state   NONE -> REGISTERING -> DONE; a failed registration returns to NONE
 *   wipe_state     UNKNOWN -> TRANSIENT (mmap failed: retry) -> ... -> WORKS | REFUSED
 *
 * Moving the cell from static_cell to a wipe page copies the process's generation first, so
 * objects stamped under the old cell stay valid. `settled` turns true when nothing is left to
 * retry. wof_fork_detection() reports what is in effect now, 0 when neither mechanism is.
 *
 * New values come from `last_generation`, an ordinary counter that children inherit: a
 * process takes last_generation + 1 (skipping 0), so every descendant's generation is larger
 * than any value its ancestors had taken before they forked. The library is linked with
 * -z nodelete, so a dlclose() never unloads it and a later dlopen() never starts the counter
 * again from 0 (nor leaks another wipe page).
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "wof-private.h"

#if WOF_HAVE_WIPEONFORK
#include <sys/mman.h>
#include <unistd.h>
#endif

/* Before the first refresh the cell is this read-only zero: the fast paths need no NULL test. */
static const uint32_t pristine_cell;
WOF_API uint32_t *wof_internal_generation_cell = (uint32_t *)&pristine_cell;

/* The cell while no wipe page could be had: zeroed in a child by the atfork handler only. */
static uint32_t static_cell;

static uint32_t last_generation;

enum { ATFORK_NONE, ATFORK_REGISTERING, ATFORK_DONE };
static int atfork_state;

enum { WIPE_UNKNOWN, WIPE_TRANSIENT, WIPE_WORKS, WIPE_REFUSED };
static int wipe_state;

bool wof_internal_generation_settled;

static uint32_t *current_cell(void)
{
	/* Acquire: pairs with the release CAS that publishes a cell (publish_cell), so its
	 * contents -- zero-filled by mmap, or a copied generation -- are visible. */
	return __atomic_load_n(&wof_internal_generation_cell, __ATOMIC_ACQUIRE);
}

static void clear_cell_in_child(void)
{
	/* Async-signal-safe: atomic accesses and memset. Relaxed: the child is single-threaded. */
	uint32_t *cell = __atomic_load_n(&wof_internal_generation_cell, __ATOMIC_RELAXED);
	if (cell != &pristine_cell)
		__atomic_store_n(cell, 0, __ATOMIC_RELAXED);
	wof_internal_secret_wipe(false);
}

#if WOF_HAVE_WIPEONFORK
#ifndef MADV_WIPEONFORK
#define MADV_WIPEONFORK 18
#endif

/* The kernel's answer for a page-aligned private anonymous range. Emulators (qemu-user) accept
 * any advice and ignore it, so an advice no kernel knows must fail before WIPEONFORK counts. */
static bool advise_wipe(void *addr, size_t len)
{
	return madvise(addr, len, -1) != 0 && madvise(addr, len, MADV_WIPEONFORK) == 0;
}

bool wof_internal_wipe_on_fork(void *addr, size_t len)
{
	return advise_wipe(addr, len);
}

/* A wipe page, or NULL with wipe_state saying whether trying again can help. */
static uint32_t *map_wipe_page(void)
{
	long size = sysconf(_SC_PAGESIZE);
	if (size <= 0) {
		__atomic_store_n(&wipe_state, WIPE_REFUSED, __ATOMIC_RELAXED);
		return NULL;
	}
	void *page = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
	                  -1, 0);
	/* Relaxed, both: the state only steers retries; the cell's publication orders the rest. */
	if (page == MAP_FAILED) {
		__atomic_store_n(&wipe_state, WIPE_TRANSIENT, __ATOMIC_RELAXED);
		return NULL;
	}
	if (!advise_wipe(page, (size_t)size)) {
		munmap(page, (size_t)size);
		__atomic_store_n(&wipe_state, WIPE_REFUSED, __ATOMIC_RELAXED);
		return NULL;
	}
	return page;
}

static void unmap_page(uint32_t *page)
{
	munmap(page, (size_t)sysconf(_SC_PAGESIZE));
}
#else
bool wof_internal_wipe_on_fork(void *addr, size_t len)
{
	(void)addr;
	(void)len;
	return false;
}

static uint32_t *map_wipe_page(void)
{
	__atomic_store_n(&wipe_state, WIPE_REFUSED, __ATOMIC_RELAXED);
	return NULL;
}

static void unmap_page(uint32_t *page)
{
	(void)page;
}
#endif

/* Register the atfork handler unless done; one thread tries at a time, a failure is retried. */
static void register_atfork(void)
{
	int expected = ATFORK_NONE;

	/* Relaxed: the state elects one registering thread and publishes nothing. */
	if (!__atomic_compare_exchange_n(&atfork_state, &expected, ATFORK_REGISTERING, false,
	                                 __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		return;
	int rc = pthread_atfork(NULL, NULL, clear_cell_in_child);
	__atomic_store_n(&atfork_state, rc == 0 ? ATFORK_DONE : ATFORK_NONE, __ATOMIC_RELAXED);
}

/* Make `cell` the process's cell if `from` still is. True if it is now (ours or no change). */
static bool publish_cell(uint32_t *from, uint32_t *cell)
{
	/* Release: pairs with current_cell's acquire: the cell's contents come with it. */
	return __atomic_compare_exchange_n(&wof_internal_generation_cell, &from, cell, false,
	                                   __ATOMIC_RELEASE, __ATOMIC_RELAXED);
}

/* The process's generation in `cell`, taking a new one if it has none. */
static uint32_t take_generation(uint32_t *cell)
{
	/* Relaxed throughout: a generation carries no data; objects publish their own. */
	uint32_t gen = __atomic_load_n(cell, __ATOMIC_RELAXED);

	if (gen == 0) {
		uint32_t next;
		/* Taken from the inherited counter *before* it is published in the cell, so a fork
		 * between the two still leaves the child's counter past this value. */
		do
			next = __atomic_add_fetch(&last_generation, 1, __ATOMIC_RELAXED);
		while (next == 0);
		if (__atomic_compare_exchange_n(cell, &gen, next, false, __ATOMIC_RELAXED,
		                                __ATOMIC_RELAXED))
			gen = next;
	}
	return gen;
}

/* Move a process that runs on static_cell (generation `gen`) onto a wipe page, if one can be
 * had. The page gets `gen` before it is published: every object stamped `gen` stays valid. */
static void try_wipe_page(uint32_t *cell, uint32_t gen)
{
	uint32_t *page = map_wipe_page();

	if (!page)
		return;
	__atomic_store_n(page, gen, __ATOMIC_RELAXED); /* Relaxed: published by publish_cell */
	if (!publish_cell(cell, page)) {
		unmap_page(page); /* another thread moved first; use its page */
		return;
	}
	__atomic_store_n(&wipe_state, WIPE_WORKS, __ATOMIC_RELAXED);
	/* A fork() (from a signal handler) between the copy and the publication carried `gen`
	 * into a child whose atfork handler had zeroed static_cell: that child is not `gen`. */
	uint32_t stale = gen;
	if (__atomic_load_n(cell, __ATOMIC_RELAXED) != gen)
		__atomic_compare_exchange_n(page, &stale, 0, false, __ATOMIC_RELAXED,
		                            __ATOMIC_RELAXED);
}

uint32_t wof_internal_generation_refresh(void)
{
	int saved_errno = errno;

	/* Registered before a cell is published, so no fork() sees a cell it would not clear. */
	if (__atomic_load_n(&atfork_state, __ATOMIC_RELAXED) != ATFORK_DONE)
		register_atfork();

	uint32_t *cell = current_cell();
	if (cell == &pristine_cell) {
		uint32_t *page = map_wipe_page();
		if (page && publish_cell(cell, page))
			__atomic_store_n(&wipe_state, WIPE_WORKS, __ATOMIC_RELAXED);
		else if (page)
			unmap_page(page); /* another thread published first */
		else
			(void)publish_cell(cell, &static_cell);
		cell = current_cell();
	}

	uint32_t gen = take_generation(cell);
	if (cell == &static_cell && __atomic_load_n(&wipe_state, __ATOMIC_RELAXED) != WIPE_REFUSED)
		try_wipe_page(cell, gen);

	int wipe = __atomic_load_n(&wipe_state, __ATOMIC_RELAXED);
	/* Relaxed: an early `true` would only skip a retry; a late one costs a refresh. */
	__atomic_store_n(&wof_internal_generation_settled,
	                 __atomic_load_n(&atfork_state, __ATOMIC_RELAXED) == ATFORK_DONE &&
	                         (wipe == WIPE_WORKS || wipe == WIPE_REFUSED),
	                 __ATOMIC_RELAXED);
	wof_internal_restore_errno(saved_errno);
	return gen;
}

WOF_API uint32_t wof_generation(void)
{
	return wof_internal_generation();
}

WOF_API unsigned wof_fork_detection(void)
{
	(void)wof_internal_generation();
	unsigned how = 0;
	if (__atomic_load_n(&atfork_state, __ATOMIC_RELAXED) == ATFORK_DONE)
		how |= WOF_FORK_DETECT_ATFORK;
	if (current_cell() != &static_cell && current_cell() != &pristine_cell)
		how |= WOF_FORK_DETECT_WIPEONFORK;
	return how;
}

WOF_API void wof_wipe_all(void)
{
	int saved_errno = errno;
	uint32_t next;

	(void)wof_internal_generation(); /* a cell of this process's own, not the pristine one */
	uint32_t *cell = current_cell();
	wof_internal_secret_wipe(true);
	/* Relaxed: as take_generation; the caller guarantees that no other thread uses wof. */
	do
		next = __atomic_add_fetch(&last_generation, 1, __ATOMIC_RELAXED);
	while (next == 0);
	__atomic_store_n(cell, next, __ATOMIC_RELAXED);
	wof_internal_restore_errno(saved_errno);
}
