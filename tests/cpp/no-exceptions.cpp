// SPDX-License-Identifier: MIT
// no-exceptions: include/wof/wof.hpp compiles with -fno-exceptions (wof's errors then abort):
// every type and every member that can fail. Compiled, never run.
#include <wof/wof.hpp>

int no_exceptions_make(void);
int no_exceptions_make(void)
{
	return 1;
}

void no_exceptions_void(int *runs);
void no_exceptions_void(int *runs)
{
	++*runs;
}

int no_exceptions_use(void);
int no_exceptions_use(void)
{
	static wof::once once;
	static wof::lazy<int> lazy(&no_exceptions_make);
	static wof::once_lock<int> lock;
	static wof::lazy_cell<int> lazy_cell(&no_exceptions_make);
	static thread_local wof::once_cell<int> cell;
	int runs = 0;

	once.call([&runs] { ++runs; });
	once.call(no_exceptions_void, &runs);
	wof::call_once(once, no_exceptions_void, &runs);
	runs += once.try_call([] { return 0; }) + once.wait() + once.is_completed();
	runs += lazy.force() + (lazy.get() != nullptr);
	runs += lock.get_or_init(&no_exceptions_make) + lock.set(2) + lock.try_insert(3).second +
	        lock.wait() + (lock.get() != nullptr);
	lock.reset();
	runs += cell.get_or_init(&no_exceptions_make) + cell.set(2) + cell.try_insert(3).second +
	        (cell.get() != nullptr);
	cell.reset();
	runs += lazy_cell.force() + *lazy_cell.get();
#if __cplusplus >= 201703L
	runs += lock.take().value_or(0) + cell.take().value_or(0);
#endif
	return runs;
}
