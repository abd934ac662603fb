/* SPDX-License-Identifier: MIT */
/*
 * Parking: the only file in wof that knows how a thread sleeps.
 *
 * Callers park on a 64-bit once word whose low 32 bits are the state, until woken or until the
 * process turns out to be a child (src/wof-private.h says why). With futexes (Linux,
 * WOF_PARK_FUTEX) a sleeper waits on an event count in the fork page, which every child reads
 * as 0, after checking the word: no timer. On Windows (WOF_PARK_WAITONADDRESS) the state half
 * of the word -- the first or second 4 bytes depending on byte order -- goes to WaitOnAddress,
 * which compares it and sleeps for WOF_INTERNAL_PARK_MS at most, and WakeByAddressAll (Windows
 * 8 and later, -lsynchronization); no pthreads there. Elsewhere, and under -Dparking=condvar, a
 * fixed table of mutex + condition variable buckets, hashed by address, does the same job,
 * with the same bound.
 *
 * A condvar bucket is stamped with the generation of the process that initialised it. A child
 * may inherit a bucket whose mutex was held by a thread it does not have, so a bucket stamped
 * by another generation is initialised afresh before use:
 *
 *   stamp == gen << 1 | 1   ready in this process
 *   stamp == gen << 1       being initialised by a thread of this process; others yield
 *   anything else           left by an ancestor (or never used): claim it with a CAS
 */
#include <errno.h>
#include <limits.h>

#include "wof-private.h"

#if WOF_PARK_WAITONADDRESS
/* The half of the once word that holds the state, which the kernel compares. */
static uint32_t *state_half(uint64_t *word)
{
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	return (uint32_t *)word + 1;
#else
	return (uint32_t *)word;
#endif
}
#endif

#if WOF_PARK_FUTEX
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* Spelled out: musl-gcc does not search the kernel's headers. */
#define WOF_FUTEX_WAIT 0
#define WOF_FUTEX_WAKE 1
#define WOF_FUTEX_PRIVATE_FLAG 128

#if !defined(SYS_futex) && defined(SYS_futex_time64)
#define SYS_futex SYS_futex_time64
#endif

/*
 * Threads sleep on an event count of their bucket, not on the once word: the counts live in the
 * fork page (WOF_INTERNAL_PARK_AREA), which reads 0 in every child -- wiped by the kernel, or
 * cleared by the atfork handler before the child runs on. A sleeper's expected count is never
 * 0, so a sleep that a fork from a signal handler carried into a child, and that the kernel
 * restarts there (SA_RESTART), ends at once; no sleep needs a timer. A bucket is a cache line;
 * onces that share one wake each other now and then, and re-read their words.
 */
#define BUCKETS (WOF_INTERNAL_PARK_AREA_SIZE / 64)

/* ThreadSanitizer runs a thread's asynchronous signal handlers only once the thread leaves a
 * blocking call that TSan does not intercept, such as this raw futex wait: in a libwof built
 * with it, a sleep is bounded, so that handlers run. */
#if defined(__SANITIZE_THREAD__)
#define PARK_BOUNDED 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define PARK_BOUNDED 1
#endif
#endif
#ifndef PARK_BOUNDED
#define PARK_BOUNDED 0
#endif

static uint32_t *count_of(const uint64_t *word)
{
	uintptr_t h = (uintptr_t)word >> 3;
	unsigned char *area = (unsigned char *)&wof_internal_fork + WOF_INTERNAL_PARK_AREA;

	return (uint32_t *)(void *)(area + ((h ^ (h >> 7) ^ (h >> 13)) % BUCKETS) * 64);
}

void wof_internal_park(uint64_t *word, uint64_t expected)
{
	int saved_errno = errno;
	uint32_t *count = count_of(word);
	/* Acquire: pairs with unpark_all's release. A count that has moved on past a wake-up
	 * brings that waker's word with it, so the word below is not the one it replaced. */
	uint32_t seen = __atomic_load_n(count, __ATOMIC_ACQUIRE);

	if (seen == 0) { /* first sleeper on this bucket in this process: make the count nonzero */
		/* Relaxed: a loser finds the winner's value; either way it is read again below. */
		__atomic_compare_exchange_n(count, &seen, 1, false, __ATOMIC_RELAXED,
		                            __ATOMIC_RELAXED);
		seen = __atomic_load_n(count, __ATOMIC_ACQUIRE); /* as above */
	}
	/* Relaxed: the acquire above orders it; a changed word means no sleep at all. And a
	 * process that is not the one `expected` was read in (a fork from a signal handler came
	 * before the count was read, so the child's count did not help) does not sleep either. */
	if (__atomic_load_n(word, __ATOMIC_RELAXED) == expected && seen != 0 &&
	    wof_internal_generation_peek() == (uint32_t)(expected >> 32)) {
		struct timespec bound = { 0, WOF_INTERNAL_PARK_MS * 1000000L };
		/* EAGAIN (the count moved on), EINTR, the bound and wake-ups all mean: re-read
		 * the word. */
		syscall(SYS_futex, count, WOF_FUTEX_WAIT | WOF_FUTEX_PRIVATE_FLAG, seen,
		        PARK_BOUNDED ? &bound : NULL, NULL, 0);
	}
	wof_internal_restore_errno(saved_errno);
}

void wof_internal_unpark_all(uint64_t *word)
{
	int saved_errno = errno;
	uint32_t *count = count_of(word);

	/* Release: pairs with park's acquire load (the caller changed the word before this).
	 * Never back to 0 from a sleeper's value: 0 is what a child reads. */
	if (__atomic_add_fetch(count, 1, __ATOMIC_RELEASE) == 0)
		__atomic_add_fetch(count, 1, __ATOMIC_RELAXED); /* as above */
	syscall(SYS_futex, count, WOF_FUTEX_WAKE | WOF_FUTEX_PRIVATE_FLAG, INT_MAX, NULL, NULL, 0);
	wof_internal_restore_errno(saved_errno);
}

#elif WOF_PARK_WAITONADDRESS
#include <windows.h>

/*
 * WaitOnAddress returns when the 4 bytes differ from `expected`'s state, on a wake-up, a
 * spurious wake-up or the timeout; callers re-read the word whichever it was. Both calls keep
 * the thread's last-error value as well as errno: the caller's GetLastError() is not ours.
 */
void wof_internal_park(uint64_t *word, uint64_t expected)
{
	int saved_errno = errno;
	DWORD saved_error = GetLastError();
	uint32_t state = (uint32_t)expected;

	(void)WaitOnAddress(state_half(word), &state, sizeof state, WOF_INTERNAL_PARK_MS);
	SetLastError(saved_error);
	wof_internal_restore_errno(saved_errno);
}

void wof_internal_unpark_all(uint64_t *word)
{
	int saved_errno = errno;
	DWORD saved_error = GetLastError();

	WakeByAddressAll(state_half(word));
	SetLastError(saved_error);
	wof_internal_restore_errno(saved_errno);
}

#else /* condition variables */
#include <pthread.h>
#include <sched.h>
#include <time.h>

#define BUCKETS 64

static struct bucket {
	uint64_t stamp;
	pthread_mutex_t mutex;
	pthread_cond_t cond;
} buckets[BUCKETS];

static struct bucket *bucket_of(uint64_t *word)
{
	uintptr_t h = (uintptr_t)word >> 3;
	struct bucket *b = &buckets[(h ^ (h >> 7) ^ (h >> 13)) % BUCKETS];
	uint64_t ready = (uint64_t)wof_internal_generation() << 1 | 1;

	for (;;) {
		/* Acquire: pairs with the release that marks the bucket ready. */
		uint64_t stamp = __atomic_load_n(&b->stamp, __ATOMIC_ACQUIRE);
		if (stamp == ready) {
			wof_internal_tsan_acquire(b); /* the mutex's init, for a TSan consumer */
			return b;
		}
		if (stamp == (ready & ~(uint64_t)1)) {
			sched_yield(); /* a sibling thread is initialising it */
			continue;
		}
		/* Relaxed: claiming publishes nothing; the ready store below does. */
		if (__atomic_compare_exchange_n(&b->stamp, &stamp, ready & ~(uint64_t)1, false,
		                                __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
			pthread_condattr_t attr;
			pthread_condattr_init(&attr);
			/* Monotonic where offered: a clock step neither stretches nor ends a wait. */
			(void)pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
			pthread_mutex_init(&b->mutex, NULL);
			pthread_cond_init(&b->cond, &attr);
			pthread_condattr_destroy(&attr);
			wof_internal_tsan_release(b);
			/* Release: pairs with the acquire above; the mutex is usable once seen. */
			__atomic_store_n(&b->stamp, ready, __ATOMIC_RELEASE);
			return b;
		}
	}
}

void wof_internal_park(uint64_t *word, uint64_t expected)
{
	int saved_errno = errno;
	struct bucket *b = bucket_of(word);
	struct timespec deadline;
	int cancel_state;

	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_nsec += WOF_INTERNAL_PARK_MS * 1000000L;
	if (deadline.tv_nsec >= 1000000000L) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000L;
	}

	/* pthread_cond_wait is a cancellation point and FUTEX_WAIT is not: a waiter cancelled
	 * there would die holding the bucket mutex. Parking is never a cancellation point. */
	pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &cancel_state);
	pthread_mutex_lock(&b->mutex);
	/* Relaxed: the mutex orders this check against unpark_all; callers re-read with acquire.
	 * One wait only: a broadcast for another word in the bucket is a spurious wake-up. */
	if ((uint32_t)__atomic_load_n(word, __ATOMIC_RELAXED) == (uint32_t)expected)
		pthread_cond_timedwait(&b->cond, &b->mutex, &deadline);
	pthread_mutex_unlock(&b->mutex);
	pthread_setcancelstate(cancel_state, NULL);
	wof_internal_restore_errno(saved_errno);
}

void wof_internal_unpark_all(uint64_t *word)
{
	int saved_errno = errno;
	struct bucket *b = bucket_of(word);

	/* Taking the mutex after the word changed means no parker is between its check and its
	 * wait: it either saw the new word or is already waiting and gets the broadcast. */
	pthread_mutex_lock(&b->mutex);
	pthread_cond_broadcast(&b->cond);
	pthread_mutex_unlock(&b->mutex);
	wof_internal_restore_errno(saved_errno);
}
#endif
