// SPDX-License-Identifier: MIT
// test-strict (C++): <wof.h> and <wof/wof.hpp> stay quiet under the strictest warnings a C++
// consumer is likely to use (tests/meson.build: -Wall -Wextra -Wpedantic -Wold-style-cast
// -Wzero-as-null-pointer-constant -Wuseless-cast -Wcast-qual -Wredundant-decls -Werror in
// C++11, 14, 17 and 20, and clang's -Weverything less a short list), with every macro and
// inline function of the C headers expanded in C++: each static initialiser, WOF_LAZY_STATIC
// twice in one file, its _ON_WIPE form, the lazy global macros and WOF_LAZY_PEEK,
// WOF_LAZY_SECRET, and every inline fast path. test-strict.c is linked in as well: a lazy
// global defined in C is the same object, made once, from C++; and the C checks run here too.
// Exit 0 when all held.
#include <wof.h>
#include <wof/secret.h>
#include <wof/wof.hpp>

#include <cerrno>
#include <cstdio>

#include "test-strict.h"

// In a check function: return this line unless `cond` holds.
#define STRICT_CHECK(cond)                                                                        \
	do {                                                                                      \
		if (!(cond))                                                                      \
			return __LINE__;                                                          \
	} while (false)

namespace {

// A lazy secret, ahead of the names below: WOF_LAZY_SECRET's init thunk still names its
// parameter `slot`, which -Wshadow reports next to a namespace-scope `slot`.
int secret_init(unsigned long *out)
{
	*out = 0x5ec7e7UL;
	return 0;
}

WOF_LAZY_SECRET(unsigned long, secret_number, secret_init);

// Names a program may well have at namespace scope: the macros expand next to them and must
// not shadow them (clang's -Weverything has -Wshadow).
int slot, stale, value;

// ---- the initialisers ---------------------------------------------------------------------------

int payload = 42;
unsigned wiped; // on_wipe calls: none in a process that never forks

void *make_payload(void *arg)
{
	return arg;
}

void forget(void *)
{
	wiped++;
}

wof_once_t once = WOF_ONCE_INIT;
wof_once_lock_t once_lock = WOF_ONCE_LOCK_INIT;
wof_once_lock_t once_lock_wiped = WOF_ONCE_LOCK_INIT_ON_WIPE(forget);
wof_lazy_lock_t lazy_lock = WOF_LAZY_LOCK_INIT(make_payload, &payload);
wof_lazy_lock_t lazy_lock_wiped = WOF_LAZY_LOCK_INIT_ON_WIPE(make_payload, &payload, forget);
wof_once_cell_t once_cell = WOF_ONCE_CELL_INIT;
wof_once_cell_t once_cell_wiped = WOF_ONCE_CELL_INIT_ON_WIPE(forget);
wof_lazy_cell_t lazy_cell = WOF_LAZY_CELL_INIT(make_payload, &payload);
wof_lazy_cell_t lazy_cell_wiped = WOF_LAZY_CELL_INIT_ON_WIPE(make_payload, &payload, forget);

// ---- lazy statics -------------------------------------------------------------------------------

struct pair {
	long a;
	unsigned char b;
};

unsigned pair_inits, number_inits;

int pair_init(pair *out)
{
	pair_inits++;
	out->a = 7;
	out->b = 8;
	return 0;
}

int number_init(unsigned *out)
{
	number_inits++;
	*out = 9u;
	return 0;
}

void pair_forget(pair *old)
{
	old->a = 0;
	wiped++;
}

} // namespace

WOF_LAZY_STATIC(pair, pair_value, pair_init);
WOF_LAZY_STATIC(unsigned, number, number_init);
WOF_LAZY_STATIC_ON_WIPE(pair, pair_wiped, pair_init, pair_forget);

// ---- a lazy global defined in C++, in a namespace -----------------------------------------------

namespace strict {

struct point {
	int x, y;
};

static unsigned point_inits;

WOF_LAZY_GLOBAL_DECLARE(point, origin);
WOF_LAZY_GLOBAL_DECLARE(point, corner);

static int point_init(point *out)
{
	point_inits++;
	out->y = 1;
	return 0;
}

static void point_forget(point *old)
{
	old->y = 0;
}

WOF_LAZY_GLOBAL_DEFINE(point, origin, point_init);
WOF_LAZY_GLOBAL_DEFINE_ON_WIPE(point, corner, point_init, point_forget);

} // namespace strict

// ---- the C++ wrapper ----------------------------------------------------------------------------

namespace {

int made;

int make_number()
{
	return ++made;
}

wof::lazy<int> lazy_number(&make_number);
wof::once cpp_once;

// ---- the checks ---------------------------------------------------------------------------------

void count(void *arg)
{
	++*static_cast<int *>(arg);
}

int count_ok(void *arg)
{
	count(arg);
	return 0;
}

int check_once()
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

int check_locks_and_cells()
{
	STRICT_CHECK(wof_once_lock_get(&once_lock) == nullptr);
	STRICT_CHECK(wof_once_lock_get_or_init(&once_lock, make_payload, &payload) == &payload);
	STRICT_CHECK(wof_once_lock_get(&once_lock) == &payload);
	STRICT_CHECK(wof_once_lock_get_or_init(&once_lock_wiped, make_payload, &payload) ==
	             &payload);
	STRICT_CHECK(wof_lazy_lock_get(&lazy_lock) == nullptr);
	STRICT_CHECK(wof_lazy_lock_force(&lazy_lock) == &payload);
	STRICT_CHECK(wof_lazy_lock_force(&lazy_lock) == &payload);
	STRICT_CHECK(wof_lazy_lock_get(&lazy_lock) == &payload);
	STRICT_CHECK(wof_lazy_lock_force(&lazy_lock_wiped) == &payload);

	STRICT_CHECK(wof_once_cell_get(&once_cell) == nullptr);
	STRICT_CHECK(wof_once_cell_get_or_init(&once_cell, make_payload, &payload) == &payload);
	STRICT_CHECK(wof_once_cell_get_or_init(&once_cell, make_payload, &payload) == &payload);
	STRICT_CHECK(wof_once_cell_get(&once_cell) == &payload);
	STRICT_CHECK(wof_once_cell_get_or_init(&once_cell_wiped, make_payload, &payload) ==
	             &payload);
	STRICT_CHECK(wof_lazy_cell_get(&lazy_cell) == nullptr);
	STRICT_CHECK(wof_lazy_cell_force(&lazy_cell) == &payload);
	STRICT_CHECK(wof_lazy_cell_force(&lazy_cell) == &payload);
	STRICT_CHECK(wof_lazy_cell_get(&lazy_cell) == &payload);
	STRICT_CHECK(wof_lazy_cell_force(&lazy_cell_wiped) == &payload);
	STRICT_CHECK(wiped == 0);
	return 0;
}

int check_lazy()
{
	using namespace strict; // WOF_LAZY_PEEK takes a name, not a qualified one

	STRICT_CHECK(WOF_LAZY_PEEK(pair_value) == nullptr);
	STRICT_CHECK(WOF_LAZY_PEEK(origin) == nullptr);

	pair *p = pair_value();
	STRICT_CHECK(p != nullptr && p->a == 7 && p->b == 8);
	STRICT_CHECK(pair_value() == p && WOF_LAZY_PEEK(pair_value) == p);
	STRICT_CHECK(WOF_LAZY_PEEK(pair_wiped) == nullptr);
	pair *w = pair_wiped();
	STRICT_CHECK(w != nullptr && w != p && w->a == 7);
	STRICT_CHECK(pair_wiped() == w && WOF_LAZY_PEEK(pair_wiped) == w);
	STRICT_CHECK(pair_inits == 2);

	unsigned *n = number();
	STRICT_CHECK(n != nullptr && *n == 9u && number() == n && number_inits == 1);
	STRICT_CHECK(WOF_LAZY_PEEK(number) == n);

	strict::point *o = strict::origin();
	STRICT_CHECK(o != nullptr && o->x == 0 && o->y == 1 && strict::origin() == o);
	STRICT_CHECK(WOF_LAZY_PEEK(origin) == o);
	strict::point *c = strict::corner();
	STRICT_CHECK(c != nullptr && c != o && c->y == 1 && strict::corner() == c);
	STRICT_CHECK(strict::point_inits == 2);

	errno = 0;
	unsigned long *secret = secret_number();
	STRICT_CHECK(secret != nullptr && *secret == 0x5ec7e7UL && secret_number() == secret);
	STRICT_CHECK(errno == 0);

	STRICT_CHECK(*lazy_number == 1 && *lazy_number == 1 && made == 1);
	int runs = 0;
	cpp_once.call([&runs] { ++runs; });
	cpp_once.call([&runs] { ++runs; });
	STRICT_CHECK(runs == 1 && cpp_once.is_completed());
	STRICT_CHECK(wiped == 0);
	return 0;
}

// The lazy global of test-strict.h: defined in C, one object and one init from either side.
int check_shared()
{
	STRICT_CHECK(WOF_LAZY_PEEK(strict_shared) == nullptr);
	strict_counter *mine = strict_shared();
	STRICT_CHECK(mine != nullptr && mine->value == 11 && mine->inits == 1);
	STRICT_CHECK(strict_shared_from_c() == mine);
	STRICT_CHECK(WOF_LAZY_PEEK(strict_shared) == mine && mine->inits == 1);
	return 0;
}

} // namespace

int main()
{
	int line = slot + stale + value == 0 ? check_once() : __LINE__;

	if (line == 0)
		line = check_locks_and_cells();
	if (line == 0)
		line = check_lazy();
	if (line == 0)
		line = check_shared();
	if (line != 0) {
		std::fprintf(stderr, "test-strict.cpp:%d: check failed\n", line);
		return 1;
	}
	line = strict_c_checks();
	if (line != 0) {
		std::fprintf(stderr, "test-strict.c:%d: check failed (in the C++ program)\n", line);
		return 1;
	}
	std::printf("C++ %ld: passed\n", __cplusplus);
	return 0;
}
