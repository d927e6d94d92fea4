#!/usr/bin/env python3
"""Every cuda_tests test is in exactly one of bench/gpu/run.sh's groups.

run.sh runs cuda_tests on a GPU machine in groups (one process each, so a kernel that faults
hides only its group's results), by gtest filters listed in its `groups=(...)` block. A test no
filter matches would never run on a GPU, and the GPU run is the only place the kernels' own
tests run on hardware; a test two filters match runs twice. This lists the binary's tests
(no GPU needed) and each group's, and fails naming the tests that are in no group or in two.

    check_gpu_test_groups.py RUN_SH CUDA_TESTS
"""

import re
import subprocess
import sys


def list_tests(binary, gtest_filter=None):
    cmd = [binary, "--gtest_list_tests"]
    if gtest_filter is not None:
        cmd.append(f"--gtest_filter={gtest_filter}")
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=60).stdout
    names, suite = [], None
    for line in out.splitlines():
        if not line.strip() or line.startswith("Running main()"):
            continue
        if not line.startswith(" "):
            suite = line.split()[0]  # "Suite." (a "# TypeParam" comment may follow)
        else:
            names.append(suite + line.split()[0])
    return names


def groups_of(run_sh):
    text = open(run_sh, encoding="utf-8").read()
    block = re.search(r"^groups=\((.*?)^\)", text, re.S | re.M)
    if not block:
        sys.exit(f"FAIL: no groups=( ... ) block in {run_sh}")
    groups = re.findall(r'"([\w-]+)\|([^"]+)"', block.group(1))
    if not groups:
        sys.exit(f"FAIL: the groups block of {run_sh} lists no \"name|filter\" entries")
    return groups


def main(run_sh, binary):
    every = list_tests(binary)
    if not every:
        sys.exit(f"FAIL: {binary} lists no tests")
    seen = {name: [] for name in every}
    for group, gfilter in groups_of(run_sh):
        for name in list_tests(binary, gfilter):
            seen[name].append(group)
    orphans = [n for n, g in seen.items() if not g]
    doubles = [f"{n} ({', '.join(g)})" for n, g in seen.items() if len(g) > 1]
    for n in orphans:
        print(f"in no group: {n}")
    for n in doubles:
        print(f"in more than one group: {n}")
    if orphans or doubles:
        sys.exit(f"FAIL: {len(orphans)} tests in no group and {len(doubles)} in more than one; "
                 f"edit the groups=( ... ) block of {run_sh}")
    print(f"ok: {len(every)} tests, each in exactly one group")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
