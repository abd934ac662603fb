/* SPDX-License-Identifier: MIT */
/*
 * Secret memory: wof_secret_alloc(), wof_secret_free(), and WOF_LAZY_SECRET's slow path.
 *
 * Memory comes in *regions*, each one mmap: an ordinary header page, then data pages that the
 * kernel zeroes in every child (MADV_WIPEONFORK, asked of generation.c, which knows fork) and
 * leaves out of core dumps (MADV_DONTDUMP). A small region cuts its data into slots of one size
 * class (16 ... 2048 bytes, powers of two); a large region is one slot of whole pages. Regions
 * hang off one push-only list per class, and are never unmapped: a freed large block's pages
 * are given back to the kernel (MADV_DONTNEED) and its region reused.
 *
 * The state is one bit per slot, in the header's `used` bitmap (bits past the last slot are
 * set for good), and each list head:
 *
 *   bit 0 -> 1        wof_secret_alloc claims the slot: CAS on its bitmap word (acquire)
 *   bit 1 -> 0        wof_secret_free, after zeroing the slot: fetch-and (release)
 *   head  -> region   a new region, fully written and with its first slot already claimed for
 *                     the thread that made it, is pushed: CAS on the head (release)
 *
 * Nothing else is ever written to a header after its region is published, and the header page
 * is inherited by children like any memory. So every change is one atomic word, no lock is
 * held anywhere, and a fork at any instant, from any thread, leaves the child a consistent
 * picture: a slot whose bit is set is allocated there (if the thread that claimed or was
 * freeing it is not in the child, the slot is merely lost to it), a clear bit means a zeroed
 * slot, and a region not yet pushed is an unreachable mapping. The data, bookkeeping apart,
 * reads as zero in the child.
 *
 * Where the kernel does not wipe a region (no MADV_WIPEONFORK, or an emulator that ignores it),
 * the pthread_atfork child handler zeroes it through wof_internal_secret_wipe(false); a region
 * is only handed out when one of the two will zero it in a fork() child. On Windows, which has
 * no fork, the pages are ordinary private memory (VirtualAlloc), zeroed when freed.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdalign.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wof-private.h"
#include <wof/secret.h>

/* ---- pages: the only part that differs between systems ----------------------------------- */

#if defined(_WIN32)
#include <windows.h>

static size_t system_page_size(void)
{
	SYSTEM_INFO info;

	GetSystemInfo(&info);
	return info.dwPageSize;
}

/* Zero-filled, or NULL. */
static void *pages_map(size_t len)
{
	return VirtualAlloc(NULL, len, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE);
}

static void pages_unmap(void *p, size_t len)
{
	(void)len;
	VirtualFree(p, 0, MEM_RELEASE);
}

static bool pages_dontdump(void *p, size_t len)
{
	(void)p;
	(void)len;
	return false;
}

static void pages_discard(void *p, size_t len)
{
	(void)p;
	(void)len; /* already zeroed; Windows has no fork to hide them from */
}
#else
#include <sys/mman.h>
#include <unistd.h>

static size_t system_page_size(void)
{
	long got = sysconf(_SC_PAGESIZE);
	return got > 0 ? (size_t)got : 4096;
}

static void *pages_map(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

static void pages_unmap(void *p, size_t len)
{
	munmap(p, len);
}

/* Each advice is its own call, and its answer is kept: a failure costs that advice only. */
static bool pages_dontdump(void *p, size_t len)
{
#ifdef MADV_DONTDUMP
	return madvise(p, len, MADV_DONTDUMP) == 0;
#else
	(void)p;
	(void)len;
	return false;
#endif
}

/* A free large block's pages go back to the kernel; the range stays, reading as zero. */
static void pages_discard(void *p, size_t len)
{
	(void)madvise(p, len, MADV_DONTNEED);
}
#endif

/* ---- the allocator ---------------------------------------------------------------------- */

#define MIN_CLASS_SHIFT 4  /* 16 bytes */
#define MAX_CLASS_SHIFT 11 /* 2048 bytes: larger blocks get a region of their own */
#define NCLASSES (MAX_CLASS_SHIFT - MIN_CLASS_SHIFT + 1)
#define LARGE NCLASSES /* the list of large regions */
#define SMALL_DATA 16384 /* bytes of data in a small region, at least one page */
#define REGION_MAGIC UINT64_C(0x776f662d73656372) /* "wof-secr" */

_Static_assert(alignof(max_align_t) <= ((size_t)1 << MIN_CLASS_SHIFT),
               "the smallest size class must be aligned for any type");

struct region {
	uint64_t magic;      /* REGION_MAGIC */
	struct region *next; /* the next region of the same list; set before publication */
	unsigned char *data; /* page-aligned, data_len bytes; the header page precedes it */
	size_t data_len;
	size_t slot_size; /* a size class, or data_len for a large region */
	size_t nslots;    /* data_len / slot_size; 1 for a large region */
	bool kernel_wipes; /* MADV_WIPEONFORK took: the kernel zeroes data in every child */
	bool dontdump;     /* MADV_DONTDUMP took */
	uint64_t used[];   /* atomic; bit i of word i / 64: slot i is allocated */
};

static struct region *lists[NCLASSES + 1];

static size_t page_size(void)
{
	static size_t cached;
	/* Relaxed: every thread computes the same value; the cache only saves the call. */
	size_t size = __atomic_load_n(&cached, __ATOMIC_RELAXED);

	if (size == 0) {
		size = system_page_size();
		__atomic_store_n(&cached, size, __ATOMIC_RELAXED);
	}
	return size;
}

/* Zero n bytes in a way that no compiler may drop as a dead store. */
static void zero(void *p, size_t n)
{
	memset(p, 0, n);
	__asm__ __volatile__("" : : "r"(p) : "memory");
}

static size_t bitmap_words(size_t nslots)
{
	return (nslots + 63) / 64;
}

static uint64_t slot_bit(size_t slot)
{
	return UINT64_C(1) << (slot % 64);
}

/*
 * Map a region with slot 0 already claimed (it is the caller's block), and push it onto
 * `list`. NULL with errno ENOMEM when no memory can be mapped, or when nothing would zero the
 * region in a child (neither MADV_WIPEONFORK nor a registered atfork handler, on a system
 * that forks).
 */
static struct region *new_region(int list, size_t slot_size, size_t data_len)
{
	size_t page = page_size();
	size_t nslots = data_len / slot_size;
	size_t words = bitmap_words(nslots);

	if (sizeof(struct region) + words * sizeof(uint64_t) > page) {
		errno = ENOMEM; /* cannot happen with SMALL_DATA <= 128 pages */
		return NULL;
	}
	/* Sets up fork detection (the atfork handler) before any region can be published. */
	unsigned detection = wof_fork_detection();
	unsigned char *map = pages_map(page + data_len);
	if (!map) {
		errno = ENOMEM;
		return NULL;
	}
	struct region *r = (struct region *)map;
	unsigned char *data = map + page;

	r->kernel_wipes = wof_internal_wipe_on_fork(data, data_len);
	if (WOF_HAVE_FORK && !r->kernel_wipes && !(detection & WOF_FORK_DETECT_ATFORK)) {
		pages_unmap(map, page + data_len);
		errno = ENOMEM;
		return NULL;
	}
	r->dontdump = pages_dontdump(data, data_len);
	r->magic = REGION_MAGIC;
	r->data = data;
	r->data_len = data_len;
	r->slot_size = slot_size;
	r->nslots = nslots;
	/* The mapping is zero: every slot is free. Bits past the last slot never are. */
	if (nslots % 64)
		r->used[words - 1] = ~(UINT64_C(0)) << (nslots % 64);
	r->used[0] |= slot_bit(0);
	/* For a TSan-built program: mmap counts as a write of every byte by this thread, which
	 * a thread that claims a slot here must be ordered after (claim_slot). */
	wof_internal_tsan_release(r);

	/* Relaxed: the CAS below publishes; a failed one hands back the head to retry with. */
	struct region *head = __atomic_load_n(&lists[list], __ATOMIC_RELAXED);
	do
		r->next = head;
	/* Release: the header and the zero data come with the region; pairs with the acquire
	 * loads of the heads (first_region). */
	while (!__atomic_compare_exchange_n(&lists[list], &head, r, false, __ATOMIC_RELEASE,
	                                    __ATOMIC_RELAXED));
	return r;
}

static struct region *first_region(int list)
{
	/* Acquire: pairs with the release CAS of new_region: the header is complete. */
	return __atomic_load_n(&lists[list], __ATOMIC_ACQUIRE);
}

/* Claim a free slot of r: its index, or SIZE_MAX when all are taken. */
static size_t claim_slot(struct region *r)
{
	size_t words = bitmap_words(r->nslots);

	for (size_t w = 0; w < words; w++) {
		/* Relaxed: only a hint; the CAS decides. */
		uint64_t bits = __atomic_load_n(&r->used[w], __ATOMIC_RELAXED);
		while (bits != UINT64_MAX) {
			uint64_t bit = ~bits & (bits + 1); /* the lowest clear bit */
			/* Acquire: pairs with the release in wof_secret_free, so the zeroing of the
			 * slot (and its last owner's use) happen-before the new owner's. */
			if (__atomic_compare_exchange_n(&r->used[w], &bits, bits | bit, false,
			                                __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) {
				wof_internal_tsan_acquire(r); /* after the region's mapping */
				return w * 64 + (size_t)__builtin_ctzll(bit);
			}
		}
	}
	return SIZE_MAX;
}

static void *alloc_small(int list, size_t slot_size)
{
	for (struct region *r = first_region(list); r; r = r->next) {
		size_t slot = claim_slot(r);
		if (slot != SIZE_MAX)
			return r->data + slot * slot_size;
	}
	struct region *r = new_region(list, slot_size, SMALL_DATA > page_size() ? SMALL_DATA
	                                                                        : page_size());
	return r ? r->data : NULL;
}

static void *alloc_large(size_t data_len)
{
	/* A free region of at least data_len and at most twice that; else a new one. */
	for (struct region *r = first_region(LARGE); r; r = r->next)
		if (r->data_len >= data_len && r->data_len / 2 <= data_len && claim_slot(r) == 0)
			return r->data;
	struct region *r = new_region(LARGE, data_len, data_len);
	return r ? r->data : NULL;
}

WOF_API void *wof_secret_alloc(size_t size)
{
	int saved_errno = errno;
	size_t page = page_size();
	void *p;

	if (size == 0) {
		errno = EINVAL;
		return NULL;
	}
	if (size <= ((size_t)1 << MAX_CLASS_SHIFT)) {
		int shift = MIN_CLASS_SHIFT;
		while (((size_t)1 << shift) < size)
			shift++;
		p = alloc_small(shift - MIN_CLASS_SHIFT, (size_t)1 << shift);
	} else {
		/* Whole pages, plus the header page: both roundings must fit in a size_t. */
		if (size > SIZE_MAX - 2 * page) {
			errno = ENOMEM;
			return NULL;
		}
		p = alloc_large((size + page - 1) / page * page);
	}
	if (!p)
		return NULL; /* errno says why */
	wof_internal_tsan_acquire(p);
	wof_internal_restore_errno(saved_errno);
	return p;
}

/*
 * A pointer that is not a live block. Debug builds stop there, loudly, as a corrupt once does
 * (src/once.c); release builds refuse with EINVAL and change nothing.
 */
static void misuse(const void *p, const char *what)
{
#ifndef NDEBUG
	fprintf(stderr, "wof: wof_secret_free(%p): %s\n", p, what);
	abort();
#else
	(void)p;
	(void)what;
	errno = EINVAL;
#endif
}

/* The region whose data holds p, or NULL. */
static struct region *region_of(const void *p)
{
	uintptr_t a = (uintptr_t)p;

	for (int list = 0; list <= LARGE; list++)
		for (struct region *r = first_region(list); r; r = r->next)
			if (a >= (uintptr_t)r->data && a - (uintptr_t)r->data < r->data_len)
				return r;
	return NULL;
}

WOF_API void wof_secret_free(void *p)
{
	if (!p)
		return;

	struct region *r = region_of(p);
	if (!r) {
		misuse(p, "not a block from wof_secret_alloc() (outside every secret region)");
		return;
	}
	size_t offset = (size_t)((unsigned char *)p - r->data);
	if (offset % r->slot_size != 0) {
		misuse(p, "not a block from wof_secret_alloc() (inside one)");
		return;
	}
	size_t slot = offset / r->slot_size;
	uint64_t *word = &r->used[slot / 64];
	/* Relaxed: only catches the usual double free early; the fetch-and below decides. */
	if (!(__atomic_load_n(word, __ATOMIC_RELAXED) & slot_bit(slot))) {
		misuse(p, "double free (the block is not allocated)");
		return;
	}

	int saved_errno = errno;
	zero(p, r->slot_size);
	if (r->nslots == 1) /* large: give the pages back, keep the range */
		pages_discard(p, r->slot_size);
	wof_internal_restore_errno(saved_errno);

	wof_internal_tsan_release(p);
	/* Release: pairs with the acquire CAS of claim_slot: the zeroing above happens-before the
	 * block's next owner. */
	uint64_t old = __atomic_fetch_and(word, ~slot_bit(slot), __ATOMIC_RELEASE);
	if (!(old & slot_bit(slot)))
		misuse(p, "double free (freed by two threads at once)");
}

void wof_internal_secret_wipe(bool all)
{
	/* Async-signal-safe: loads and memset; the lists are walked as a fork() child's handler
	 * finds them, consistent at any instant (see the top of this file). */
	for (int list = 0; list <= LARGE; list++) {
		for (struct region *r = first_region(list); r; r = r->next) {
			if (!all && r->kernel_wipes)
				continue;
			/* A free large block is zero and its pages are with the kernel: leave them. */
			if (list == LARGE && !(__atomic_load_n(&r->used[0], __ATOMIC_RELAXED) & 1))
				continue;
			zero(r->data, r->data_len);
		}
	}
}

/* ---- WOF_LAZY_SECRET ------------------------------------------------------------------- */

struct lazy_secret {
	void *slot;
	size_t size;
	int (*init)(void *);
	bool ran;
};

static int lazy_secret_run(void *ctx)
{
	struct lazy_secret *lazy = ctx;

	lazy->ran = true;
	zero(lazy->slot, lazy->size); /* a failed or cancelled init may have left bytes behind */
	return lazy->init(lazy->slot);
}

WOF_API WOF_COLD void *wof_internal_lazy_secret_slow(void **blockp, void *unset,
                                                     size_t block_size, size_t value_offset,
                                                     size_t value_size, int (*init)(void *))
{
	/* Acquire: pairs with the release CAS below, by which some thread published the block. */
	void *block = __atomic_load_n(blockp, __ATOMIC_ACQUIRE);

	if (block == unset) {
		void *mine = wof_secret_alloc(block_size);
		if (!mine) {
			errno = ENOMEM;
			return NULL;
		}
		wof_internal_tsan_release(blockp);
		/* Release: publishes the zeroed block; pairs with the acquire loads of the
		 * accessor and above. Acquire on failure: the winner's block, likewise. */
		if (__atomic_compare_exchange_n(blockp, &block, mine, false, __ATOMIC_RELEASE,
		                                __ATOMIC_ACQUIRE))
			block = mine;
		else
			wof_secret_free(mine); /* another thread published first; use its block */
	}

	struct lazy_secret lazy = { (unsigned char *)block + value_offset, value_size, init, false };
	int rc = wof_internal_once_slow(block, lazy_secret_run, &lazy, NULL, NULL);

	if (rc == 0)
		return lazy.slot;
	/* A failed init reports through errno; a code with no init run is wof's own (EDEADLK). */
	if (!lazy.ran)
		errno = rc;
	return NULL;
}
