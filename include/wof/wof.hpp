// SPDX-License-Identifier: MIT
/*
 * wof.hpp: typed C++ wrappers over wof, header-only, C++11 or later.
 *
 *   wof::once      a wof_once_t that runs any callable (lambdas with captures included) and
 *                  lets its exceptions through.
 *   wof::lazy<T>   a T made on first use in each process, stored inline (no heap), over a
 *                  wof_once_t: what WOF_LAZY_STATIC is for C, usable as a namespace-scope
 *                  static with constant initialisation.
 *
 * Both are thin layers over the C API in <wof.h> and share its guarantees: one initialiser at a
 * time, everything it wrote visible to every caller that sees it complete, and a child process
 * sees them as never initialised. Exceptions: an exception thrown by a callable or an init
 * propagates to its caller and leaves the object uninitialised (a waiting thread, or the next
 * call, runs its own); libwof is built with -fexceptions, so unwinding through its C frames
 * runs its cleanup and wakes the waiters. With -fno-exceptions, the two errors that would be
 * thrown (see wof::lazy::force) abort instead.
 */
#pragma once

#include <wof.h>

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <new>
#include <type_traits>
#include <utility>

#if defined(__cpp_exceptions) || defined(__EXCEPTIONS)
#define WOF_HPP_EXCEPTIONS 1
#include <system_error>
#else
#define WOF_HPP_EXCEPTIONS 0
#endif

namespace wof {

namespace detail {

// wof's own errors (EDEADLK, EINVAL) from a call that must return a reference.
[[noreturn]] inline void fail(int error)
{
#if WOF_HPP_EXCEPTIONS
	throw std::system_error(error, std::generic_category(), "wof");
#else
	(void)error;
	std::abort();
#endif
}

// The callable behind a void * (const callables included: the cast only undoes erase()).
template <typename F>
inline void *erase(F *f) noexcept
{
	return const_cast<void *>(static_cast<const void *>(f));
}

// Trampolines from wof's C callbacks to a callable. Not noexcept: exceptions pass through.
template <typename F>
void call_void(void *f)
{
	(*static_cast<F *>(f))();
}

template <typename F>
int call_int(void *f)
{
	return static_cast<int>((*static_cast<F *>(f))());
}

// A once and the bytes of a T beside it; destroys the T if it was made in this process.
template <typename T, bool = std::is_trivially_destructible<T>::value>
struct lazy_slot {
	wof_once_t once;
	alignas(T) unsigned char bytes[sizeof(T)];

	constexpr lazy_slot() noexcept : once(), bytes() {}

	T *ptr() noexcept
	{
#if defined(__cpp_lib_launder)
		return std::launder(reinterpret_cast<T *>(bytes));
#else
		return reinterpret_cast<T *>(bytes);
#endif
	}
};

template <typename T>
struct lazy_slot<T, false> : lazy_slot<T, true> {
	constexpr lazy_slot() noexcept : lazy_slot<T, true>() {}
	lazy_slot(const lazy_slot &) = delete;
	lazy_slot &operator=(const lazy_slot &) = delete;

	// Only a T made in this process: in a child that never made its own, the bytes are the
	// parent's T, which is forgotten (see wof::lazy).
	~lazy_slot()
	{
		if (wof_once_is_completed(&this->once))
			this->ptr()->~T();
	}
};

} // namespace detail

/**
 * wof::once - run a callable once per process, thread-safely; wiped on fork.
 *
 * A wof_once_t with a constexpr constructor: at namespace scope it is constant-initialised
 * (zero bytes, no constructor runs, usable from other static initialisers). 8 bytes, trivially
 * destructible. Not copyable or movable (the state word is its identity).
 *
 * Memory ordering: as wof_once_call(): everything the callable wrote happens-before the return
 * of every call that finds the once complete (acquire, paired with the completing release).
 * Fork: in a child, a once completed in an ancestor (or running in another thread at fork) is
 * incomplete; the child's first call runs its callable again.
 */
class once {
public:
	constexpr once() noexcept : once_() {}
	once(const once &) = delete;
	once &operator=(const once &) = delete;

	/**
	 * call() - run f() unless the once completed in this process.
	 *
	 * At most one thread runs a callable at a time; concurrent callers sleep until it
	 * finishes. If f throws, the exception propagates to this caller, the once stays
	 * incomplete and one waiting caller runs its own f.
	 *
	 * Memory ordering: as the class. Fork: as the class.
	 *
	 * Return: 0, or EDEADLK (nothing run) when called from inside a callable of this once.
	 */
	template <typename F>
	int call(F &&f)
	{
		using Fn = typename std::remove_reference<F>::type;
		return wof_once_call(&once_, &detail::call_void<Fn>, detail::erase(std::addressof(f)));
	}

	/**
	 * try_call() - call() for a callable that can fail: f() returns 0 (or anything that
	 * converts to int 0) to complete the once.
	 *
	 * A nonzero result leaves the once incomplete and is returned to this caller unchanged;
	 * a waiting caller runs its own f. Exceptions as call().
	 *
	 * Memory ordering: as the class, when 0 is returned. Fork: as the class.
	 *
	 * Return: 0 when the once is complete, f's nonzero result, or EDEADLK on re-entry.
	 */
	template <typename F>
	int try_call(F &&f)
	{
		using Fn = typename std::remove_reference<F>::type;
		return wof_once_try_call(&once_, &detail::call_int<Fn>,
		                         detail::erase(std::addressof(f)));
	}

	/**
	 * is_completed() - whether the once completed in this process.
	 *
	 * Memory ordering: acquire when true. Fork: false in a child until the child completes it.
	 */
	bool is_completed() noexcept { return wof_once_is_completed(&once_); }

	/**
	 * wait() - sleep until the once completes in this process; runs nothing.
	 *
	 * Memory ordering: as call(). Fork: a completion in an ancestor does not count.
	 *
	 * Return: 0, or EDEADLK when called from inside a callable of this once.
	 */
	int wait() noexcept { return wof_once_wait(&once_); }

	/** native_handle() - the wof_once_t, for the C API. */
	wof_once_t *native_handle() noexcept { return &once_; }

private:
	wof_once_t once_;
};

/**
 * wof::lazy<T, Init> - this process's T, made by init() on first use; wiped on fork.
 *
 * `Init` is any callable taking no argument whose result constructs a T (by default a
 * function pointer `T (*)()`; a captureless lambda converts to one). The T is built with
 * placement new in storage inside the object (no heap), once per process, by one thread; the
 * others sleep until it is made. The constructor is constexpr: a namespace-scope
 * `wof::lazy<Config> config(&load_config);` is constant-initialised (no dynamic initialiser, no
 * order-of-initialisation problem), in C++17 also with a captureless lambda, or `constinit` in
 * C++20. In C++17 the types can be deduced: `wof::lazy answer{[] { return 42; }};`.
 *
 * If init throws, the exception propagates from force(), nothing is stored, and a waiting or
 * later caller runs init again.
 *
 * In a child process the parent's T is *forgotten*: not destroyed. It belongs to the parent:
 * its destructor could act on things the parent still owns and uses, through descriptors and
 * names the child shares with it (unlink the parent's temporary file, shut down the parent's
 * connected socket, flush a buffer the parent will flush too, join a thread that does not exist
 * in the child and hang). The child's first force() builds a new T over the stale bytes.
 * A child that must release its copies (close an inherited descriptor, free memory that is its
 * own copy) passes `on_wipe`: `void on_wipe(T &stale)` runs in the child exactly once, with the
 * parent's T, on the child's first force() or get() and before the new T is made; never in the
 * process that made the T, never when the parent had made none. It may destroy `stale` if that
 * is right for the child's copy; it must not throw.
 *
 * The destructor destroys a T made in this process (never an ancestor's).
 *
 * Memory ordering: acquire: everything init wrote happens-before every return of the T.
 * Fork: the child sees no T; its first use runs on_wipe (if given and due), then init.
 */
template <typename T, typename Init = T (*)()>
class lazy {
	static_assert(std::is_object<T>::value && !std::is_array<T>::value,
	              "wof::lazy<T>: T is an object type, not a reference, function or array");

public:
	using value_type = T;
	using wipe_fn = void (*)(T &stale);

	/** A lazy T made by init(); on_wipe as described for the class. */
	constexpr explicit lazy(Init init, wipe_fn on_wipe = nullptr) noexcept(
	        std::is_nothrow_move_constructible<Init>::value)
	        : slot_(), init_(static_cast<Init &&>(init)), on_wipe_(on_wipe)
	{
	}
	lazy(const lazy &) = delete;
	lazy &operator=(const lazy &) = delete;

	/**
	 * force() - this process's T, made by init() first if this process has none.
	 *
	 * Inline fast path: one acquire load and one compare. Throws what init throws; throws
	 * std::system_error(EDEADLK) when called from inside its own init (aborts without
	 * exceptions).
	 *
	 * Memory ordering: as the class. Fork: as the class.
	 */
	T &force()
	{
		if (WOF_LIKELY(wof_internal_once_done(&slot_.once)))
			return *slot_.ptr();
		return force_slow();
	}

	/**
	 * get() - this process's T if it has been made, else nullptr; never runs init.
	 *
	 * Memory ordering: acquire when not nullptr. Fork: nullptr in a child until the child
	 * makes its own; the child's first call runs on_wipe if due.
	 */
	T *get()
	{
		if (WOF_LIKELY(wof_internal_once_done(&slot_.once)))
			return slot_.ptr();
		if (on_wipe_)
			wof_internal_once_sync(&slot_.once, &lazy::wipe, this);
		return wof_internal_once_done(&slot_.once) ? slot_.ptr() : nullptr;
	}

	T &operator*() { return force(); }
	T *operator->() { return &force(); }

private:
	WOF_COLD T &force_slow()
	{
		int rc = wof_internal_once_slow(&slot_.once, &lazy::run, this,
		                                on_wipe_ ? &lazy::wipe : nullptr, this);
		if (rc != 0)
			detail::fail(rc);
		return *slot_.ptr();
	}

	// The once's fn: make the T. An exception unwinds through wof's run, which leaves the
	// once incomplete; nothing was constructed.
	static int run(void *self)
	{
		lazy *l = static_cast<lazy *>(self);
		::new (static_cast<void *>(l->slot_.bytes)) T(l->init_());
		return 0;
	}

	// The once's wipe hook, in a child: tell on_wipe of the parent's T, then forget it.
	static void wipe(void *self, bool held)
	{
		lazy *l = static_cast<lazy *>(self);
		if (held && l->on_wipe_)
			l->on_wipe_(*l->slot_.ptr());
	}

	detail::lazy_slot<T> slot_;
	Init init_;
	wipe_fn on_wipe_;
};

#if defined(__cpp_deduction_guides)
namespace detail {
template <typename F>
using lazy_result_t = typename std::decay<decltype(std::declval<F &>()())>::type;
} // namespace detail

template <typename F>
lazy(F) -> lazy<detail::lazy_result_t<F>, F>;
template <typename F>
lazy(F, void (*)(detail::lazy_result_t<F> &)) -> lazy<detail::lazy_result_t<F>, F>;
#endif

/**
 * wof::generation() - the calling process's fork generation; see wof_generation().
 *
 * Memory ordering: none. Fork: a child's value differs from every ancestor's.
 */
inline std::uint32_t generation() noexcept
{
	return wof_generation();
}

} // namespace wof

#undef WOF_HPP_EXCEPTIONS
