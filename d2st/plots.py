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
    wide = kind in ("demo", "efficiency")
    fig, ax = plt.subplots(figsize=(11 if wide else 7, 4.2 if wide else 4))
    if df.empty:
        ax.text(0.5, 0.5, "no results yet", ha="center")
    elif kind == "demo":
        _plot_demo(ax, df)
    elif kind == "efficiency":
        _plot_efficiency(ax, df)
    elif df["shot"].nunique() > 2:
        group_cols = [c for c in ("method", "backbone") if c in df.columns]
        for key, g in df.groupby(group_cols):
            g = g.sort_values("shot")
            label = " / ".join(map(str, key if isinstance(key, tuple) else (key,)))
            (line,) = ax.plot(g["shot"], g["reproduced"], marker="o", label=f"{label} (ours)")
            ax.plot(
                g["shot"], g["reported"], ls="--", color=line.get_color(), label=f"{label} (paper)"
            )
        ax.axhline(20.0, color="grey", ls=":", lw=1, label="chance (5-way, 20%)")
        ax.set_xlabel("shots (K)")
        ax.set_ylabel("accuracy (%)")
        ax.legend(fontsize=7, ncol=2)
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
        labels = [
            " ".join(f"{r[c]}-shot" if c == "shot" else str(r[c]) for c in keys)
            for _, r in df.iterrows()
        ]
        x = range(len(df))
        ax.bar([i - 0.2 for i in x], df["reported"].fillna(0), width=0.4, label="paper")
        ax.bar(
            [i + 0.2 for i in x],
            df["reproduced"].fillna(0),
            width=0.4,
            yerr=df["ci95"].fillna(0),
            label="ours",
        )
        ax.axhline(20.0, color="grey", ls=":", lw=1, label="chance (5-way, 20%)")
        ax.set_xticks(list(x), labels, rotation=60, ha="right", fontsize=7)
        ax.set_ylabel("accuracy (%)")
        ax.set_ylim(0, 100)
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    if wide and not df.empty:
        fig.suptitle(title, fontsize=10)
    else:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def _plot_demo(ax, df) -> None:
    """Grouped bars (method x metric) of 5-way 1-shot accuracy (left) and reversed-pair binary
    accuracy (right), each with its labelled chance line (20% for 5-way, 50% for a pair)."""
    fig = ax.figure
    ax.remove()
    panels = [("standard", 1, "5-way 1-shot", "accuracy (%)", 20.0, "chance (5-way): 20%")]
    if (df["protocol"] == "reversed_pairs").any():
        panels.append(
            (
                "reversed_pairs",
                None,
                "time-reversed class pairs (binary, 1-shot)",
                "binary accuracy (%)",
                50.0,
                "chance (pair): 50%",
            )
        )
    methods = list(dict.fromkeys(df["method"]))
    metrics = list(dict.fromkeys(df["metric"]))
    width = 0.8 / max(1, len(metrics))
    for k, (protocol, shot, heading, ylabel, chance, chance_label) in enumerate(panels):
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
            a.bar(xs, acc, width, yerr=ci, capsize=2, label=m)
        a.axhline(chance, color="black", ls="--", lw=1, label=chance_label)
        a.set_xticks(range(len(methods)), methods, fontsize=9)
        a.set_xlabel("adapter (none = frozen backbone)", fontsize=8)
        a.set_ylabel(ylabel, fontsize=9)
        a.set_title(heading, fontsize=9)
        a.set_ylim(0, 100)
        a.legend(fontsize=7, ncol=len(metrics) + 1, loc="upper right", title_fontsize=7)


def _plot_efficiency(ax, df) -> None:
    """Three panels per method: tunable parameters (% of the model), peak memory (MB) and
    seconds per training episode (the columns of an ``efficiency`` table)."""
    fig = ax.figure
    ax.remove()
    labels = [str(r.get("method", r["run"])) for _, r in df.iterrows()]
    panels = [
        ("tunable_params_pct", "tunable parameters (% of model)", 1.0),
        ("peak_mem_mb", "peak memory (MB)", 1.0),
        ("train_s_per_episode", "training time (ms / episode)", 1000.0),
    ]
    panels = [p for p in panels if p[0] in df.columns]
    for k, (col, heading, scale) in enumerate(panels):
        a = fig.add_subplot(1, len(panels), k + 1)
        values = df[col].astype(float) * scale
        a.bar(labels, values.fillna(0), color=f"C{k}")
        for i, v in enumerate(values):
            if v != v:  # NaN: e.g. a frozen baseline has no training time
                a.text(i, 0, "n/a", ha="center", va="bottom", fontsize=7)
        a.set_title(heading, fontsize=9)
        a.tick_params(axis="x", labelsize=9)
        a.set_xlabel("adapter", fontsize=8)


def plot_per_class(
    per_class, out: str | Path, title: str = "", labels: dict[str, str] | None = None
) -> Path:
    """Per-class accuracy (rows: class, one bar group per run) from ``per_class.csv`` files.

    Args:
        per_class: concatenated ``per_class.csv`` frames (columns run, class, shot, accuracy).
        out: the PNG to write.
        title: the figure's title.
        labels: run -> short legend name (e.g. the method); the run id where absent.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    fig, ax = plt.subplots(figsize=(11, 4.5))
    if per_class.empty:
        ax.text(0.5, 0.5, "no per-class results", ha="center")
    else:
        shot = per_class["shot"].min()
        pc = per_class[per_class["shot"] == shot].copy()
        names = labels or {}
        runs = list(dict.fromkeys(pc["run"]))
        pc["method"] = pc["run"].map(lambda r: names.get(r, r))
        order = [names.get(r, r) for r in runs]
        piv = pc.pivot_table(index="class", columns="method", values="accuracy")[order]
        piv.plot.bar(ax=ax, width=0.8, fontsize=8)
        ax.axhline(20.0, color="black", ls="--", lw=1, label="chance (5-way): 20%")
        ax.set_ylabel(f"accuracy (%), 5-way {shot}-shot", fontsize=9)
        ax.set_xlabel("novel (test) class", fontsize=9)
        ax.set_ylim(0, 100)
        ax.tick_params(axis="x", rotation=35, labelsize=8)
        for t in ax.get_xticklabels():
            t.set_ha("right")
        ax.legend(fontsize=8, ncol=len(order) + 1, loc="upper center", bbox_to_anchor=(0.5, 1.0))
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def plot_train_curve(log, out: str | Path, title: str = "", way: int | None = None) -> Path:
    """Training curves of one run from its ``train_log.csv``: loss and query accuracy vs episode.

    Args:
        log: DataFrame of ``train_log.csv`` (columns episode, loss, accuracy in [0, 1], lr).
        out: the PNG to write.
        title: the figure's title (e.g. the run id).
        way: N of the N-way training episodes: draws the chance line at 100/N % when given.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(9, 3.2))
    if log is None or len(log) == 0:
        for a in (ax_loss, ax_acc):
            a.text(0.5, 0.5, "no training log (nothing trained)", ha="center", va="center")
            a.set_axis_off()
    else:
        marker = "o" if len(log) < 30 else None
        ax_loss.plot(log["episode"], log["loss"], color="C0", lw=1.2, marker=marker)
        ax_loss.set_ylabel("training loss", fontsize=9)
        ax_acc.plot(
            log["episode"],
            100.0 * log["accuracy"],
            color="C1",
            lw=1.2,
            marker=marker,
            label="query",
        )
        if way:
            ax_acc.axhline(100.0 / way, color="black", ls="--", lw=1, label=f"chance ({way}-way)")
            ax_acc.legend(fontsize=8)
        ax_acc.set_ylim(0, 100)
        ax_acc.set_ylabel("training query accuracy (%)", fontsize=9)
        for a in (ax_loss, ax_acc):
            a.set_xlabel("episode", fontsize=9)
            a.grid(alpha=0.3)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
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
