/* SPDX-License-Identifier: MIT */
/*
 * wof_sweep() brings a child up to date at once: every thread-safe object with an on_wipe hook
 * that held a value at fork has its hook run, once, as its first use would have run it --
 * here, closing the child's copies of descriptors that must not stay open -- and nothing else
 * is touched: nothing is initialised, objects without a hook or without a value are skipped,
 * a second sweep and a later first use run no hook again, and the parent sweeps nothing.
 */
#include <criterion/criterion.h>
#include <fcntl.h>

#include "wof-test.h"

/* Each object holds the write end of its own pipe; its hook closes the child's copy. */
static int hooks_run;

static void close_fd(void *stale)
{
	hooks_run++;
	close(*(int *)stale);
	errno = EBADF; /* a hook's errno must not leak into the caller */
}

static int lock_fd, lazy_fd, static_fd, plain_fd;

static void *lazy_init(void *arg)
{
	return arg;
}

static wof_once_lock_t with_hook = WOF_ONCE_LOCK_INIT_ON_WIPE(close_fd);
static wof_once_lock_t without_hook = WOF_ONCE_LOCK_INIT;
static wof_once_lock_t never_set = WOF_ONCE_LOCK_INIT_ON_WIPE(close_fd);
static wof_lazy_lock_t lazy = WOF_LAZY_LOCK_INIT_ON_WIPE(lazy_init, &lazy_fd, close_fd);

static int static_inits;

static int static_init(int *slot)
{
	static_inits++;
	*slot = static_fd;
	return 0;
}

static void static_wipe(int *stale)
{
	close_fd(stale);
}

WOF_LAZY_STATIC_ON_WIPE(int, fd_static, static_init, static_wipe);

/* The read ends, in the parent: EOF once every copy of the write end is closed. */
static int read_end[4];

static int make_pipe(int i)
{
	int fds[2];

	cr_assert_eq(pipe(fds), 0);
	read_end[i] = fds[0];
	return fds[1];
}

static void fill_everything(void)
{
	lock_fd = make_pipe(0);
	lazy_fd = make_pipe(1);
	static_fd = make_pipe(2);
	plain_fd = make_pipe(3);
	cr_assert_eq(wof_once_lock_set(&with_hook, &lock_fd), 0);
	cr_assert_eq(wof_once_lock_set(&without_hook, &plain_fd), 0);
	cr_assert_eq(wof_lazy_lock_force(&lazy), &lazy_fd);
	cr_assert_eq(*fd_static(), static_fd);
}

static bool is_open(int fd)
{
	return fcntl(fd, F_GETFD) != -1;
}

static int sweep_child(void *arg)
{
	(void)arg;
	hooks_run = 0;
	errno = 0;
	TH_CHILD_CHECK(wof_sweep() == 3);
	TH_CHILD_CHECK(hooks_run == 3);
	TH_CHILD_CHECK(errno == 0);
	TH_CHILD_CHECK(!is_open(lock_fd) && !is_open(lazy_fd) && !is_open(static_fd));
	TH_CHILD_CHECK(is_open(plain_fd)); /* no hook: untouched */
	/* Swept objects are uninitialised, and their first use runs no hook again. */
	TH_CHILD_CHECK(wof_once_lock_get(&with_hook) == NULL && wof_lazy_lock_get(&lazy) == NULL);
	TH_CHILD_CHECK(WOF_LAZY_PEEK(fd_static) == NULL);
	TH_CHILD_CHECK(wof_sweep() == 0 && hooks_run == 3);
	int before = static_inits;
	TH_CHILD_CHECK(fd_static() != NULL && static_inits == before + 1 && hooks_run == 3);
	TH_CHILD_CHECK(wof_lazy_lock_force(&lazy) == &lazy_fd && hooks_run == 3);
	return 0;
}

Test(sweep, parent_sweeps_nothing)
{
	fill_everything();
	hooks_run = 0;
	cr_assert_eq(wof_sweep(), 0);
	cr_assert_eq(hooks_run, 0);
	cr_assert(is_open(lock_fd) && is_open(lazy_fd) && is_open(static_fd));
	cr_assert_eq(wof_once_lock_get(&never_set), NULL);
}

Test(sweep, child_runs_every_hook_once_and_closes_the_fds, .timeout = 60)
{
	enum th_fork_kind kinds[TH_FORK_KINDS];
	int n = th_detected_kinds(kinds);

	fill_everything();
	for (int k = 0; k < n; k++)
		TH_ASSERT_CHILD(kinds[k], sweep_child, NULL);
	/* The children closed their copies: once the parent closes its own, readers see EOF. */
	close(lock_fd);
	close(lazy_fd);
	close(static_fd);
	for (int i = 0; i < 3; i++) {
		char c;
		cr_assert_eq(read(read_end[i], &c, 1), 0, "pipe %d: a write end is still open", i);
	}
	/* The parent's objects are as they were. */
	cr_assert_eq(wof_once_lock_get(&with_hook), &lock_fd);
	cr_assert_eq(*fd_static(), static_fd);
}

/* A grandchild sweeps what the child made. */
static int grandchild_sweep(void *arg)
{
	(void)arg;
	hooks_run = 0;
	TH_CHILD_CHECK(wof_sweep() == 1 && hooks_run == 1);
	return 0;
}

static int child_refills(void *arg)
{
	(void)arg;
	TH_CHILD_CHECK(wof_sweep() == 3);
	lock_fd = open("/dev/null", O_WRONLY);
	TH_CHILD_CHECK(lock_fd >= 0 && wof_once_lock_set(&with_hook, &lock_fd) == 0);
	TH_CHILD_CHECK(th_in_child(TH_FORK, grandchild_sweep, NULL) == 0);
	return 0;
}

Test(sweep, grandchild_sweeps_what_the_child_made, .timeout = 60)
{
	fill_everything();
	TH_ASSERT_CHILD(TH_FORK, child_refills, NULL);
}

/* wof_wipe_all() from inside an initialiser would end that run in a new generation: refused. */
static int wipe_errno;
static uint32_t wipe_gen_before, wipe_gen_after;

static void wipe_from_inside(void *arg)
{
	(void)arg;
	wipe_gen_before = wof_generation();
	errno = 0;
	wof_wipe_all();
	wipe_errno = errno;
	wipe_gen_after = wof_generation();
}

#ifdef NDEBUG
Test(wipe_all, from_inside_an_initialiser_is_edeadlk_and_does_nothing)
{
	wof_once_t once = WOF_ONCE_INIT;

	cr_assert_eq(wof_once_call(&once, wipe_from_inside, NULL), 0);
	cr_assert_eq(wipe_errno, EDEADLK);
	cr_assert_eq(wipe_gen_after, wipe_gen_before);
	cr_assert(wof_once_is_completed(&once));
}
#else
Test(wipe_all, from_inside_an_initialiser_aborts_debug_builds, .signal = SIGABRT)
{
	wof_once_t once = WOF_ONCE_INIT;

	(void)wof_once_call(&once, wipe_from_inside, NULL);
}
#endif

Test(wipe_all, outside_makes_a_new_larger_generation)
{
	wof_once_t once = WOF_ONCE_INIT;
	uint32_t before = wof_generation();
	int runs = 0;

	cr_assert_eq(wof_once_call(&once, th_count_run, &runs), 0);
	wof_wipe_all();
	cr_assert_gt(wof_generation(), before);
	cr_assert_not(wof_once_is_completed(&once));
}
