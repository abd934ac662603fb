/* SPDX-License-Identifier: MIT */
/* Secret memory: blocks that every forked child sees as zeros, and WOF_LAZY_SECRET. */
#pragma once

#include <stddef.h>

#include <wof/lazy_static.h> /* WOF_LAZY_PEEK() */
#include <wof/once.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * wof_secret_alloc() - a zero-filled block of secret memory, wiped in every forked child.
 *
 * The block lives in pages that hold secret blocks only, never ordinary data. On Linux >= 4.14
 * (wof_fork_detection() reports WOF_FORK_DETECT_WIPEONFORK) those pages are MADV_WIPEONFORK:
 * in every child that copies the address space -- fork(), _Fork(), syscall(SYS_fork), clone()
 * without CLONE_VM -- the block's bytes read as zero before any code of the child runs.
 * Elsewhere the pthread_atfork child handler zeroes them, which covers fork() only; where
 * neither would, no secret memory is handed out (ENOMEM). Where MADV_DONTDUMP is offered, the
 * pages are also left out of core dumps. They are not locked in memory (they may be swapped).
 * On Windows, which has no fork, they are ordinary private pages. The block is aligned for any
 * type (alignof(max_align_t); blocks above 2048 bytes are page-aligned). Thread-safe and
 * lock-free; not async-signal-safe (it may map memory, and its first call in a program sets up
 * fork detection).
 *
 * Memory ordering: the block's zero bytes happen-before the return (acquire, paired with the
 * release of the wof_secret_free() that last released the block).
 * Fork: in a child the block stays allocated at the same address (it may be freed there), and
 * its bytes are zero. Whatever other threads were doing at the instant of the fork, each block
 * is, in the child, either allocated (and never handed out again) or free and zeroed.
 *
 * Return: the block, or NULL with errno EINVAL for size 0, ENOMEM when size rounded up to
 * whole pages overflows size_t, when no memory can be mapped, or when nothing would zero the
 * block in a child. errno is unchanged on success.
 */
WOF_API void *wof_secret_alloc(size_t size);

/**
 * wof_secret_free() - zero a block from wof_secret_alloc(), then release it for reuse.
 *
 * NULL is a no-op. The bytes are zeroed (in a way the compiler cannot elide) before the block
 * can be handed out again; a large block's pages are also returned to the kernel. The memory
 * stays mapped by wof for later secrets. A pointer that wof_secret_alloc() did not return, or
 * a block already freed, aborts a debug build with a message on stderr; with NDEBUG defined,
 * the call sets errno to EINVAL and changes nothing.
 *
 * Memory ordering: release: the zeroing, and everything the caller did with the block,
 * happen-before the next wof_secret_alloc() that returns it.
 * Fork: a child may free blocks its parent allocated before the fork. Thread-safe and
 * lock-free.
 */
WOF_API void wof_secret_free(void *p);

/*
 * Out-of-line slow path of WOF_LAZY_SECRET (src/secret.c). Never call it directly. *block is
 * `unset` (a zero once that nobody writes) until the secret block is published there.
 */
WOF_API WOF_COLD void *wof_internal_lazy_secret_slow(void **block, void *unset, size_t block_size,
                                                     size_t value_offset, size_t value_size,
                                                     int (*init)(void *slot));

/* The static assertion of each language, the alignment of a type (GNU __alignof__ in both:
 * clang -Weverything flags C11's _Alignof, even in C), and, in C++, an unnamed namespace for
 * the block's type, so that two files' lazy secrets of one name but different types do not
 * break the one-definition rule. Never use them outside wof's macros. */
#ifdef __cplusplus
#define WOF_INTERNAL_STATIC_ASSERT(cond, msg) static_assert(cond, msg)
#define WOF_INTERNAL_FILE_LOCAL_BEGIN namespace {
#define WOF_INTERNAL_FILE_LOCAL_END }
#else
#define WOF_INTERNAL_STATIC_ASSERT(cond, msg) _Static_assert(cond, msg)
#define WOF_INTERNAL_FILE_LOCAL_BEGIN
#define WOF_INTERNAL_FILE_LOCAL_END
#endif
#define WOF_INTERNAL_ALIGNOF(type) __alignof__(type)
/* clang, unlike gcc, warns of an unused static inline function defined in the main file: a
 * lazy secret that one file defines (say, through a header) and does not use is no mistake. */
#ifdef __clang__
#define WOF_INTERNAL_UNUSED_OK_BEGIN                                                              \
	_Pragma("clang diagnostic push") _Pragma("clang diagnostic ignored \"-Wunused-function\"")
#define WOF_INTERNAL_UNUSED_OK_END _Pragma("clang diagnostic pop")
#else
#define WOF_INTERNAL_UNUSED_OK_BEGIN
#define WOF_INTERNAL_UNUSED_OK_END
#endif

/*
 * True when a lazy secret's once completed in this process. The once lives in secret memory,
 * which the kernel zeroes in every child, so its state half alone says it: no generation
 * compare. Only where the kernel wipes no pages (see wof_secret_alloc) do _Fork() and clone()
 * children see their parent's state.
 */
static inline bool wof_internal_lazy_secret_done(wof_once_t *once)
{
	/* Acquire: pairs with the release that completes the once (src/once.c, finish), so
	 * everything init wrote is visible to whoever sees the completed state. */
	uint64_t word = __atomic_load_n(&once->_wof_word, __ATOMIC_ACQUIRE);
	return WOF_LIKELY(WOF_INTERNAL_STATIC_CAST(uint32_t, word) == WOF_INTERNAL_ONCE_COMPLETE);
}

/**
 * WOF_LAZY_SECRET() - define `static type *name(void)`: this process's `type`, made on first
 * use, held in secret memory.
 *
 * Use at file scope: `WOF_LAZY_SECRET(struct key, session_key, make_key);` with
 * `int make_key(struct key *slot)` returning 0 on success. As WOF_LAZY_STATIC(), except that
 * the value, and the state that says it was made, live in a block of wof_secret_alloc()
 * memory allocated on first use (a file-static pointer to it is all the static storage used):
 * a forked child reads the parent's bytes as zeros, and makes its own value on first use.
 * init always receives a zero-filled slot. The accessor returns NULL when init returned
 * nonzero (errno as init left it, retried on the next call), with errno EDEADLK when called
 * from inside its own init, and with errno ENOMEM when no secret memory can be had. Several may
 * appear in one file, in C11 and in C++11 and later. `type` must not need more alignment than
 * max_align_t (checked at compile time). There is no on_wipe hook: the parent's bytes are
 * already gone when the child could look at them. WOF_LAZY_PEEK(name) returns the value if it
 * was made in this process, else NULL, and never runs init.
 *
 * Memory ordering: acquire: what init wrote happens-before every return of the pointer.
 * Fork: a child runs init again on first use, in a zeroed slot at the same address, whatever
 * the parent was doing at fork (even inside init). Async-signal-safe when the value was made
 * in this process.
 */
#define WOF_LAZY_SECRET(type, name, init)                                                         \
	WOF_INTERNAL_FILE_LOCAL_BEGIN                                                             \
	struct wof_internal_secret_##name {                                                       \
		wof_once_t once;                                                                  \
		type value;                                                                       \
	};                                                                                        \
	WOF_INTERNAL_FILE_LOCAL_END                                                               \
	/* The pointer starts at a zero once, so the fast path needs no NULL test. */             \
	static wof_once_t wof_internal_sunset_##name;                                             \
	static void *wof_internal_sblock_##name = &wof_internal_sunset_##name;                    \
	WOF_INTERNAL_UNUSED_OK_BEGIN                                                              \
	static inline int wof_internal_sinit_##name(void *wof_internal_slot)                      \
	{                                                                                         \
		return init(WOF_INTERNAL_STATIC_CAST(type *, wof_internal_slot));                 \
	}                                                                                         \
	/* The value if made in this process, else NULL: the fast path, and WOF_LAZY_PEEK(). */   \
	static inline type *wof_internal_peek_##name(void)                                        \
	{                                                                                         \
		/* Acquire: pairs with the release CAS that publishes the block (src/secret.c). */ \
		void *wof_internal_block =                                                        \
		        __atomic_load_n(&wof_internal_sblock_##name, __ATOMIC_ACQUIRE);           \
		/* The once is the block's first member, and `unset` is a once. */               \
		if (WOF_LIKELY(wof_internal_lazy_secret_done(                                     \
		            WOF_INTERNAL_STATIC_CAST(wof_once_t *, wof_internal_block))))         \
			return &WOF_INTERNAL_STATIC_CAST(struct wof_internal_secret_##name *,     \
			                                 wof_internal_block)->value;              \
		return WOF_INTERNAL_NULL;                                                         \
	}                                                                                         \
	static inline type *name(void)                                                            \
	{                                                                                         \
		type *wof_internal_value = wof_internal_peek_##name();                            \
		if (WOF_LIKELY(wof_internal_value != WOF_INTERNAL_NULL))                          \
			return wof_internal_value;                                                \
		return WOF_INTERNAL_STATIC_CAST(                                                  \
		        type *, wof_internal_lazy_secret_slow(                                    \
		                        &wof_internal_sblock_##name, &wof_internal_sunset_##name, \
		                        sizeof(struct wof_internal_secret_##name),                \
		                        offsetof(struct wof_internal_secret_##name, value),       \
		                        sizeof(type), wof_internal_sinit_##name));                \
	}                                                                                         \
	WOF_INTERNAL_UNUSED_OK_END                                                                \
	WOF_INTERNAL_STATIC_ASSERT(WOF_INTERNAL_ALIGNOF(struct wof_internal_secret_##name) <=     \
	                                   WOF_INTERNAL_ALIGNOF(max_align_t),                     \
	                           "WOF_LAZY_SECRET: the type needs more alignment than "          \
	                           "wof_secret_alloc() gives")

#ifdef __cplusplus
}
#endif
