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

static void lock_on_wipe(void *stale)
{
	th_log('L', stale);
}
static wof_once_lock_t lock = WOF_ONCE_LOCK_INIT_ON_WIPE(lock_on_wipe);
static void *lock_init(void *arg)
{
	(void)arg;
	return new_value('l');
}

static void lazy_lock_on_wipe(void *stale)
{
	th_log('Z', stale);
}
static void *lazy_lock_init(void *arg)
{
	(void)arg;
	return new_value('z');
}
static wof_lazy_lock_t lazy_lock = WOF_LAZY_LOCK_INIT_ON_WIPE(lazy_lock_init, NULL,
                                                              lazy_lock_on_wipe);

/* A 4 KiB slot: a tag (the pool value) and bytes that must survive until on_wipe has seen them. */
struct slot {
	void *tag;
	unsigned char pad[4096 - sizeof(void *)];
};

static void *static_tag; /* the tag of the last lazy static value made in this process */

static int static_init(struct slot *slot)
{
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

static void cell_on_wipe(void *stale)
{
	th_log('C', stale);
}
static wof_once_cell_t cell = WOF_ONCE_CELL_INIT_ON_WIPE(cell_on_wipe);
static void *cell_init(void *arg)
{
	(void)arg;
	return new_value('c');
}

static void lazy_cell_on_wipe(void *stale)
{
	th_log('Y', stale);
}
static void *lazy_cell_init(void *arg)
{
	(void)arg;
	return new_value('y');
}
static wof_lazy_cell_t lazy_cell = WOF_LAZY_CELL_INIT_ON_WIPE(lazy_cell_init, NULL,
                                                              lazy_cell_on_wipe);

/* ---- one interface over the five types -------------------------------------------------- */

static void *lock_get(void)
{
	return wof_once_lock_get(&lock);
}
static void *lock_make(void)
{
	return wof_once_lock_get_or_init(&lock, lock_init, NULL);
}
static void lock_take(void)
{
	(void)wof_once_lock_take(&lock);
}
static void *lazy_lock_get(void)
{
	return wof_lazy_lock_get(&lazy_lock);
}
static void *lazy_lock_make(void)
{
	return wof_lazy_lock_force(&lazy_lock);
}
static void *static_make(void)
{
	struct slot *slot = lazy_static();
	return slot ? slot->tag : NULL;
}
static void *cell_get(void)
{
	return wof_once_cell_get(&cell);
}
static void *cell_make(void)
{
	return wof_once_cell_get_or_init(&cell, cell_init, NULL);
}
static void cell_take(void)
{
	(void)wof_once_cell_take(&cell);
}
static void *lazy_cell_get(void)
{
	return wof_lazy_cell_get(&lazy_cell);
}
static void *lazy_cell_make(void)
{
	return wof_lazy_cell_force(&lazy_cell);
}

struct type {
	const char *name;
	char wipe, init;      /* the letters its on_wipe and its init log */
	void *(*get)(void);   /* never inits; NULL for the lazy static, which has no get */
	void *(*make)(void);  /* get_or_init / force / the accessor; the value (its tag) */
	void (*take)(void);   /* NULL where the type has no take */
	bool threaded;        /* may be used by several threads */
};

static const struct type types[] = {
	{ "once_lock", 'L', 'l', lock_get, lock_make, lock_take, true },
	{ "lazy_lock", 'Z', 'z', lazy_lock_get, lazy_lock_make, NULL, true },
	{ "lazy_static", 'S', 's', NULL, static_make, NULL, true },
	{ "once_cell", 'C', 'c', cell_get, cell_make, cell_take, false },
	{ "lazy_cell", 'Y', 'y', lazy_cell_get, lazy_cell_make, NULL, false },
};
#define NTYPES (sizeof types / sizeof types[0])

/* The object's value in this process without making one (NULL when none was made). */
static void *type_value(const struct type *t)
{
	return t->get ? t->get() : static_tag;
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
		if ((threaded_only && !t->threaded) || (need_take && !t->take))
			continue;
		struct child_arg arg = { t, how, type_value(t), 0 };
		int rc = th_in_child(how, fn, &arg);
		cr_assert_eq(rc, 0, "%s: %s", t->name, th_why);
	}
}

static void make_all(void)
{
	for (size_t i = 0; i < NTYPES; i++)
		cr_assert_not_null(types[i].make(), "%s", types[i].name);
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

/* ---- never in the parent ------------------------------------------------------------------- */

static int child_touches(void *p)
{
	const struct child_arg *a = p;

	TH_CHILD_CHECK(a->t->make() != a->parent_value);
	return 0;
}

TH_FORK_TEST(wipe, parent_never_calls_on_wipe, .timeout = 30)
{
	for (size_t i = 0; i < NTYPES; i++) {
		const struct type *t = &types[i];
		void *v = t->make();
		cr_assert_not_null(v);
		cr_assert_eq(t->make(), v);
		if (t->get)
			cr_assert_eq(t->get(), v);
		if (t->take) {
			t->take(); /* not wiped: the caller gets it back */
			cr_assert_not_null(t->make());
		}
	}
	assert_no_wipe_here();
	for_each_type(how, child_touches, false, false);
	for (size_t i = 0; i < NTYPES; i++)
		cr_assert_not_null(type_value(&types[i]));
	assert_no_wipe_here();
}

/* ---- exactly once in a child, with the parent's value, before init ---------------------------- */

static int child_get_first(void *p)
{
	const struct child_arg *a = p;
	const struct type *t = a->t;

	errno = TH_ERRNO_SENTINEL;
	TH_CHILD_CHECK(t->get() == NULL);
	TH_CHILD_CHECK(errno == TH_ERRNO_SENTINEL);
	CHECK_EVENTS(t, "W", a->parent_value);
	TH_CHILD_CHECK(t->get() == NULL);
	CHECK_EVENTS(t, "W", a->parent_value); /* not again */
	void *mine = t->make();
	TH_CHILD_CHECK(mine != NULL && mine != a->parent_value);
	CHECK_EVENTS(t, "WI", a->parent_value);
	TH_CHILD_CHECK(t->get() == mine);
	TH_CHILD_CHECK(t->make() == mine);
	if (t->take) {
		t->take();
		TH_CHILD_CHECK(t->get() == NULL);
	}
	CHECK_EVENTS(t, "WI", a->parent_value);
	return 0;
}

TH_FORK_TEST(wipe, child_first_get_calls_on_wipe_once_with_parents_value, .timeout = 30)
{
	make_all();
	for (size_t i = 0; i < NTYPES; i++) {
		const struct type *t = &types[i];
		if (!t->get)
			continue;
		struct child_arg arg = { t, how, t->get(), 0 };
		cr_assert_eq(th_in_child(how, child_get_first, &arg), 0, "%s: %s", t->name, th_why);
	}
	assert_no_wipe_here();
}

static int child_init_first(void *p)
{
	const struct child_arg *a = p;
	const struct type *t = a->t;

	errno = TH_ERRNO_SENTINEL;
	void *mine = t->make();
	TH_CHILD_CHECK(mine != NULL && mine != a->parent_value);
	TH_CHILD_CHECK(errno == TH_ERRNO_SENTINEL);
	/* on_wipe with the parent's value, then init: "WI" in that order. */
	CHECK_EVENTS(t, "WI", a->parent_value);
	TH_CHILD_CHECK(t->make() == mine);
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
	struct child_arg arg = { &types[2], how, slot->tag, 0 };
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

static int ok_init(void *arg, void **out)
{
	*out = arg;
	return 0;
}

enum first_call { FIRST_SET, FIRST_TRY_INSERT, FIRST_TAKE, FIRST_TRY_INIT, FIRST_WAIT, FIRST_N };

TH_VALUE_OPS(once_lock, WOF_ONCE_LOCK_INIT, NULL);
TH_VALUE_OPS(once_cell, WOF_ONCE_CELL_INIT, NULL);

/* The first call in a child is a.kind on the object of a.t (a once lock or a once cell). */
struct first_call_arg {
	struct child_arg a;
	const struct th_value_ops *ops;
	void *obj;
};

static int child_first_call(void *p)
{
	const struct first_call_arg *f = p;
	const struct th_value_ops *ops = f->ops;
	static int mine;
	void *out = NULL;
	pthread_t setter;

	switch ((enum first_call)f->a.kind) {
	case FIRST_SET:
		TH_CHILD_CHECK(ops->set(f->obj, &mine) == 0);
		break;
	case FIRST_TRY_INSERT:
		TH_CHILD_CHECK(ops->try_insert(f->obj, &mine, &out) == 0 && out == &mine);
		break;
	case FIRST_TAKE:
		TH_CHILD_CHECK(ops->take(f->obj) == NULL);
		TH_CHILD_CHECK(ops->set(f->obj, &mine) == 0);
		break;
	case FIRST_TRY_INIT:
		TH_CHILD_CHECK(ops->get_or_try_init(f->obj, ok_init, &mine, &out) == 0);
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
	TH_CHILD_CHECK(ops->get(f->obj) == &mine);
	CHECK_EVENTS(f->a.t, "W", f->a.parent_value);
	TH_CHILD_CHECK(th_count(f->a.t->wipe) == 1);
	return 0;
}

static void first_calls(enum th_fork_kind how, const struct type *t,
                        const struct th_value_ops *ops, void *obj, int kinds)
{
	void *parent = t->make();

	th_log_reset();
	for (int k = 0; k < kinds; k++) {
		struct first_call_arg arg = { { t, how, parent, k }, ops, obj };
		cr_assert_eq(th_in_child(how, child_first_call, &arg), 0, "%s, first call %d: %s",
		             t->name, k, th_why);
	}
	assert_no_wipe_here();
}

TH_FORK_TEST(wipe, lock_first_call_of_any_kind_calls_on_wipe_once, .timeout = 30)
{
	first_calls(how, &types[0], &th_once_lock_ops, &lock, FIRST_N);
}

/* Every other kind of first call on a once cell (get and get_or_init are above). */
TH_FORK_TEST(wipe, cell_first_call_of_any_kind_calls_on_wipe_once, .timeout = 30)
{
	first_calls(how, &types[3], &th_once_cell_ops, &cell, FIRST_WAIT);
}

/* ---- nothing held at fork: no on_wipe -------------------------------------------------------- */

static int child_nothing_held(void *p)
{
	const struct child_arg *a = p;
	const struct type *t = a->t;

	if (t->get) {
		TH_CHILD_CHECK(t->get() == NULL);
		CHECK_EVENTS(t, "", NULL);
	}
	TH_CHILD_CHECK(t->make() != NULL);
	CHECK_EVENTS(t, "I", NULL);
	TH_CHILD_CHECK(t->make() != NULL);
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
		cr_assert_null(types[i].make(), "%s", types[i].name);
	fail_inits = false;
	th_log_reset();
	for_each_type(how, child_nothing_held, false, false);
	assert_no_wipe_here();
}

TH_FORK_TEST(wipe, taken_before_fork_no_on_wipe, .timeout = 30)
{
	make_all();
	for (size_t i = 0; i < NTYPES; i++)
		if (types[i].take)
			types[i].take();
	for_each_type(how, child_nothing_held, false, true);
	assert_no_wipe_here();
}

/* ---- grandchildren ---------------------------------------------------------------------------- */

static int grandchild_get_first(void *p)
{
	const struct child_arg *a = p;
	const struct type *t = a->t;

	if (t->get)
		TH_CHILD_CHECK(t->get() == NULL);
	void *mine = t->make();
	TH_CHILD_CHECK(mine != NULL && mine != a->parent_value);
	CHECK_EVENTS(t, "WI", a->parent_value);
	TH_CHILD_CHECK(t->make() == mine);
	CHECK_EVENTS(t, "WI", a->parent_value);
	return 0;
}

static int child_untouched_forks(void *p)
{
	const struct child_arg *a = p;

	/* The child does not touch the object; its child finds the grandparent's value. */
	TH_CHILD_CHECK(th_in_child(a->how, grandchild_get_first, p) == 0);
	/* And the child itself, touching it later, gets its own single on_wipe. */
	CHECK_EVENTS(a->t, "", NULL);
	TH_CHILD_CHECK(grandchild_get_first(p) == 0);
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

	void *mine = a->t->make();
	TH_CHILD_CHECK(mine != NULL && mine != a->parent_value);
	CHECK_EVENTS(a->t, "WI", a->parent_value);
	th_log_reset();
	grand.parent_value = mine;
	TH_CHILD_CHECK(th_in_child(a->how, grandchild_get_first, &grand) == 0);
	TH_CHILD_CHECK(a->t->make() == mine);
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

struct mt {
	const struct type *t;
	pthread_barrier_t barrier;
	void *got[8];
	bool use_get[8];
};

struct mt_thread {
	struct mt *mt;
	int index;
};

static void *mt_thread(void *arg)
{
	struct mt_thread *th = arg;
	struct mt *mt = th->mt;

	pthread_barrier_wait(&mt->barrier);
	if (mt->use_get[th->index])
		mt->got[th->index] = mt->t->get();
	mt->got[th->index] = mt->t->make();
	return NULL;
}

static int child_threads_race(void *p)
{
	const struct child_arg *a = p;
	static struct mt mt;
	struct mt_thread th[8];
	pthread_t threads[8];

	mt.t = a->t;
	pthread_barrier_init(&mt.barrier, NULL, 8);
	for (int i = 0; i < 8; i++) {
		mt.use_get[i] = a->t->get && i % 2 == 0;
		th[i] = (struct mt_thread){ &mt, i };
		TH_CHILD_CHECK(pthread_create(&threads[i], NULL, mt_thread, &th[i]) == 0);
	}
	for (int i = 0; i < 8; i++)
		pthread_join(threads[i], NULL);
	pthread_barrier_destroy(&mt.barrier);
	for (int i = 0; i < 8; i++)
		TH_CHILD_CHECK(mt.got[i] != NULL && mt.got[i] != a->parent_value && mt.got[i] == mt.got[0]);
	CHECK_EVENTS(a->t, "WI", a->parent_value);
	return 0;
}

TH_FORK_TEST(wipe, threads_of_a_child_race_on_a_wiped_object_on_wipe_once, .timeout = 60)
{
	make_all();
	for (int round = 0; round < 10; round++)
		for_each_type(how, child_threads_race, true, false);
	assert_no_wipe_here();
}

/* Several threads that only get: still one on_wipe, and nothing set. */
static void *mt_get_thread(void *arg)
{
	struct mt_thread *th = arg;

	pthread_barrier_wait(&th->mt->barrier);
	th->mt->got[th->index] = th->mt->t->get();
	return NULL;
}

static int child_threads_get(void *p)
{
	const struct child_arg *a = p;
	static struct mt mt;
	struct mt_thread th[8];
	pthread_t threads[8];

	mt.t = a->t;
	pthread_barrier_init(&mt.barrier, NULL, 8);
	for (int i = 0; i < 8; i++) {
		th[i] = (struct mt_thread){ &mt, i };
		TH_CHILD_CHECK(pthread_create(&threads[i], NULL, mt_get_thread, &th[i]) == 0);
	}
	for (int i = 0; i < 8; i++)
		pthread_join(threads[i], NULL);
	pthread_barrier_destroy(&mt.barrier);
	for (int i = 0; i < 8; i++)
		TH_CHILD_CHECK(mt.got[i] == NULL);
	CHECK_EVENTS(a->t, "W", a->parent_value);
	return 0;
}

TH_FORK_TEST(wipe, threads_of_a_child_get_a_wiped_object_on_wipe_once, .timeout = 60)
{
	make_all();
	for (int round = 0; round < 10; round++)
		for (size_t i = 0; i < 2; i++) { /* the two locks have a get */
			struct child_arg arg = { &types[i], how, types[i].get(), 0 };
			cr_assert_eq(th_in_child(how, child_threads_get, &arg), 0, "%s: %s",
			             types[i].name, th_why);
		}
	assert_no_wipe_here();
}

/* ---- an init that forks --------------------------------------------------------------------- */

/*
 * The forking init: armed once, it forks (by `fork_how`) and returns a new value in both
 * processes. The child, after the outer call returns, reports to `fork_fd` and _exits.
 */
static bool fork_armed;
static enum th_fork_kind fork_how;
static pid_t forked_child; /* in the parent; 0 in the child */

static void maybe_fork(void)
{
	if (!fork_armed)
		return;
	fork_armed = false;
	forked_child = th_fork(fork_how);
	if (forked_child == 0)
		th_child_begin();
}

static void *forking_lock_init(void *arg)
{
	(void)arg;
	maybe_fork();
	return new_value('l');
}

static int forking_try_init(void *arg, void **out)
{
	(void)arg;
	maybe_fork();
	*out = new_value(*(char *)arg);
	return 0;
}

static void *forking_cell_init(void *arg)
{
	(void)arg;
	maybe_fork();
	return new_value('c');
}

static wof_lazy_lock_t forking_lazy_lock;
static void *forking_lazy_lock_init(void *arg)
{
	(void)arg;
	maybe_fork();
	return new_value('z');
}
static wof_lazy_lock_t forking_lazy_lock =
        WOF_LAZY_LOCK_INIT_ON_WIPE(forking_lazy_lock_init, NULL, lazy_lock_on_wipe);

static int forking_static_init(struct slot *slot)
{
	maybe_fork();
	return static_init(slot);
}
WOF_LAZY_STATIC_ON_WIPE(struct slot, forking_static, forking_static_init, static_on_wipe);

static void *forking_lazy_cell_init(void *arg)
{
	(void)arg;
	maybe_fork();
	return new_value('y');
}
static wof_lazy_cell_t forking_lazy_cell =
        WOF_LAZY_CELL_INIT_ON_WIPE(forking_lazy_cell_init, NULL, lazy_cell_on_wipe);

enum forking { FK_LOCK, FK_LOCK_TRY, FK_LAZY_LOCK, FK_STATIC, FK_CELL, FK_CELL_TRY, FK_LAZY_CELL };
static const char *const forking_names[] = { "once_lock get_or_init", "once_lock get_or_try_init",
	                                     "lazy_lock force",       "lazy static",
	                                     "once_cell get_or_init", "once_cell get_or_try_init",
	                                     "lazy_cell force" };

/* The object's value without initialising it (the lazy static has no such call: NULL). */
static void *forking_get(enum forking f)
{
	switch (f) {
	case FK_LOCK:
	case FK_LOCK_TRY:
		return wof_once_lock_get(&lock);
	case FK_LAZY_LOCK:
		return wof_lazy_lock_get(&forking_lazy_lock);
	case FK_CELL:
	case FK_CELL_TRY:
		return wof_once_cell_get(&cell);
	case FK_LAZY_CELL:
		return wof_lazy_cell_get(&forking_lazy_cell);
	default:
		return NULL;
	}
}

/* The object's value, initialising it with the forking init if needed. */
static void *forking_make(enum forking f)
{
	static char lock_kind = 'l', cell_kind = 'c';
	void *out = NULL;
	struct slot *slot;

	switch (f) {
	case FK_LOCK:
		return wof_once_lock_get_or_init(&lock, forking_lock_init, NULL);
	case FK_LOCK_TRY:
		return wof_once_lock_get_or_try_init(&lock, forking_try_init, &lock_kind, &out) ? NULL
		                                                                                 : out;
	case FK_LAZY_LOCK:
		return wof_lazy_lock_force(&forking_lazy_lock);
	case FK_STATIC:
		slot = forking_static();
		return slot ? slot->tag : NULL;
	case FK_CELL:
		return wof_once_cell_get_or_init(&cell, forking_cell_init, NULL);
	case FK_CELL_TRY:
		return wof_once_cell_get_or_try_init(&cell, forking_try_init, &cell_kind, &out) ? NULL
		                                                                                 : out;
	case FK_LAZY_CELL:
		return wof_lazy_cell_force(&forking_lazy_cell);
	default:
		return NULL;
	}
}

static char forking_wipe_kind(enum forking f)
{
	static const char kinds[] = { 'L', 'L', 'Z', 'S', 'C', 'C', 'Y' };
	return kinds[f];
}

/* In the child of an init that forked, after the outer call returned there. */
static int forked_child_checks(enum forking f, void *made)
{
	const char w = forking_wipe_kind(f);

	TH_CHILD_CHECK(made != NULL); /* the init ran to its end here too */
	if (f != FK_STATIC) {
		TH_CHILD_CHECK(forking_get(f) == NULL); /* ... but stored nothing in the child */
		TH_CHILD_CHECK(th_count(w) == 0);       /* nothing was held at fork */
	}
	th_log_reset();
	void *mine = forking_make(f); /* disarmed: a plain init */
	TH_CHILD_CHECK(mine != NULL);
	TH_CHILD_CHECK(mine != made);
	TH_CHILD_CHECK(th_count(w) == 0);
	TH_CHILD_CHECK(th_count('D') == 0 && th_count('X') == 0);
	TH_CHILD_CHECK(forking_make(f) == mine);
	if (f != FK_STATIC)
		TH_CHILD_CHECK(forking_get(f) == mine);
	TH_CHILD_CHECK(th_count(w) == 0);
	return 0;
}

/* The init of `f` forks: the parent keeps the value, the child (checked above) has none. */
static void run_forking_init(enum th_fork_kind how, enum forking f)
{
	fork_how = how;
	fork_armed = true;
	th_log_reset();
	void *made = forking_make(f);
	if (forked_child == 0)
		th_child_exit(forked_child_checks(f, made));
	int rc = th_reap(forked_child, th_fork_names[how]);
	cr_assert_eq(rc, 0, "%s: %s", forking_names[f], th_why);
	cr_assert_not_null(made, "%s", forking_names[f]);
	cr_assert_eq(forking_make(f), made, "%s: completes in the parent", forking_names[f]);
	if (f != FK_STATIC)
		cr_assert_eq(forking_get(f), made);
	assert_no_wipe_here();
}

#define INIT_THAT_FORKS_TEST(name, f)                                                          \
	TH_FORK_TEST(wipe, init_that_forks_##name, .timeout = 30)                              \
	{                                                                                      \
		run_forking_init(how, f);                                                      \
	}
INIT_THAT_FORKS_TEST(once_lock_get_or_init, FK_LOCK)
INIT_THAT_FORKS_TEST(once_lock_get_or_try_init, FK_LOCK_TRY)
INIT_THAT_FORKS_TEST(lazy_lock_force, FK_LAZY_LOCK)
INIT_THAT_FORKS_TEST(lazy_static, FK_STATIC)
INIT_THAT_FORKS_TEST(once_cell_get_or_init, FK_CELL)
INIT_THAT_FORKS_TEST(once_cell_get_or_try_init, FK_CELL_TRY)
INIT_THAT_FORKS_TEST(lazy_cell_force, FK_LAZY_CELL)

/* After an init forked, a grandchild made by that child still sees nothing held. */
static int forked_then_grandchild(void *p)
{
	(void)p;
	TH_CHILD_CHECK(wof_lazy_lock_get(&forking_lazy_lock) == NULL);
	TH_CHILD_CHECK(th_count('Z') == 0);
	return 0;
}

TH_FORK_TEST(wipe, child_of_forking_init_forks_again_nothing_held, .timeout = 30)
{
	fork_how = how;
	fork_armed = true;
	th_log_reset();
	void *made = wof_lazy_lock_force(&forking_lazy_lock);
	/* Untouched since the fork in init: the grandchild must not see a value either. */
	if (forked_child == 0)
		th_child_exit(th_in_child(how, forked_then_grandchild, NULL));
	int rc = th_reap(forked_child, th_fork_names[how]);
	cr_assert_eq(rc, 0, "%s", th_why);
	cr_assert_eq(wof_lazy_lock_get(&forking_lazy_lock), made);
	assert_no_wipe_here();
}

/* ---- fork while another thread is inside init --------------------------------------------- */

/*
 * A thread sits inside an init when the process forks: the child has no such thread, so it
 * must neither wait for it nor see a value, and nothing was held (no on_wipe); it runs its own
 * init. The parent's thread then finishes and its value is the parent's.
 */
static sem_t blocked_in_init, release_init;
static bool block_armed;

static void maybe_block(void)
{
	if (__atomic_exchange_n(&block_armed, false, __ATOMIC_ACQ_REL)) {
		sem_post(&blocked_in_init);
		while (sem_wait(&release_init) != 0)
			;
	}
}

static void *blocking_lock_init(void *arg)
{
	(void)arg;
	maybe_block();
	return new_value('l');
}

static void *blocking_lazy_lock_init(void *arg)
{
	(void)arg;
	maybe_block();
	return new_value('z');
}
static wof_lazy_lock_t blocking_lazy_lock =
        WOF_LAZY_LOCK_INIT_ON_WIPE(blocking_lazy_lock_init, NULL, lazy_lock_on_wipe);

static int blocking_static_init(struct slot *slot)
{
	maybe_block();
	return static_init(slot);
}
WOF_LAZY_STATIC_ON_WIPE(struct slot, blocking_static, blocking_static_init, static_on_wipe);

static void *blocking_make(int kind)
{
	struct slot *slot;

	switch (kind) {
	case 0:
		return wof_once_lock_get_or_init(&lock, blocking_lock_init, NULL);
	case 1:
		return wof_lazy_lock_force(&blocking_lazy_lock);
	default:
		slot = blocking_static();
		return slot ? slot->tag : NULL;
	}
}

static void *blocking_get(int kind)
{
	return kind == 0 ? wof_once_lock_get(&lock)
	                 : kind == 1 ? wof_lazy_lock_get(&blocking_lazy_lock) : NULL;
}

static void *blocking_thread(void *arg)
{
	return blocking_make((int)(intptr_t)arg);
}

static int child_while_thread_in_init(void *p)
{
	const struct child_arg *a = p;

	if (a->kind != 2) {
		TH_CHILD_CHECK(blocking_get(a->kind) == NULL);
		CHECK_EVENTS(a->t, "", NULL);
	}
	void *mine = blocking_make(a->kind); /* would hang if it waited for the parent's thread */
	TH_CHILD_CHECK(mine != NULL);
	CHECK_EVENTS(a->t, "I", mine); /* no on_wipe: nothing was held at fork */
	TH_CHILD_CHECK(blocking_make(a->kind) == mine);
	if (a->kind != 2)
		TH_CHILD_CHECK(blocking_get(a->kind) == mine);
	CHECK_EVENTS(a->t, "I", mine);
	return 0;
}

TH_FORK_TEST(wipe, fork_while_a_thread_is_inside_init_child_runs_its_own, .timeout = 30)
{
	static const int type_of_kind[] = { 0, 1, 2 }; /* once_lock, lazy_lock, lazy_static */

	sem_init(&blocked_in_init, 0, 0);
	sem_init(&release_init, 0, 0);
	for (int kind = 0; kind < 3; kind++) {
		const struct type *t = &types[type_of_kind[kind]];
		pthread_t thread;
		void *made;

		th_log_reset();
		block_armed = true;
		cr_assert_eq(pthread_create(&thread, NULL, blocking_thread, (void *)(intptr_t)kind), 0);
		while (sem_wait(&blocked_in_init) != 0)
			;
		struct child_arg arg = { t, how, NULL, kind };
		int rc = th_in_child(how, child_while_thread_in_init, &arg);
		sem_post(&release_init);
		pthread_join(thread, &made);
		cr_assert_eq(rc, 0, "%s: %s", t->name, th_why);
		cr_assert_not_null(made);
		cr_assert_eq(blocking_make(kind), made, "%s: the parent keeps its thread's value",
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
static wof_once_lock_t errno_lock = WOF_ONCE_LOCK_INIT_ON_WIPE(errno_on_wipe);
static wof_once_lock_t errno_lock2 = WOF_ONCE_LOCK_INIT_ON_WIPE(errno_on_wipe);
static wof_once_cell_t errno_cell = WOF_ONCE_CELL_INIT_ON_WIPE(errno_on_wipe);
static wof_once_cell_t errno_cell2 = WOF_ONCE_CELL_INIT_ON_WIPE(errno_on_wipe);

static int child_errno_after_on_wipe(void *p)
{
	(void)p;
	errno = TH_ERRNO_SENTINEL;
	TH_CHILD_CHECK(wof_once_lock_get(&errno_lock) == NULL);
	TH_CHILD_CHECK(th_count('E') == 1);
	TH_CHILD_CHECK(errno == TH_ERRNO_SENTINEL); /* get found nothing: errno unchanged */
	TH_CHILD_CHECK(wof_once_lock_get_or_init(&errno_lock2, lock_init, NULL) != NULL);
	TH_CHILD_CHECK(th_count('E') == 2);
	TH_CHILD_CHECK(errno == TH_ERRNO_SENTINEL); /* success: errno unchanged */
	TH_CHILD_CHECK(wof_once_cell_get(&errno_cell) == NULL);
	TH_CHILD_CHECK(th_count('E') == 3);
	TH_CHILD_CHECK(errno == TH_ERRNO_SENTINEL);
	TH_CHILD_CHECK(wof_once_cell_get_or_init(&errno_cell2, cell_init, NULL) != NULL);
	TH_CHILD_CHECK(th_count('E') == 4);
	TH_CHILD_CHECK(errno == TH_ERRNO_SENTINEL);
	return 0;
}

TH_FORK_TEST(wipe, errno_set_by_on_wipe_does_not_leak_to_the_caller, .timeout = 30)
{
	static int v;

	cr_assert_eq(wof_once_lock_set(&errno_lock, &v), 0);
	cr_assert_eq(wof_once_lock_set(&errno_lock2, &v), 0);
	cr_assert_eq(wof_once_cell_set(&errno_cell, &v), 0);
	cr_assert_eq(wof_once_cell_set(&errno_cell2, &v), 0);
	TH_ASSERT_CHILD(how, child_errno_after_on_wipe, NULL);
}
