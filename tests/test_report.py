"""The report's pages (d2st.report) and the plots the report shows (d2st.plots)."""

from __future__ import annotations

import math
import re

import pandas as pd
import pytest

from d2st import report


def demo_table() -> pd.DataFrame:
    rows = []
    for method, base in (("d2st", 60.0), ("none", 30.0)):
        for metric in ("Bi-MHM", "OTAM"):
            for protocol, shot, acc in (
                ("standard", 1, base),
                ("standard", 5, base + 10),
                ("reversed_pairs", 1, base + 20),
            ):
                bump = 1.0 if metric == "OTAM" else 0.0
                rows.append(
                    dict(
                        method=method,
                        metric=metric,
                        protocol=protocol,
                        shot=shot,
                        accuracy=acc + bump,
                        ci95=0.5 + bump,
                        run=f"{method}_{metric}",
                    )
                )
    return pd.DataFrame(rows)


def cells(page: str) -> list[list[str]]:
    """The <td>/<th> texts of each <tr> of an HTML page (a tiny parser for these pages)."""
    return [
        re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", tr) for tr in re.findall(r"<tr>.*?</tr>", page)
    ]


def test_demo_table_pivots_every_accuracy_to_its_method_metric_and_column():
    df = demo_table()
    rows = cells(report.table_html(df, "demo", title="demo"))
    header, body = rows[0], rows[1:]
    assert header == ["method", "metric", "5-way 1-shot", "5-way 5-shot", "reversed pairs (binary)"]
    assert len(body) == 4  # method x metric
    col = {("standard", 1): 2, ("standard", 5): 3, ("reversed_pairs", 1): 4}
    for _, r in df.iterrows():
        (line,) = [b for b in body if b[:2] == [r["method"], r["metric"]]]
        assert line[col[(r["protocol"], r["shot"])]] == f"{r['accuracy']:.1f} ± {r['ci95']:.1f}"


def test_paper_table_shows_reported_reproduced_ci_and_the_gap():
    df = pd.DataFrame(
        dict(
            method=["D2ST", "ST"],
            shot=[1, 5],
            reported=[50.0, 60.0],
            reproduced=[47.25, math.nan],
            ci95=[0.4, math.nan],
            run=["r1", "r2"],
        )
    )
    header, first, second = cells(report.table_html(df, "paper"))
    assert header == ["method", "shot", "reported", "reproduced ± ci95", "Δ", "run"]
    assert first[2:5] == ["50.0", "47.2 ± 0.4", f"{47.25 - 50.0:+.1f}"]
    assert second[3:5] == ["–", "–"]  # not reproduced yet: no number, no gap
    head = report.headline_fragment({"t4": (df, "paper", "Table 4")})
    assert "1 of 2 rows reproduced" in head and "-2.8" in head


def test_pages_escape_text_and_state_versions():
    df = demo_table().assign(method="<b>x</b>")
    page = report.table_html(df, "demo", title="a < b", note="5 & 6")
    assert "<b>x</b>" not in page and "&lt;b&gt;x&lt;/b&gt;" in page
    assert "a &lt; b" in page and "5 &amp; 6" in page
    vers = report.versions(("d2st", "surely-not-a-distribution-d2st"))
    assert vers["surely-not-a-distribution-d2st"] == "not installed"
    assert vers["d2st"] and "python" in vers
    page = report.config_html("results_dir: results/test\n", vers)
    assert "results_dir: results/test" in page and "python" in page


@pytest.mark.parametrize("kind", ["demo", "efficiency"])
def test_table_plots_are_written(tmp_path, kind):
    from d2st.plots import plot_table

    if kind == "demo":
        df = demo_table()
    else:
        df = pd.DataFrame(
            dict(
                method=["d2st", "none"],
                tunable_params=[10.0, 0.0],
                tunable_params_pct=[1.0, 0.0],
                peak_mem_mb=[100.0, 90.0],
                train_s_per_episode=[0.1, math.nan],
                run=["a", "b"],
            )
        )
    out = plot_table(df, kind, tmp_path / "t.png", title="t")
    assert out.stat().st_size > 5_000


def test_per_class_and_training_curve_plots(tmp_path):
    from d2st.plots import plot_per_class, plot_train_curve

    pc = pd.DataFrame(
        dict(
            run=["long_run_id_a"] * 2 + ["long_run_id_b"] * 2,
            **{"class": ["x", "y", "x", "y"]},
            shot=[1] * 4,
            accuracy=[20.0, 40.0, 60.0, 80.0],
        )
    )
    out = plot_per_class(pc, tmp_path / "pc.png", labels={"long_run_id_a": "d2st"})
    assert out.stat().st_size > 5_000
    log = pd.DataFrame(dict(episode=[5, 10], loss=[1.6, 1.2], accuracy=[0.2, 0.4], lr=[1e-3] * 2))
    assert plot_train_curve(log, tmp_path / "c.png", way=5).stat().st_size > 5_000
    assert plot_train_curve(None, tmp_path / "none.png").stat().st_size > 1_000
