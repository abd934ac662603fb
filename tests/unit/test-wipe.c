/* SPDX-License-Identifier: MIT */
/*
 * on_wipe across fork, for every value type (OnceLock, LazyLock, WOF_LAZY_STATIC_ON_WIPE,
 * OnceCell, LazyCell), as docs/api.md's on_wipe convention states it: never called in the
 * process that set the value (not by take either); in a child exactly once, with the value held
 * at fork, on the first call of any kind and before any re-initialisation; never for an object
 * that held nothing at fork (never set, failed init, taken, or set from an init that forked);
 * a grandchild of an untouched child gets the grandparent's value, one of a re-initialised
 * child gets the child's; several threads of a child racing on a wiped object call it once.
 * Also: an init that forks completes in the parent and leaves the child uninitialised, and a
 * child forked while another thread is inside an init neither waits for it nor sees a value.
 * Every check runs in the parent; children report through th_in_child().
 */
#include <criterion/criterion.h>
#include <semaphore.h>
#include <stdlib.h>

#include "wof-test.h"
#include "wof-test-values.h"

/* Values come from a pool; a child continues the parent's count, so its values are new. */
static int pool[256];
static unsigned pool_next;
static bool fail_inits; /* every init fails while set */

/*
 * An armed init first forks (once, by `fork_how`: "an init that forks", below) or blocks until
 * released ("fork while another thread is inside init").
 */
static bool fork_armed, block_armed;
static enum th_fork_kind fork_how;
static pid_t forked_child; /* in the parent; 0 in the child */
static sem_t blocked_in_init, release_init;

static void armed_init(void)
{
	if (fork_armed) {
		fork_armed = false;
		forked_child = th_fork(fork_how);
		if (forked_child == 0)
			th_child_begin();
	}
	if (__atomic_exchange_n(&block_armed, false, __ATOMIC_ACQ_REL)) {
		sem_post(&blocked_in_init);
		while (sem_wait(&release_init) != 0)
			;
	}
}

static void *new_value(char init_kind)
{
	if (__atomic_load_n(&fail_inits, __ATOMIC_RELAXED)) {
		errno = EIO;
		return NULL;
	}
	void *v = &pool[__atomic_fetch_add(&pool_next, 1, __ATOMIC_RELAXED) % 256];
	th_log(init_kind, v);
	return v;
}

/* ---- the objects: each logs its on_wipe as an upper-case letter, its init as lower case -- */

/* The init of every pointer type; its arg is the letter it logs. */
static void *value_init(void *init_kind)
{
	armed_init();
	return new_value(*(const char *)init_kind);
}

static int value_try_init(void *init_kind, void **out)
{
	armed_init();
	*out = new_value(*(const char *)init_kind);
	return 0;
}

#define LOG_ON_WIPE(name, letter)                                                              \
	static void name(void *stale)                                                          \
	{                                                                                      \
		th_log(letter, stale);                                                         \
	}
LOG_ON_WIPE(lock_on_wipe, 'L')
LOG_ON_WIPE(lazy_lock_on_wipe, 'Z')
LOG_ON_WIPE(cell_on_wipe, 'C')
LOG_ON_WIPE(lazy_cell_on_wipe, 'Y')

static wof_once_lock_t lock = WOF_ONCE_LOCK_INIT_ON_WIPE(lock_on_wipe);
static wof_lazy_lock_t lazy_lock = WOF_LAZY_LOCK_INIT_ON_WIPE(value_init, "z", lazy_lock_on_wipe);
static wof_once_cell_t cell = WOF_ONCE_CELL_INIT_ON_WIPE(cell_on_wipe);
static wof_lazy_cell_t lazy_cell = WOF_LAZY_CELL_INIT_ON_WIPE(value_init, "y", lazy_cell_on_wipe);

/* A 4 KiB slot: a tag (the pool value) and bytes that must survive until on_wipe has seen them. */
struct slot {
	void *tag;
	unsigned char pad[4096 - sizeof(void *)];
};

static void *static_tag; /* the tag of the last lazy static value made in this process */

static int static_init(struct slot *slot)
{
	armed_init();
	if (!th_all_bytes(slot, sizeof *slot, 0))
		th_log('D', slot); /* init was handed a dirty slot */
	void *v = new_value('s');
	if (!v)
		return -1;
	slot->tag = v;
	memset(slot->pad, 0x5A, sizeof slot->pad);
	static_tag = v;
	return 0;
}

static void static_on_wipe(struct slot *stale)
{
	if (!th_all_bytes(stale->pad, sizeof stale->pad, 0x5A))
		th_log('X', stale); /* on_wipe did not see the stale bytes */
	th_log('S', stale->tag);
}

WOF_LAZY_STATIC_ON_WIPE(struct slot, lazy_static, static_init, static_on_wipe);

/* ---- one interface over the five types -------------------------------------------------- */

TH_VALUE_OPS(once_lock, WOF_ONCE_LOCK_INIT, NULL);
TH_VALUE_OPS(once_cell, WOF_ONCE_CELL_INIT, NULL);
TH_LAZY_OPS(lazy_lock, WOF_LAZY_LOCK_INIT);
TH_LAZY_OPS(lazy_cell, WOF_LAZY_CELL_INIT);

struct type {
	const char *name;
	char wipe, init;                /* the letters its on_wipe and its init log */
	const struct th_value_ops *ops; /* the once lock and cell: get, take, get_or_(try_)init */
	const struct th_lazy_ops *lazy; /* the lazy lock and cell: get, force */
	void *obj;                      /* NULL: the lazy static, which has neither get nor take */
	bool threaded;                  /* may be used by several threads */
};

enum { T_LOCK, T_LAZY_LOCK, T_STATIC, T_CELL, T_LAZY_CELL, NTYPES };
static const struct type types[NTYPES] = {
	{ "once_lock", 'L', 'l', &th_once_lock_ops, NULL, &lock, true },
	{ "lazy_lock", 'Z', 'z', NULL, &th_lazy_lock_ops, &lazy_lock, true },
	{ "lazy_static", 'S', 's', NULL, NULL, NULL, true },
	{ "once_cell", 'C', 'c', &th_once_cell_ops, NULL, &cell, false },
	{ "lazy_cell", 'Y', 'y', NULL, &th_lazy_cell_ops, &lazy_cell, false },
};

/* Never inits: for every type but the lazy static (has_get). */
static bool has_get(const struct type *t)
{
	return t->obj != NULL;
}

static void *type_get(const struct type *t)
{
	return t->ops ? t->ops->get(t->obj) : t->lazy->get(t->obj);
}

/* get_or_init (get_or_try_init when `try`), force or the accessor: the value (its tag). */
static void *type_make(const struct type *t, bool try)
{
	void *out = NULL;

	if (t->ops && try)
		return t->ops->get_or_try_init(t->obj, value_try_init, (void *)&t->init, &out) ? NULL : out;
	if (t->ops)
		return t->ops->get_or_init(t->obj, value_init, (void *)&t->init);
	if (t->lazy)
		return t->lazy->force(t->obj);
	struct slot *slot = lazy_static();
	return slot ? slot->tag : NULL;
}

/* The object's value in this process without making one (NULL when none was made). */
static void *type_value(const struct type *t)
{
	return has_get(t) ? type_get(t) : static_tag;
}

/*
 * This type's events in log order, as letters ("W" for its on_wipe, "I" for its init) and
 * values. Returns false when the log holds a sign of trouble: a dirty slot handed to an init,
 * or an on_wipe that did not see the stale bytes.
 */
static bool events_of(const struct type *t, char *kinds, void **values, unsigned max)
{
	unsigned n = 0, total = __atomic_load_n(&th_nevents, __ATOMIC_RELAXED);
	bool clean = total <= TH_MAX_EVENTS;

	for (unsigned i = 0; i < total && i < TH_MAX_EVENTS; i++) {
		char k = th_events[i].kind;
		if (k == 'D' || k == 'X')
			clean = false;
		if ((k == t->wipe || k == t->init) && n + 1 < max) {
			kinds[n] = k == t->wipe ? 'W' : 'I';
			values[n++] = th_events[i].value;
		}
	}
	kinds[n] = '\0';
	return clean;
}

/* In a child: this type's events are exactly `expect`, and the first value is `first`. */
#define CHECK_EVENTS(t, expect, first)                                                            \
	do {                                                                                      \
		char kinds_[16];                                                                  \
		void *values_[16];                                                                \
		TH_CHILD_CHECK(events_of((t), kinds_, values_, 16));                                    \
		TH_CHILD_CHECK(strcmp(kinds_, (expect)) == 0);                                          \
		TH_CHILD_CHECK((first) == NULL || values_[0] == (first));                               \
	} while (0)

/* Run `fn` in a child for every type (threaded ones only if asked), asserting in the parent. */
struct child_arg {
	const struct type *t;
	enum th_fork_kind how;
	void *parent_value;
	int kind; /* which first call, where a test tries several */
};

static void for_each_type(enum th_fork_kind how, int (*fn)(void *), bool threaded_only,
                          bool need_take)
{
	for (size_t i = 0; i < NTYPES; i++) {
		const struct type *t = &types[i];
		if ((threaded_only && !t->threaded) || (need_take && !t->ops))
			continue;
		struct child_arg arg = { t, how, type_value(t), 0 };
		int rc = th_in_child(how, fn, &arg);
		cr_assert_eq(rc, 0, "%s: %s", t->name, th_why);
	}
}

static void make_all(void)
{
	for (size_t i = 0; i < NTYPES; i++)
		cr_assert_not_null(type_make(&types[i], false), "%s", types[i].name);
	th_log_reset();
}

static void assert_no_wipe_here(void)
{
	for (size_t i = 0; i < NTYPES; i++)
		cr_assert_eq(th_count(types[i].wipe), 0, "%s: on_wipe ran in the parent",
		             types[i].name);
	cr_assert_eq(th_count('D'), 0);
	cr_assert_eq(th_count('X'), 0);
}

/* ---- exactly once in a child, with the parent's value, before init ---------------------------- */

static int child_get_first(void *p)
{
	const struct child_arg *a = p;
	const struct type *t = a->t;

	errno = TH_ERRNO_SENTINEL;
	TH_CHILD_CHECK(type_get(t) == NULL);
	TH_CHILD_CHECK(errno == TH_ERRNO_SENTINEL);
	CHECK_EVENTS(t, "W", a->parent_value);
	TH_CHILD_CHECK(type_get(t) == NULL);
	CHECK_EVENTS(t, "W", a->parent_value); /* not again */
	void *mine = type_make(t, false);
	TH_CHILD_CHECK(mine != NULL && mine != a->parent_value);
	CHECK_EVENTS(t, "WI", a->parent_value);
	TH_CHILD_CHECK(type_get(t) == mine);
	TH_CHILD_CHECK(type_make(t, false) == mine);
	if (t->ops) {
		(void)t->ops->take(t->obj);
		TH_CHILD_CHECK(type_get(t) == NULL);
	}
	CHECK_EVENTS(t, "WI", a->parent_value);
	return 0;
}

TH_FORK_TEST(wipe, child_first_get_calls_on_wipe_once_with_parents_value, .timeout = 30)
{
	make_all();
	for (size_t i = 0; i < NTYPES; i++) {
		const struct type *t = &types[i];
		if (!has_get(t))
			continue;
		struct child_arg arg = { t, how, type_get(t), 0 };
		cr_assert_eq(th_in_child(how, child_get_first, &arg), 0, "%s: %s", t->name, th_why);
	}
	assert_no_wipe_here();
}

static int child_init_first(void *p)
{
	const struct child_arg *a = p;
	const struct type *t = a->t;

	errno = TH_ERRNO_SENTINEL;
	void *mine = type_make(t, false);
	TH_CHILD_CHECK(mine != NULL && mine != a->parent_value);
	TH_CHILD_CHECK(errno == TH_ERRNO_SENTINEL);
	/* on_wipe with the parent's value, then init: "WI" in that order. */
	CHECK_EVENTS(t, "WI", a->parent_value);
	TH_CHILD_CHECK(type_make(t, false) == mine);
	TH_CHILD_CHECK(type_value(t) == mine);
	CHECK_EVENTS(t, "WI", a->parent_value);
	return 0;
}

TH_FORK_TEST(wipe, child_first_init_calls_on_wipe_once_before_init, .timeout = 30)
{
	make_all();
	for_each_type(how, child_init_first, false, false);
	assert_no_wipe_here();
}

/* The lazy static's on_wipe sees the stale bytes; then init sees zeros (checked by the 'X' and
 * 'D' markers in events_of); and the slot holds the child's bytes afterwards. */
static int child_static_bytes(void *p)
{
	const struct child_arg *a = p;

	struct slot *slot = lazy_static();
	TH_CHILD_CHECK(slot != NULL);
	CHECK_EVENTS(a->t, "WI", a->parent_value);
	TH_CHILD_CHECK(slot->tag != a->parent_value);
	TH_CHILD_CHECK(th_all_bytes(slot->pad, sizeof slot->pad, 0x5A));
	return 0;
}

TH_FORK_TEST(wipe, lazy_static_on_wipe_sees_stale_bytes_then_init_sees_zeros, .timeout = 30)
{
	struct slot *slot = lazy_static();
	cr_assert_not_null(slot);
	th_log_reset();
	struct child_arg arg = { &types[T_STATIC], how, slot->tag, 0 };
	TH_ASSERT_CHILD(how, child_static_bytes, &arg);
	assert_no_wipe_here();
}

/* Every other kind of first call on a once lock. */
static void *wait_setter(void *arg)
{
	th_nap(20000);
	(void)wof_once_lock_set(&lock, arg);
	return NULL;
}

enum first_call { FIRST_SET, FIRST_TRY_INSERT, FIRST_TAKE, FIRST_TRY_INIT, FIRST_WAIT, FIRST_N };

/* The first call in a child is a->kind on the object of a->t (a once lock or a once cell). */
static int child_first_call(void *p)
{
	const struct child_arg *a = p;
	const struct th_value_ops *ops = a->t->ops;
	void *obj = a->t->obj;
	static int mine;
	void *out = NULL;
	pthread_t setter;

	switch ((enum first_call)a->kind) {
	case FIRST_SET:
		TH_CHILD_CHECK(ops->set(obj, &mine) == 0);
		break;
	case FIRST_TRY_INSERT:
		TH_CHILD_CHECK(ops->try_insert(obj, &mine, &out) == 0 && out == &mine);
		break;
	case FIRST_TAKE:
		TH_CHILD_CHECK(ops->take(obj) == NULL);
		TH_CHILD_CHECK(ops->set(obj, &mine) == 0);
		break;
	case FIRST_TRY_INIT:
		TH_CHILD_CHECK(ops->get_or_try_init(obj, try_ok, &mine, &out) == 0);
		TH_CHILD_CHECK(out == &mine);
		break;
	case FIRST_WAIT: /* once locks only */
		TH_CHILD_CHECK(pthread_create(&setter, NULL, wait_setter, &mine) == 0);
		TH_CHILD_CHECK(wof_once_lock_wait(&lock) == &mine);
		pthread_join(setter, NULL);
		break;
	default:
		TH_CHILD_CHECK(false);
	}
	TH_CHILD_CHECK(ops->get(obj) == &mine);
	CHECK_EVENTS(a->t, "W", a->parent_value);
	TH_CHILD_CHECK(th_count(a->t->wipe) == 1);
	return 0;
}

static void first_calls(enum th_fork_kind how, const struct type *t, int kinds)
{
	void *parent = type_make(t, false);

	th_log_reset();
	for (int k = 0; k < kinds; k++) {
		struct child_arg arg = { t, how, parent, k };
		cr_assert_eq(th_in_child(how, child_first_call, &arg), 0, "%s, first call %d: %s",
		             t->name, k, th_why);
	}
	assert_no_wipe_here();
}

TH_FORK_TEST(wipe, lock_first_call_of_any_kind_calls_on_wipe_once, .timeout = 30)
{
	first_calls(how, &types[T_LOCK], FIRST_N);
}

/* Every other kind of first call on a once cell (get and get_or_init are above). */
TH_FORK_TEST(wipe, cell_first_call_of_any_kind_calls_on_wipe_once, .timeout = 30)
{
	first_calls(how, &types[T_CELL], FIRST_WAIT);
}

/* ---- never in the parent ------------------------------------------------------------------- */

TH_FORK_TEST(wipe, parent_never_calls_on_wipe, .timeout = 30)
{
	for (size_t i = 0; i < NTYPES; i++) {
		const struct type *t = &types[i];
		void *v = type_make(t, false);
		cr_assert_not_null(v);
		cr_assert_eq(type_make(t, false), v);
		if (has_get(t))
			cr_assert_eq(type_get(t), v);
		if (t->ops) {
			(void)t->ops->take(t->obj); /* not wiped: the caller gets it back */
			cr_assert_not_null(type_make(t, false));
		}
	}
	assert_no_wipe_here();
	th_log_reset();
	for_each_type(how, child_init_first, false, false);
	for (size_t i = 0; i < NTYPES; i++)
		cr_assert_not_null(type_value(&types[i]));
	assert_no_wipe_here();
}

/* ---- nothing held at fork: no on_wipe -------------------------------------------------------- */

static int child_nothing_held(void *p)
{
	const struct child_arg *a = p;
	const struct type *t = a->t;

	if (has_get(t)) {
		TH_CHILD_CHECK(type_get(t) == NULL);
		CHECK_EVENTS(t, "", NULL);
	}
	TH_CHILD_CHECK(type_make(t, false) != NULL);
	CHECK_EVENTS(t, "I", NULL);
	TH_CHILD_CHECK(type_make(t, false) != NULL);
	CHECK_EVENTS(t, "I", NULL);
	return 0;
}

TH_FORK_TEST(wipe, nothing_held_at_fork_no_on_wipe, .timeout = 30)
{
	/* Never set. */
	for_each_type(how, child_nothing_held, false, false);
	/* A failed init leaves nothing either. */
	fail_inits = true;
	for (size_t i = 0; i < NTYPES; i++)
		cr_assert_null(type_make(&types[i], false), "%s", types[i].name);
	fail_inits = false;
	th_log_reset();
	for_each_type(how, child_nothing_held, false, false);
	assert_no_wipe_here();
}

TH_FORK_TEST(wipe, taken_before_fork_no_on_wipe, .timeout = 30)
{
	make_all();
	for (size_t i = 0; i < NTYPES; i++)
		if (types[i].ops)
			(void)types[i].ops->take(types[i].obj);
	for_each_type(how, child_nothing_held, false, true);
	assert_no_wipe_here();
}

/* ---- grandchildren ---------------------------------------------------------------------------- */

/* A grandchild's first use: a get where the type has one, else the init. */
static int grandchild_first_use(void *p)
{
	const struct child_arg *a = p;

	return has_get(a->t) ? child_get_first(p) : child_init_first(p);
}

static int child_untouched_forks(void *p)
{
	const struct child_arg *a = p;

	/* The child does not touch the object; its child finds the grandparent's value. */
	TH_CHILD_CHECK(th_in_child(a->how, grandchild_first_use, p) == 0);
	/* And the child itself, touching it later, gets its own single on_wipe. */
	CHECK_EVENTS(a->t, "", NULL);
	TH_CHILD_CHECK(grandchild_first_use(p) == 0);
	return 0;
}

TH_FORK_TEST(wipe, grandchild_of_untouched_child_gets_grandparents_value, .timeout = 30)
{
	make_all();
	for_each_type(how, child_untouched_forks, false, false);
	assert_no_wipe_here();
}

static int child_reinit_forks(void *p)
{
	const struct child_arg *a = p;
	struct child_arg grand = *a;

	void *mine = type_make(a->t, false);
	TH_CHILD_CHECK(mine != NULL && mine != a->parent_value);
	CHECK_EVENTS(a->t, "WI", a->parent_value);
	th_log_reset();
	grand.parent_value = mine;
	TH_CHILD_CHECK(th_in_child(a->how, grandchild_first_use, &grand) == 0);
	TH_CHILD_CHECK(type_make(a->t, false) == mine);
	CHECK_EVENTS(a->t, "", NULL);
	return 0;
}

TH_FORK_TEST(wipe, grandchild_of_reinitialised_child_gets_childs_value, .timeout = 30)
{
	make_all();
	for_each_type(how, child_reinit_forks, false, false);
	assert_no_wipe_here();
}

/* ---- several threads of a child ------------------------------------------------------------- */

enum { MT_MAKE, MT_GET_ONLY }; /* child_arg.kind: the threads make the value, or only get */

struct mt {
	const struct child_arg *a;
	void *got[8];
};

static void mt_thread(void *arg, int i)
{
	struct mt *mt = arg;
	const struct type *t = mt->a->t;

	if (mt->a->kind == MT_GET_ONLY || (has_get(t) && i % 2 == 0))
		mt->got[i] = type_get(t);
	if (mt->a->kind == MT_MAKE)
		mt->got[i] = type_make(t, false);
}

/* 8 threads of a child race on a wiped object: one on_wipe, and one new value for all of them,
 * or (MT_GET_ONLY) nothing set. */
static int child_threads(void *p)
{
	const struct child_arg *a = p;
	static struct mt mt;

	mt = (struct mt){ .a = a };
	th_barrier_race(8, mt_thread, &mt);
	for (int i = 0; i < 8; i++)
		if (a->kind == MT_GET_ONLY)
			TH_CHILD_CHECK(mt.got[i] == NULL);
		else
			TH_CHILD_CHECK(mt.got[i] != NULL && mt.got[i] != a->parent_value &&
			               mt.got[i] == mt.got[0]);
	CHECK_EVENTS(a->t, a->kind == MT_GET_ONLY ? "W" : "WI", a->parent_value);
	return 0;
}

TH_FORK_TEST(wipe, threads_of_a_child_race_on_a_wiped_object_on_wipe_once, .timeout = 60)
{
	make_all();
	for (int round = 0; round < 10; round++)
		for_each_type(how, child_threads, true, false);
	assert_no_wipe_here();
}

/* Several threads that only get: still one on_wipe, and nothing set. */
TH_FORK_TEST(wipe, threads_of_a_child_get_a_wiped_object_on_wipe_once, .timeout = 60)
{
	make_all();
	for (int round = 0; round < 10; round++)
		for (size_t i = T_LOCK; i <= T_LAZY_LOCK; i++) { /* the two locks have a get */
			struct child_arg arg = { &types[i], how, type_get(&types[i]), MT_GET_ONLY };
			cr_assert_eq(th_in_child(how, child_threads, &arg), 0, "%s: %s",
			             types[i].name, th_why);
		}
	assert_no_wipe_here();
}

/* ---- an init that forks --------------------------------------------------------------------- */

/*
 * The init, armed once, forks (by `fork_how`) and returns a new value in both processes. The
 * child, after the outer call returns, reports to the parent and _exits.
 */
static int forked_child_checks(const struct type *t, bool try, void *made)
{
	TH_CHILD_CHECK(made != NULL); /* the init ran to its end here too */
	if (has_get(t)) {
		TH_CHILD_CHECK(type_get(t) == NULL); /* ... but stored nothing in the child */
		TH_CHILD_CHECK(th_count(t->wipe) == 0); /* nothing was held at fork */
	}
	th_log_reset();
	void *mine = type_make(t, try); /* disarmed: a plain init */
	TH_CHILD_CHECK(mine != NULL);
	TH_CHILD_CHECK(mine != made);
	TH_CHILD_CHECK(th_count(t->wipe) == 0);
	TH_CHILD_CHECK(th_count('D') == 0 && th_count('X') == 0);
	TH_CHILD_CHECK(type_make(t, try) == mine);
	if (has_get(t))
		TH_CHILD_CHECK(type_get(t) == mine);
	TH_CHILD_CHECK(th_count(t->wipe) == 0);
	return 0;
}

/* The init of type `t` (get_or_try_init's when `try`) forks: the parent keeps the value, the
 * child (checked above) has none. */
static void run_forking_init(enum th_fork_kind how, const struct type *t, bool try)
{
	fork_how = how;
	fork_armed = true;
	th_log_reset();
	void *made = type_make(t, try);
	if (forked_child == 0)
		th_child_exit(forked_child_checks(t, try, made));
	int rc = th_reap(forked_child, th_fork_names[how]);
	cr_assert_eq(rc, 0, "%s%s: %s", t->name, try ? " (try)" : "", th_why);
	cr_assert_not_null(made, "%s", t->name);
	cr_assert_eq(type_make(t, try), made, "%s: completes in the parent", t->name);
	if (has_get(t))
		cr_assert_eq(type_get(t), made);
	assert_no_wipe_here();
}

#define INIT_THAT_FORKS_TEST(name, type, try)                                                  \
	TH_FORK_TEST(wipe, init_that_forks_##name, .timeout = 30)                              \
	{                                                                                      \
		run_forking_init(how, &types[type], try);                                      \
	}
INIT_THAT_FORKS_TEST(once_lock_get_or_init, T_LOCK, false)
INIT_THAT_FORKS_TEST(once_lock_get_or_try_init, T_LOCK, true)
INIT_THAT_FORKS_TEST(lazy_lock_force, T_LAZY_LOCK, false)
INIT_THAT_FORKS_TEST(lazy_static, T_STATIC, false)
INIT_THAT_FORKS_TEST(once_cell_get_or_init, T_CELL, false)
INIT_THAT_FORKS_TEST(once_cell_get_or_try_init, T_CELL, true)
INIT_THAT_FORKS_TEST(lazy_cell_force, T_LAZY_CELL, false)

/* After an init forked, a grandchild made by that child still sees nothing held. */
static int forked_then_grandchild(void *p)
{
	(void)p;
	TH_CHILD_CHECK(wof_lazy_lock_get(&lazy_lock) == NULL);
	TH_CHILD_CHECK(th_count('Z') == 0);
	return 0;
}

TH_FORK_TEST(wipe, child_of_forking_init_forks_again_nothing_held, .timeout = 30)
{
	fork_how = how;
	fork_armed = true;
	th_log_reset();
	void *made = wof_lazy_lock_force(&lazy_lock);
	/* Untouched since the fork in init: the grandchild must not see a value either. */
	if (forked_child == 0)
		th_child_exit(th_in_child(how, forked_then_grandchild, NULL));
	int rc = th_reap(forked_child, th_fork_names[how]);
	cr_assert_eq(rc, 0, "%s", th_why);
	cr_assert_eq(wof_lazy_lock_get(&lazy_lock), made);
	assert_no_wipe_here();
}

/* ---- fork while another thread is inside init --------------------------------------------- */

/*
 * A thread sits inside an init when the process forks: the child has no such thread, so it
 * must neither wait for it nor see a value, and nothing was held (no on_wipe); it runs its own
 * init. The parent's thread then finishes and its value is the parent's.
 */
static void *blocking_thread(void *t)
{
	return type_make(t, false);
}

static int child_while_thread_in_init(void *p)
{
	const struct child_arg *a = p;
	const struct type *t = a->t;

	if (has_get(t)) {
		TH_CHILD_CHECK(type_get(t) == NULL);
		CHECK_EVENTS(t, "", NULL);
	}
	void *mine = type_make(t, false); /* would hang if it waited for the parent's thread */
	TH_CHILD_CHECK(mine != NULL);
	CHECK_EVENTS(t, "I", mine); /* no on_wipe: nothing was held at fork */
	TH_CHILD_CHECK(type_make(t, false) == mine);
	if (has_get(t))
		TH_CHILD_CHECK(type_get(t) == mine);
	CHECK_EVENTS(t, "I", mine);
	return 0;
}

TH_FORK_TEST(wipe, fork_while_a_thread_is_inside_init_child_runs_its_own, .timeout = 30)
{
	sem_init(&blocked_in_init, 0, 0);
	sem_init(&release_init, 0, 0);
	for (size_t i = 0; i < NTYPES; i++) {
		const struct type *t = &types[i];
		pthread_t thread;
		void *made;

		if (!t->threaded) /* once_lock, lazy_lock, lazy_static */
			continue;
		th_log_reset();
		block_armed = true;
		cr_assert_eq(pthread_create(&thread, NULL, blocking_thread, (void *)t), 0);
		while (sem_wait(&blocked_in_init) != 0)
			;
		struct child_arg arg = { t, how, NULL, 0 };
		int rc = th_in_child(how, child_while_thread_in_init, &arg);
		sem_post(&release_init);
		pthread_join(thread, &made);
		cr_assert_eq(rc, 0, "%s: %s", t->name, th_why);
		cr_assert_not_null(made);
		cr_assert_eq(type_make(t, false), made, "%s: the parent keeps its thread's value",
		             t->name);
	}
	assert_no_wipe_here();
	sem_destroy(&blocked_in_init);
	sem_destroy(&release_init);
}

/* ---- errno across on_wipe ------------------------------------------------------------------ */

/*
 * An on_wipe typically closes the child's copy of a descriptor, and close() may set errno. The
 * wof call that ran the hook still keeps docs/api.md's errno rule: a get that finds nothing, and a
 * successful get_or_init or force, leave errno unchanged.
 */
static void errno_on_wipe(void *stale)
{
	th_log('E', stale);
	(void)close(-1); /* EBADF */
}
static wof_once_lock_t errno_locks[2] = { WOF_ONCE_LOCK_INIT_ON_WIPE(errno_on_wipe),
	                                    WOF_ONCE_LOCK_INIT_ON_WIPE(errno_on_wipe) };
static wof_once_cell_t errno_cells[2] = { WOF_ONCE_CELL_INIT_ON_WIPE(errno_on_wipe),
	                                    WOF_ONCE_CELL_INIT_ON_WIPE(errno_on_wipe) };

/* In turn: a get that finds nothing, and a get_or_init, on a lock and then on a cell. */
static const struct {
	const struct th_value_ops *ops;
	void *obj;
} errno_calls[4] = { { &th_once_lock_ops, &errno_locks[0] }, { &th_once_lock_ops, &errno_locks[1] },
	             { &th_once_cell_ops, &errno_cells[0] }, { &th_once_cell_ops, &errno_cells[1] } };

static int child_errno_after_on_wipe(void *p)
{
	(void)p;
	errno = TH_ERRNO_SENTINEL;
	for (unsigned i = 0; i < 4; i++) {
		const struct th_value_ops *ops = errno_calls[i].ops;
		if (i % 2 == 0)
			TH_CHILD_CHECK(ops->get(errno_calls[i].obj) == NULL);
		else
			TH_CHILD_CHECK(ops->get_or_init(errno_calls[i].obj, value_init, "e") != NULL);
		TH_CHILD_CHECK(th_count('E') == i + 1);
		TH_CHILD_CHECK(errno == TH_ERRNO_SENTINEL); /* nothing found, or success: unchanged */
	}
	return 0;
}

TH_FORK_TEST(wipe, errno_set_by_on_wipe_does_not_leak_to_the_caller, .timeout = 30)
{
	static int v;

	for (unsigned i = 0; i < 4; i++)
		cr_assert_eq(errno_calls[i].ops->set(errno_calls[i].obj, &v), 0);
	TH_ASSERT_CHILD(how, child_errno_after_on_wipe, NULL);
}
