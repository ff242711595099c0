"""What makes glibc's malloc draw a PyTorch CNN's page-fault regime per process? Trace the large requests.

    python benchmarks/allocator_trace.py [--runs 4] [--steps 40] [--fix-layout] [--hash-seed 0]

With glibc's adaptive thresholds (a user's environment) the tutorial cnn takes anywhere from 0 to ~9,000 page
faults a training step after the same evaluation, one level per process (docs/fidelity.md, section 6). This
runs the tutorial cnn (benchmarks/tutorial_pytorch.py's model and loop: the held-out 10% evaluated, then
``--steps`` steps) in fresh processes under an ``LD_PRELOAD`` shim, compiled here with the system's C compiler,
that logs every malloc, calloc, realloc, posix_memalign and free of 64 KiB or more: operation, size (the usable
size for a free) and calling library. It prints each process's faults a step and where its trace first differs
from the first process's. ``--fix-layout`` runs the processes under ``setarch -R`` (no address-space
randomisation); ``--hash-seed`` fixes ``PYTHONHASHSEED``. Needs Linux, glibc and a C compiler (``cc``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
MIN_BYTES = 64 * 1024

SHIM = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
static void *(*real_malloc)(size_t), *(*real_calloc)(size_t, size_t), *(*real_realloc)(void *, size_t);
static void (*real_free)(void *);
static int (*real_memalign)(void **, size_t, size_t);
static int out = -1;
static __thread int busy;
static char early[1 << 16];  /* dlsym's own calloc, before the real one is known */
static size_t early_used;
#define EARLY(p) ((char *)(p) >= early && (char *)(p) < early + sizeof early)
static void init(void) {
  if (real_malloc) return;
  real_malloc = dlsym(RTLD_NEXT, "malloc"); real_calloc = dlsym(RTLD_NEXT, "calloc");
  real_realloc = dlsym(RTLD_NEXT, "realloc"); real_free = dlsym(RTLD_NEXT, "free");
  real_memalign = dlsym(RTLD_NEXT, "posix_memalign");
}
static void note(char op, size_t size, void *caller) {
  if (busy || size < MIN_BYTES) return;
  busy = 1;
  if (out < 0) { const char *path = getenv("ALLOC_TRACE"); if (path) out = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644); }
  if (out >= 0) {
    Dl_info info; const char *lib = "?"; unsigned long offset = 0;
    if (dladdr(caller, &info) && info.dli_fname) {
      lib = strrchr(info.dli_fname, '/'); lib = lib ? lib + 1 : info.dli_fname;
      offset = (unsigned long)((char *)caller - (char *)info.dli_fbase);
    }
    char line[256]; int n = snprintf(line, sizeof line, "%c %zu %s+%lx\n", op, size, lib, offset);
    if (write(out, line, n) < 0) out = -1;
  }
  busy = 0;
}
void *malloc(size_t n) { init(); void *p = real_malloc(n); note('m', n, __builtin_return_address(0)); return p; }
void *calloc(size_t count, size_t size) {
  if (!real_calloc) { void *p = early + early_used; early_used += (count * size + 15) & ~15UL; return p; }
  void *p = real_calloc(count, size); note('c', count * size, __builtin_return_address(0)); return p;
}
void *realloc(void *old, size_t n) {
  init();
  if (EARLY(old)) { void *p = real_malloc(n); memcpy(p, old, n); return p; }
  void *p = real_realloc(old, n); note('r', n, __builtin_return_address(0)); return p;
}
void free(void *p) {
  init();
  if (!p || EARLY(p)) return;
  note('f', malloc_usable_size(p), __builtin_return_address(0));
  real_free(p);
}
int posix_memalign(void **p, size_t alignment, size_t n) {
  init(); int r = real_memalign(p, alignment, n); note('a', n, __builtin_return_address(0)); return r;
}
"""

DRIVER = r"""
import resource, sys
sys.path[:0] = [sys.argv[1], sys.argv[2]]
import torch
import tutorial_pytorch as tutorial
from dlbench.data import load_task
torch.set_num_threads(1)
torch.manual_seed(0)
data = load_task("fashion_mnist")
x = torch.from_numpy(data.x_train).permute(0, 3, 1, 2).contiguous()
x_val = torch.from_numpy(data.x_val).permute(0, 3, 1, 2).contiguous()
model = tutorial.ConvNet()
tutorial.evaluate(model, x_val)
marks = tutorial.train(model, x, torch.from_numpy(data.y_train), int(sys.argv[3]), 128, True)
skip = len(marks) // 4
print((marks[-1][4] - marks[skip][4]) / (marks[-1][0] - marks[skip][0]))
"""


def build_shim(folder: Path) -> Path:
    """The shim as a shared library in ``folder``; exits 2 with one line when no C compiler is found."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        raise SystemExit("allocator_trace.py: no C compiler (cc or gcc) on PATH to build the LD_PRELOAD shim: "
                         "install one (apt install gcc)")
    source, library = folder / "shim.c", folder / "shim.so"
    source.write_text(f"#define MIN_BYTES {MIN_BYTES}\n" + SHIM)
    subprocess.run([compiler, "-O2", "-shared", "-fPIC", "-o", str(library), str(source), "-ldl"], check=True)
    return library


def traced_run(library: Path, trace: Path, driver: Path, args: argparse.Namespace) -> float:
    """Faults a step of one fresh process of the tutorial cnn, its large requests written to ``trace``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}  # glibc as shipped
    env.update(LD_PRELOAD=str(library), ALLOC_TRACE=str(trace), OMP_NUM_THREADS="1")
    if args.hash_seed is not None:
        env["PYTHONHASHSEED"] = str(args.hash_seed)
    command = [sys.executable, str(driver), str(HERE), str(HERE.parent / "harness"), str(args.steps)]
    if args.fix_layout:
        command = ["setarch", "-R", *command]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    return float(done.stdout.split()[-1])


def first_difference(a: list[str], b: list[str]) -> str:
    """'same' or where two traces first part: the line number and both lines."""
    for number, (left, right) in enumerate(zip(a, b), start=1):
        if left != right:
            return f"line {number}: {left!r} / {right!r}"
    return "same" if len(a) == len(b) else f"one trace is longer ({len(a)} / {len(b)} lines)"


def requests(trace: list[str]) -> list[str]:
    """The trace without its frees: what the process asked for (operation, size, caller), in order."""
    return [line for line in trace if not line.startswith("f ")]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=4, help="fresh processes")
    parser.add_argument("--steps", type=int, default=40, help="training steps after the evaluation")
    parser.add_argument("--fix-layout", action="store_true", help="run under setarch -R (no ASLR)")
    parser.add_argument("--hash-seed", type=int, help="PYTHONHASHSEED for every process (default: random)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dlbench-alloc-trace-") as name:
        folder = Path(name)
        library, driver = build_shim(folder), folder / "driver.py"
        driver.write_text(DRIVER)
        traces = []
        for run in range(args.runs):
            trace = folder / f"trace{run}.txt"
            faults = traced_run(library, trace, driver, args)
            traces.append(trace.read_text().splitlines())
            same_requests = requests(traces[-1]) == requests(traces[0])
            print(f"process {run + 1}: {faults:8.1f} faults a step, {len(traces[-1])} large calls; requests "
                  f"{'as process 1' if same_requests else 'differ from process 1'}; whole trace against "
                  f"process 1 (frees show glibc's usable size): {first_difference(traces[0], traces[-1])}",
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
