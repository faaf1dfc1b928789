"""Benchmarks: each module ``d2st.bench.<name>`` defines ``run(out_dir: Path, quick: bool) -> Path``
and writes ``out_dir/<name>.csv`` with ratios measured side by side in one run, the machine named
by :func:`d2st.bench.common.machine_info`. Never used by timed tests."""

BENCHMARKS = ("data", "adapter", "eval", "train")  # `d2st bench all`
ON_DEMO_DATA = ("loop",)  # need the demo's shards and trunk (`make demo` first)
