/* SPDX-License-Identifier: MIT */
/*
 * test-strict (C): <wof.h> stays quiet under the strictest warnings a C consumer is likely to
 * use (tests/meson.build: -Wall -Wextra -Wpedantic -Wconversion -Wsign-conversion -Wcast-qual
 * -Wredundant-decls -Werror in C11 and C17, and clang's -Weverything less a short list), with
 * every macro and inline function of the public headers expanded, not only declared: each
 * static initialiser, WOF_LAZY_STATIC twice in one file (-Wredundant-decls), its _ON_WIPE
 * form, the lazy global macros and WOF_LAZY_PEEK, WOF_LAZY_SECRET, and every inline fast path,
 * both slow and fast. It runs too, and checks what each returns: exit 0 when all held.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>

#include <wof.h>
#include <wof/secret.h>

#include "test-strict.h"

/* In a check function: return this line unless `cond` holds. */
#define STRICT_CHECK(cond)                                                                        \
	do {                                                                                      \
		if (!(cond))                                                                      \
			return __LINE__;                                                          \
	} while (0)

/* A lazy secret, ahead of the names below: WOF_LAZY_SECRET's init thunk still names its
 * parameter `slot`, which -Wshadow reports next to a file-scope `slot`. */
static int secret_init(unsigned long *out)
{
	*out = 0x5ec7e7UL;
	return 0;
}

WOF_LAZY_SECRET(unsigned long, secret_number, secret_init);

/* Names a program may well have at file scope: the macros expand next to them and must not
 * shadow them (-Wshadow, which the build adds, and clang's -Weverything). */
static int slot, stale, value;

/* ---- the initialisers ------------------------------------------------------------------------ */

static int payload = 42;
static unsigned wiped; /* on_wipe calls: none in a process that never forks */

static void *make_payload(void *arg)
{
	return arg;
}

static void forget(void *old)
{
	(void)old;
	wiped++;
}

static wof_once_t once = WOF_ONCE_INIT;
static wof_once_lock_t once_lock = WOF_ONCE_LOCK_INIT;
static wof_once_lock_t once_lock_wiped = WOF_ONCE_LOCK_INIT_ON_WIPE(forget);
static wof_lazy_lock_t lazy_lock = WOF_LAZY_LOCK_INIT(make_payload, &payload);
static wof_lazy_lock_t lazy_lock_wiped = WOF_LAZY_LOCK_INIT_ON_WIPE(make_payload, &payload, forget);
static wof_once_cell_t once_cell = WOF_ONCE_CELL_INIT;
static wof_once_cell_t once_cell_wiped = WOF_ONCE_CELL_INIT_ON_WIPE(forget);
static wof_lazy_cell_t lazy_cell = WOF_LAZY_CELL_INIT(make_payload, &payload);
static wof_lazy_cell_t lazy_cell_wiped = WOF_LAZY_CELL_INIT_ON_WIPE(make_payload, &payload, forget);

/* ---- lazy statics and globals ---------------------------------------------------------------- */

struct pair {
	long a;
	unsigned char b;
};

static unsigned pair_inits, number_inits, wide_inits;

static int pair_init(struct pair *out)
{
	pair_inits++;
	out->a = 7;
	out->b = 8;
	return 0;
}

static int number_init(unsigned *out)
{
	number_inits++;
	*out = 9u;
	return 0;
}

static void pair_forget(struct pair *old)
{
	old->a = 0;
	wiped++;
}

WOF_LAZY_STATIC(struct pair, pair_value, pair_init);
WOF_LAZY_STATIC(unsigned, number, number_init);
WOF_LAZY_STATIC_ON_WIPE(struct pair, pair_wiped, pair_init, pair_forget);

/* A global declared and defined in this file, and the one test-strict.h declares. */
typedef unsigned wide_t[4]; /* an array type, through a typedef */
WOF_LAZY_GLOBAL_DECLARE(wide_t, wide);

static int wide_init(wide_t *out)
{
	wide_inits++;
	(*out)[3] = 3u;
	return 0;
}

WOF_LAZY_GLOBAL_DEFINE(wide_t, wide, wide_init);

static int shared_init(struct strict_counter *out)
{
	out->value = 11;
	out->inits++;
	return 0;
}

static void shared_forget(struct strict_counter *old)
{
	old->value = -1;
}

WOF_LAZY_GLOBAL_DEFINE_ON_WIPE(struct strict_counter, strict_shared, shared_init, shared_forget);

struct strict_counter *strict_shared_from_c(void)
{
	return strict_shared();
}

/* ---- the checks ------------------------------------------------------------------------------ */

static void count(void *arg)
{
	++*(int *)arg;
}

static int count_ok(void *arg)
{
	count(arg);
	return 0;
}

static int check_once(void)
{
	int runs = 0;

	STRICT_CHECK(!wof_once_is_completed(&once));
	STRICT_CHECK(wof_once_call(&once, count, &runs) == 0);
	STRICT_CHECK(wof_once_call(&once, count, &runs) == 0);
	STRICT_CHECK(wof_once_try_call(&once, count_ok, &runs) == 0);
	STRICT_CHECK(wof_once_wait(&once) == 0);
	STRICT_CHECK(wof_once_is_completed(&once));
	STRICT_CHECK(runs == 1);
	STRICT_CHECK(wof_generation() != 0);
	unsigned detected = wof_fork_detection();
	STRICT_CHECK(detected == WOF_FORK_DETECT_NO_FORK ||
	             (detected & ~(WOF_FORK_DETECT_ATFORK | WOF_FORK_DETECT_WIPEONFORK)) ==
	                     WOF_FORK_DETECT_NONE);
	return 0;
}

static int check_locks_and_cells(void)
{
	STRICT_CHECK(wof_once_lock_get(&once_lock) == NULL);
	STRICT_CHECK(wof_once_lock_get_or_init(&once_lock, make_payload, &payload) == &payload);
	STRICT_CHECK(wof_once_lock_get(&once_lock) == &payload);
	STRICT_CHECK(wof_once_lock_get_or_init(&once_lock_wiped, make_payload, &payload) ==
	             &payload);
	STRICT_CHECK(wof_lazy_lock_get(&lazy_lock) == NULL);
	STRICT_CHECK(wof_lazy_lock_force(&lazy_lock) == &payload);
	STRICT_CHECK(wof_lazy_lock_force(&lazy_lock) == &payload);
	STRICT_CHECK(wof_lazy_lock_get(&lazy_lock) == &payload);
	STRICT_CHECK(wof_lazy_lock_force(&lazy_lock_wiped) == &payload);

	STRICT_CHECK(wof_once_cell_get(&once_cell) == NULL);
	STRICT_CHECK(wof_once_cell_get_or_init(&once_cell, make_payload, &payload) == &payload);
	STRICT_CHECK(wof_once_cell_get_or_init(&once_cell, make_payload, &payload) == &payload);
	STRICT_CHECK(wof_once_cell_get(&once_cell) == &payload);
	STRICT_CHECK(wof_once_cell_get_or_init(&once_cell_wiped, make_payload, &payload) ==
	             &payload);
	STRICT_CHECK(wof_lazy_cell_get(&lazy_cell) == NULL);
	STRICT_CHECK(wof_lazy_cell_force(&lazy_cell) == &payload);
	STRICT_CHECK(wof_lazy_cell_force(&lazy_cell) == &payload);
	STRICT_CHECK(wof_lazy_cell_get(&lazy_cell) == &payload);
	STRICT_CHECK(wof_lazy_cell_force(&lazy_cell_wiped) == &payload);
	STRICT_CHECK(wiped == 0);
	return 0;
}

static int check_lazy(void)
{
	STRICT_CHECK(WOF_LAZY_PEEK(pair_value) == NULL);
	STRICT_CHECK(WOF_LAZY_PEEK(pair_wiped) == NULL);
	STRICT_CHECK(WOF_LAZY_PEEK(wide) == NULL);

	struct pair *p = pair_value();
	STRICT_CHECK(p != NULL && p->a == 7 && p->b == 8);
	STRICT_CHECK(pair_value() == p && WOF_LAZY_PEEK(pair_value) == p);
	STRICT_CHECK(WOF_LAZY_PEEK(pair_wiped) == NULL);
	struct pair *w = pair_wiped();
	STRICT_CHECK(w != NULL && w != p && w->a == 7);
	STRICT_CHECK(pair_wiped() == w && WOF_LAZY_PEEK(pair_wiped) == w);
	STRICT_CHECK(pair_inits == 2);

	unsigned *n = number();
	STRICT_CHECK(n != NULL && *n == 9u && number() == n && number_inits == 1);
	STRICT_CHECK(WOF_LAZY_PEEK(number) == n);

	wide_t *wd = wide();
	STRICT_CHECK(wd != NULL && (*wd)[3] == 3u && (*wd)[0] == 0u);
	STRICT_CHECK(wide() == wd && WOF_LAZY_PEEK(wide) == wd && wide_inits == 1);

	struct strict_counter *s = strict_shared();
	STRICT_CHECK(s != NULL && s->value == 11 && s->inits == 1);
	STRICT_CHECK(strict_shared() == s && WOF_LAZY_PEEK(strict_shared) == s);

	errno = 0;
	unsigned long *secret = secret_number();
	STRICT_CHECK(secret != NULL && *secret == 0x5ec7e7UL && secret_number() == secret);
	STRICT_CHECK(errno == 0);
	STRICT_CHECK(wiped == 0);
	return 0;
}

int strict_c_checks(void)
{
	int line = slot + stale + value == 0 ? check_once() : __LINE__;

	if (line == 0)
		line = check_locks_and_cells();
	if (line == 0)
		line = check_lazy();
	return line;
}

#ifndef WOF_STRICT_NO_MAIN
int main(void)
{
	int line = strict_c_checks();

	if (line != 0) {
		fprintf(stderr, "test-strict.c:%d: check failed\n", line);
		return 1;
	}
	printf("C %ld: passed\n", (long)__STDC_VERSION__);
	return 0;
}
#endif
