/* SPDX-License-Identifier: MIT */
/*
 * wof_once_lock_t keeps every clause of docs/api.md's OnceLock section: set-once storage with
 * EEXIST/EINVAL, take, get_or_init with exactly one init among racing threads, failed inits
 * retried (by a waiting caller too), get_or_try_init's error paths, wait, EDEADLK on re-entry,
 * cancellation inside init, errno left alone on success, all-zero locks, and a forked child
 * seeing the lock uninitialised while its parent keeps the value.
 */
#include <criterion/criterion.h>
#include <semaphore.h>
#include <stdlib.h>

#include "wof-test.h"

static int value_a, value_b, value_c;

static unsigned init_calls;

static void *init_a(void *arg)
{
	(void)arg;
	__atomic_fetch_add(&init_calls, 1, __ATOMIC_RELAXED);
	return &value_a;
}

static void *init_b(void *arg)
{
	(void)arg;
	__atomic_fetch_add(&init_calls, 1, __ATOMIC_RELAXED);
	return &value_b;
}

/* Returns its argument: the value is whatever the caller passed. */
static void *init_arg(void *arg)
{
	__atomic_fetch_add(&init_calls, 1, __ATOMIC_RELAXED);
	return arg;
}

static void *init_fails_enomem(void *arg)
{
	(void)arg;
	__atomic_fetch_add(&init_calls, 1, __ATOMIC_RELAXED);
	errno = ENOMEM;
	return NULL;
}

static void *init_must_not_run(void *arg)
{
	(void)arg;
	cr_assert_fail("init ran although a value was set");
	return NULL;
}

/* ---- get / set / try_insert / take ------------------------------------------------------- */

Test(once_lock, get_on_empty_is_null_errno_unchanged)
{
	wof_once_lock_t lock = WOF_ONCE_LOCK_INIT;

	errno = TH_ERRNO_SENTINEL;
	cr_assert_null(wof_once_lock_get(&lock));
	cr_assert_eq(errno, TH_ERRNO_SENTINEL);
	cr_assert_null(wof_once_lock_get(&lock));
	cr_assert_eq(errno, TH_ERRNO_SENTINEL);
}

Test(once_lock, set_stores_and_get_returns_it)
{
	wof_once_lock_t lock = WOF_ONCE_LOCK_INIT;

	errno = TH_ERRNO_SENTINEL;
	cr_assert_eq(wof_once_lock_set(&lock, &value_a), 0);
	cr_assert_eq(errno, TH_ERRNO_SENTINEL);
	cr_assert_eq(wof_once_lock_get(&lock), &value_a);
	cr_assert_eq(errno, TH_ERRNO_SENTINEL);
	cr_assert_eq(wof_once_lock_get_or_init(&lock, init_must_not_run, NULL), &value_a);
	cr_assert_eq(wof_once_lock_wait(&lock), &value_a);
	cr_assert_eq(errno, TH_ERRNO_SENTINEL);
}

Test(once_lock, set_twice_is_eexist_value_unchanged)
{
	wof_once_lock_t lock = WOF_ONCE_LOCK_INIT;
	int *mine = malloc(sizeof *mine);

	cr_assert_eq(wof_once_lock_set(&lock, &value_a), 0);
	errno = TH_ERRNO_SENTINEL;
	cr_assert_eq(wof_once_lock_set(&lock, mine), EEXIST);
	cr_assert_eq(errno, TH_ERRNO_SENTINEL, "set returns its error, errno is left alone");
	cr_assert_eq(wof_once_lock_get(&lock), &value_a);
	/* The caller still owns `mine`: wof neither stored nor freed it. */
	*mine = 42;
	free(mine);
	cr_assert_eq(wof_once_lock_set(&lock, &value_a), EEXIST, "even the same value");
	cr_assert_eq(wof_once_lock_get(&lock), &value_a);
}

Test(once_lock, set_null_is_einval)
{
	wof_once_lock_t lock = WOF_ONCE_LOCK_INIT;

	errno = TH_ERRNO_SENTINEL;
	cr_assert_eq(wof_once_lock_set(&lock, NULL), EINVAL);
	cr_assert_eq(errno, TH_ERRNO_SENTINEL);
	cr_assert_null(wof_once_lock_get(&lock));
	cr_assert_eq(wof_once_lock_set(NULL, &value_a), EINVAL);
	cr_assert_eq(errno, TH_ERRNO_SENTINEL);
	/* Nothing was stored: a real value still goes in. */
	cr_assert_eq(wof_once_lock_set(&lock, &value_a), 0);
	cr_assert_eq(wof_once_lock_set(&lock, NULL), EINVAL);
	cr_assert_eq(wof_once_lock_get(&lock), &value_a);
}

Test(once_lock, try_insert_reports_the_current_value)
{
	wof_once_lock_t lock = WOF_ONCE_LOCK_INIT;
	void *current = &value_c;

	errno = TH_ERRNO_SENTINEL;
	cr_assert_eq(wof_once_lock_try_insert(&lock, &value_a, &current), 0);
	cr_assert_eq(current, &value_a);
	current = &value_c;
	cr_assert_eq(wof_once_lock_try_insert(&lock, &value_b, &current), EEXIST);
	cr_assert_eq(current, &value_a, "EEXIST hands back the value already there");
	cr_assert_eq(wof_once_lock_try_insert(&lock, &value_b, NULL), EEXIST);
	cr_assert_eq(wof_once_lock_try_insert(&lock, NULL, &current), EINVAL);
	cr_assert_eq(wof_once_lock_try_insert(NULL, &value_b, &current), EINVAL);
	cr_assert_eq(errno, TH_ERRNO_SENTINEL);
	cr_assert_eq(wof_once_lock_get(&lock), &value_a);
}

Test(once_lock, take_returns_the_value_and_empties)
{
	wof_once_lock_t lock = WOF_ONCE_LOCK_INIT;

	cr_assert_eq(wof_once_lock_set(&lock, &value_a), 0);
	errno = TH_ERRNO_SENTINEL;
	cr_assert_eq(wof_once_lock_take(&lock), &value_a);
	cr_assert_eq(errno, TH_ERRNO_SENTINEL);
	cr_assert_null(wof_once_lock_get(&lock));
	cr_assert_null(wof_once_lock_take(&lock));
	cr_assert_eq(errno, TH_ERRNO_SENTINEL);
	/* Empty again: set works, and so does a new init. */
	cr_assert_eq(wof_once_lock_set(&lock, &value_b), 0);
	cr_assert_eq(wof_once_lock_get(&lock), &value_b);
	cr_assert_eq(wof_once_lock_take(&lock), &value_b);
	cr_assert_eq(wof_once_lock_get_or_init(&lock, init_a, NULL), &value_a);
	cr_assert_eq(init_calls, 1);
	cr_assert_eq(wof_once_lock_get(&lock), &value_a);
	cr_assert_eq(errno, TH_ERRNO_SENTINEL);
}

Test(once_lock, take_on_empty_is_null_errno_unchanged)
{
	wof_once_lock_t lock = WOF_ONCE_LOCK_INIT;

	errno = TH_ERRNO_SENTINEL;
	cr_assert_null(wof_once_lock_take(&lock));
	cr_assert_eq(errno, TH_ERRNO_SENTINEL);
	cr_assert_null(wof_once_lock_take(NULL));
	cr_assert_eq(errno, EINVAL);
}

/* ---- get_or_init --------------------------------------------------------------------------- */

Test(once_lock, get_or_init_runs_init_once_with_its_arg)
{
	wof_once_lock_t lock = WOF_ONCE_LOCK_INIT;

	errno = TH_ERRNO_SENTINEL;
	cr_assert_eq(wof_once_lock_get_or_init(&lock, init_arg, &value_b), &value_b);
	cr_assert_eq(errno, TH_ERRNO_SENTINEL);
	cr_assert_eq(wof_once_lock_get_or_init(&lock, init_arg, &value_c), &value_b);
	cr_assert_eq(wof_once_lock_get_or_init(&lock, init_a, NULL), &value_b);
	cr_assert_eq(init_calls, 1);
	cr_assert_eq(wof_once_lock_get(&lock), &value_b);
	cr_assert_eq(wof_once_lock_set(&lock, &value_c), EEXIST);
	cr_assert_eq(errno, TH_ERRNO_SENTINEL);
}

struct race {
	wof_once_lock_t lock;
	pthread_barrier_t barrier;
	unsigned inits;
	bool slow;        /* init sleeps, so that the others park */
	int value;        /* what init "makes" */
	int made;         /* written by init, read by everyone after get_or_init */
	void *got[32];
	int seen[32];
	int set_rc[32];
};

struct racer {
	struct race *race;
	int index;
};

static void *race_init(void *arg)
{
	struct race *race = arg;

	__atomic_fetch_add(&race->inits, 1, __ATOMIC_RELAXED);
	if (race->slow)
		th_nap(2000);
	race->made = 0x5eed; /* plain write: get_or_init's ordering must publish it */
	return &race->value;
}

static void *racer_get_or_init(void *arg)
{
	struct racer *r = arg;

	pthread_barrier_wait(&r->race->barrier);
	r->race->got[r->index] = wof_once_lock_get_or_init(&r->race->lock, race_init, r->race);
	r->race->seen[r->index] = r->race->made;
	return NULL;
}

static void *racer_set(void *arg)
{
	struct racer *r = arg;
	static int values[32];

	pthread_barrier_wait(&r->race->barrier);
	r->race->set_rc[r->index] = wof_once_lock_set(&r->race->lock, &values[r->index]);
	r->race->got[r->index] = wof_once_lock_get(&r->race->lock);
	return NULL;
}

static void run_race(struct race *race, int n, void *(*fn)(void *))
{
	pthread_t threads[32];
	struct racer racers[32];

	pthread_barrier_init(&race->barrier, NULL, (unsigned)n);
	for (int i = 0; i < n; i++) {
		racers[i] = (struct racer){ race, i };
		cr_assert_eq(pthread_create(&threads[i], NULL, fn, &racers[i]), 0);
	}
	for (int i = 0; i < n; i++)
		pthread_join(threads[i], NULL);
	pthread_barrier_destroy(&race->barrier);
}

Test(once_lock, get_or_init_racing_threads_run_one_init, .timeout = 30)
{
	static const int counts[] = { 2, 3, 4, 8, 16, 32 };

	for (size_t c = 0; c < sizeof counts / sizeof counts[0]; c++) {
		int n = counts[c];
		for (int round = 0; round < 8; round++) {
			struct race race = { .lock = WOF_ONCE_LOCK_INIT, .slow = round % 2 };

			run_race(&race, n, racer_get_or_init);
			cr_assert_eq(race.inits, 1, "%d threads, round %d: %u inits", n, round,
			             race.inits);
			for (int i = 0; i < n; i++) {
				cr_assert_eq(race.got[i], &race.value, "%d threads: thread %d", n, i);
				cr_assert_eq(race.seen[i], 0x5eed, "init's writes are visible");
			}
			cr_assert_eq(wof_once_lock_get(&race.lock), &race.value);
		}
	}
}

Test(once_lock, set_racing_threads_one_wins, .timeout = 30)
{
	for (int n = 2; n <= 32; n *= 2) {
		struct race race = { .lock = WOF_ONCE_LOCK_INIT };
		int winners = 0;

		run_race(&race, n, racer_set);
		void *winner = wof_once_lock_get(&race.lock);
		cr_assert_not_null(winner);
		for (int i = 0; i < n; i++) {
			cr_assert(race.set_rc[i] == 0 || race.set_rc[i] == EEXIST);
			winners += race.set_rc[i] == 0;
			cr_assert_eq(race.got[i], winner, "every thread gets the winner's value");
		}
		cr_assert_eq(winners, 1, "%d threads: %d winners", n, winners);
	}
}

Test(once_lock, init_returning_null_stores_nothing_and_is_retried)
{
	wof_once_lock_t lock = WOF_ONCE_LOCK_INIT;

	errno = TH_ERRNO_SENTINEL;
	cr_assert_null(wof_once_lock_get_or_init(&lock, init_fails_enomem, NULL));
	cr_assert_eq(errno, ENOMEM, "errno is what init left");
	errno = TH_ERRNO_SENTINEL;
	cr_assert_null(wof_once_lock_get(&lock));
	cr_assert_eq(errno, TH_ERRNO_SENTINEL);
	cr_assert_null(wof_once_lock_get_or_init(&lock, init_fails_enomem, NULL));
	cr_assert_eq(errno, ENOMEM);
	errno = TH_ERRNO_SENTINEL;
	cr_assert_eq(wof_once_lock_get_or_init(&lock, init_a, NULL), &value_a);
	cr_assert_eq(errno, TH_ERRNO_SENTINEL);
	cr_assert_eq(init_calls, 3);
	cr_assert_eq(wof_once_lock_get(&lock), &value_a);
}

Test(once_lock, init_returning_null_leaves_set_possible)
{
	wof_once_lock_t lock = WOF_ONCE_LOCK_INIT;

	cr_assert_null(wof_once_lock_get_or_init(&lock, init_fails_enomem, NULL));
	cr_assert_eq(wof_once_lock_set(&lock, &value_b), 0);
	cr_assert_eq(wof_once_lock_get(&lock), &value_b);
}

/* A failing init that holds the lock until the waiters have arrived. */
struct takeover {
	wof_once_lock_t lock;
	sem_t started;
	unsigned waiters_started;
	unsigned good_inits;
	void *first_got;
	int first_errno;
	void *got[8];
	int value;
};

static void *takeover_failing_init(void *arg)
{
	struct takeover *t = arg;

	sem_post(&t->started);
	/* Wait until every waiter is about to call, then give them time to park. */
	while (__atomic_load_n(&t->waiters_started, __ATOMIC_ACQUIRE) < 8)
		th_nap(1000);
	th_nap(30000);
	errno = EAGAIN;
	return NULL;
}

static void *takeover_good_init(void *arg)
{
	struct takeover *t = arg;

	__atomic_fetch_add(&t->good_inits, 1, __ATOMIC_RELAXED);
	return &t->value;
}

static void *takeover_first(void *arg)
{
	struct takeover *t = arg;

	t->first_got = wof_once_lock_get_or_init(&t->lock, takeover_failing_init, t);
	t->first_errno = errno;
	return NULL;
}

struct takeover_waiter {
	struct takeover *t;
	int index;
};

static void *takeover_waiter(void *arg)
{
	struct takeover_waiter *w = arg;

	__atomic_fetch_add(&w->t->waiters_started, 1, __ATOMIC_RELEASE);
	w->t->got[w->index] = wof_once_lock_get_or_init(&w->t->lock, takeover_good_init, w->t);
	return NULL;
}

Test(once_lock, waiting_caller_takes_over_after_failed_init, .timeout = 20)
{
	struct takeover t = { .lock = WOF_ONCE_LOCK_INIT };
	struct takeover_waiter w[8];
	pthread_t first, waiters[8];

	sem_init(&t.started, 0, 0);
	cr_assert_eq(pthread_create(&first, NULL, takeover_first, &t), 0);
	sem_wait(&t.started);
	for (int i = 0; i < 8; i++) {
		w[i] = (struct takeover_waiter){ &t, i };
		cr_assert_eq(pthread_create(&waiters[i], NULL, takeover_waiter, &w[i]), 0);
	}
	pthread_join(first, NULL);
	for (int i = 0; i < 8; i++)
		pthread_join(waiters[i], NULL);
	cr_assert_null(t.first_got);
	cr_assert_eq(t.first_errno, EAGAIN);
	cr_assert_eq(t.good_inits, 1, "exactly one waiter ran its own init");
	for (int i = 0; i < 8; i++)
		cr_assert_eq(t.got[i], &t.value);
	cr_assert_eq(wof_once_lock_get(&t.lock), &t.value);
	sem_destroy(&t.started);
}

/* ---- get_or_try_init ----------------------------------------------------------------------- */

static unsigned try_calls;

static int try_fails_1234(void *arg, void **out)
{
	(void)arg;
	(void)out;
	try_calls++;
	return 1234;
}

static int try_fails_eagain(void *arg, void **out)
{
	(void)arg;
	*out = &value_c; /* filled, but the error wins: nothing is stored */
	try_calls++;
	return EAGAIN;
}

static int try_ok(void *arg, void **out)
{
	try_calls++;
	*out = arg;
	return 0;
}

static int try_ok_but_null(void *arg, void **out)
{
	(void)arg;
	(void)out;
	try_calls++;
	return 0;
}

static int try_must_not_run(void *arg, void **out)
{
	(void)arg;
	(void)out;
	cr_assert_fail("try init ran although a value was set");
	return 0;
}

Test(once_lock, get_or_try_init_propagates_errors_unchanged)
{
	wof_once_lock_t lock = WOF_ONCE_LOCK_INIT;
	void *out = NULL;

	errno = TH_ERRNO_SENTINEL;
	cr_assert_eq(wof_once_lock_get_or_try_init(&lock, try_fails_1234, NULL, &out), 1234);
	cr_assert_eq(wof_once_lock_get_or_try_init(&lock, try_fails_eagain, NULL, &out), EAGAIN);
	cr_assert_eq(errno, TH_ERRNO_SENTINEL, "int-returning: errno left alone");
	cr_assert_null(wof_once_lock_get(&lock), "a failed init stores nothing");
	cr_assert_eq(try_calls, 2);
	/* ... and the next call tries again. */
	cr_assert_eq(wof_once_lock_get_or_try_init(&lock, try_ok, &value_a, &out), 0);
	cr_assert_eq(out, &value_a);
	cr_assert_eq(try_calls, 3);
}

Test(once_lock, get_or_try_init_success_fills_out)
{
	wof_once_lock_t lock = WOF_ONCE_LOCK_INIT;
	void *out = NULL;

	errno = TH_ERRNO_SENTINEL;
	cr_assert_eq(wof_once_lock_get_or_try_init(&lock, try_ok, &value_b, &out), 0);
	cr_assert_eq(out, &value_b);
	cr_assert_eq(wof_once_lock_get(&lock), &value_b);
	out = NULL;
	cr_assert_eq(wof_once_lock_get_or_try_init(&lock, try_must_not_run, NULL, &out), 0);
	cr_assert_eq(out, &value_b, "a set lock returns its value without running init");
	cr_assert_eq(errno, TH_ERRNO_SENTINEL);
	cr_assert_eq(try_calls, 1);
	cr_assert_eq(wof_once_lock_get_or_init(&lock, init_must_not_run, NULL), &value_b);
}

Test(once_lock, get_or_try_init_zero_with_null_out_is_einval)
{
	wof_once_lock_t lock = WOF_ONCE_LOCK_INIT;
	void *out = &value_c;

	errno = TH_ERRNO_SENTINEL;
	cr_assert_eq(wof_once_lock_get_or_try_init(&lock, try_ok_but_null, NULL, &out), EINVAL);
	cr_assert_eq(errno, TH_ERRNO_SENTINEL);
	cr_assert_null(wof_once_lock_get(&lock), "nothing stored");
	cr_assert_eq(wof_once_lock_get_or_try_init(&lock, try_ok, &value_a, &out), 0);
	cr_assert_eq(out, &value_a);
	cr_assert_eq(try_calls, 2);
}

Test(once_lock, get_or_try_init_einval_for_null_arguments)
{
	wof_once_lock_t lock = WOF_ONCE_LOCK_INIT;
	void *out = NULL;

	errno = TH_ERRNO_SENTINEL;
	cr_assert_eq(wof_once_lock_get_or_try_init(NULL, try_ok, &value_a, &out), EINVAL);
	cr_assert_eq(wof_once_lock_get_or_try_init(&lock, NULL, &value_a, &out), EINVAL);
	cr_assert_eq(wof_once_lock_get_or_try_init(&lock, try_ok, &value_a, NULL), EINVAL);
	cr_assert_eq(errno, TH_ERRNO_SENTINEL);
	cr_assert_eq(try_calls, 0);
	cr_assert_null(wof_once_lock_get(&lock));
}

/* ---- wait ------------------------------------------------------------------------------------ */

struct waiter {
	wof_once_lock_t *lock;
	void *got;
	int err;
	bool done;
};

static void *wait_thread(void *arg)
{
	struct waiter *w = arg;

	errno = TH_ERRNO_SENTINEL;
	w->got = wof_once_lock_wait(w->lock);
	w->err = errno;
	__atomic_store_n(&w->done, true, __ATOMIC_RELEASE);
	return NULL;
}

Test(once_lock, wait_is_woken_by_set, .timeout = 20)
{
	wof_once_lock_t lock = WOF_ONCE_LOCK_INIT;
	struct waiter w[4];
	pthread_t threads[4];

	for (int i = 0; i < 4; i++) {
		w[i] = (struct waiter){ .lock = &lock };
		cr_assert_eq(pthread_create(&threads[i], NULL, wait_thread, &w[i]), 0);
	}
	th_nap(50000);
	for (int i = 0; i < 4; i++)
		cr_assert_not(__atomic_load_n(&w[i].done, __ATOMIC_ACQUIRE),
		              "wait returned before anything was set");
	cr_assert_eq(wof_once_lock_set(&lock, &value_a), 0);
	for (int i = 0; i < 4; i++) {
		pthread_join(threads[i], NULL);
		cr_assert_eq(w[i].got, &value_a);
		cr_assert_eq(w[i].err, TH_ERRNO_SENTINEL);
	}
}

Test(once_lock, wait_is_woken_by_get_or_init_not_by_a_failed_init, .timeout = 20)
{
	wof_once_lock_t lock = WOF_ONCE_LOCK_INIT;
	struct waiter w = { .lock = &lock };
	pthread_t thread;

	cr_assert_eq(pthread_create(&thread, NULL, wait_thread, &w), 0);
	th_nap(20000);
	cr_assert_null(wof_once_lock_get_or_init(&lock, init_fails_enomem, NULL));
	th_nap(30000);
	cr_assert_not(__atomic_load_n(&w.done, __ATOMIC_ACQUIRE), "a failed init ended the wait");
	cr_assert_eq(wof_once_lock_get_or_init(&lock, init_b, NULL), &value_b);
	pthread_join(thread, NULL);
	cr_assert_eq(w.got, &value_b);
	cr_assert_eq(w.err, TH_ERRNO_SENTINEL);
}

Test(once_lock, wait_returns_at_once_when_set)
{
	wof_once_lock_t lock = WOF_ONCE_LOCK_INIT;

	cr_assert_eq(wof_once_lock_set(&lock, &value_c), 0);
	errno = TH_ERRNO_SENTINEL;
	cr_assert_eq(wof_once_lock_wait(&lock), &value_c);
	cr_assert_eq(errno, TH_ERRNO_SENTINEL);
	cr_assert_null(wof_once_lock_wait(NULL));
	cr_assert_eq(errno, EINVAL);
}

/* ---- re-entry ------------------------------------------------------------------------------- */

struct reentry {
	wof_once_lock_t lock;
	wof_once_lock_t other;
	void *r_get_or_init;
	int e_get_or_init;
	int r_set;
	int r_try_insert;
	void *r_wait;
	int e_wait;
	int r_try_init;
	void *r_get;
	int e_get;
	void *r_take_other;
	void *r_other;
	bool ran;
};

static void reenter_all(struct reentry *r)
{
	void *out = NULL;

	r->ran = true;
	errno = TH_ERRNO_SENTINEL;
	r->r_get_or_init = wof_once_lock_get_or_init(&r->lock, init_a, NULL);
	r->e_get_or_init = errno;
	errno = TH_ERRNO_SENTINEL;
	r->r_wait = wof_once_lock_wait(&r->lock);
	r->e_wait = errno;
	r->r_set = wof_once_lock_set(&r->lock, &value_c);
	r->r_try_insert = wof_once_lock_try_insert(&r->lock, &value_c, NULL);
	r->r_try_init = wof_once_lock_get_or_try_init(&r->lock, try_ok, &value_c, &out);
	errno = TH_ERRNO_SENTINEL;
	r->r_get = wof_once_lock_get(&r->lock);
	r->e_get = errno;
	/* Another lock is independent: nesting is fine. */
	r->r_other = wof_once_lock_get_or_init(&r->other, init_arg, &value_c);
}

static void *reentrant_init(void *arg)
{
	reenter_all(arg);
	return &value_b;
}

static int reentrant_try_init(void *arg, void **out)
{
	reenter_all(arg);
	*out = &value_b;
	return 0;
}

static void check_reentry(struct reentry *r)
{
	cr_assert(r->ran);
	cr_assert_null(r->r_get_or_init);
	cr_assert_eq(r->e_get_or_init, EDEADLK);
	cr_assert_null(r->r_wait);
	cr_assert_eq(r->e_wait, EDEADLK);
	cr_assert_eq(r->r_set, EDEADLK);
	cr_assert_eq(r->r_try_insert, EDEADLK);
	cr_assert_eq(r->r_try_init, EDEADLK);
	cr_assert_null(r->r_get, "get from inside init: nothing set yet, and no hang");
	cr_assert_eq(r->e_get, TH_ERRNO_SENTINEL);
	cr_assert_eq(r->r_other, &value_c);
	cr_assert_eq(init_calls, 1, "only the other lock's init ran inside");
	cr_assert_eq(try_calls, 0);
	cr_assert_eq(wof_once_lock_get(&r->lock), &value_b,
	             "the outer init's value is stored");
}

Test(once_lock, reentry_from_get_or_init_is_edeadlk, .timeout = 10)
{
	static struct reentry r; /* all-zero: two empty locks */

	cr_assert_eq(wof_once_lock_get_or_init(&r.lock, reentrant_init, &r), &value_b);
	check_reentry(&r);
}

Test(once_lock, reentry_from_get_or_try_init_is_edeadlk, .timeout = 10)
{
	static struct reentry r; /* all-zero: two empty locks */
	void *out = NULL;

	cr_assert_eq(wof_once_lock_get_or_try_init(&r.lock, reentrant_try_init, &r, &out), 0);
	cr_assert_eq(out, &value_b);
	check_reentry(&r);
}

/* ---- cancellation --------------------------------------------------------------------------- */

struct cancel {
	wof_once_lock_t lock;
	sem_t in_init;
	bool use_exit;  /* pthread_exit instead of being cancelled */
	bool go_exit;
	void *waiter_got;
	unsigned waiter_inits;
	int value;
};

static void *cancelled_init(void *arg)
{
	struct cancel *c = arg;

	sem_post(&c->in_init);
	for (;;) {
		if (c->use_exit && __atomic_load_n(&c->go_exit, __ATOMIC_ACQUIRE))
			pthread_exit(NULL);
		th_cancel_nap(); /* a cancellation point */
	}
	return NULL;
}

static void *cancel_victim(void *arg)
{
	struct cancel *c = arg;

	(void)wof_once_lock_get_or_init(&c->lock, cancelled_init, c);
	return &value_c; /* not reached */
}

static void *cancel_waiter_init(void *arg)
{
	struct cancel *c = arg;

	c->waiter_inits++;
	return &c->value;
}

static void *cancel_waiter(void *arg)
{
	struct cancel *c = arg;

	c->waiter_got = wof_once_lock_get_or_init(&c->lock, cancel_waiter_init, c);
	return NULL;
}

static void run_cancel(bool use_exit)
{
	static struct cancel c;
	pthread_t victim, waiter;
	void *ret;

	c = (struct cancel){ .lock = WOF_ONCE_LOCK_INIT, .use_exit = use_exit };
	sem_init(&c.in_init, 0, 0);
	cr_assert_eq(pthread_create(&victim, NULL, cancel_victim, &c), 0);
	sem_wait(&c.in_init);
	cr_assert_eq(pthread_create(&waiter, NULL, cancel_waiter, &c), 0);
	th_nap(30000); /* let the waiter park */
	cr_assert_null(wof_once_lock_get(&c.lock));
	if (use_exit)
		__atomic_store_n(&c.go_exit, true, __ATOMIC_RELEASE);
	else
		cr_assert_eq(pthread_cancel(victim), 0);
	pthread_join(victim, &ret);
	cr_assert_eq(ret, use_exit ? NULL : PTHREAD_CANCELED);
	pthread_join(waiter, NULL);
	cr_assert_eq(c.waiter_inits, 1, "the waiter ran its own init");
	cr_assert_eq(c.waiter_got, &c.value);
	cr_assert_eq(wof_once_lock_get(&c.lock), &c.value);
	sem_destroy(&c.in_init);
}

Test(once_lock, cancelled_init_stores_nothing_waiter_takes_over, .timeout = 20)
{
	run_cancel(false);
}

Test(once_lock, pthread_exit_in_init_stores_nothing_waiter_takes_over, .timeout = 20)
{
	run_cancel(true);
}

/* ---- invalid arguments, all-zero locks ---------------------------------------------------- */

Test(once_lock, einval_for_null_lock_or_init)
{
	wof_once_lock_t lock = WOF_ONCE_LOCK_INIT;

	errno = TH_ERRNO_SENTINEL;
	cr_assert_null(wof_once_lock_get_or_init(NULL, init_a, NULL));
	cr_assert_eq(errno, EINVAL);
	errno = TH_ERRNO_SENTINEL;
	cr_assert_null(wof_once_lock_get_or_init(&lock, NULL, NULL));
	cr_assert_eq(errno, EINVAL);
	errno = TH_ERRNO_SENTINEL;
	cr_assert_null(wof_once_lock_get(NULL));
	cr_assert_eq(errno, EINVAL);
	cr_assert_eq(init_calls, 0);
	cr_assert_null(wof_once_lock_get(&lock));
}

Test(once_lock, all_zero_lock_is_empty_and_usable)
{
	wof_once_lock_t *lock = calloc(1, sizeof *lock);
	wof_once_lock_t *lock2 = calloc(1, sizeof *lock2);
	static wof_once_lock_t zero_static; /* static storage: no initialiser at all */

	cr_assert_not_null(lock);
	errno = TH_ERRNO_SENTINEL;
	cr_assert_null(wof_once_lock_get(lock));
	cr_assert_null(wof_once_lock_take(lock));
	cr_assert_eq(wof_once_lock_get_or_init(lock, init_a, NULL), &value_a);
	cr_assert_eq(wof_once_lock_set(lock, &value_b), EEXIST);
	cr_assert_eq(wof_once_lock_take(lock), &value_a);
	cr_assert_eq(wof_once_lock_set(lock2, &value_b), 0);
	cr_assert_eq(wof_once_lock_wait(lock2), &value_b);
	cr_assert_null(wof_once_lock_get(&zero_static));
	cr_assert_eq(wof_once_lock_set(&zero_static, &value_c), 0);
	cr_assert_eq(wof_once_lock_get(&zero_static), &value_c);
	cr_assert_eq(errno, TH_ERRNO_SENTINEL);
	free(lock);
	free(lock2);
}

/* ---- fork ----------------------------------------------------------------------------------- */

static wof_once_lock_t forked = WOF_ONCE_LOCK_INIT;

static int child_get_then_get_or_init(void *arg)
{
	(void)arg;
	unsigned before = init_calls;

	errno = TH_ERRNO_SENTINEL;
	TH_CHILD_CHECK(wof_once_lock_get(&forked) == NULL);
	TH_CHILD_CHECK(errno == TH_ERRNO_SENTINEL);
	TH_CHILD_CHECK(wof_once_lock_take(&forked) == NULL);
	TH_CHILD_CHECK(wof_once_lock_get_or_init(&forked, init_b, NULL) == &value_b);
	TH_CHILD_CHECK(init_calls == before + 1);
	TH_CHILD_CHECK(wof_once_lock_get(&forked) == &value_b);
	TH_CHILD_CHECK(wof_once_lock_set(&forked, &value_c) == EEXIST);
	TH_CHILD_CHECK(errno == TH_ERRNO_SENTINEL);
	return 0;
}

static int child_set(void *arg)
{
	(void)arg;
	void *current = NULL;

	TH_CHILD_CHECK(wof_once_lock_try_insert(&forked, &value_c, &current) == 0);
	TH_CHILD_CHECK(current == &value_c);
	TH_CHILD_CHECK(wof_once_lock_get(&forked) == &value_c);
	TH_CHILD_CHECK(wof_once_lock_wait(&forked) == &value_c);
	return 0;
}

static int child_get_or_init_first(void *arg)
{
	(void)arg;
	unsigned before = init_calls;

	TH_CHILD_CHECK(wof_once_lock_get_or_init(&forked, init_b, NULL) == &value_b);
	TH_CHILD_CHECK(init_calls == before + 1);
	return 0;
}

static int child_try_init_first(void *arg)
{
	(void)arg;
	void *out = NULL;

	TH_CHILD_CHECK(wof_once_lock_get_or_try_init(&forked, try_ok, &value_c, &out) == 0);
	TH_CHILD_CHECK(out == &value_c);
	TH_CHILD_CHECK(wof_once_lock_get(&forked) == &value_c);
	return 0;
}

static int child_take_first(void *arg)
{
	(void)arg;
	errno = TH_ERRNO_SENTINEL;
	TH_CHILD_CHECK(wof_once_lock_take(&forked) == NULL);
	TH_CHILD_CHECK(errno == TH_ERRNO_SENTINEL);
	TH_CHILD_CHECK(wof_once_lock_set(&forked, &value_b) == 0);
	return 0;
}

TH_FORK_TEST(once_lock, fork_child_sees_it_uninitialised, .timeout = 30)
{
	cr_assert_eq(wof_once_lock_get_or_init(&forked, init_a, NULL), &value_a);
	TH_ASSERT_CHILD(how, child_get_then_get_or_init, NULL);
	TH_ASSERT_CHILD(how, child_set, NULL);
	TH_ASSERT_CHILD(how, child_get_or_init_first, NULL);
	TH_ASSERT_CHILD(how, child_try_init_first, NULL);
	TH_ASSERT_CHILD(how, child_take_first, NULL);
	cr_assert_eq(wof_once_lock_get(&forked), &value_a, "the parent keeps its value");
	cr_assert_eq(init_calls, 1);
	cr_assert_eq(wof_once_lock_set(&forked, &value_b), EEXIST);
}

static int child_get_or_init_then_grandchild(void *arg)
{
	enum th_fork_kind how = *(enum th_fork_kind *)arg;

	TH_CHILD_CHECK(wof_once_lock_get_or_init(&forked, init_b, NULL) == &value_b);
	TH_CHILD_CHECK(th_in_child(how, child_set, NULL) == 0);
	TH_CHILD_CHECK(wof_once_lock_get(&forked) == &value_b);
	return 0;
}

TH_FORK_TEST(once_lock, fork_grandchild_sees_it_uninitialised, .timeout = 30)
{
	cr_assert_eq(wof_once_lock_set(&forked, &value_a), 0);
	TH_ASSERT_CHILD(how, child_get_or_init_then_grandchild, &how);
	cr_assert_eq(wof_once_lock_get(&forked), &value_a);
}
