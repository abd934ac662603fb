// SPDX-License-Identifier: MIT
// no-exceptions: include/wof/wof.hpp compiles with -fno-exceptions (wof's errors then abort).
// Compiled, never run.
#include <wof/wof.hpp>

int no_exceptions_make(void);
int no_exceptions_make(void)
{
	return 1;
}

int no_exceptions_use(void);
int no_exceptions_use(void)
{
	static wof::once once;
	static wof::lazy<int> lazy(&no_exceptions_make);
	int runs = 0;

	once.call([&runs] { ++runs; });
	return runs + lazy.force() + (lazy.get() != nullptr) + once.try_call([] { return 0; });
}
