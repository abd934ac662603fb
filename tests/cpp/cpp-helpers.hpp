// SPDX-License-Identifier: MIT
/*
 * What the C++ test programs share (tests/helpers.h is C only): CHECK, which counts a failure
 * and carries on; CHILD_CHECK, which makes a child's function return the failing line; and
 * in_child(), which runs a function in a forked child that _exits with its result, waited for
 * with a deadline (a straggler is killed and counts as failed). Children never CHECK.
 */
#pragma once

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <thread>

#include <signal.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

namespace test {

inline int &failures()
{
	static int count;
	return count;
}

// The program's exit status: 0 when every CHECK held, else 1, with a summary line.
inline int report(const char *what)
{
	if (failures()) {
		std::printf("%s, C++ %ld: %d checks FAILED\n", what, __cplusplus,
		            failures());
		return 1;
	}
	std::printf("%s, C++ %ld: passed\n", what, __cplusplus);
	return 0;
}

} // namespace test

#define CHECK(cond)                                                                               \
	do {                                                                                      \
		if (!(cond)) {                                                                    \
			std::fprintf(stderr, "%s:%d: %s: CHECK(%s) failed\n", __FILE__, __LINE__, \
			             __func__, #cond);                                            \
			++test::failures();                                                       \
		}                                                                                 \
	} while (0)

// Child exit codes: 0 is success; a failed check in a child exits with its line number (mod
// 200, +1) so the parent can say which one.
#define CHILD_CHECK(cond)                                                                         \
	do {                                                                                      \
		if (!(cond))                                                                      \
			return __LINE__ % 200 + 1;                                                \
	} while (0)

namespace test {

// Waits for child `pid` up to 30 s, then kills it. Returns its exit code, or -1 (killed by a
// signal, timed out, waitpid failed).
inline int reap(pid_t pid)
{
	int status = 0;
	auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
	for (;;) {
		pid_t done = waitpid(pid, &status, WNOHANG);
		if (done == pid)
			break;
		if (done < 0 && errno != EINTR) {
			std::perror("waitpid");
			return -1;
		}
		if (std::chrono::steady_clock::now() > deadline) {
			std::fprintf(stderr, "child %ld timed out\n", static_cast<long>(pid));
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			return -1;
		}
		std::this_thread::sleep_for(std::chrono::milliseconds(2));
	}
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	std::fprintf(stderr, "child %ld killed by signal %d\n", static_cast<long>(pid),
	             WIFSIGNALED(status) ? WTERMSIG(status) : 0);
	return -1;
}

// In a freshly forked child: die with the parent, and within 20 s whatever happens.
inline void child_setup()
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	alarm(20);
}

// Runs child() in a forked child, which _exits with its result (250 for an exception), and
// reaps it. Returns the exit code, or -1 (see reap(); also when fork failed). Usable in a
// child, for grandchildren.
template <typename F>
int in_child(F child)
{
	std::fflush(nullptr);
	pid_t pid = fork();
	if (pid < 0) {
		std::perror("fork");
		return -1;
	}
	if (pid == 0) {
		child_setup();
		int code;
#if defined(__cpp_exceptions) || defined(__EXCEPTIONS)
		try {
			code = child();
		} catch (...) {
			code = 250;
		}
#else
		code = child();
#endif
		_exit(code);
	}
	return reap(pid);
}

} // namespace test
