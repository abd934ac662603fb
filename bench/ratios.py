#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Ratios from the Google Benchmark JSON of bench-once or bench-values.

    bench-once --benchmark_min_time=0.2 --benchmark_repetitions=5 \
        --benchmark_report_aggregates_only=true \
        --benchmark_out=run1.json --benchmark_out_format=json
    python3 bench/ratios.py run1.json [run2.json ...]

Works as well on the -nopie and -static builds of either program (bench/meson.build).

For each file (one run): every benchmark's median CPU ns/op, its ratio to pthread_once and to
the bare flag at the same thread count (ratios are only ever taken within one run), and each
benchmark's 2-thread/1-thread aggregate throughput. With several files, a last table gives the
median over runs of each of those numbers. Then the wof targets, checked against that table;
the exit status is 1 when one is missed. Rows named <name>_x8 (8 calls per iteration, in
straight-line code) are shown per call and compared with bare_flag_x8 and pthread_once_x8.
bench/report runs all the programs and renders docs/benchmarks.md from the same functions.

CPU time per op with N threads is the CPU time of all threads over all their calls, so the
aggregate throughput of N threads, each on its own core, is N / cpu_ns_per_op: the
2-thread/1-thread ratio is 2 * cpu(1 thread) / cpu(2 threads), which is 2.0 when the threads do
not slow each other down. The real-time ratio, real(1) / real(2), is printed beside it; on a
shared two-core machine it also counts the time another process held a core.
"""

import json
import statistics
import sys

FLOOR = "bare_flag"
PEER = "pthread_once"
WOF = "wof_once_call"
TO_NS = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}
# Rows named <name>_x8 make 8 calls per iteration (straight-line code, bench/fastpath.hh): their
# times are divided by 8, so that they read per call, and their ratios are taken against
# bare_flag_x8 and pthread_once_x8.
UNROLLED = {"_x8": 8}
# The wof fast paths with targets, by the program that measures them (bench-once or
# bench-values, and their -nopie and -static builds). bench/report takes them from here.
TARGETS = [
    ("once", "wof_once_call"),
    ("once", "wof_once_is_completed"),
    ("values", "wof_once_lock_get"),
    ("values", "wof_lazy_lock_force"),
    ("values", "wof_lazy_static"),
    ("values", "wof_lazy_global"),
    ("values", "wof_lazy_peek"),
    ("values", "wof_lazy_secret"),
    ("values", "wof_once_cell_get_tls"),
    ("values", "wof_lazy_cell_force_tls"),
]
# wof_generation(): inline once the process has its generation.
GENERATION = ("once", "wof_generation")


def suffix(name):
    """The unrolled-row suffix of `name` ("" for a one-call loop) and its calls per iteration."""
    for suf, calls in UNROLLED.items():
        if name.endswith(suf):
            return suf, calls
    return "", 1

# Targets: every completed fast path per call vs the floor, by loop shape (the one-call loop
# hides up to a cycle of work behind its own branch; straight-line code hides nothing), and vs
# pthread_once (same run, at one thread and at two); wof_generation() vs the floor; and the
# aggregate throughput of two threads on one once.
MAX_VS_FLOOR = {"": 1.15, "_x8": 1.5}
MAX_VS_PTHREAD = 0.25
MAX_GENERATION_VS_FLOOR = 1.5
MIN_SCALING = 1.8


def load(path):
    """{(name, threads): {"cpu": ns, "real": ns}} from the medians in one JSON file.

    Aggregate files (--benchmark_report_aggregates_only) carry a "median" row per benchmark;
    files without aggregates have one row per repetition, of which the median is taken.
    """
    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
    medians, samples = {}, {}
    for b in doc.get("benchmarks", []):
        if b.get("error_occurred"):
            print(f"{path}: {b.get('name')}: {b.get('error_message')}", file=sys.stderr)
            continue
        name = b.get("run_name", b["name"]).split("/threads:")[0]
        key = (name, int(b.get("threads", 1)))
        scale = TO_NS[b.get("time_unit", "ns")] / suffix(name)[1]
        times = {"cpu": b["cpu_time"] * scale, "real": b["real_time"] * scale}
        if b.get("run_type") == "aggregate":
            if b.get("aggregate_name") == "median":
                medians[key] = times
        else:
            samples.setdefault(key, []).append(times)
    for key, runs in samples.items():
        if key not in medians:
            medians[key] = {k: statistics.median(r[k] for r in runs) for k in ("cpu", "real")}
    return medians


def derive(medians):
    """{(name, threads): row} with ratios taken within this one run."""
    rows = {}
    for (name, threads), t in medians.items():
        suf = suffix(name)[0]
        peer = medians.get((PEER + suf, threads))
        floor = medians.get((FLOOR + suf, threads))
        one = medians.get((name, 1))
        row = {"cpu": t["cpu"], "vs_pthread": None, "vs_floor": None,
               "scaling_cpu": None, "scaling_real": None}
        if peer:
            row["vs_pthread"] = t["cpu"] / peer["cpu"]
        if floor:
            row["vs_floor"] = t["cpu"] / floor["cpu"]
        if one and threads > 1:
            row["scaling_cpu"] = threads * one["cpu"] / t["cpu"]
            row["scaling_real"] = one["real"] / t["real"]
        rows[(name, threads)] = row
    return rows


def order(keys, files):
    """Benchmarks in the order they were registered (family_index; with random interleaving the
    file's own order is shuffled), else in the order of the first file that has them; then by
    thread count."""
    rank = {}
    for path in files:
        with open(path, encoding="utf-8") as f:
            for b in json.load(f).get("benchmarks", []):
                name = b.get("run_name", b["name"]).split("/threads:")[0]
                if name not in rank:
                    rank[name] = b.get("family_index", len(rank))
    return sorted(keys, key=lambda k: (rank.get(k[0], len(rank)), k[1]))


def fmt(value, spec):
    """`value` formatted with `spec`, or a dash as wide as the field."""
    if value is None:
        return format("-", ">" + spec.split(".")[0])
    return format(value, spec)


def table(title, rows, keys):
    print(title)
    print(f"  {'benchmark':<32} {'thr':>3} {'cpu ns/op':>10} {'/pthread':>9} {'/flag':>7} "
          f"{'2T/1T cpu':>10} {'2T/1T real':>11}")
    for key in keys:
        r = rows.get(key)
        if r is None:
            continue
        print(f"  {key[0]:<32} {key[1]:>3} {fmt(r['cpu'], '10.3f')} "
              f"{fmt(r['vs_pthread'], '9.3f')} {fmt(r['vs_floor'], '7.2f')} "
              f"{fmt(r['scaling_cpu'], '10.2f')} {fmt(r['scaling_real'], '11.2f')}")
    print()


def median_rows(per_run):
    keys = set().union(*(r.keys() for r in per_run))
    out = {}
    for key in keys:
        row = {}
        for field in ("cpu", "vs_pthread", "vs_floor", "scaling_cpu", "scaling_real"):
            vals = [r[key][field] for r in per_run if key in r and r[key][field] is not None]
            row[field] = statistics.median(vals) if vals else None
        out[key] = row
    return out


def check(rows):
    """Print the targets; return True when every one that could be checked holds."""
    ok = True

    def verdict(label, value, good):
        nonlocal ok
        if value is None:
            print(f"  {label}: not measured")
            return
        ok = ok and good(value)
        print(f"  {label}: {value:.3f}  {'PASS' if good(value) else 'MISS'}")

    print("targets (completed wof fast paths, medians):")
    for suf in [""] + list(UNROLLED):
        limit = MAX_VS_FLOOR[suf]
        for name in [t for _, t in TARGETS]:
            for threads in (1, 2):
                r = rows.get((name + suf, threads))
                if r is None:
                    continue
                verdict(f"{name + suf} {threads} thr: / pthread_once <= {MAX_VS_PTHREAD}",
                        r.get("vs_pthread"), lambda v: v <= MAX_VS_PTHREAD)
                verdict(f"{name + suf} {threads} thr: / bare flag    <= {limit}",
                        r.get("vs_floor"), lambda v, lim=limit: v <= lim)
        for threads in (1, 2):
            r = rows.get((GENERATION[1] + suf, threads))
            if r is not None:
                verdict(f"{GENERATION[1] + suf} {threads} thr: / bare flag    <= "
                        f"{MAX_GENERATION_VS_FLOOR}", r.get("vs_floor"),
                        lambda v: v <= MAX_GENERATION_VS_FLOOR)
    verdict(f"2 threads on one once / 1 thread, aggregate (CPU time) >= {MIN_SCALING}",
            rows.get((WOF, 2), {}).get("scaling_cpu"), lambda v: v >= MIN_SCALING)
    return ok


def main(argv):
    if len(argv) < 2 or argv[1] in ("-h", "--help"):
        print(__doc__.strip())
        return 2
    files = argv[1:]
    per_run = [derive(load(path)) for path in files]
    keys = order(set().union(*(r.keys() for r in per_run)), files)
    for path, rows in zip(files, per_run):
        table(f"{path}: medians of repetitions", rows, keys)
    final = per_run[0] if len(per_run) == 1 else median_rows(per_run)
    if len(per_run) > 1:
        table(f"median over {len(per_run)} runs (ratios taken within each run)", final, keys)
    return 0 if check(final) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
