/* SPDX-License-Identifier: MIT */
/*
 * Lazy globals (WOF_LAZY_GLOBAL_DECLARE/DEFINE/DEFINE_ON_WIPE) and WOF_LAZY_PEEK: a global
 * declared in a header (test-lazy-global.h) and defined in one of two files of this program is
 * one object with one init per process whichever file calls first, threads of both files
 * racing included; a forked child (fork() and _Fork()) makes its own value in the same storage,
 * with on_wipe called once per child, and only when the parent had made one; the peek is NULL
 * until the value is made in this process (before first use, during an init, after a failed
 * one, in a child), never runs init or on_wipe, and is the accessor's pointer afterwards; a
 * call from inside the global's own init, from either file, is NULL with errno EDEADLK; and
 * wof_sweep() in a child runs the global's on_wipe once, ahead of its first use.
 * Children report through th_in_child(); every assertion runs in the parent.
 */
#include <criterion/criterion.h>

#include "test-lazy-global.h"
#include "wof-test-values.h"

/* ---- the pool, defined in this file ------------------------------------------------------- */


static unsigned pool_inits, pool_dirty; /* inits, and inits handed a slot not all zero */
static bool pool_fail, pool_reenter;
static struct pool *reentry_mine, *reentry_other, *reentry_peek;
static int reentry_mine_errno, reentry_other_errno;

static int pool_init(struct pool *slot)
{
	pool_inits++;
	if (slot->owner != 0 || !th_all_bytes(slot->bytes, sizeof slot->bytes, 0))
		pool_dirty++;
	if (pool_reenter) {
		errno = 0;
		reentry_mine = the_pool();
		reentry_mine_errno = errno;
		errno = 0;
		reentry_other = other_pool();
		reentry_other_errno = errno;
		reentry_peek = WOF_LAZY_PEEK(the_pool);
	}
	if (pool_fail) {
		memset(slot, 0xEE, sizeof *slot); /* scribble, then fail */
		errno = EIO;
		return -1;
	}
	slot->owner = getpid();
	memset(slot->bytes, 0x5A, sizeof slot->bytes);
	return 0;
}

WOF_LAZY_GLOBAL_DEFINE(struct pool, the_pool, pool_init);

/* ---- one object, one init ------------------------------------------------------------------- */

Test(lazy_global, one_object_and_one_init_whichever_file_calls)
{
	cr_assert_null(WOF_LAZY_PEEK(the_logger));
	cr_assert_null(other_logger_peek());
	cr_assert_eq(other_logger_inits(), 0, "a peek runs no init");

	errno = TH_ERRNO_SENTINEL;
	struct logger *from_other = other_logger();
	cr_assert_not_null(from_other);
	cr_assert_eq(errno, TH_ERRNO_SENTINEL);
	cr_assert_eq(the_logger(), from_other, "one object for both files");
	cr_assert_eq(other_logger(), from_other);
	cr_assert_eq(other_logger_inits(), 1);
	cr_assert_eq(from_other->owner, getpid());
	cr_assert_eq(from_other->serial, 1);
	cr_assert_eq(WOF_LAZY_PEEK(the_logger), from_other);
	cr_assert_eq(other_logger_peek(), from_other);
	cr_assert_eq(other_logger_wipes(), 0, "no on_wipe in the process that made the value");

	struct pool *pool = the_pool(); /* this time, the defining file first */
	cr_assert_not_null(pool);
	cr_assert_eq(other_pool(), pool);
	cr_assert_eq(pool_inits, 1);
	cr_assert_eq(pool_dirty, 0);
	cr_assert(th_all_bytes(pool->bytes, sizeof pool->bytes, 0x5A));
}

#define RACERS 16

struct race {
	struct logger *got[RACERS];
	unsigned serial[RACERS]; /* what each racer read of init's writes */
};

static void racer(void *arg, int i)
{
	struct race *race = arg;

	/* Even racers call from this file, odd ones from the other. */
	struct logger *l = i % 2 ? other_logger() : the_logger();
	race->got[i] = l;
	race->serial[i] = l ? l->serial : 0;
}

Test(lazy_global, threads_of_both_files_race_to_one_init, .timeout = 30)
{
	struct race race;

	other_logger_slow_init(true);
	th_barrier_race(RACERS, racer, &race);
	cr_assert_eq(other_logger_inits(), 1, "%u inits", other_logger_inits());
	for (int i = 0; i < RACERS; i++) {
		cr_assert_not_null(race.got[i]);
		cr_assert_eq(race.got[i], race.got[0], "racer %d: one pointer for all", i);
		cr_assert_eq(race.serial[i], 1, "racer %d sees what init wrote", i);
	}
	cr_assert_eq(WOF_LAZY_PEEK(the_logger), race.got[0]);
}

/* ---- the peek ------------------------------------------------------------------------------- */

static void *make_logger(void *arg)
{
	(void)arg;
	return the_logger();
}

Test(lazy_global, peek_is_null_until_made_and_runs_nothing, .timeout = 30)
{
	/* Before first use, after a failed init, and while the init runs in another thread. */
	for (int i = 0; i < 100; i++)
		cr_assert_null(WOF_LAZY_PEEK(the_pool));
	cr_assert_eq(pool_inits, 0, "a peek runs no init");
	pool_fail = true;
	errno = TH_ERRNO_SENTINEL;
	cr_assert_null(the_pool());
	cr_assert_eq(errno, EIO, "errno is what init left");
	cr_assert_null(WOF_LAZY_PEEK(the_pool), "a failed init made nothing");
	pool_fail = false;
	struct pool *pool = other_pool();
	cr_assert_not_null(pool);
	cr_assert_eq(pool_inits, 2);
	cr_assert_eq(pool_dirty, 0, "the retry gets a zeroed slot");
	cr_assert_eq(WOF_LAZY_PEEK(the_pool), pool);

	pthread_t maker;
	void *made;
	other_logger_hold(true);
	cr_assert_eq(pthread_create(&maker, NULL, make_logger, NULL), 0);
	while (other_logger_inits() == 0)
		th_nap(1000);
	cr_assert_null(WOF_LAZY_PEEK(the_logger), "NULL while the init runs");
	cr_assert_null(other_logger_peek());
	other_logger_hold(false);
	pthread_join(maker, &made);
	cr_assert_not_null(made);
	cr_assert_eq(WOF_LAZY_PEEK(the_logger), made);
	cr_assert_eq(other_logger_peek(), made);
	cr_assert_eq(other_logger_inits(), 1);
}

/* ---- re-entry ------------------------------------------------------------------------------- */

Test(lazy_global, a_call_from_inside_init_is_edeadlk_from_either_file, .timeout = 10)
{
	pool_reenter = true;
	struct pool *pool = the_pool();
	pool_reenter = false;
	cr_assert_not_null(pool);
	cr_assert_null(reentry_mine);
	cr_assert_eq(reentry_mine_errno, EDEADLK);
	cr_assert_null(reentry_other);
	cr_assert_eq(reentry_other_errno, EDEADLK);
	cr_assert_null(reentry_peek, "not made yet inside its init");
	cr_assert_eq(pool_inits, 1);
	cr_assert_eq(the_pool(), pool);
}

/* ---- fork ------------------------------------------------------------------------------------ */

static struct logger *parent_logger;
static struct pool *parent_pool;

/* In a child of a process that made the logger: peeks are NULL and run nothing; the first use,
 * from the other file, runs on_wipe once and then init, in the same storage. */
static int child_makes_its_own_logger(void *arg)
{
	(void)arg;
	unsigned inits = other_logger_inits(), wipes = other_logger_wipes();

	TH_CHILD_CHECK(WOF_LAZY_PEEK(the_logger) == NULL);
	TH_CHILD_CHECK(other_logger_peek() == NULL);
	TH_CHILD_CHECK(other_logger_wipes() == wipes); /* a peek runs no on_wipe */
	errno = TH_ERRNO_SENTINEL;
	struct logger *l = other_logger();
	TH_CHILD_CHECK(l == parent_logger); /* the same static storage */
	TH_CHILD_CHECK(errno == TH_ERRNO_SENTINEL);
	TH_CHILD_CHECK(other_logger_wipes() == wipes + 1);
	TH_CHILD_CHECK(other_logger_wiped_parents());
	TH_CHILD_CHECK(other_logger_inits() == inits + 1);
	TH_CHILD_CHECK(l->owner == getpid());
	TH_CHILD_CHECK(the_logger() == l && other_logger() == l);
	TH_CHILD_CHECK(WOF_LAZY_PEEK(the_logger) == l && other_logger_peek() == l);
	TH_CHILD_CHECK(other_logger_wipes() == wipes + 1); /* once per child */
	TH_CHILD_CHECK(other_logger_inits() == inits + 1);
	return 0;
}

static int child_and_grandchild(void *arg)
{
	enum th_fork_kind how = *(enum th_fork_kind *)arg;

	TH_CHILD_CHECK(child_makes_its_own_logger(NULL) == 0);
	TH_CHILD_CHECK(th_in_child(how, child_makes_its_own_logger, NULL) == 0);
	TH_CHILD_CHECK(the_logger()->owner == getpid());
	return 0;
}

TH_FORK_TEST(lazy_global, child_makes_its_own_value_after_one_on_wipe, .timeout = 30)
{
	parent_logger = the_logger();
	cr_assert_not_null(parent_logger);
	unsigned serial = parent_logger->serial;
	TH_ASSERT_CHILD(how, child_makes_its_own_logger, NULL);
	TH_ASSERT_CHILD(how, child_and_grandchild, &how);
	cr_assert_eq(the_logger(), parent_logger);
	cr_assert_eq(parent_logger->owner, getpid(), "the parent keeps its value");
	cr_assert_eq(parent_logger->serial, serial);
	cr_assert_eq(WOF_LAZY_PEEK(the_logger), parent_logger);
	cr_assert_eq(other_logger_inits(), 1);
	cr_assert_eq(other_logger_wipes(), 0);
}

/* A child of a process that never made the logger: nothing to wipe. */
static int child_of_untouched(void *arg)
{
	(void)arg;
	TH_CHILD_CHECK(WOF_LAZY_PEEK(the_logger) == NULL);
	struct logger *l = the_logger();
	TH_CHILD_CHECK(l != NULL && l->owner == getpid());
	TH_CHILD_CHECK(other_logger_inits() == 1);
	TH_CHILD_CHECK(other_logger_wipes() == 0);
	return 0;
}

TH_FORK_TEST(lazy_global, no_on_wipe_when_the_parent_made_nothing, .timeout = 30)
{
	TH_ASSERT_CHILD(how, child_of_untouched, NULL);
	cr_assert_null(WOF_LAZY_PEEK(the_logger));
	cr_assert_eq(other_logger_inits(), 0);
}

/* The pool has no on_wipe: a child's init gets a zeroed slot in the parent's storage. */
static int child_remakes_pool(void *arg)
{
	(void)arg;
	unsigned inits = pool_inits;

	TH_CHILD_CHECK(WOF_LAZY_PEEK(the_pool) == NULL);
	struct pool *p = other_pool();
	TH_CHILD_CHECK(p == parent_pool);
	TH_CHILD_CHECK(pool_inits == inits + 1);
	TH_CHILD_CHECK(pool_dirty == 0);
	TH_CHILD_CHECK(p->owner == getpid());
	TH_CHILD_CHECK(the_pool() == p && WOF_LAZY_PEEK(the_pool) == p);
	return 0;
}

TH_FORK_TEST(lazy_global, child_remakes_a_global_without_on_wipe_in_a_zeroed_slot, .timeout = 30)
{
	parent_pool = the_pool();
	cr_assert_not_null(parent_pool);
	TH_ASSERT_CHILD(how, child_remakes_pool, NULL);
	cr_assert_eq(parent_pool->owner, getpid());
	cr_assert(th_all_bytes(parent_pool->bytes, sizeof parent_pool->bytes, 0x5A));
	cr_assert_eq(pool_inits, 1);
}

/* wof_sweep() in a child runs the lazy global's on_wipe at once, and only once. */
static int child_sweeps(void *arg)
{
	(void)arg;
	unsigned inits = other_logger_inits(), wipes = other_logger_wipes();

	TH_CHILD_CHECK(wof_sweep() == 1); /* the logger: the only object with on_wipe that held a value */
	TH_CHILD_CHECK(other_logger_wipes() == wipes + 1);
	TH_CHILD_CHECK(other_logger_wiped_parents());
	TH_CHILD_CHECK(other_logger_inits() == inits); /* nothing initialised */
	TH_CHILD_CHECK(WOF_LAZY_PEEK(the_logger) == NULL);
	TH_CHILD_CHECK(wof_sweep() == 0);
	struct logger *l = other_logger();
	TH_CHILD_CHECK(l == parent_logger && l->owner == getpid());
	TH_CHILD_CHECK(other_logger_wipes() == wipes + 1); /* no second on_wipe on first use */
	TH_CHILD_CHECK(other_logger_inits() == inits + 1);
	return 0;
}

TH_FORK_TEST(lazy_global, sweep_wipes_a_lazy_global_once, .timeout = 30)
{
	parent_logger = the_logger();
	cr_assert_not_null(parent_logger);
	cr_assert_eq(wof_sweep(), 0, "nothing to sweep in the process that made it");
	TH_ASSERT_CHILD(how, child_sweeps, NULL);
	cr_assert_eq(other_logger_wipes(), 0);
	cr_assert_eq(WOF_LAZY_PEEK(the_logger), parent_logger);
}
