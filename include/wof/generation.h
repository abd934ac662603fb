/* SPDX-License-Identifier: MIT */
/* wof_generation(): which process am I, as far as fork is concerned. */
#pragma once

#include <wof/internal.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * wof_generation() - the calling process's fork generation.
 *
 * Never 0 and constant within a process. A value a process obtained, or recorded in a wof
 * object, before it forked is never the generation of any of its descendants. On Linux >= 4.14
 * (MADV_WIPEONFORK) this holds for every child that copies the address space: fork(), _Fork(),
 * syscall(SYS_fork), clone() without CLONE_VM. Elsewhere, for fork() (pthread_atfork).
 * Children made with CLONE_VM (vfork, posix_spawn) share the parent's memory and generation;
 * they may only exec or _exit.
 *
 * Async-signal-safe once this process has called any wof function; the first call of a process
 * maps one page and may register an atfork handler.
 *
 * Memory ordering: none; the value is constant within a process.
 * Fork: a child's first call returns a new value, larger than its parent's (modulo 2^32).
 *
 * Return: the generation, never 0.
 */
WOF_API uint32_t wof_generation(void);

/* wof_generation() is inline once the process has a generation: one load. `&wof_generation`
 * and `(wof_generation)()` still name the exported function. */
static inline uint32_t wof_internal_generation_fast(void)
{
	uint32_t gen = wof_internal_generation_peek();
	return WOF_LIKELY(gen != 0) ? gen : (wof_generation)();
}
#define wof_generation() wof_internal_generation_fast()

/** Bits of wof_fork_detection(). */
#define WOF_FORK_DETECT_NONE 0u       /* nothing: objects keep their state across fork   */
#define WOF_FORK_DETECT_ATFORK 1u     /* a pthread_atfork child handler: fork() children */
#define WOF_FORK_DETECT_WIPEONFORK 2u /* a MADV_WIPEONFORK page: every address-space copy */
#define WOF_FORK_DETECT_NO_FORK 4u    /* the system has no fork(): nothing to detect     */

/**
 * wof_fork_detection() - which mechanisms tell this process's children they are new.
 *
 * WOF_FORK_DETECT_WIPEONFORK is set when the kernel honours MADV_WIPEONFORK (probed at first
 * use: emulators that accept any madvise advice are not trusted); then _Fork(), raw clone() and
 * syscall(SYS_fork) children are detected too, and secret memory reads as zero in them.
 * WOF_FORK_DETECT_ATFORK is set once the pthread_atfork child handler is registered: fork()
 * children are detected. A mechanism that could not be set up (pthread_atfork or mmap failed
 * for lack of memory) is retried by later slow paths, and reported only once it is in effect.
 * WOF_FORK_DETECT_NONE (0) means that neither is, yet: a child forked now would keep every
 * object as its parent left it, as pthread_once does. On Windows, which has no fork(), the
 * result is always WOF_FORK_DETECT_NO_FORK, alone: there is no child to detect, the generation
 * changes only through wof_wipe_all(), and objects are never wiped otherwise.
 *
 * Memory ordering: none.
 * Fork: a child reports what its parent had, or more once a retry succeeds.
 *
 * Return: a combination of the WOF_FORK_DETECT_* bits; 0 when no fork would be detected;
 * WOF_FORK_DETECT_NO_FORK where there is no fork().
 */
WOF_API unsigned wof_fork_detection(void);

/**
 * wof_wipe_all() - make the calling process new, as if it had just been forked.
 *
 * For copies of a running process that no fork made, which the kernel cannot flag: a VM
 * snapshot restored more than once, a CRIU restore, a harness that clones process state.
 * Afterwards every wof object reads as uninitialised on its next use, as in a child (on_wipe
 * hooks run then, once per object that held a value), every secret block reads as zero (it
 * stays allocated), and wof_generation() returns a new value larger than any this process or
 * its ancestors had.
 *
 * Call it while no other thread uses wof objects: a thread parked on, or running the
 * initialiser of, an object at that moment belongs to the old generation, and may run that
 * initialiser a second time. From inside a wof initialiser or on_wipe hook of the calling
 * thread it is refused: a debug build aborts with a message, a release build (NDEBUG) sets
 * errno to EDEADLK and changes nothing. Not async-signal-safe.
 *
 * Memory ordering: none; the caller provides the exclusion.
 * Fork: a child forked afterwards is new relative to the new generation too.
 */
WOF_API void wof_wipe_all(void);

/**
 * wof_sweep() - run now every on_wipe hook that a first use would run later.
 *
 * In a child, each thread-safe object with an on_wipe hook (wof_once_lock_t and
 * wof_lazy_lock_t made with *_INIT_ON_WIPE, WOF_LAZY_STATIC_ON_WIPE, lazy globals defined
 * with an on_wipe) that held a value when this process was forked is wiped, exactly as its
 * first use would: its hook runs once with the stale value, and the object is left
 * uninitialised for its next use. Nothing is initialised and no other object is touched.
 * Objects are listed when they first hold a value, in the object itself (no allocation, no
 * cost on the fast path), so the list that a child inherits names every such object that
 * any ancestor filled. Such an object must therefore stay valid for the life of the process
 * (static storage, or memory never freed) once it has held a value. Cells (wof_once_cell_t,
 * wof_lazy_cell_t) belong to one thread and are not swept: call their get() instead.
 * Safe to call from any thread, at any time, any number of times (in a process that never
 * forked it does nothing); an object being swept by one thread and used by another is
 * wiped once.
 *
 * Memory ordering: as the first use of each object.
 * Fork: what it sweeps is what fork left behind; a second call in the same child finds
 * nothing more to do.
 *
 * Return: the number of on_wipe hooks it ran.
 */
WOF_API size_t wof_sweep(void);

#ifdef __cplusplus
}
#endif
