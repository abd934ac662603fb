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

/*
 * WOF_API marks what libwof exports. Windows: dllexport while building the DLL
 * (WOF_BUILDING_DLL), dllimport for its consumers, nothing for those that link the static
 * library, which define WOF_STATIC (pkg-config's Cflags.private and Meson's static dependency
 * pass it). dllimport matters most for data: the fast paths read libwof's fork page directly,
 * and a DLL's data is reached through its import address table. Elsewhere: default visibility,
 * in a library built with -fvisibility=hidden.
 */
#if defined(_WIN32) && defined(WOF_BUILDING_DLL)
#define WOF_API __declspec(dllexport)
#elif defined(_WIN32) && defined(WOF_STATIC)
#define WOF_API
#elif defined(_WIN32)
#define WOF_API __declspec(dllimport)
#elif defined(__GNUC__)
#define WOF_API __attribute__((__visibility__("default")))
#endif

#if defined(__GNUC__) && defined(WOF_INTERNAL_BUILDING)
/* Inside libwof the slow paths are compiled for speed: a child's first call on each wiped
 * object runs one, and gcc would optimise a cold function's body, and all it calls, for size. */
#define WOF_COLD __attribute__((__noinline__))
#elif defined(__GNUC__)
/* In callers: the slow path's call is out of the way of the fast path. */
#define WOF_COLD __attribute__((__cold__, __noinline__))
#endif
#if defined(__GNUC__)
#define WOF_LIKELY(x) __builtin_expect(!!(x), 1)
#define WOF_ALIGNED8 __attribute__((__aligned__(8)))
#else
#error "wof needs a GCC-compatible compiler (gcc, clang): it relies on the __atomic builtins"
#endif

/*
 * A cast, and the null pointer, in the inline code and macros of the public headers: C++'s own
 * spellings in C++, so that consumers' -Wold-style-cast and -Wzero-as-null-pointer-constant
 * stay quiet, and C's in C. Never use them outside wof's headers.
 */
#ifdef __cplusplus
#define WOF_INTERNAL_STATIC_CAST(type, expr) static_cast<type>(expr)
#define WOF_INTERNAL_NULL nullptr
#else
#define WOF_INTERNAL_STATIC_CAST(type, expr) ((type)(expr))
#define WOF_INTERNAL_NULL NULL
#endif

/*
 * The fork page: the calling process's generation, shifted to where a once word keeps it. It
 * reads 0 in every new process: the page is marked MADV_WIPEONFORK where the kernel offers it,
 * and an atfork child handler clears it otherwise. It is one object at a link-time address, so
 * the fast paths reach it without a pointer; it is aligned to, and as large as, the largest
 * page size (64 KiB), so that it fills whole pages wherever it lands: in libwof's data, or in
 * an executable's when the linker copy-relocates it there (copies keep their alignment). On
 * Windows, where nothing forks, it is an ordinary object, neither aligned nor marked. The
 * layout is ABI. Never touch.
 */
#define WOF_INTERNAL_FORK_PAGE 65536
struct wof_internal_fork {
	union {
		uint64_t generation; /* this process's generation << 32; 0 until it has one */
		uint32_t halves[2];  /* the same 8 bytes; halves[WOF_INTERNAL_HIGH] is the generation */
	};
	unsigned char pad[WOF_INTERNAL_FORK_PAGE - 8];
};
WOF_API extern struct wof_internal_fork wof_internal_fork;

/* Which of halves[] holds a 64-bit word's high 32 bits. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define WOF_INTERNAL_HIGH 0
#else
#define WOF_INTERNAL_HIGH 1
#endif

/* Relaxed: the page only ever holds 0 or this process's value, set before any object of this
 * process is stamped with it; a 0 only sends the caller to the slow path. */
#define WOF_INTERNAL_GENERATION_WORD() __atomic_load_n(&wof_internal_fork.generation, __ATOMIC_RELAXED)

/*
 * `word` xor the fork page: what a once's fast path compares with COMPLETE. On x86-64 one
 * instruction that reads the page as its memory operand (compilers load an atomic into a
 * register of its own first, which costs the fast path an instruction): a plain 8-byte read,
 * single-copy atomic there like the relaxed load it replaces. The page's address is an input
 * register, which compilers hoist out of loops (a RIP-relative memory operand on the xor made
 * straight-line code measurably slower); the "m" input says which memory the instruction
 * reads. `{att|intel}` keeps it valid under -masm=intel.
 */
static inline uint64_t wof_internal_generation_xor(uint64_t word)
{
#if defined(__x86_64__)
	__asm__("xor{q} {(%1), %0|%0, [%1]}"
	        : "+r"(word)
	        : "r"(&wof_internal_fork.generation), "m"(wof_internal_fork.generation));
	return word;
#else
	return word ^ WOF_INTERNAL_GENERATION_WORD();
#endif
}

/*
 * The generation of this process, or 0 when this process has not looked it up yet (every
 * process starts at 0, so 0 sends the caller to a slow path, which takes one). One 32-bit load
 * of the page's high half. Relaxed: as WOF_INTERNAL_GENERATION_WORD().
 */
static inline uint32_t wof_internal_generation_peek(void)
{
	return __atomic_load_n(&wof_internal_fork.halves[WOF_INTERNAL_HIGH], __ATOMIC_RELAXED);
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
	return (WOF_INTERNAL_STATIC_CAST(uint64_t, generation) << 32) | state;
}

/*
 * A wipe hook of a value type: called by the once slow path, inside a run, when it takes over a
 * word left by an ancestor. `held` is true when the ancestor had completed (a value was held).
 */
typedef void (*wof_internal_wipe_fn)(void *ctx, bool held);

#ifdef __cplusplus
}
#endif
