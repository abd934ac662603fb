/* SPDX-License-Identifier: MIT */
/*
 * wof internals shared by the inline fast paths of the public headers.
 *
 * Everything here is ABI: the fast paths are compiled into callers, so the encoding of the
 * generation cell and of the once word below may only change with the soname. Users never call
 * anything named wof_internal_* directly.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define WOF_API __attribute__((__visibility__("default")))
#define WOF_COLD __attribute__((__cold__, __noinline__))
#define WOF_LIKELY(x) __builtin_expect(!!(x), 1)
#define WOF_ALIGNED8 __attribute__((__aligned__(8)))
#else
#error "wof needs a GCC-compatible compiler (gcc, clang): it relies on the __atomic builtins"
#endif

/*
 * The calling process's generation lives in a word that every child sees as 0: a
 * MADV_WIPEONFORK page where the kernel offers one, else a page that the atfork child handler
 * clears. Until the first slow path runs it points at a read-only zero. Never touch.
 */
WOF_API extern uint32_t *wof_internal_generation_cell;

/*
 * The generation of this process, or 0 when this process has not looked it up yet (every
 * process starts at 0, so 0 sends the caller to a slow path, which refreshes it).
 */
static inline uint32_t wof_internal_generation_peek(void)
{
	/* Acquire: pairs with the release CAS that publishes the cell (src/generation.c), so the
	 * page's zero-fill by mmap happens-before this read (a plain load on x86). */
	uint32_t *cell = __atomic_load_n(&wof_internal_generation_cell, __ATOMIC_ACQUIRE);
	/* Relaxed: the cell only ever holds 0 or this process's final value; a 0 only sends
	 * the caller to the slow path, which refreshes it. */
	return __atomic_load_n(cell, __ATOMIC_RELAXED);
}

/*
 * The once word: generation in the high 32 bits, state in the low 32 bits (the futex word).
 * A word whose generation is not the current one is incomplete whatever its state says.
 */
#define WOF_INTERNAL_ONCE_INCOMPLETE 0u /* no run; nobody parked                      */
#define WOF_INTERNAL_ONCE_RUNNING 1u    /* bit: one thread runs fn                     */
#define WOF_INTERNAL_ONCE_QUEUED 2u     /* bit: threads are (about to be) parked       */
#define WOF_INTERNAL_ONCE_COMPLETE 4u   /* fn returned 0 in this generation; terminal  */

static inline uint64_t wof_internal_once_word(uint32_t generation, uint32_t state)
{
	return ((uint64_t)generation << 32) | state;
}

/*
 * A wipe hook of a value type: called by the once slow path, inside a run, when it takes over a
 * word left by an ancestor. `held` is true when the ancestor had completed (a value was held).
 */
typedef void (*wof_internal_wipe_fn)(void *ctx, bool held);

#ifdef __cplusplus
}
#endif
