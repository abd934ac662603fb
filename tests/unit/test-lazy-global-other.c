/* SPDX-License-Identifier: MIT */
/*
 * The second file of test-lazy-global: it defines the logger that test-lazy-global.h declares
 * (WOF_LAZY_GLOBAL_DEFINE_ON_WIPE) and uses both globals from here, so that the test sees one
 * object and one init whichever file calls first.
 */
#include <time.h>
#include <unistd.h>

#include "test-lazy-global.h"
#include "wof-test.h"

static unsigned inits, wipes, serials;
static bool wiped_others = true;
static bool slow;
static int released = 1; /* inits wait while 0 (other_logger_hold) */

static int logger_open(struct logger *slot)
{
	__atomic_fetch_add(&inits, 1, __ATOMIC_RELAXED);
	th_gate_wait(&released);
	if (__atomic_load_n(&slow, __ATOMIC_RELAXED)) {
		struct timespec ts = { 0, 20 * 1000 * 1000 }; /* racers pile up meanwhile */
		nanosleep(&ts, NULL);
	}
	slot->owner = getpid();
	slot->serial = __atomic_add_fetch(&serials, 1, __ATOMIC_RELAXED);
	slot->fd = 100 + (int)slot->serial;
	return 0;
}

static void logger_close(struct logger *stale)
{
	wipes++;
	if (stale->owner == getpid() || stale->fd != 100 + (int)stale->serial)
		wiped_others = false;
}

WOF_LAZY_GLOBAL_DEFINE_ON_WIPE(struct logger, the_logger, logger_open, logger_close);

struct logger *other_logger(void)
{
	return the_logger();
}

struct logger *other_logger_peek(void)
{
	return WOF_LAZY_PEEK(the_logger);
}

unsigned other_logger_inits(void)
{
	return __atomic_load_n(&inits, __ATOMIC_RELAXED);
}

unsigned other_logger_wipes(void)
{
	return wipes;
}

bool other_logger_wiped_parents(void)
{
	return wiped_others;
}

void other_logger_hold(bool on)
{
	th_set(&released, on ? 0 : 1);
}

void other_logger_slow_init(bool on)
{
	__atomic_store_n(&slow, on, __ATOMIC_RELAXED);
}

struct pool *other_pool(void)
{
	return the_pool();
}
