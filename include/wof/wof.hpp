// SPDX-License-Identifier: MIT
/*
 * wof.hpp: typed C++ wrappers over wof, header-only, C++11 or later.
 *
 *   wof::once            a wof_once_t; call(f, args...) runs any callable once per process, as
 *                        std::call_once does (and wof::call_once(flag, f, args...) is that).
 *   wof::once_lock<T>    a wof_once_lock_t holding a T: thread-safe, set at most once per
 *                        process (Rust's OnceLock).
 *   wof::lazy<T>         a T made by its initialiser on first use, thread-safe (LazyLock).
 *   wof::once_cell<T>    a wof_once_cell_t holding a T: one thread only (Rust's OnceCell).
 *   wof::lazy_cell<T>    a T made by its initialiser on first use, one thread only (LazyCell).
 *
 * All are thin layers over the C API in <wof.h> and keep its guarantees: one initialiser at a
 * time, everything it wrote visible to every caller that sees it complete, and in a child
 * process every object reads as never initialised. The T of the value types lives inside the
 * object (no heap): see wof::once_lock for why.
 *
 * Exceptions: an exception thrown by a callable, an initialiser or T's constructor propagates
 * to the caller and leaves the object uninitialised and usable (a waiting thread, or the next
 * call, runs its own initialiser); libwof is built with -fexceptions, so unwinding through its
 * C frames runs its cleanup and wakes the waiters. wof's own errors are returned where the
 * function returns an int (EDEADLK from wof::once), else thrown as std::system_error (EDEADLK
 * when an object is used from inside its own initialiser). Without exceptions
 * (-fno-exceptions) those throws abort instead, and nothing else changes.
 *
 * noexcept: the functions that cannot fail and run no user code but an on_wipe hook or T's
 * destructor (get, reset, is_completed, wof::once::wait) are noexcept; neither may throw (one
 * that does ends the program). wof::once::call and try_call are noexcept when the callable
 * is.
 */
#pragma once

#include <wof.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <new>
#include <type_traits>
#include <utility>

#if defined(__cpp_exceptions) || defined(__EXCEPTIONS)
#define WOF_HPP_EXCEPTIONS 1
#include <system_error>
#else
#define WOF_HPP_EXCEPTIONS 0
#endif

#if __cplusplus >= 201703L
#define WOF_HPP_OPTIONAL 1
#include <optional>
#else
#define WOF_HPP_OPTIONAL 0
#endif

namespace wof {

namespace detail {

// wof's own errors (EDEADLK, EINVAL) from a call that has no int to return them in.
[[noreturn]] inline void fail(int error)
{
#if WOF_HPP_EXCEPTIONS
	throw std::system_error(error, std::generic_category(), "wof");
#else
	(void)error;
	std::abort();
#endif
}

template <typename T>
using decay_t = typename std::decay<T>::type;
template <bool B>
using enable_if_t = typename std::enable_if<B, int>::type;

// INVOKE (the standard's [func.require], std::invoke in C++17), written for C++11: a callable
// with its arguments, or a pointer to member applied to an object, a reference_wrapper or a
// pointer. Everything is perfectly forwarded: an rvalue callable is called as an rvalue.
template <typename T>
struct is_reference_wrapper : std::false_type {};
template <typename U>
struct is_reference_wrapper<std::reference_wrapper<U>> : std::true_type {};

// The object that a pointer to a member of Class applies to.
template <typename Class, typename Obj,
          enable_if_t<std::is_base_of<Class, decay_t<Obj>>::value> = 0>
inline Obj &&member_object(Obj &&obj) noexcept
{
	return std::forward<Obj>(obj);
}

template <typename Class, typename Obj,
          enable_if_t<!std::is_base_of<Class, decay_t<Obj>>::value &&
                      is_reference_wrapper<decay_t<Obj>>::value> = 0>
inline auto member_object(Obj &&obj) noexcept -> decltype(obj.get())
{
	return obj.get();
}

template <typename Class, typename Obj,
          enable_if_t<!std::is_base_of<Class, decay_t<Obj>>::value &&
                      !is_reference_wrapper<decay_t<Obj>>::value> = 0>
inline auto member_object(Obj &&obj) noexcept(noexcept(*std::forward<Obj>(obj)))
        -> decltype(*std::forward<Obj>(obj))
{
	return *std::forward<Obj>(obj);
}

template <typename F, typename... Args, enable_if_t<!std::is_member_pointer<decay_t<F>>::value> = 0>
inline auto invoke(F &&f, Args &&...args) noexcept(
        noexcept(std::forward<F>(f)(std::forward<Args>(args)...)))
        -> decltype(std::forward<F>(f)(std::forward<Args>(args)...))
{
	return std::forward<F>(f)(std::forward<Args>(args)...);
}

template <typename Member, typename Class, typename Obj, typename... Args,
          enable_if_t<std::is_function<Member>::value> = 0>
inline auto invoke(Member Class::*f, Obj &&obj, Args &&...args) noexcept(
        noexcept((member_object<Class>(std::forward<Obj>(obj)).*f)(std::forward<Args>(args)...)))
        -> decltype((member_object<Class>(std::forward<Obj>(obj)).*f)(std::forward<Args>(args)...))
{
	return (member_object<Class>(std::forward<Obj>(obj)).*f)(std::forward<Args>(args)...);
}

template <typename Member, typename Class, typename Obj,
          enable_if_t<!std::is_function<Member>::value> = 0>
inline auto invoke(Member Class::*m, Obj &&obj) noexcept(
        noexcept(member_object<Class>(std::forward<Obj>(obj)).*m))
        -> decltype(member_object<Class>(std::forward<Obj>(obj)).*m)
{
	return member_object<Class>(std::forward<Obj>(obj)).*m;
}

template <typename F, typename... Args>
struct is_nothrow_invocable
        : std::integral_constant<bool, noexcept(detail::invoke(std::declval<F>(),
                                                               std::declval<Args>()...))> {};

// Trampolines from wof's C callbacks to a local thunk (a lambda holding references to the
// callable and its arguments). Not noexcept: exceptions pass through libwof's C frames.
template <typename Thunk>
void thunk_void(void *thunk)
{
	(*static_cast<Thunk *>(thunk))();
}

template <typename Thunk>
int thunk_int(void *thunk)
{
	return (*static_cast<Thunk *>(thunk))();
}

template <typename Thunk>
void *thunk_ptr(void *thunk)
{
	return (*static_cast<Thunk *>(thunk))();
}

// The bytes of a T and the typed on_wipe hook, beside a C once_lock or once_cell whose value
// pointer, once set, names this box.
template <typename T>
struct value_box {
	void (*on_wipe)(T &stale);
	alignas(T) unsigned char bytes[sizeof(T)];

	constexpr explicit value_box(void (*wipe_hook)(T &)) noexcept : on_wipe(wipe_hook), bytes()
	{
	}

	T *ptr() noexcept
	{
#if defined(__cpp_lib_launder)
		return std::launder(reinterpret_cast<T *>(bytes));
#else
		return reinterpret_cast<T *>(bytes);
#endif
	}

	// Make the T from args; the value to store in the C object.
	template <typename... Args>
	void *emplace(Args &&...args)
	{
		::new (static_cast<void *>(bytes)) T(std::forward<Args>(args)...);
		return this;
	}

	// Make the T from what f() returns (in C++17, a T returned by value is built in place).
	template <typename F>
	void *emplace_result(F &&f)
	{
		::new (static_cast<void *>(bytes)) T(detail::invoke(std::forward<F>(f)));
		return this;
	}

	// The C object's on_wipe hook, in a child: `stale` is the value it held, this box.
	static void wipe(void *stale) noexcept
	{
		value_box *box = static_cast<value_box *>(stale);
		box->on_wipe(*box->ptr());
	}
};

// A C object and its box; the specialisations for a T with a destructor destroy a T made in
// this process (never an ancestor's: that one is forgotten, see wof::once_lock).
template <typename T, bool = std::is_trivially_destructible<T>::value>
struct lock_storage {
	wof_once_lock_t lock;
	value_box<T> box;

	constexpr explicit lock_storage(void (*on_wipe)(T &)) noexcept
	        : lock{{0u}, nullptr, on_wipe ? &value_box<T>::wipe : nullptr}, box(on_wipe)
	{
	}
};

template <typename T>
struct lock_storage<T, false> : lock_storage<T, true> {
	constexpr explicit lock_storage(void (*on_wipe)(T &)) noexcept
	        : lock_storage<T, true>(on_wipe)
	{
	}
	lock_storage(const lock_storage &) = delete;
	lock_storage &operator=(const lock_storage &) = delete;

	// Completed in this process <=> this process made the T in the box (wof.hpp is part of
	// wof: it may read the once inside the lock). A taken T left the lock empty.
	~lock_storage()
	{
		if (wof_internal_once_done(&this->lock._wof_once))
			this->box.ptr()->~T();
	}
};

template <typename T, bool = std::is_trivially_destructible<T>::value>
struct cell_storage {
	wof_once_cell_t cell;
	value_box<T> box;

	constexpr explicit cell_storage(void (*on_wipe)(T &)) noexcept
	        : cell{nullptr, {0u}, on_wipe ? &value_box<T>::wipe : nullptr}, box(on_wipe)
	{
	}
};

template <typename T>
struct cell_storage<T, false> : cell_storage<T, true> {
	constexpr explicit cell_storage(void (*on_wipe)(T &)) noexcept
	        : cell_storage<T, true>(on_wipe)
	{
	}
	cell_storage(const cell_storage &) = delete;
	cell_storage &operator=(const cell_storage &) = delete;

	// Holding a value of this process's generation <=> this process made it.
	~cell_storage()
	{
		if (wof_internal_once_cell_held(&this->cell))
			this->box.ptr()->~T();
	}
};

// Destroys a T when it goes out of scope (take(): after the T was moved out).
template <typename T>
struct destroy_on_exit {
	T *p;
	~destroy_on_exit() { p->~T(); }
};

// A once and the bytes of a T beside it, for wof::lazy; destroys a T made in this process.
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
 * (zero bytes, no constructor runs, usable from other static initialisers), like
 * std::once_flag. 8 bytes, trivially destructible, neither copyable nor movable (the state
 * word is its identity).
 *
 * Memory ordering: as wof_once_call(): everything the callable wrote happens-before the return
 * of every call that finds the once complete (acquire, paired with the completing release).
 * Fork: in a child, a once completed in an ancestor (or running in another thread at fork) is
 * incomplete; the child's first call runs its callable again.
 */
class once {
public:
	/**
	 * once() - an incomplete once, the same as WOF_ONCE_INIT.
	 *
	 * Memory ordering: none; constexpr. Fork: incomplete in every process until it runs there.
	 */
	constexpr once() noexcept : once_() {}
	once(const once &) = delete;
	once &operator=(const once &) = delete;

	/**
	 * call() - run f(args...) unless the once completed in this process.
	 *
	 * Like std::call_once(flag, f, args...): f is any callable (a function, a lambda, a
	 * function object, a pointer to member with its object first), invoked as INVOKE with
	 * f and args perfectly forwarded, never copied. At most one thread runs a callable at
	 * a time; concurrent callers sleep until it finishes. If f throws, the exception
	 * propagates to this caller, the once stays incomplete and one waiting caller (or the
	 * next call) runs its own f.
	 *
	 * Memory ordering: as the class. Fork: as the class.
	 *
	 * Return: 0, or EDEADLK (nothing run) when called from inside a callable of this once.
	 */
	template <typename F, typename... Args>
	int call(F &&f, Args &&...args) noexcept(detail::is_nothrow_invocable<F, Args...>::value)
	{
		auto run = [&] { detail::invoke(std::forward<F>(f), std::forward<Args>(args)...); };
		return wof_once_call(&once_, &detail::thunk_void<decltype(run)>, &run);
	}

	/**
	 * try_call() - call() for a callable that can fail: f(args...) returns 0 (or anything
	 * that converts to int 0) to complete the once.
	 *
	 * A nonzero result leaves the once incomplete and is returned to this caller unchanged;
	 * a waiting caller runs its own f. Exceptions as call().
	 *
	 * Memory ordering: as the class, when 0 is returned. Fork: as the class.
	 *
	 * Return: 0 when the once is complete, f's nonzero result, or EDEADLK on re-entry.
	 */
	template <typename F, typename... Args>
	int try_call(F &&f, Args &&...args) noexcept(
	        detail::is_nothrow_invocable<F, Args...>::value)
	{
		auto run = [&]() -> int {
			return detail::invoke(std::forward<F>(f), std::forward<Args>(args)...);
		};
		return wof_once_try_call(&once_, &detail::thunk_int<decltype(run)>, &run);
	}

	/**
	 * is_completed() - whether the once completed in this process. Never waits.
	 *
	 * Memory ordering: acquire when true. Fork: false in a child until the child completes it.
	 */
	bool is_completed() const noexcept
	{
		return wof_internal_once_done(const_cast<wof_once_t *>(&once_));
	}

	/**
	 * wait() - sleep until the once completes in this process; runs nothing.
	 *
	 * Memory ordering: as call(). Fork: a completion in an ancestor does not count.
	 *
	 * Return: 0, or EDEADLK when called from inside a callable of this once.
	 */
	int wait() noexcept { return wof_once_wait(&once_); }

	/**
	 * native_handle() - the wof_once_t, for the C API (wof_once_call() and the rest).
	 *
	 * Memory ordering: none. Fork: the same object in every process.
	 */
	wof_once_t *native_handle() noexcept { return &once_; }

private:
	wof_once_t once_;
};

/**
 * wof::call_once() - std::call_once(flag, f, args...) for a wof::once.
 *
 * Runs f(args...) as wof::once::call() does. wof's only error, a call from inside a callable
 * of the same once (where std::call_once deadlocks), throws std::system_error with
 * std::errc::resource_deadlock_would_occur (aborts without exceptions).
 *
 * Memory ordering: as wof::once. Fork: as wof::once.
 */
template <typename F, typename... Args>
void call_once(once &flag, F &&f, Args &&...args)
{
	int rc = flag.call(std::forward<F>(f), std::forward<Args>(args)...);
	if (rc != 0)
		detail::fail(rc);
}

/**
 * wof::once_lock<T> - a T set at most once per process, thread-safely; wiped on fork.
 *
 * Rust's OnceLock<T> over a wof_once_lock_t. Empty until a T is set or made by get_or_init();
 * then every get() returns it. Concurrent initialisers run one at a time; the others sleep
 * and return the winner's T. The constructors are constexpr: a namespace-scope once_lock is
 * constant-initialised. Neither copyable nor movable. Trivially destructible when T is; else
 * the destructor destroys a T made in this process.
 *
 * Storage: the T lives in the object itself, constructed in place by the thread that
 * initialises it, and the C lock's value pointer names that storage. Not a T on the heap that
 * the lock owns: that would cost an allocation (and a bad_alloc path) per initialisation, and
 * it would leak in every child, which must forget the parent's value without freeing or
 * destroying it (its destructor could act on what the parent still owns) -- each child would
 * keep an unreachable heap copy of each value. In place, a child has nothing of wof's to leak:
 * its first initialisation builds a new T over the parent's bytes. The cost is that the object
 * is as large as T and cannot move, which a synchronisation object cannot anyway.
 *
 * A child process forgets the parent's T: not destroyed, for the same reason. A child that must
 * release its copies (close an inherited descriptor, free memory that is its own copy) passes
 * `on_wipe`: `void on_wipe(T &stale)` runs in the child exactly once, with the parent's T,
 * during the child's first call on the lock and before any re-initialisation; never in the
 * process that made the T, never when the parent held none (as wof_once_lock_t's on_wipe, and
 * wof_sweep() may run it early). It may destroy `stale` if that is right for the child's
 * copy; it must not throw. As for a wof_once_lock_t with a hook, a lock with `on_wipe` must
 * stay valid for the life of the process once it has held a value (static storage).
 *
 * Memory ordering: acquire: everything the initialiser (or setter) wrote happens-before every
 * return of the T.
 * Fork: the child sees an empty lock; its first call runs on_wipe if due.
 */
template <typename T>
class once_lock {
	static_assert(std::is_object<T>::value && !std::is_array<T>::value,
	              "wof::once_lock<T>: T is an object type, not a reference, function or array");

public:
	using value_type = T;
	using wipe_fn = void (*)(T &stale);

	/**
	 * once_lock() - an empty lock; on_wipe (optional) as described for the class.
	 *
	 * Memory ordering: none; constexpr. Fork: empty in every process until set there.
	 */
	constexpr once_lock() noexcept : s_(nullptr) {}
	constexpr explicit once_lock(wipe_fn on_wipe) noexcept : s_(on_wipe) {}
	once_lock(const once_lock &) = delete;
	once_lock &operator=(const once_lock &) = delete;

	/**
	 * get() - the T set in this process, or nullptr; never waits, never initialises.
	 *
	 * Inline fast path: one acquire load and one compare.
	 * Memory ordering: acquire when not nullptr. Fork: nullptr in a child until set there.
	 */
	T *get() noexcept { return wof_once_lock_get(&s_.lock) ? s_.box.ptr() : nullptr; }

	/**
	 * get_or_init() - the T, made from f() first if none is set in this process.
	 *
	 * f is any callable taking no argument whose result constructs a T (a T returned by
	 * value is built in place in C++17, so T need not be movable). If f or T's constructor
	 * throws, nothing is stored, the exception propagates and a waiting or later caller runs
	 * its own f. Throws std::system_error(EDEADLK) from inside the lock's own initialiser.
	 *
	 * Memory ordering: as the class. Fork: as the class.
	 */
	template <typename F>
	T &get_or_init(F &&f)
	{
		auto make = [&]() -> void * { return s_.box.emplace_result(std::forward<F>(f)); };
		if (!wof_once_lock_get_or_init(&s_.lock, &detail::thunk_ptr<decltype(make)>, &make))
			detail::fail(errno);
		return *s_.box.ptr();
	}

	/**
	 * try_insert() - construct the T from args in place unless one is set in this process.
	 *
	 * Waits for an initialiser running in another thread first. Returns the lock's T and
	 * whether this call made it; args are left untouched (not moved from) when it did not.
	 * Exceptions and EDEADLK as get_or_init().
	 *
	 * Memory ordering: as the class. Fork: a T set in an ancestor does not count.
	 */
	template <typename... Args>
	std::pair<T *, bool> try_insert(Args &&...args)
	{
		bool made = false;
		auto make = [&]() -> void * {
			void *value = s_.box.emplace(std::forward<Args>(args)...);
			made = true;
			return value;
		};
		if (!wof_once_lock_get_or_init(&s_.lock, &detail::thunk_ptr<decltype(make)>, &make))
			detail::fail(errno);
		return std::pair<T *, bool>(s_.box.ptr(), made);
	}

	/**
	 * set() - try_insert() that says only whether this call stored its T.
	 *
	 * Memory ordering: as the class. Fork: a T set in an ancestor does not count.
	 *
	 * Return: true when stored, false when a T was already set (args untouched).
	 */
	template <typename... Args>
	bool set(Args &&...args)
	{
		return try_insert(std::forward<Args>(args)...).second;
	}

	/**
	 * wait() - sleep until a T is set in this process; return it. Initialises nothing.
	 *
	 * Throws std::system_error(EDEADLK) from inside the lock's own initialiser.
	 * Memory ordering: as get(). Fork: a T set in an ancestor does not end the wait.
	 */
	T &wait()
	{
		if (!wof_once_lock_wait(&s_.lock))
			detail::fail(errno);
		return *s_.box.ptr();
	}

	/**
	 * reset() - destroy the T set in this process, if any, and empty the lock.
	 *
	 * The caller guarantees that no other thread uses the lock meanwhile (Rust's take()
	 * needs &mut self). In a child, the parent's T is not destroyed (on_wipe runs if due).
	 * Memory ordering: none beyond the caller's exclusive access. Fork: as the class.
	 */
	void reset() noexcept
	{
		if (wof_once_lock_take(&s_.lock))
			s_.box.ptr()->~T();
	}

#if WOF_HPP_OPTIONAL
	/**
	 * take() - (C++17) move the T set in this process out and empty the lock.
	 *
	 * As reset(), but the T is returned (std::nullopt when none was set in this process).
	 * Memory ordering: as reset(). Fork: as reset().
	 */
	std::optional<T> take()
	{
		if (!wof_once_lock_take(&s_.lock))
			return std::nullopt;
		detail::destroy_on_exit<T> moved_from{s_.box.ptr()};
		return std::optional<T>(std::move(*moved_from.p));
	}
#endif

private:
	detail::lock_storage<T> s_;
};

/**
 * wof::lazy<T, Init> - this process's T, made by init() on first use; wiped on fork.
 *
 * Rust's LazyLock. `Init` is any callable taking no argument whose result constructs a T (by
 * default a function pointer `T (*)()`; a captureless lambda converts to one). The T is built
 * with placement new in storage inside the object (no heap), once per process, by one thread;
 * the others sleep until it is made. The constructor is constexpr: a namespace-scope
 * `wof::lazy<Config> config(&load_config);` is constant-initialised (no dynamic initialiser,
 * no order-of-initialisation problem), in C++17 also with a captureless lambda, or `constinit`
 * in C++20. In C++17 the types can be deduced: `wof::lazy answer{[] { return 42; }};`.
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

	/**
	 * lazy() - a lazy T made by init(); on_wipe as described for the class.
	 *
	 * Memory ordering: none; constexpr. Fork: init runs on first use in each process.
	 */
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
	T *get() noexcept
	{
		if (WOF_LIKELY(wof_internal_once_done(&slot_.once)))
			return slot_.ptr();
		if (on_wipe_)
			wof_internal_once_sync(&slot_.once, &lazy::wipe, this);
		return wof_internal_once_done(&slot_.once) ? slot_.ptr() : nullptr;
	}

	/** operator*, operator->() - force(). Memory ordering, Fork: as force(). */
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
		::new (static_cast<void *>(l->slot_.bytes)) T(detail::invoke(l->init_));
		return 0;
	}

	// The once's wipe hook, in a child: tell on_wipe of the parent's T, then forget it.
	static void wipe(void *self, bool held) noexcept
	{
		lazy *l = static_cast<lazy *>(self);
		if (held && l->on_wipe_)
			l->on_wipe_(*l->slot_.ptr());
	}

	detail::lazy_slot<T> slot_;
	Init init_;
	wipe_fn on_wipe_;
};

/**
 * wof::once_cell<T> - a T set at most once per process, for one thread; wiped on fork.
 *
 * Rust's OnceCell<T> over a wof_once_cell_t: wof::once_lock<T> without atomics or waiting,
 * for a T that one thread owns (a `thread_local` cell, or one that threads hand over with
 * their own synchronisation). Using one cell from several threads at once is a data race.
 * Everything else -- in-place storage, constexpr constructors, destructor, on_wipe, fork --
 * is as for wof::once_lock, except that a cell with on_wipe may be destroyed (cells are not
 * swept). get_or_init(), try_insert() and set() from inside the cell's own initialiser throw
 * std::system_error(EDEADLK) (abort without exceptions).
 *
 * Memory ordering: none (single-threaded).
 * Fork: the child sees an empty cell; its first call runs on_wipe if due.
 */
template <typename T>
class once_cell {
	static_assert(std::is_object<T>::value && !std::is_array<T>::value,
	              "wof::once_cell<T>: T is an object type, not a reference, function or array");

public:
	using value_type = T;
	using wipe_fn = void (*)(T &stale);

	/**
	 * once_cell() - an empty cell; on_wipe (optional) as for wof::once_lock.
	 *
	 * Memory ordering: none; constexpr. Fork: empty in every process until set there.
	 */
	constexpr once_cell() noexcept : s_(nullptr) {}
	constexpr explicit once_cell(wipe_fn on_wipe) noexcept : s_(on_wipe) {}
	once_cell(const once_cell &) = delete;
	once_cell &operator=(const once_cell &) = delete;

	/**
	 * get() - the T set in this process, or nullptr; never initialises.
	 *
	 * Memory ordering: none. Fork: nullptr in a child until set there.
	 */
	T *get() noexcept { return wof_once_cell_get(&s_.cell) ? s_.box.ptr() : nullptr; }

	/**
	 * get_or_init() - the T, made from f() first if none is set in this process.
	 *
	 * As wof::once_lock::get_or_init(): an f or constructor that throws stores nothing.
	 * Memory ordering: none. Fork: as the class.
	 */
	template <typename F>
	T &get_or_init(F &&f)
	{
		auto make = [&]() -> void * { return s_.box.emplace_result(std::forward<F>(f)); };
		if (!wof_once_cell_get_or_init(&s_.cell, &detail::thunk_ptr<decltype(make)>, &make))
			detail::fail(errno);
		return *s_.box.ptr();
	}

	/**
	 * try_insert() - construct the T from args unless one is set in this process.
	 *
	 * Returns the cell's T and whether this call made it (args untouched when not).
	 * Memory ordering: none. Fork: a T set in an ancestor does not count.
	 */
	template <typename... Args>
	std::pair<T *, bool> try_insert(Args &&...args)
	{
		bool made = false;
		auto make = [&]() -> void * {
			void *value = s_.box.emplace(std::forward<Args>(args)...);
			made = true;
			return value;
		};
		if (!wof_once_cell_get_or_init(&s_.cell, &detail::thunk_ptr<decltype(make)>, &make))
			detail::fail(errno);
		return std::pair<T *, bool>(s_.box.ptr(), made);
	}

	/**
	 * set() - try_insert() that says only whether this call stored its T.
	 *
	 * Memory ordering: none. Fork: a T set in an ancestor does not count.
	 * Return: true when stored, false when a T was already set (args untouched).
	 */
	template <typename... Args>
	bool set(Args &&...args)
	{
		return try_insert(std::forward<Args>(args)...).second;
	}

	/**
	 * reset() - destroy the T set in this process, if any, and empty the cell.
	 *
	 * Memory ordering: none. Fork: in a child, the parent's T is not destroyed.
	 */
	void reset() noexcept
	{
		if (wof_once_cell_take(&s_.cell))
			s_.box.ptr()->~T();
	}

#if WOF_HPP_OPTIONAL
	/**
	 * take() - (C++17) move the T set in this process out and empty the cell.
	 *
	 * Memory ordering: none. Fork: as reset().
	 */
	std::optional<T> take()
	{
		if (!wof_once_cell_take(&s_.cell))
			return std::nullopt;
		detail::destroy_on_exit<T> moved_from{s_.box.ptr()};
		return std::optional<T>(std::move(*moved_from.p));
	}
#endif

private:
	detail::cell_storage<T> s_;
};

/**
 * wof::lazy_cell<T, Init> - this process's T, made by init() on first use, for one thread.
 *
 * Rust's LazyCell: wof::lazy without atomics or waiting, over a wof::once_cell<T>; `Init` and
 * on_wipe as for wof::lazy, deduction guides too. Single-threaded, as wof::once_cell. If init
 * throws, nothing is stored and the next force() runs init again.
 *
 * Memory ordering: none (single-threaded).
 * Fork: the child sees no T; its first use runs on_wipe (if given and due), then init.
 */
template <typename T, typename Init = T (*)()>
class lazy_cell {
public:
	using value_type = T;
	using wipe_fn = void (*)(T &stale);

	/**
	 * lazy_cell() - a lazy cell made by init(); on_wipe as for wof::lazy.
	 *
	 * Memory ordering: none; constexpr. Fork: init runs on first use in each process.
	 */
	constexpr explicit lazy_cell(Init init, wipe_fn on_wipe = nullptr) noexcept(
	        std::is_nothrow_move_constructible<Init>::value)
	        : cell_(on_wipe), init_(static_cast<Init &&>(init))
	{
	}
	lazy_cell(const lazy_cell &) = delete;
	lazy_cell &operator=(const lazy_cell &) = delete;

	/**
	 * force() - this process's T, made by init() first if this process has none.
	 *
	 * Throws what init throws; std::system_error(EDEADLK) from inside its own init.
	 * Memory ordering: none. Fork: as the class.
	 */
	T &force() { return cell_.get_or_init(init_); }

	/**
	 * get() - this process's T if it has been made, else nullptr; never runs init.
	 *
	 * Memory ordering: none. Fork: nullptr in a child until forced there.
	 */
	T *get() noexcept { return cell_.get(); }

	/** operator*, operator->() - force(). Memory ordering, Fork: as force(). */
	T &operator*() { return force(); }
	T *operator->() { return &force(); }

private:
	once_cell<T> cell_;
	Init init_;
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
template <typename F>
lazy_cell(F) -> lazy_cell<detail::lazy_result_t<F>, F>;
template <typename F>
lazy_cell(F, void (*)(detail::lazy_result_t<F> &)) -> lazy_cell<detail::lazy_result_t<F>, F>;
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
#undef WOF_HPP_OPTIONAL
