/* SPDX-License-Identifier: MIT */
/* WOF_LAZY_STATIC: a typed, inline-stored lazy value per process (Rust's lazy_static!). */
#pragma once

#include <wof/once.h>

#ifdef __cplusplus
extern "C" {
#endif

/* What the slow path needs to know of one lazy static: a constant beside it. Never touch. */
struct wof_internal_lazy_static {
	wof_once_t *once;              /* the object's once                          */
	void *slot;                    /* its value, `size` bytes                     */
	size_t size;
	int (*init)(void *slot);       /* the user's init, called on a zeroed slot    */
	void (*on_wipe)(void *stale);  /* NULL, or the user's on_wipe                 */
};

/* Out-of-line slow paths (src/lazy_static.c). Never call them directly. The first is what
 * the macros below call; the second is what 0.1's called, kept for programs built then. */
WOF_API WOF_COLD void *wof_internal_lazy_static_get_slow(
        const struct wof_internal_lazy_static *lazy);
WOF_API WOF_COLD void *wof_internal_lazy_static_slow(wof_once_t *once, void *slot,
                                                     size_t size, int (*init)(void *slot),
                                                     void (*on_wipe)(void *stale));

/*
 * The `extern` of a lazy global's object and slow path (C linkage in C++ too, so that C and
 * C++ files share one global), and the declaration that ends every macro below so that it is
 * used with a semicolon: a static assertion, which no warning counts as a redeclaration.
 */
#ifdef __cplusplus
#define WOF_INTERNAL_LAZY_EXTERN extern "C"
#define WOF_INTERNAL_LAZY_END static_assert(true, "wof: a semicolon follows this macro")
#else
#define WOF_INTERNAL_LAZY_EXTERN extern
#define WOF_INTERNAL_LAZY_END _Static_assert(1, "wof: a semicolon follows this macro")
#endif

/**
 * WOF_LAZY_STATIC() - define `static type *name(void)`: this process's `type`, made on first use.
 *
 * Use at file scope: `WOF_LAZY_STATIC(struct rng, rng, rng_seed);` with
 * `int rng_seed(struct rng *slot)` returning 0 on success. The value is stored inline in static
 * storage (no heap), so large structs are fine. init always receives a zero-filled slot. The
 * accessor returns NULL when init returned nonzero (errno as init left it, retried on the next
 * call), or with errno EDEADLK when called from inside its own init. Several may appear in one
 * file. Thread-safe: one init at a time, as wof_once_call(). The accessor is `static inline`:
 * one that is never called draws clang's -Wunused-function, as an unused static function does.
 * Limits: file scope only (the accessor is local to its file: WOF_LAZY_GLOBAL_DECLARE() makes one
 * that several files share), and `type` must be writable as `type *`: name an array type, or a
 * pointer to a function, through a typedef.
 *
 * Memory ordering: acquire: what init wrote happens-before every return of the pointer.
 * Fork: a child runs init again on first use, in a zeroed slot. Async-signal-safe when the
 * value was made in this process.
 */
#define WOF_LAZY_STATIC(type, name, init)                                                         \
	WOF_INTERNAL_LAZY_STATIC(type, name, init, WOF_INTERNAL_NULL)

/**
 * WOF_LAZY_STATIC_ON_WIPE() - WOF_LAZY_STATIC() that is told of the parent's value in a child.
 *
 * `void on_wipe(type *stale)` runs in a child exactly once, on its first use of `name()`, with
 * the bytes the parent made (only if the parent had made them), before the slot is zeroed and
 * init runs again. The bytes are the child's copy: it may free what they point to and close the
 * child's copy of a descriptor; it must not talk to the outside world through a resource the
 * parent still uses (a goodbye on the parent's connection, a shared flock).
 *
 * Memory ordering: as WOF_LAZY_STATIC().
 * Fork: as WOF_LAZY_STATIC(), with on_wipe before the new init.
 */
#define WOF_LAZY_STATIC_ON_WIPE(type, name, init, on_wipe)                                        \
	WOF_INTERNAL_LAZY_WIPE(type, name, on_wipe)                                               \
	WOF_INTERNAL_LAZY_STATIC(type, name, init, wof_internal_wipe_##name)

/**
 * WOF_LAZY_GLOBAL_DECLARE() - declare a lazy global: `static inline type *name(void)`, in a header.
 *
 * WOF_LAZY_STATIC() for a value that several files share (one logger, one connection pool of
 * the process): `WOF_LAZY_GLOBAL_DECLARE(struct pool, pool);` in a header declares the object
 * and defines the accessor `name()`, with WOF_LAZY_STATIC()'s inline fast path; exactly one .c
 * file, which must include that header, defines it with WOF_LAZY_GLOBAL_DEFINE() or
 * WOF_LAZY_GLOBAL_DEFINE_ON_WIPE(). Every file gets the same pointer, and one init runs per
 * process, whichever file calls first. The accessor behaves as WOF_LAZY_STATIC()'s. Usable from
 * C and C++ files alike (the object and its slow path have C linkage); at file (namespace)
 * scope only, with `type` writable as `type *` (a typedef for arrays).
 *
 * Memory ordering: as WOF_LAZY_STATIC().
 * Fork: as WOF_LAZY_STATIC(): one value per process, made again on first use in a child.
 */
#define WOF_LAZY_GLOBAL_DECLARE(type, name)                                                       \
	struct wof_internal_lazytype_##name {                                                     \
		wof_once_t once;                                                                  \
		type slot;                                                                        \
	};                                                                                        \
	WOF_INTERNAL_LAZY_EXTERN struct wof_internal_lazytype_##name wof_internal_lazy_##name;    \
	WOF_INTERNAL_LAZY_ACCESSOR(WOF_INTERNAL_LAZY_EXTERN, type, name)                          \
	WOF_INTERNAL_LAZY_END

/**
 * WOF_LAZY_GLOBAL_DEFINE() - define the lazy global that WOF_LAZY_GLOBAL_DECLARE() declared.
 *
 * In exactly one .c file, at file scope, after the declaration (include the header):
 * `WOF_LAZY_GLOBAL_DEFINE(struct pool, pool, pool_open);` with `int pool_open(struct pool *slot)`
 * returning 0 on success, as for WOF_LAZY_STATIC(). `type` must be the declared type. The
 * object lives in this file's static storage; init, a static function of this file, is called
 * on a zero-filled slot by whichever file's accessor comes first in each process.
 *
 * Memory ordering: as WOF_LAZY_STATIC().
 * Fork: as WOF_LAZY_STATIC().
 */
#define WOF_LAZY_GLOBAL_DEFINE(type, name, init)                                                  \
	struct wof_internal_lazytype_##name wof_internal_lazy_##name;                             \
	WOF_INTERNAL_LAZY_SLOW(extern, type, name, init, WOF_INTERNAL_NULL)                       \
	WOF_INTERNAL_LAZY_END

/**
 * WOF_LAZY_GLOBAL_DEFINE_ON_WIPE() - WOF_LAZY_GLOBAL_DEFINE() with an on_wipe hook.
 *
 * `void on_wipe(type *stale)` as for WOF_LAZY_STATIC_ON_WIPE(): once per child, with the bytes
 * the parent made, on the child's first use of `name()` from any file, before init runs again.
 *
 * Memory ordering: as WOF_LAZY_STATIC().
 * Fork: as WOF_LAZY_STATIC_ON_WIPE().
 */
#define WOF_LAZY_GLOBAL_DEFINE_ON_WIPE(type, name, init, on_wipe)                                 \
	struct wof_internal_lazytype_##name wof_internal_lazy_##name;                             \
	WOF_INTERNAL_LAZY_WIPE(type, name, on_wipe)                                               \
	WOF_INTERNAL_LAZY_SLOW(extern, type, name, init, wof_internal_wipe_##name)                \
	WOF_INTERNAL_LAZY_END

/**
 * WOF_LAZY_PEEK() - the value of a lazy static or global if it was made in this process, else NULL.
 *
 * `name` is that of a WOF_LAZY_STATIC(), WOF_LAZY_STATIC_ON_WIPE() or WOF_LAZY_GLOBAL_DECLARE()
 * in scope; the result is a `type *`. Never runs init or on_wipe and never waits: for shutdown
 * paths and signal handlers that must not make what was never made ("close the log if there is
 * one"). NULL while another thread's init is running, after a failed init, and in a child until
 * the child made its own value (the parent's stale bytes are never returned). Async-signal-safe.
 *
 * Memory ordering: acquire when non-NULL: what init wrote is visible.
 * Fork: NULL in a child until the child's first use made its value.
 */
#define WOF_LAZY_PEEK(name) wof_internal_peek_##name()

/* A lazy static: its object, in a struct of its own file (C++: of no name that another file's
 * lazy static of the same name could define differently), and its accessor and slow path. */
#define WOF_INTERNAL_LAZY_STATIC(type, name, init, wipe)                                          \
	static struct {                                                                           \
		wof_once_t once;                                                                  \
		type slot;                                                                        \
	} wof_internal_lazy_##name;                                                               \
	WOF_INTERNAL_LAZY_ACCESSOR(static inline, type, name)                                     \
	WOF_INTERNAL_LAZY_SLOW(static inline, type, name, init, wipe)                             \
	WOF_INTERNAL_LAZY_END

/*
 * The peek, which WOF_LAZY_PEEK(name) calls, and the accessor: the peek's inline fast path,
 * else the slow path, of `linkage` (defined below). Every lazy kind that WOF_LAZY_PEEK() is to
 * know defines a `static inline type *wof_internal_peek_name(void)`, which its accessor uses.
 */
#define WOF_INTERNAL_LAZY_ACCESSOR(linkage, type, name)                                           \
	linkage type *wof_internal_slow_##name(void);                                             \
	static inline type *wof_internal_peek_##name(void)                                        \
	{                                                                                         \
		if (WOF_LIKELY(wof_internal_once_done(&wof_internal_lazy_##name.once)))           \
			return &wof_internal_lazy_##name.slot;                                    \
		return WOF_INTERNAL_NULL;                                                         \
	}                                                                                         \
	static inline type *name(void)                                                            \
	{                                                                                         \
		type *wof_internal_value = wof_internal_peek_##name();                            \
		if (WOF_LIKELY(wof_internal_value != WOF_INTERNAL_NULL))                          \
			return wof_internal_value;                                                \
		return wof_internal_slow_##name();                                                \
	}

/* on_wipe called with the slot's type. Names in macros are wof's own, so that no user name
 * they expand next to trips -Wshadow. */
#define WOF_INTERNAL_LAZY_WIPE(type, name, on_wipe)                                               \
	static inline void wof_internal_wipe_##name(void *wof_internal_stale)                     \
	{                                                                                         \
		on_wipe(WOF_INTERNAL_STATIC_CAST(type *, wof_internal_stale));                    \
	}

/*
 * The slow path of every lazy static and lazy global, the one place that calls
 * src/lazy_static.c: init called with the slot's type, the object's constant descriptor, and
 * `linkage type *wof_internal_slow_name(void)`.
 */
#define WOF_INTERNAL_LAZY_SLOW(linkage, type, name, init, wipe)                                   \
	static inline int wof_internal_init_##name(void *wof_internal_slot)                       \
	{                                                                                         \
		return init(WOF_INTERNAL_STATIC_CAST(type *, wof_internal_slot));                 \
	}                                                                                         \
	static const struct wof_internal_lazy_static wof_internal_desc_##name = {                 \
		&wof_internal_lazy_##name.once, &wof_internal_lazy_##name.slot, sizeof(type),     \
		wof_internal_init_##name, wipe                                                    \
	};                                                                                        \
	linkage type *wof_internal_slow_##name(void)                                              \
	{                                                                                         \
		return WOF_INTERNAL_STATIC_CAST(                                                  \
		        type *, wof_internal_lazy_static_get_slow(&wof_internal_desc_##name));    \
	}

#ifdef __cplusplus
}
#endif
