// SPDX-License-Identifier: MIT
// consumer (C++): the installed <wof/wof.hpp> compiles and works in a program outside wof's
// tree: a wof::lazy at namespace scope made once, a wof::once whose exception leaves it
// incomplete, and a forked child that makes its own value. Exit 0 when all of that held.
#include <wof/wof.hpp>

#include <cstdio>
#include <stdexcept>
#include <string>

#include <sys/wait.h>
#include <unistd.h>

#ifndef WOF_CONSUMER_HOW
#define WOF_CONSUMER_HOW "unknown"
#endif

namespace {

int made;

std::string make_name()
{
	++made;
	return "process " + std::to_string(getpid());
}

wof::lazy<std::string> name(&make_name);
wof::once once;

} // namespace

int main()
{
	bool thrown = false;
	try {
		once.call([] { throw std::runtime_error("not yet"); });
	} catch (const std::runtime_error &) {
		thrown = true;
	}
	int runs = 0;
	if (!thrown || once.is_completed() || once.call([&runs] { ++runs; }) != 0 || runs != 1) {
		std::fprintf(stderr, "consumer (C++): wof::once and exceptions misbehaved\n");
		return 1;
	}
	const std::string mine = *name;
	if (mine != "process " + std::to_string(getpid()) || *name != mine || made != 1) {
		std::fprintf(stderr, "consumer (C++): wof::lazy did not make its value once\n");
		return 1;
	}
	std::fflush(nullptr);
	pid_t pid = fork();
	if (pid == 0) {
		alarm(10);
		bool ok = name.get() == nullptr && !once.is_completed() &&
		          *name == "process " + std::to_string(getpid()) && made == 2;
		_exit(ok ? 0 : 1);
	}
	int status = 0;
	if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
	    WEXITSTATUS(status) != 0 || *name != mine || made != 1) {
		std::fprintf(stderr, "consumer (C++): the forked child did not make its own value\n");
		return 1;
	}
	std::printf("consumer C++ (%s): ok: wof::lazy made once per process, wof::once let an "
	            "exception through\n", WOF_CONSUMER_HOW);
	return 0;
}
