/* SPDX-License-Identifier: MIT */
/*
 * A frame that a caller's function may leave without returning: how its cleanup runs.
 *
 * WOF_INTERNAL_CLEANUP_PUSH(routine, arg) ... WOF_INTERNAL_CLEANUP_POP(execute) bracket a
 * block, as pthread_cleanup_push/pop do (same scoping rules: one block, in one function, no
 * return or goto out of it). routine(arg) runs when the block is left by unwinding, and at the
 * POP when `execute` is non-zero.
 *
 *   POSIX     pthread_cleanup_push/pop: cancellation, pthread_exit and (libwof is built with
 *             -fexceptions) C++ exceptions run routine, by unwinding (glibc) or from the
 *             thread's cleanup list (musl)
 *   Windows   no pthreads: a scoped __attribute__((cleanup)) variable, which C++ exceptions
 *             (SEH unwinding) and an unwinding longjmp run. ExitThread and _endthreadex do not
 *             unwind at all: what a thread that ends inside the block leaves behind is the
 *             caller's to handle at thread exit (src/once.c abandons its runs there).
 */
#pragma once

#if defined(_WIN32)
struct wof_internal_cleanup {
	void (*routine)(void *);
	void *arg;
};

static inline void wof_internal_cleanup_run(struct wof_internal_cleanup *cleanup)
{
	if (cleanup->routine)
		cleanup->routine(cleanup->arg);
}

#define WOF_INTERNAL_CLEANUP_PUSH(routine_, arg_)                                              \
	{                                                                                       \
		struct wof_internal_cleanup wof_cleanup_                                         \
		        __attribute__((__cleanup__(wof_internal_cleanup_run))) = { (routine_),  \
			                                                            (arg_) };
#define WOF_INTERNAL_CLEANUP_POP(execute_)                                                     \
		if (!(execute_))                                                                 \
			wof_cleanup_.routine = NULL;                                             \
	}
#else
#include <pthread.h>

#define WOF_INTERNAL_CLEANUP_PUSH(routine, arg) pthread_cleanup_push(routine, arg)
#define WOF_INTERNAL_CLEANUP_POP(execute) pthread_cleanup_pop(execute)
#endif
