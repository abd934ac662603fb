/* SPDX-License-Identifier: MIT */
/*
 * test-generation: proves the "Fork generation" contract of wof_generation(3): wof_generation() is
 * never 0, one value per process shared by all its threads, and a child made by fork(),
 * _Fork(), syscall(SYS_fork) or clone() without CLONE_VM -- at any depth -- never has a value
 * an ancestor had; and that wof_fork_detection() says truthfully which children are noticed.
 */
#include <criterion/criterion.h>

#include "wof-test-values.h" /* th_barrier_race */

#include "config.h" /* WOF_HAVE_WIPEONFORK: whether this build may use MADV_WIPEONFORK */

/* Every test has a deadline; a hang is a failure, not a stuck run. Fork tests poll their
 * children with deadlines of their own (TH_DEADLINE_S). */
TestSuite(generation, .timeout = 30);

Test(generation, never_zero_and_constant)
{
	uint32_t gen = wof_generation();

	cr_assert_neq(gen, 0);
	for (int i = 0; i < 1000; i++)
		cr_assert_eq(wof_generation(), gen);
}

static void first_use_thread(void *seen, int i)
{
	((uint32_t *)seen)[i] = wof_generation();
}

/* Threads racing on a process's first wof call all get the same value. */
static int first_use_race(void)
{
	uint32_t seen[16];

	th_barrier_race(16, first_use_thread, seen);
	for (int i = 0; i < 16; i++)
		if (seen[i] == 0 || seen[i] != wof_generation())
			return 2;
	return 0;
}

static int first_use_race_child(void *parent_gen)
{
	int code = first_use_race();

	if (code == 0 && wof_generation() == *(uint32_t *)parent_gen)
		code = 3;
	return code;
}

Test(generation, same_in_all_threads_racing_on_first_use)
{
	uint32_t gen;
	int code;

	/* Here the first use of the process; in the child, the first use after a fork. */
	cr_assert_eq(first_use_race(), 0);
	gen = wof_generation();
	code = th_wait(th_spawn(TH_FORK, first_use_race_child, &gen), TH_DEADLINE_S);
	cr_assert_eq(code, 0, "child: %s", th_outcome(code));
	cr_assert_eq(wof_generation(), gen);
}

static int first_use_keeps_errno(void *arg)
{
	(void)arg;
	errno = TH_ERRNO_SENTINEL;
	if (wof_generation() == 0)
		return 1;
	if (errno != TH_ERRNO_SENTINEL)
		return 2;
	(void)wof_fork_detection();
	return errno == TH_ERRNO_SENTINEL ? 0 : 3;
}

Test(generation, errno_kept_on_first_use)
{
	/* The child is the first user: this process has made no wof call before the fork. */
	int code = th_wait(th_spawn(TH_FORK, first_use_keeps_errno, NULL), TH_DEADLINE_S);

	cr_assert_eq(code, 0, "child: %s", th_outcome(code));
	cr_assert_eq(first_use_keeps_errno(NULL), 0);
	/* And in a child of a process that had made one. */
	code = th_wait(th_spawn(TH_FORK, first_use_keeps_errno, NULL), TH_DEADLINE_S);
	cr_assert_eq(code, 0, "child: %s", th_outcome(code));
}

Test(generation, fork_detection_tells_the_truth)
{
	unsigned how = wof_fork_detection();

	cr_assert(how & WOF_FORK_DETECT_ATFORK, "fork() children must always be detected");
	cr_assert_eq(how & ~(WOF_FORK_DETECT_ATFORK | WOF_FORK_DETECT_WIPEONFORK), 0);
#if WOF_HAVE_WIPEONFORK
	cr_assert_eq((how & WOF_FORK_DETECT_WIPEONFORK) != 0, th_kernel_wipes_on_fork(),
	             "wof says MADV_WIPEONFORK %s, the kernel says otherwise",
	             how & WOF_FORK_DETECT_WIPEONFORK ? "works" : "does not work");
#else
	cr_assert_not(how & WOF_FORK_DETECT_WIPEONFORK, "compiled out, yet reported");
#endif
	cr_assert_eq(wof_fork_detection(), how);
}

/* The child reports through a pipe; the parent compares. */
struct report {
	int fd;
	enum th_fork_kind kind;
};

static int report_generation(void *arg)
{
	struct report *r = arg;
	uint32_t gens[2] = { wof_generation(), wof_generation() };
	unsigned how = wof_fork_detection();

	if (write(r->fd, gens, sizeof gens) != (ssize_t)sizeof gens ||
	    write(r->fd, &how, sizeof how) != (ssize_t)sizeof how)
		return 1;
	return 0;
}

static void child_generation_differs(enum th_fork_kind kind)
{
	int fds[2];
	uint32_t parent, gens[2];
	unsigned how, parent_how;
	struct report r = { 0, kind };
	int code;

	if (!th_fork_detected(kind))
		cr_skip_test("%s children are detected only with MADV_WIPEONFORK",
		             th_fork_names[kind]);
	parent = wof_generation();
	parent_how = wof_fork_detection();
	cr_assert_eq(pipe(fds), 0);
	r.fd = fds[1];
	for (int i = 0; i < 3; i++) { /* siblings too */
		code = th_wait(th_spawn(kind, report_generation, &r), TH_DEADLINE_S);
		cr_assert_eq(code, 0, "%s child: %s", th_fork_names[kind], th_outcome(code));
		cr_assert_eq(read(fds[0], gens, sizeof gens), (ssize_t)sizeof gens);
		cr_assert_eq(read(fds[0], &how, sizeof how), (ssize_t)sizeof how);
		cr_assert_neq(gens[0], 0);
		cr_assert_eq(gens[0], gens[1], "not constant in the child");
		cr_assert_neq(gens[0], parent, "%s child has its parent's generation %u",
		              th_fork_names[kind], parent);
		cr_assert_gt((int32_t)(gens[0] - parent), 0,
		             "child %u not after parent %u (modulo 2^32)", gens[0], parent);
		cr_assert_eq(how, parent_how, "fork detection differs in the child");
	}
	close(fds[0]);
	close(fds[1]);
	cr_assert_eq(wof_generation(), parent, "the parent's generation changed");
}

#define CHILD_DIFFERS_TEST(name, kind)                                                         \
	Test(generation, child_differs_after_##name)                                           \
	{                                                                                      \
		child_generation_differs(kind);                                                \
	}
CHILD_DIFFERS_TEST(fork, TH_FORK)
CHILD_DIFFERS_TEST(_Fork, TH_UFORK)
CHILD_DIFFERS_TEST(SYS_fork, TH_SYS_FORK)
CHILD_DIFFERS_TEST(clone, TH_CLONE)

/* Each of 16 generations differs from all its ancestors (the shared scenario, tests/lib). */
static void chain(const enum th_fork_kind *kinds, int nkinds)
{
	const char *err;

	for (int i = 0; i < nkinds; i++)
		if (!th_fork_detected(kinds[i]))
			cr_skip_test("%s children are detected only with MADV_WIPEONFORK",
			             th_fork_names[kinds[i]]);
	err = th_chain_run(16, kinds, nkinds);
	cr_assert_null(err, "%s", err);
}

Test(generation, chain_of_fork_children_all_differ, .timeout = 60)
{
	static const enum th_fork_kind kinds[] = { TH_FORK };

	chain(kinds, 1);
}

Test(generation, chain_of_mixed_children_all_differ, .timeout = 60)
{
	static const enum th_fork_kind kinds[] = { TH_FORK, TH_UFORK, TH_SYS_FORK, TH_CLONE };

	chain(kinds, 4);
}
