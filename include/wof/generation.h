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

/** Bits of wof_fork_detection(). */
#define WOF_FORK_DETECT_ATFORK 1u     /* a pthread_atfork child handler: fork() children */
#define WOF_FORK_DETECT_WIPEONFORK 2u /* a MADV_WIPEONFORK page: every address-space copy */

/**
 * wof_fork_detection() - which mechanisms tell this process's children they are new.
 *
 * WOF_FORK_DETECT_WIPEONFORK is set when the kernel honours MADV_WIPEONFORK (probed at first
 * use: emulators that accept any madvise advice are not trusted); then _Fork(), raw clone() and
 * syscall(SYS_fork) children are detected too. Otherwise only fork() children are.
 *
 * Memory ordering: none.
 * Fork: the same in every descendant.
 *
 * Return: a nonzero combination of the WOF_FORK_DETECT_* bits.
 */
WOF_API unsigned wof_fork_detection(void);

#ifdef __cplusplus
}
#endif
