#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Compile and run every ```c block of the given Markdown files, so documentation cannot rot.

A block with a main() is compiled, linked against libwof and run; it must exit 0 within the
deadline. A block without main() must compile (-c). Output is TAP, one test per block.

usage: doc-examples.py --cc 'cc args' --include DIR --lib LIBWOF.a [--cflags 'flags']
                       [--libs 'flags'] [--skip-if REGEX] [--exe-wrapper 'cmd'] FILE.md...

--libs goes after the library on the link line; --exe-wrapper runs the programs of a cross
build (Wine). A block that --skip-if's regular expression matches is reported as skipped: what
the target system lacks (fork on Windows).
"""
import argparse
import os
import re
import shlex
import subprocess
import sys
import tempfile

FENCE = re.compile(r"^```c[ \t]*\n(.*?)^```[ \t]*$", re.M | re.S)


def blocks(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    for match in FENCE.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        yield line, match.group(1)


def check(args, source, workdir):
    src = os.path.join(workdir, "example.c")
    exe = os.path.join(workdir, "example.exe")  # the name a Windows target needs; any will do
    with open(src, "w", encoding="utf-8") as f:
        f.write(source)
    base = shlex.split(args.cc) + ["-std=gnu11", "-Wall", "-Wextra", "-Werror",
                                   "-I", args.include] + shlex.split(args.cflags)
    if not re.search(r"\bmain\s*\(", source):
        cmd = base + ["-c", src, "-o", exe + ".o"]
        run = None
    else:
        cmd = base + [src, "-o", exe, args.lib, "-pthread"] + shlex.split(args.libs)
        run = shlex.split(args.exe_wrapper) + [exe]
    built = subprocess.run(cmd, capture_output=True, text=True)
    if built.returncode != 0:
        return "does not compile:\n" + built.stdout + built.stderr
    if run:
        try:
            ran = subprocess.run(run, capture_output=True, text=True, timeout=30)
        except subprocess.TimeoutExpired:
            return "did not finish within 30 s"
        if ran.returncode != 0:
            return f"exited {ran.returncode}:\n{ran.stdout}{ran.stderr}"
    return None


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cc", required=True)
    parser.add_argument("--cflags", default="")
    parser.add_argument("--include", required=True)
    parser.add_argument("--lib", required=True)
    parser.add_argument("--libs", default="")
    parser.add_argument("--skip-if", default=None)
    parser.add_argument("--exe-wrapper", default="")
    parser.add_argument("files", nargs="+")
    args = parser.parse_args()

    cases = [(path, line, src) for path in args.files for line, src in blocks(path)]
    print(f"1..{len(cases)}")
    failed = 0
    with tempfile.TemporaryDirectory() as workdir:
        for number, (path, line, src) in enumerate(cases, 1):
            name = f"{os.path.basename(path)}:{line}"
            if args.skip_if and re.search(args.skip_if, src, re.M):
                print(f"ok {number} - {name} # SKIP matches {args.skip_if}")
                continue
            error = check(args, src, workdir)
            if error:
                failed += 1
                print(f"not ok {number} - {name}")
                for text in error.rstrip().splitlines():
                    print(f"# {text}")
            else:
                print(f"ok {number} - {name}")
    if not cases:
        print("# no examples found: the Markdown files lost their ```c blocks?")
        return 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
