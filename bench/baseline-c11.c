/* SPDX-License-Identifier: MIT */
/*
 * C11 call_once() for bench-once.cc, for toolchains whose <threads.h> cannot be included from
 * C++. Built only when Meson finds that it cannot (see bench/meson.build); where it can, the
 * benchmark calls call_once() directly, as every other peer is called. Through this wrapper the
 * C11 row pays one more direct call than the others, which bench-once labels.
 */
#include <threads.h>

void wof_bench_c11_call_once(void (*fn)(void));

static once_flag flag = ONCE_FLAG_INIT;

void wof_bench_c11_call_once(void (*fn)(void))
{
	call_once(&flag, fn);
}
