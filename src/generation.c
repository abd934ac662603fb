/* SPDX-License-Identifier: MIT */
/*
 * Fork detection: the only file in wof that knows processes fork.
 *
 * A process's generation lives in one 32-bit *cell* that reads 0 in every new process:
 *
 *   cell == 0    this process has not taken a generation yet (every child starts here)
 *   cell == g    this process's generation; set once, by the first thread that needs it
 *
 * The cell is a private anonymous page marked MADV_WIPEONFORK, which the kernel hands to every
 * child that copies the address space as zeros -- fork(), _Fork(), syscall(SYS_fork), clone()
 * without CLONE_VM -- with no code running in the child. A pthread_atfork child handler clears
 * it as well: the only mechanism where MADV_WIPEONFORK is missing or untrusted, a harmless
 * repeat where it works. Nothing is walked at fork: objects compare their recorded generation
 * with the cell on their next use.
 *
 * New values come from `last_generation`, an ordinary counter that children inherit: a
 * process takes last_generation + 1 (skipping 0), so every descendant's generation is larger
 * than any value its ancestors had taken before they forked.
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

/* Fallback cell when no page can be mapped: cleared by the atfork handler only. */
static uint32_t static_cell;

static uint32_t last_generation;
static unsigned detection;
static bool atfork_registered;

static void clear_cell_in_child(void)
{
	/* Async-signal-safe: two atomic accesses. Relaxed: the child is single-threaded here. */
	uint32_t *cell = __atomic_load_n(&wof_internal_generation_cell, __ATOMIC_RELAXED);
	if (cell != &pristine_cell)
		__atomic_store_n(cell, 0, __ATOMIC_RELAXED);
}

#if WOF_HAVE_WIPEONFORK
#ifndef MADV_WIPEONFORK
#define MADV_WIPEONFORK 18
#endif

/* A page the kernel zeroes in every child, or NULL. Emulators (qemu-user) accept any advice and
 * ignore it, so an advice the kernel cannot know must fail before MADV_WIPEONFORK is believed. */
static uint32_t *map_wipeonfork_page(void)
{
	long size = sysconf(_SC_PAGESIZE);
	if (size <= 0)
		return NULL;
	void *page = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
	                  -1, 0);
	if (page == MAP_FAILED)
		return NULL;
	if (madvise(page, (size_t)size, -1) == 0 ||
	    madvise(page, (size_t)size, MADV_WIPEONFORK) != 0) {
		munmap(page, (size_t)size);
		return NULL;
	}
	return page;
}

static void unmap_page(uint32_t *page)
{
	munmap(page, (size_t)sysconf(_SC_PAGESIZE));
}
#else
static uint32_t *map_wipeonfork_page(void)
{
	return NULL;
}

static void unmap_page(uint32_t *page)
{
	(void)page;
}
#endif

/* Install the cell on the first call in the life of the program (children inherit it). */
static uint32_t *cell_setup(void)
{
	uint32_t *expected = (uint32_t *)&pristine_cell;
	uint32_t *cell;

	/* Acquire: pairs with the release below, so `detection` is visible with the cell. */
	cell = __atomic_load_n(&wof_internal_generation_cell, __ATOMIC_ACQUIRE);
	if (cell != &pristine_cell)
		return cell;

	/* Registered before the cell is published, so no fork() can see a cell without it.
	 * Relaxed: the flag only elects one registering thread; it publishes nothing. */
	if (!__atomic_exchange_n(&atfork_registered, true, __ATOMIC_RELAXED))
		pthread_atfork(NULL, NULL, clear_cell_in_child);

	cell = map_wipeonfork_page();
	unsigned how = WOF_FORK_DETECT_ATFORK | (cell ? WOF_FORK_DETECT_WIPEONFORK : 0u);
	if (!cell)
		cell = &static_cell;

	/* Relaxed: published by the release CAS just below. */
	__atomic_store_n(&detection, how, __ATOMIC_RELAXED);
	/* Release: publishes `detection`; pairs with the acquire above and in wof_fork_detection. */
	if (__atomic_compare_exchange_n(&wof_internal_generation_cell, &expected, cell, false,
	                                __ATOMIC_RELEASE, __ATOMIC_ACQUIRE))
		return cell;
	if (cell != &static_cell)
		unmap_page(cell); /* another thread won the race; use its cell */
	return expected;
}

uint32_t wof_internal_generation_refresh(void)
{
	int saved_errno = errno;
	uint32_t *cell = cell_setup();
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
	/* Acquire: pairs with the release that published the cell. */
	(void)__atomic_load_n(&wof_internal_generation_cell, __ATOMIC_ACQUIRE);
	return __atomic_load_n(&detection, __ATOMIC_RELAXED);
}
