/* SPDX-License-Identifier: MIT */
/* WOF_LAZY_STATIC: a typed, inline-stored lazy value per process (Rust's lazy_static!). */
#pragma once

#include <wof/once.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Out-of-line slow path (src/lazy_static.c). Never call it directly. */
WOF_API WOF_COLD void *wof_internal_lazy_static_slow(wof_once_t *once, void *slot,
                                                     size_t size, int (*init)(void *slot),
                                                     void (*on_wipe)(void *stale));

/**
 * WOF_LAZY_STATIC() - define `static type *name(void)`: this process's `type`, made on first use.
 *
 * Use at file scope: `WOF_LAZY_STATIC(struct rng, rng, rng_seed);` with
 * `int rng_seed(struct rng *slot)` returning 0 on success. The value is stored inline in static
 * storage (no heap), so large structs are fine. init always receives a zero-filled slot. The
 * accessor returns NULL when init returned nonzero (errno as init left it, retried on the next
 * call), or with errno EDEADLK when called from inside its own init. Several may appear in one
 * file. Thread-safe: one init at a time, as wof_once_call().
 *
 * Memory ordering: acquire: what init wrote happens-before every return of the pointer.
 * Fork: a child runs init again on first use, in a zeroed slot. Async-signal-safe when the
 * value was made in this process.
 */
#define WOF_LAZY_STATIC(type, name, init) WOF_INTERNAL_LAZY_STATIC(type, name, init, NULL)

/**
 * WOF_LAZY_STATIC_ON_WIPE() - WOF_LAZY_STATIC() that is told of the parent's value in a child.
 *
 * `void on_wipe(type *stale)` runs in a child exactly once, on its first use of `name()`, with
 * the bytes the parent made (only if the parent had made them), before the slot is zeroed and
 * init runs again. It must not free what belongs to the parent; it may close a child's copy of
 * a descriptor, for example.
 *
 * Memory ordering: as WOF_LAZY_STATIC().
 * Fork: as WOF_LAZY_STATIC(), with on_wipe before the new init.
 */
#define WOF_LAZY_STATIC_ON_WIPE(type, name, init, on_wipe)                                        \
	__attribute__((__unused__)) static void wof_internal_wipe_##name(void *stale)             \
	{                                                                                         \
		on_wipe((type *)stale);                                                           \
	}                                                                                         \
	WOF_INTERNAL_LAZY_STATIC(type, name, init, wof_internal_wipe_##name)

#define WOF_INTERNAL_LAZY_STATIC(type, name, init, wipe)                                          \
	static struct {                                                                           \
		wof_once_t once;                                                                  \
		type slot;                                                                        \
	} wof_internal_lazy_##name;                                                               \
	__attribute__((__unused__)) static int wof_internal_init_##name(void *slot)               \
	{                                                                                         \
		return init((type *)slot);                                                        \
	}                                                                                         \
	__attribute__((__unused__)) static type *name(void)                                       \
	{                                                                                         \
		if (WOF_LIKELY(wof_internal_once_done(&wof_internal_lazy_##name.once)))           \
			return &wof_internal_lazy_##name.slot;                                    \
		return (type *)wof_internal_lazy_static_slow(                                     \
		        &wof_internal_lazy_##name.once, &wof_internal_lazy_##name.slot,           \
		        sizeof(type), wof_internal_init_##name, wipe);                            \
	}                                                                                         \
	extern void wof_internal_lazy_static_needs_a_semicolon(void)

#ifdef __cplusplus
}
#endif
