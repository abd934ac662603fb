/* SPDX-License-Identifier: MIT */
/*
 * WOF_LAZY_STATIC keeps docs/api.md's typed lazy static clauses: a 4 KiB value stored inline whose
 * init always receives a zero-filled slot (first time, after a failed init that scribbled on
 * it, after a cancelled one, and in a forked child whose parent filled it), a stable pointer,
 * one init among racing threads, NULL for a failed init and a retry on the next call, several
 * statics in one file, EDEADLK on re-entry, and errno left alone on success.
 */
#include <criterion/criterion.h>
#include <semaphore.h>

#include "wof-test-values.h"

struct big {
	unsigned char bytes[4096];
};


/* ---- a 4 KiB static --------------------------------------------------------------------- */

static unsigned big_inits;
static unsigned big_dirty_inits; /* inits that were handed a slot that was not all zero */

static int big_init(struct big *slot)
{
	big_inits++;
	if (!th_all_bytes(slot, sizeof *slot, 0))
		big_dirty_inits++;
	memset(slot, 0xB1, sizeof *slot);
	return 0;
}

WOF_LAZY_STATIC(struct big, big, big_init);

Test(lazy_static, init_gets_a_zero_filled_4k_slot_and_the_pointer_is_stable)
{
	errno = TH_ERRNO_SENTINEL;
	struct big *p = big();

	cr_assert_not_null(p);
	cr_assert_eq(errno, TH_ERRNO_SENTINEL);
	cr_assert_eq(big_inits, 1);
	cr_assert_eq(big_dirty_inits, 0, "init must receive a zero-filled slot");
	cr_assert(th_all_bytes(p, sizeof *p, 0xB1), "the pointer is the slot init filled");
	for (int i = 0; i < 1000; i++)
		cr_assert_eq(big(), p);
	cr_assert_eq(errno, TH_ERRNO_SENTINEL);
	cr_assert_eq(big_inits, 1);
}

/* ---- several statics in one file, each with its own once ------------------------------------ */

struct pair {
	int a;
	double b;
};

static unsigned small_inits, pair_inits;

static int small_init(int *slot)
{
	small_inits++;
	if (*slot != 0)
		return EINVAL;
	*slot = 7;
	return 0;
}

static int pair_init(struct pair *slot)
{
	pair_inits++;
	if (slot->a != 0 || slot->b != 0.0)
		return EINVAL;
	slot->a = 8;
	slot->b = 9.5;
	return 0;
}

WOF_LAZY_STATIC(int, small, small_init);
WOF_LAZY_STATIC(struct pair, pair, pair_init);

Test(lazy_static, several_statics_in_one_file_are_independent)
{
	int *s = small();

	cr_assert_not_null(s);
	cr_assert_eq(*s, 7);
	cr_assert_eq(small_inits, 1);
	cr_assert_eq(pair_inits, 0, "one static's use does not init another");
	cr_assert_eq(big_inits, 0);
	struct pair *p = pair();
	cr_assert_not_null(p);
	cr_assert_eq(p->a, 8);
	cr_assert_eq(p->b, 9.5);
	cr_assert_neq((void *)s, (void *)p);
	cr_assert_eq(small(), s);
	cr_assert_eq(pair(), p);
	cr_assert_eq(small_inits, 1);
	cr_assert_eq(pair_inits, 1);
	cr_assert_eq(big_inits, 0);
}

/* ---- racing threads ------------------------------------------------------------------------ */

#define RACE_STATIC(n)                                                                            \
	static unsigned race##n##_inits, race##n##_dirty;                                         \
	static int race##n##_init(struct big *slot)                                               \
	{                                                                                         \
		__atomic_fetch_add(&race##n##_inits, 1, __ATOMIC_RELAXED);                        \
		if (!th_all_bytes(slot, sizeof *slot, 0))                                            \
			race##n##_dirty++;                                                        \
		th_nap(2000);                                                                   \
		memset(slot, n, sizeof *slot);                                                    \
		return 0;                                                                         \
	}                                                                                         \
	WOF_LAZY_STATIC(struct big, race##n, race##n##_init)

RACE_STATIC(2);
RACE_STATIC(4);
RACE_STATIC(8);
RACE_STATIC(16);
RACE_STATIC(32);

struct race {
	struct big *(*accessor)(void);
	struct big *got[32];
	bool whole[32]; /* saw all of init's bytes */
	unsigned char fill;
};

static void racer(void *arg, int i)
{
	struct race *race = arg;
	struct big *p = race->accessor();

	race->got[i] = p;
	race->whole[i] = p && th_all_bytes(p, sizeof *p, race->fill);
}

static void run_race(int n, struct big *(*accessor)(void), unsigned *inits, unsigned *dirty)
{
	struct race race = { .accessor = accessor, .fill = (unsigned char)n };

	th_barrier_race(n, racer, &race);
	cr_assert_eq(*inits, 1, "%d threads: %u inits", n, *inits);
	cr_assert_eq(*dirty, 0);
	for (int i = 0; i < n; i++) {
		cr_assert_not_null(race.got[i]);
		cr_assert_eq(race.got[i], race.got[0], "%d threads: one pointer for all", n);
		cr_assert(race.whole[i], "%d threads: thread %d sees all of init's writes", n, i);
	}
	cr_assert_eq(accessor(), race.got[0]);
}

Test(lazy_static, racing_threads_run_one_init, .timeout = 30)
{
	run_race(2, race2, &race2_inits, &race2_dirty);
	run_race(4, race4, &race4_inits, &race4_dirty);
	run_race(8, race8, &race8_inits, &race8_dirty);
	run_race(16, race16, &race16_inits, &race16_dirty);
	run_race(32, race32, &race32_inits, &race32_dirty);
}

/* ---- failing init ----------------------------------------------------------------------- */

static unsigned flaky_inits, flaky_dirty_inits; /* flaky_failures_left: wof-test-values.h */

static int flaky_slot_init(struct big *slot)
{
	__atomic_fetch_add(&flaky_inits, 1, __ATOMIC_RELAXED);
	if (!th_all_bytes(slot, sizeof *slot, 0))
		flaky_dirty_inits++;
	if (flaky_failures_left > 0) {
		flaky_failures_left--;
		memset(slot, 0xEE, sizeof *slot); /* scribble, then fail */
		errno = EIO;
		return -1;
	}
	memset(slot, 0x11, sizeof *slot);
	return 0;
}

WOF_LAZY_STATIC(struct big, flaky, flaky_slot_init);

Test(lazy_static, failed_init_is_null_and_retried_with_a_zeroed_slot)
{
	flaky_failures_left = 2;
	errno = TH_ERRNO_SENTINEL;
	cr_assert_null(flaky());
	cr_assert_eq(errno, EIO, "errno is what init left");
	errno = TH_ERRNO_SENTINEL;
	cr_assert_null(flaky());
	cr_assert_eq(errno, EIO);
	errno = TH_ERRNO_SENTINEL;
	struct big *p = flaky();
	cr_assert_not_null(p);
	cr_assert_eq(errno, TH_ERRNO_SENTINEL);
	cr_assert_eq(flaky_inits, 3);
	cr_assert_eq(flaky_dirty_inits, 0, "every retry gets a zero-filled slot");
	cr_assert(th_all_bytes(p, sizeof *p, 0x11));
	cr_assert_eq(flaky(), p);
	cr_assert_eq(flaky_inits, 3);
}

/* ---- a first init that fails, or is cancelled, while others wait ------------------------- */

/*
 * The first init scribbles on its slot, says so, then fails once the waiters have had time to
 * park, or (contended_cancel) naps in a cancellation point until cancelled. Later inits fill
 * the slot with 0x22. Each test runs in a process of its own: the static is fresh in each.
 */
static sem_t contended_started;
static bool contended_cancel;
static unsigned contended_inits, contended_dirty;

static int contended_init(struct big *slot)
{
	unsigned n = __atomic_fetch_add(&contended_inits, 1, __ATOMIC_RELAXED);

	if (!th_all_bytes(slot, sizeof *slot, 0))
		contended_dirty++;
	if (n > 0) {
		memset(slot, 0x22, sizeof *slot);
		return 0;
	}
	memset(slot, 0xEE, sizeof *slot);
	sem_post(&contended_started);
	while (contended_cancel)
		th_cancel_nap(); /* a cancellation point */
	th_nap(50000);
	errno = EAGAIN;
	return -1;
}

WOF_LAZY_STATIC(struct big, contended, contended_init);

static void *contended_thread(void *arg)
{
	(void)arg;
	return contended();
}

/* The first caller's init fails or is cancelled; of the 4 callers waiting, one runs an init,
 * which is handed a zeroed slot, and all get its value. */
static void run_contended(bool cancel)
{
	pthread_t first, waiters[4];
	void *ret;

	contended_cancel = cancel;
	sem_init(&contended_started, 0, 0);
	cr_assert_eq(pthread_create(&first, NULL, contended_thread, NULL), 0);
	sem_wait(&contended_started);
	for (int i = 0; i < 4; i++)
		cr_assert_eq(pthread_create(&waiters[i], NULL, contended_thread, NULL), 0);
	if (cancel) {
		th_nap(30000);
		cr_assert_eq(pthread_cancel(first), 0);
	}
	pthread_join(first, &ret);
	cr_assert_eq(ret, cancel ? PTHREAD_CANCELED : NULL);
	for (int i = 0; i < 4; i++) {
		pthread_join(waiters[i], &ret);
		cr_assert_not_null(ret);
		cr_assert(th_all_bytes(ret, sizeof(struct big), 0x22));
	}
	cr_assert_eq(contended_inits, 2);
	cr_assert_eq(contended_dirty, 0, "the waiter's init got a zeroed slot");
	sem_destroy(&contended_started);
}

Test(lazy_static, waiter_takes_over_a_failed_init_with_a_zeroed_slot, .timeout = 20)
{
	run_contended(false);
}

Test(lazy_static, cancelled_init_stores_nothing_waiter_gets_a_zeroed_slot, .timeout = 20)
{
	run_contended(true);
}

/* ---- re-entry -------------------------------------------------------------------------------- */

static void *reentry_got;
static int reentry_errno;
static int *reentry_other;

static int reentrant_init(int *slot);
WOF_LAZY_STATIC(int, reentrant, reentrant_init);

static int reentrant_init(int *slot)
{
	errno = TH_ERRNO_SENTINEL;
	reentry_got = reentrant();
	reentry_errno = errno;
	reentry_other = small(); /* another static is fine */
	*slot = 5;
	return 0;
}

Test(lazy_static, reentry_is_null_with_edeadlk, .timeout = 10)
{
	int *p = reentrant();

	cr_assert_not_null(p);
	cr_assert_eq(*p, 5);
	cr_assert_null(reentry_got);
	cr_assert_eq(reentry_errno, EDEADLK);
	cr_assert_not_null(reentry_other);
	cr_assert_eq(*reentry_other, 7);
	cr_assert_eq(reentrant(), p);
}

/* ---- fork ------------------------------------------------------------------------------------- */

static unsigned fork_inits, fork_dirty;

static int fork_init(struct big *slot)
{
	fork_inits++;
	if (!th_all_bytes(slot, sizeof *slot, 0))
		fork_dirty++;
	/* A byte pattern that tells processes apart. */
	memset(slot, (unsigned char)(getpid() | 1), sizeof *slot);
	return 0;
}

WOF_LAZY_STATIC(struct big, per_process, fork_init);

static struct big *parent_slot;

static int child_reinitialises(void *arg)
{
	(void)arg;
	unsigned before = fork_inits;

	errno = TH_ERRNO_SENTINEL;
	struct big *p = per_process();
	TH_CHILD_CHECK(p == parent_slot); /* the same static storage */
	TH_CHILD_CHECK(errno == TH_ERRNO_SENTINEL);
	TH_CHILD_CHECK(fork_inits == before + 1);
	TH_CHILD_CHECK(fork_dirty == 0); /* the parent's bytes were zeroed before init */
	TH_CHILD_CHECK(th_all_bytes(p, sizeof *p, (unsigned char)(getpid() | 1)));
	TH_CHILD_CHECK(per_process() == p);
	TH_CHILD_CHECK(fork_inits == before + 1);
	return 0;
}

static int child_and_grandchild(void *arg)
{
	enum th_fork_kind how = *(enum th_fork_kind *)arg;

	TH_CHILD_CHECK(child_reinitialises(NULL) == 0);
	TH_CHILD_CHECK(th_in_child(how, child_reinitialises, NULL) == 0);
	TH_CHILD_CHECK(th_all_bytes(per_process(), sizeof(struct big), (unsigned char)(getpid() | 1)));
	return 0;
}

TH_FORK_TEST(lazy_static, fork_child_runs_init_again_in_a_zeroed_slot, .timeout = 30)
{
	parent_slot = per_process();
	cr_assert_not_null(parent_slot);
	unsigned char mine = (unsigned char)(getpid() | 1);
	TH_ASSERT_CHILD(how, child_reinitialises, NULL);
	TH_ASSERT_CHILD(how, child_and_grandchild, &how);
	cr_assert_eq(per_process(), parent_slot);
	cr_assert(th_all_bytes(parent_slot, sizeof *parent_slot, mine), "the parent keeps its bytes");
	cr_assert_eq(fork_inits, 1);
}
