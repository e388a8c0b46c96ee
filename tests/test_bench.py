"""`make bench` end to end on tiny shapes (`--quick`): every section is printed and every
experimental layout agrees with im2col. Nothing here asserts a time."""
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_quick_bench_prints_every_section(tmp_path):
    plot = tmp_path / "bench.png"
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench.py"), "--quick",
                          "--plot", str(plot)], capture_output=True, text=True, timeout=300,
                         cwd=ROOT, check=True).stdout
    for section in ("== machine", "== roofline", "== layers", "== seed 002 experiments",
                    "== scaling"):
        assert section in out, section
    assert re.search(r"^CPU: .+, \d+ logical CPUs", out, re.M)
    assert re.search(r"^BLAS: ", out, re.M)
    assert re.search(r"float64: peak [\d.]+ GFLOP/s .* bandwidth [\d.]+ GB/s", out)
    # the spread of the repeats, and the roofline fraction, on every method's row
    for method in ("GEMM floor", "strided", "im2col", "taps", "tiles", "dispatch"):
        assert re.search(rf"^  {method} +[\d.]+ \[[\d.]+-[\d.]+\] +[\d.]+ +\d+%", out, re.M), method
    # the experiments compute the same convolution as im2col, to rounding
    errors = [float(e) for e in re.findall(r"vs im2col: ([\d.e+-]+)", out)]
    assert len(errors) == 14 and max(errors) < 1e-5, errors
    # per layer, the way dW's floor product was faster here (one of the two it times)
    ways = re.findall(r"the floor's dW product: (.+) \(the faster here\)$", out, re.M)
    assert len(ways) == 4 and set(ways) <= {"cols.T @ dy", "(dy.T @ cols).T"}, ways
    # tiles taken apart, per layer and direction: products and copies, summed
    for direction, first in (("forward", "product"), ("backward", "dw product")):
        sums = re.findall(rf"^  tiles in parts, {direction}: {first} [\d.]+, .*"
                          rf"copying the column blocks [\d.]+.* ms; sum = ([\d.]+)x floor$",
                          out, re.M)
        assert len(sums) == 4 and all(float(s) > 0 for s in sums), (direction, sums)
    assert len(re.findall(r"dx products \(4 phases\) [\d.]+, .*copying the phases' column "
                          r"blocks [\d.]+ ms", out)) == 2                  # the stride-2 layer
    for method in ("GEMM floor", "strided", "im2col", "taps", "tiles", "dispatch"):  # both sweeps
        assert len(re.findall(rf"^    {method} +slope -?[\d.]+", out, re.M)) == 2, method
    assert plot.stat().st_size > 10_000
