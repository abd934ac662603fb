/* SPDX-License-Identifier: MIT */
/*
 * The lazy globals that test-lazy-global.c and test-lazy-global-other.c share, declared once
 * here as a program's header would, and what the other file reports of its own view of them.
 */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#include <wof.h>

/* A process-wide logger: defined (with on_wipe) in test-lazy-global-other.c. */
struct logger {
	pid_t owner;     /* the process whose init made it */
	unsigned serial; /* which init of the whole test made it, from 1 */
	int fd;          /* stands in for a descriptor the child must close */
};
WOF_LAZY_GLOBAL_DECLARE(struct logger, the_logger);

/* A pool without on_wipe, whose init can fail: defined in test-lazy-global.c. */
struct pool {
	pid_t owner;
	unsigned char bytes[256]; /* all zero when init starts */
};
WOF_LAZY_GLOBAL_DECLARE(struct pool, the_pool);

/* test-lazy-global-other.c's view of the logger, and its hooks' counts. */
struct logger *other_logger(void);      /* the_logger() called from the other file */
struct logger *other_logger_peek(void); /* WOF_LAZY_PEEK(the_logger) there */
unsigned other_logger_inits(void);      /* inits run so far (a child goes on from its parent's) */
unsigned other_logger_wipes(void);      /* on_wipe calls so far, likewise */
bool other_logger_wiped_parents(void);  /* every on_wipe saw a value of another process */
void other_logger_slow_init(bool slow); /* make the next inits take 20 ms */
void other_logger_hold(bool hold);      /* make inits wait until released */
struct pool *other_pool(void);          /* the_pool() called from the other file */
