"""Plots of the result tables (matplotlib, Agg): paper tables, the demo, per-class accuracy."""

from __future__ import annotations

from pathlib import Path


def plot_table(df, kind: str, out: str | Path, title: str = "") -> Path:
    """One figure per table, chosen by what the table varies (matplotlib, Agg backend).

    - demo: reversed-pair binary accuracy and 5-way accuracy per method (bars, ± ci95);
    - tables with several shots per row (Table 11): accuracy vs shots;
    - tables with ``memory_gb`` (Tables 7, 9, 10): memory vs accuracy, reported and reproduced;
    - otherwise: reported vs reproduced accuracy per row (bars).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    fig, ax = plt.subplots(figsize=(10 if kind == "demo" else 7, 4))
    if df.empty:
        ax.text(0.5, 0.5, "no results yet", ha="center")
    elif kind == "demo":
        _plot_demo(ax, df)
    elif kind == "efficiency":
        labels = [str(r.get("method", r["run"])) for _, r in df.iterrows()]
        ax.bar(labels, df["tunable_params"].fillna(0))
        ax.set_ylabel("tunable parameters")
        ax.tick_params(axis="x", rotation=30)
    elif df["shot"].nunique() > 2:
        group_cols = [c for c in ("method", "backbone") if c in df.columns]
        for key, g in df.groupby(group_cols):
            g = g.sort_values("shot")
            label = " / ".join(map(str, key if isinstance(key, tuple) else (key,)))
            (line,) = ax.plot(g["shot"], g["reproduced"], marker="o", label=f"{label} (ours)")
            ax.plot(
                g["shot"], g["reported"], ls="--", color=line.get_color(), label=f"{label} (paper)"
            )
        ax.set_xlabel("shots (K)")
        ax.set_ylabel("accuracy (%)")
        ax.legend(fontsize=6)
    elif "memory_gb" in df.columns:
        ax.scatter(df["memory_gb"], df["reported"], label="paper")
        if "reproduced_memory_gb" in df.columns:
            ax.scatter(df["reproduced_memory_gb"], df["reproduced"], marker="x", label="ours")
        ax.set_xlabel("peak memory (GB)")
        ax.set_ylabel("accuracy (%)")
        ax.legend()
    else:
        keys = [c for c in df.columns if c not in ("reported", "reproduced", "ci95", "run")]
        keys = [c for c in keys if not c.startswith("reproduced_") and df[c].nunique() > 1] or [
            "run"
        ]
        labels = [" ".join(str(r[c]) for c in keys) for _, r in df.iterrows()]
        x = range(len(df))
        ax.bar([i - 0.2 for i in x], df["reported"].fillna(0), width=0.4, label="paper")
        ax.bar(
            [i + 0.2 for i in x],
            df["reproduced"].fillna(0),
            width=0.4,
            yerr=df["ci95"].fillna(0),
            label="ours",
        )
        ax.set_xticks(list(x), labels, rotation=60, ha="right", fontsize=6)
        ax.set_ylabel("accuracy (%)")
        ax.legend()
    if kind == "demo" and not df.empty:
        fig.suptitle(title, fontsize=9)
    else:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def _plot_demo(ax, df) -> None:
    """Grouped bars (method x metric) of 5-way 1-shot accuracy (left) and reversed-pair binary
    accuracy (right, dotted line = chance)."""
    fig = ax.figure
    ax.remove()
    panels = [("standard", 1, "5-way 1-shot accuracy (%)", 20.0)]
    if (df["protocol"] == "reversed_pairs").any():
        panels.append(("reversed_pairs", None, "reversed-pair binary accuracy (%)", 50.0))
    methods = list(dict.fromkeys(df["method"]))
    metrics = list(dict.fromkeys(df["metric"]))
    width = 0.8 / max(1, len(metrics))
    for k, (protocol, shot, label, chance) in enumerate(panels):
        a = fig.add_subplot(1, len(panels), k + 1)
        sub = df[df["protocol"] == protocol]
        if shot is not None:
            sub = sub[sub["shot"] == shot]
        for j, m in enumerate(metrics):
            xs, acc, ci = [], [], []
            for i, me in enumerate(methods):
                v = sub[(sub["method"] == me) & (sub["metric"] == m)]
                if len(v):
                    xs.append(i + (j - (len(metrics) - 1) / 2) * width)
                    acc.append(float(v["accuracy"].iloc[0]))
                    ci.append(float(v["ci95"].iloc[0]))
            a.bar(xs, acc, width, yerr=ci, label=m)
        a.axhline(chance, color="grey", ls=":", lw=1)
        a.set_xticks(range(len(methods)), methods, rotation=30, fontsize=7)
        a.set_ylabel(label, fontsize=8)
        a.set_ylim(0, 100)
        if k == 0:
            a.legend(title="metric", fontsize=7)


def plot_per_class(per_class, out: str | Path, title: str = "") -> Path:
    """Per-class accuracy (rows: class, one bar group per run) from ``per_class.csv`` files."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    fig, ax = plt.subplots(figsize=(8, 4))
    if per_class.empty:
        ax.text(0.5, 0.5, "no per-class results", ha="center")
    else:
        shot = per_class["shot"].min()
        pc = per_class[per_class["shot"] == shot]
        piv = pc.pivot_table(index="class", columns="run", values="accuracy")
        piv.plot.bar(ax=ax, width=0.8, fontsize=6)
        ax.set_ylabel(f"accuracy (%), {shot}-shot")
        ax.legend(fontsize=5)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def figure4_data(clip_table, efficiency, dataset: str = "ssv2_full", shot: int = 1):
    """Figure 4's points: one per method, joined on the run name.

    Args:
        clip_table: the Table 1 CLIP block (``results/tables/table1_clip.csv``: method, dataset,
            shot, reported, reproduced, ci95, run).
        efficiency: the efficiency table (``results/tables/efficiency.csv``: run,
            tunable_params, tunable_params_pct, peak_mem_mb, ...).
        dataset, shot: which accuracy is plotted.

    Returns:
        DataFrame: method, run, reported, reproduced, ci95, tunable_params, tunable_params_pct,
        peak_mem_mb (one row per method of the CLIP block that the efficiency table also has).
    """
    acc = clip_table[(clip_table["dataset"] == dataset) & (clip_table["shot"] == shot)]
    acc = acc[["method", "run", "reported", "reproduced", "ci95"]]
    cols = ["run", "tunable_params", "tunable_params_pct", "peak_mem_mb"]
    return acc.merge(efficiency[cols], on="run", how="inner").reset_index(drop=True)


def plot_figure4(df, out: str | Path, title: str = "") -> Path:
    """Figure 4: accuracy vs tunable parameters (left) and vs peak memory (right) per method.

    The paper's accuracy (hollow circle) and ours (cross, ± ci95) are drawn at the measured
    parameter count / memory of the method; methods without a value are left out of a panel.

    Args:
        df: :func:`figure4_data` rows (method, reported, reproduced, ci95, tunable_params,
            peak_mem_mb).
        out: PNG path.
        title: figure title.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    panels = (
        ("tunable_params", 1e-6, "tunable parameters (M)"),
        ("peak_mem_mb", 1 / 1024, "peak memory (GB)"),
    )
    for ax, (col, scale, label) in zip(axes, panels, strict=True):
        sub = df[df[col].notna()] if col in df.columns else df.iloc[:0]
        if sub.empty:
            ax.text(0.5, 0.5, "no values yet", ha="center", transform=ax.transAxes)
        for _, r in sub.iterrows():
            x = float(r[col]) * scale
            ax.scatter([x], [r["reported"]], facecolors="none", edgecolors="C0")
            if r["reproduced"] == r["reproduced"]:  # not NaN
                ax.errorbar([x], [r["reproduced"]], yerr=[r["ci95"]], fmt="x", color="C1")
            y = r["reproduced"] if r["reproduced"] == r["reproduced"] else r["reported"]
            ax.annotate(str(r["method"]), (x, y), fontsize=7, xytext=(4, 4),
                        textcoords="offset points")  # fmt: skip
        ax.set_xlabel(label)
    axes[0].set_ylabel("accuracy (%)")
    handles = [
        plt.Line2D([], [], ls="", marker="o", mfc="none", color="C0", label="paper"),
        plt.Line2D([], [], ls="", marker="x", color="C1", label="ours (± ci95)"),
    ]
    axes[0].legend(handles=handles, fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out
