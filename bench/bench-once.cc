// SPDX-License-Identifier: MIT
//
// bench-once: what it costs to ask "has this run yet?" of a once that has already completed --
// the fast path every caller after the first takes. wof_once_call() runs beside the floor (a
// bare inline acquire-load flag) and its peers: pthread_once, C11 call_once, std::call_once, a
// C++ function-local static and absl::call_once, in one binary, so that ratios compare like
// with like (bench/ratios.py prints them). wof_generation() is measured too: inline once the
// process has its generation (one load, a shift, a test).
//
// The harness, the floor and pthread_once are in bench/fastpath.hh (shared with bench-values.cc),
// which describes how the loops are kept fair. Every peer's fast path is whatever its header
// offers: inline for the flag, wof, the local static and absl; a call into libc for
// pthread_once and C11; libstdc++'s std::call_once is a call to pthread_once.
//
// Threads(2) runs both threads on the same object; "2 threads >= 1.8x one thread" reads straight
// off the agg_items_per_second column. The `_x8` rows make 8 calls per iteration in straight-line
// code (fastpath.hh). bench/meson.build builds this program three ways: a PIE linked against
// libwof.so (bench-once), a non-PIE (bench-once-nopie) and a PIE linked with libwof.a
// (bench-once-static); the fast path reads the fork page at a link-time address in each.

#include "fastpath.hh"

#include <cstdlib>
#include <mutex>

#include <wof.h>

#if WOF_BENCH_C11_DIRECT
#include <threads.h>
#elif WOF_BENCH_C11_WRAPPER
extern "C" void wof_bench_c11_call_once(void (*fn)(void)); // bench/baseline-c11.c
#endif

#if WOF_BENCH_HAVE_ABSL
#include <absl/base/call_once.h>
#endif

namespace wof_bench {

// The objects under test: globals with external linkage, each on its own cache line (the floor
// and pthread_once's are in fastpath.hh).
alignas(64) wof_once_t wof_once = WOF_ONCE_INIT;
#if WOF_BENCH_C11_DIRECT
alignas(64) once_flag c11_once = ONCE_FLAG_INIT;
#endif
alignas(64) std::once_flag std_once;
#if WOF_BENCH_HAVE_ABSL
alignas(64) absl::once_flag absl_once;
#endif

// 3. wof.
static void wof_init(void *arg)
{
	(void)arg;
	note_run(WOF);
}

struct WofOnceCall {
	using Object = wof_once_t;
	static constexpr Peer peer = WOF;
	static Object *object() { return &wof_once; }
	static int call(Object *once) { return wof_once_call(once, wof_init, nullptr); }
	static void prepare() { (void)call(object()); }
};

// Its caller branches on the answer, as the flag's caller does (a row that turned the answer
// into a value would time setne and movzbl, which no caller of a yes/no check pays). The branch
// leads to a noreturn function, which gcc places out of line whatever else the loop holds: with
// a fallback that returns into the loop, gcc 12 duplicated the loop's latch and took two
// branches per iteration. prepare() completed the once, so the loop never takes it.
[[noreturn]] WOF_BENCH_NOINLINE void not_completed()
{
	std::abort();
}

struct WofOnceIsCompleted {
	using Object = wof_once_t;
	static constexpr Peer peer = WOF;
	static Object *object() { return &wof_once; }
	static int call(Object *once)
	{
		if (!WOF_BENCH_LIKELY(wof_once_is_completed(once)))
			not_completed();
		return 0;
	}
	static void prepare() { (void)WofOnceCall::call(object()); }
};

// 4. C11 call_once.
#if WOF_BENCH_C11_DIRECT || WOF_BENCH_C11_WRAPPER
static void c11_init(void)
{
	note_run(C11);
}
#endif

#if WOF_BENCH_C11_DIRECT
struct C11CallOnce {
	using Object = once_flag;
	static constexpr Peer peer = C11;
	static Object *object() { return &c11_once; }
	static int call(Object *once)
	{
		::call_once(once, c11_init);
		return 0;
	}
	static void prepare() { (void)call(object()); }
};
#elif WOF_BENCH_C11_WRAPPER
struct C11CallOnce {
	// The once_flag lives in bench/baseline-c11.c; this is only the address the loop passes.
	using Object = int;
	static constexpr Peer peer = C11;
	static Object *object() { return nullptr; }
	static int call(Object *)
	{
		wof_bench_c11_call_once(c11_init);
		return 0;
	}
	static void prepare() { (void)call(object()); }
};
#endif

// 5. std::call_once.
static void std_init()
{
	note_run(STD);
}

struct StdCallOnce {
	using Object = std::once_flag;
	static constexpr Peer peer = STD;
	static Object *object() { return &std_once; }
	static int call(Object *once)
	{
		std::call_once(*once, std_init);
		return 0;
	}
	static void prepare() { (void)call(object()); }
};

// 6. A function-local static with a dynamic initialiser: the compiler's guard variable.
struct Widget {
	unsigned serial;
};

WOF_BENCH_NOINLINE Widget make_widget()
{
	return Widget{ note_run(LOCAL_STATIC) };
}

struct LocalStatic {
	// The guard is the function's own; the loop passes a placeholder like every other peer.
	using Object = int;
	static constexpr Peer peer = LOCAL_STATIC;
	static Object *object() { return nullptr; }
	static int call(Object *)
	{
		static const Widget widget = make_widget();
		(void)widget;
		return 0;
	}
	static void prepare() { (void)call(object()); }
};

// 7. absl::call_once.
#if WOF_BENCH_HAVE_ABSL
static void absl_init()
{
	note_run(ABSL);
}

struct AbslCallOnce {
	using Object = absl::once_flag;
	static constexpr Peer peer = ABSL;
	static Object *object() { return &absl_once; }
	static int call(Object *once)
	{
		absl::call_once(*once, absl_init);
		return 0;
	}
	static void prepare() { (void)call(object()); }
};
#endif

// wof_generation(): inline once the process has a generation (a call the first time only).
struct WofGeneration {
	using Object = int;
	static constexpr Peer peer = NONE; // runs nothing
	static Object *object() { return nullptr; }
	static int call(Object *) { return static_cast<int>(wof_generation()); }
	static void prepare() { (void)wof_generation(); } // the loop times the steady state
};

// Registered in this order, which is the order of the report and of bench/ratios.py's table.
[[maybe_unused]] const bool registered = [] {
	add("bare_flag", completed<BareFlag>);
	add("wof_once_call", completed<WofOnceCall>);
	add("wof_once_is_completed", completed<WofOnceIsCompleted>);
	add("pthread_once", completed<PosixOnce>);
#if WOF_BENCH_C11_DIRECT
	add("c11_call_once", completed<C11CallOnce>);
#elif WOF_BENCH_C11_WRAPPER
	add("c11_call_once_wrapped", completed<C11CallOnce>);
#endif
	add("std_call_once", completed<StdCallOnce>);
	add("local_static", completed<LocalStatic>);
#if WOF_BENCH_HAVE_ABSL
	add("absl_call_once", completed<AbslCallOnce>);
#endif
	add("wof_generation", completed<WofGeneration>);
	add("bare_flag_via_ptr", completed_via_ptr<BareFlag>);
	add("wof_once_call_via_ptr", completed_via_ptr<WofOnceCall>);
	add("bare_flag_x8", completed_x8<BareFlag>);
	add("wof_once_call_x8", completed_x8<WofOnceCall>);
	add("wof_once_is_completed_x8", completed_x8<WofOnceIsCompleted>);
	add("pthread_once_x8", completed_x8<PosixOnce>);
	add("local_static_x8", completed_x8<LocalStatic>);
#if WOF_BENCH_HAVE_ABSL
	add("absl_call_once_x8", completed_x8<AbslCallOnce>);
#endif
	add("wof_generation_x8", completed_x8<WofGeneration>);
	return true;
}();

} // namespace wof_bench

BENCHMARK_MAIN();
