"""README block from the demo table (mean ± 95% CI over seeds), marker replacement, seed plot."""

import math

import numpy as np
import pandas as pd
import pytest

from d2st.demo_report import plot_demo_seeds, readme_block, update_readme

T_975_2 = 4.302652729911275  # Student t quantile 0.975 with 2 degrees of freedom (3 seeds)
SEEDS = {  # (method, protocol, shot) -> accuracy of seeds 0, 1, 2
    ("none", "standard", 1): [37.0, 38.0, 39.5],
    ("none", "standard", 5): [44.0, 45.0, 46.0],
    ("none", "reversed_pairs", 1): [49.0, 50.5, 51.0],
    ("d2st", "standard", 1): [64.0, 66.0, 70.0],
    ("d2st", "standard", 5): [71.0, 73.0, 72.0],
    ("d2st", "reversed_pairs", 1): [70.0, 75.0, 78.0],
}


def _demo_table():
    rows = []
    for (method, protocol, shot), accs in SEEDS.items():
        lr = "" if method == "none" else 3e-3
        for seed, acc in enumerate(accs):
            rows.append(
                dict(method=method, metric="Bi-MHM", protocol=protocol, shot=shot, seed=str(seed),
                     accuracy=acc, ci95=1.0, n_seeds=1, lr=lr, run=f"{method}_s{seed}")
            )  # fmt: skip
        a = np.array(accs)
        ci = T_975_2 * a.std(ddof=1) / math.sqrt(len(a))
        rows.append(
            dict(method=method, metric="Bi-MHM", protocol=protocol, shot=shot, seed="mean",
                 accuracy=a.mean(), ci95=ci, n_seeds=3, lr=lr, run="")
        )  # fmt: skip
    return pd.DataFrame(rows)


def _expected(method, protocol, shot):
    a = np.array(SEEDS[(method, protocol, shot)])
    ci = T_975_2 * a.std(ddof=1) / math.sqrt(3)
    return f"{a.mean():.1f} ± {ci:.1f} (3 seeds)"


@pytest.fixture
def tables(tmp_path):
    demo, lr = tmp_path / "demo.csv", tmp_path / "demo_lr.csv"
    _demo_table().to_csv(demo, index=False)
    pd.DataFrame(
        [
            dict(method="d2st", metric="Bi-MHM", lr=1e-3, val_accuracy=58.0, val_ci95=1.1,
                 chosen=False, rule="best val 5-way 1-shot"),
            dict(method="d2st", metric="Bi-MHM", lr=3e-3, val_accuracy=61.2, val_ci95=1.3,
                 chosen=True, rule="best val 5-way 1-shot"),
            dict(method="none", metric="Bi-MHM", lr=None, val_accuracy=40.0, val_ci95=1.0,
                 chosen=True, rule="best val 5-way 1-shot"),
        ]
    ).to_csv(lr, index=False)  # fmt: skip
    return demo, lr


def test_block_reports_mean_ci_over_seeds_and_chosen_lr(tables):
    demo, lr = tables
    block = readme_block(demo, lr, machine="Test CPU, 2 cores, torch 9.9", wall_s=290.4)
    lines = {ln.split("|")[1].strip(): ln for ln in block.splitlines() if ln.startswith("| ")}
    header = lines["method"]
    assert header.index("5-way 1-shot") < header.index("5-way 5-shot") < header.index("reversed")
    for method in ("none", "d2st"):
        cells = [c.strip() for c in lines[method].strip("|").split("|")]
        assert cells[1:4] == [
            _expected(method, "standard", 1),
            _expected(method, "standard", 5),
            _expected(method, "reversed_pairs", 1),
        ]
    assert "0.003 (val 61.2 ± 1.3)" in lines["d2st"] and "0.001" not in block
    assert "no training" in lines["none"]
    assert list(lines)[1:] == ["none", "d2st"]  # table order, header + separator first
    assert "Test CPU, 2 cores, torch 9.9" in block and "4 min 50 s" in block
    assert "best val 5-way 1-shot" in block


def test_update_readme_replaces_only_between_its_markers(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(
        "intro\n<!-- demo:start -->\nold numbers\n<!-- demo:end -->\nmiddle\n"
        "<!-- demo-full:start -->\nfull\n<!-- demo-full:end -->\nend\n"
    )
    update_readme(readme, "| a | b |\n")
    text = readme.read_text()
    assert "old numbers" not in text
    assert "<!-- demo:start -->\n| a | b |\n<!-- demo:end -->" in text
    assert text.startswith("intro\n") and "middle\n<!-- demo-full:start -->\nfull\n" in text
    update_readme(readme, "| a | b |\n")
    assert readme.read_text() == text  # idempotent
    update_readme(readme, "new full", name="demo-full")
    assert "<!-- demo-full:start -->\nnew full\n<!-- demo-full:end -->\nend\n" in readme.read_text()


def test_update_readme_without_markers_names_the_file(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("no markers here\n<!-- demo:end -->\n")
    with pytest.raises(ValueError, match=r"README\.md.*demo:start"):
        update_readme(readme, "x")
    assert readme.read_text() == "no markers here\n<!-- demo:end -->\n"


def test_plot_demo_seeds_writes_png(tmp_path):
    out = plot_demo_seeds(_demo_table(), tmp_path / "demo_seeds.png", title="demo")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert out.stat().st_size > 5000
