"""Pages of the workflow's HTML report: each table rendered, the headline numbers, config + versions.

``snakemake --report`` shows files; these functions turn the tidy tables of :mod:`d2st.tables`
into small self-contained HTML pages (no JavaScript, inline styles) that the report embeds:
:func:`table_html` per table, :func:`headline_html` on the report's first page, and
:func:`config_html` with the resolved config and the versions of the libraries that made them.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping
from importlib import metadata
from typing import Any

# distributions whose versions the report states (import name differs for open_clip)
VERSIONED = ("d2st", "torch", "torchvision", "timm", "open_clip_torch", "snakemake")

# table styles only: the headline fragment is embedded in the report's own page
_STYLE = (
    "<style>"
    "table.d2st{border-collapse:collapse;margin:6px 0 14px 0;font-size:12px}"
    "table.d2st th,table.d2st td{border:1px solid #ccc;padding:2px 6px;text-align:right}"
    "table.d2st td{white-space:nowrap}"
    "table.d2st th{background:#f0f0f0;vertical-align:bottom}"
    "table.d2st td.key{text-align:left;font-weight:600}"
    "table.d2st td.run{text-align:left;color:#777;font-size:11px}"
    "p.note{color:#555;max-width:60em}"
    "</style>"
)
# a standalone page (table and config pages) also sets the body's font
_PAGE = (
    "<!DOCTYPE html><html><head><meta charset='utf-8'>" + _STYLE + "<style>"
    "body{font-family:system-ui,sans-serif;font-size:14px;margin:12px;color:#222}"
    "</style></head><body>"
)

DEMO_COLUMNS = (("standard", 1, "5-way 1-shot"), ("standard", 5, "5-way 5-shot"))
PAIRS_COLUMN = ("reversed_pairs", 1, "reversed pairs (binary)")


def _isnan(v: Any) -> bool:
    return isinstance(v, float) and math.isnan(v)


def _acc(acc: Any, ci: Any = math.nan) -> str:
    """'66.4 ± 1.2' (accuracy in % with its 95% CI), '–' when missing."""
    if acc is None or _isnan(acc):
        return "–"
    return f"{acc:.1f}" if ci is None or _isnan(ci) else f"{acc:.1f} ± {ci:.1f}"


def _cell(v: Any) -> str:
    if v is None or _isnan(v):
        return "–"
    if isinstance(v, float):
        return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.3g}" if abs(v) < 1 else f"{v:.1f}"
    return html.escape(str(v))


def _table(header: list[str], rows: list[list[str]], key_cols: int = 1) -> str:
    """An HTML table; cells are already escaped; the first ``key_cols`` cells are row keys."""
    out = ['<table class="d2st"><tr>' + "".join(f"<th>{h}</th>" for h in header) + "</tr>"]
    for r in rows:
        cells = [
            f'<td class="{"key" if i < key_cols else "run" if h == "run" else ""}">{c}</td>'
            for i, (h, c) in enumerate(zip(header, r, strict=True))
        ]
        out.append("<tr>" + "".join(cells) + "</tr>")
    return "\n".join(out) + "</table>"


def demo_rows(df) -> tuple[list[str], list[list[str]]]:
    """A ``demo`` table pivoted: one row per method x metric, columns 5-way 1/5-shot and the
    reversed pairs, each 'accuracy ± ci95'; with seed rows, the mean over seeds ± its t-interval."""
    if "seed" in df.columns and (df["seed"].astype(str) == "mean").any():
        df = df[df["seed"].astype(str) == "mean"]
    cols = [c for c in DEMO_COLUMNS if ((df["protocol"] == c[0]) & (df["shot"] == c[1])).any()]
    if (df["protocol"] == PAIRS_COLUMN[0]).any():
        cols.append(PAIRS_COLUMN)
    header = ["method", "metric", *(c[2] for c in cols)]
    rows = []
    for (method, metric), g in df.groupby(["method", "metric"], sort=False):
        cells = [html.escape(str(method)), html.escape(str(metric))]
        for protocol, shot, _ in cols:
            hit = g[(g["protocol"] == protocol) & (g["shot"] == shot)]
            cells.append(
                _acc(float(hit["accuracy"].iloc[0]), float(hit["ci95"].iloc[0]))
                if len(hit)
                else "–"
            )
        rows.append(cells)
    return header, rows


def _efficiency_rows(df) -> tuple[list[str], list[list[str]]]:
    spec = [
        ("method", "method", str),
        ("tunable_params", "tunable params", lambda v: f"{v:,.0f}"),
        ("tunable_params_pct", "% of model", lambda v: f"{v:.2f}"),
        ("peak_mem_mb", "peak mem. (MB)", lambda v: f"{v:,.0f}"),
        ("train_s_per_episode", "train ms/ episode", lambda v: f"{1000 * v:.1f}"),
        ("eval_s_per_episode", "test ms/ episode", lambda v: f"{1000 * v:.2f}"),
    ]
    spec = [s for s in spec if s[0] in df.columns]
    rows = [
        [
            "–" if v is None or _isnan(v) else html.escape(fmt(v))
            for v, fmt in ((r[c], f) for c, _, f in spec)
        ]
        for _, r in df.iterrows()
    ]
    return [s[1] for s in spec], rows


def _paper_rows(df) -> tuple[list[str], list[list[str]], int]:
    skip = {"reported", "reproduced", "ci95", "run"}
    keys = [c for c in df.columns if c not in skip and not c.startswith("reproduced_")]
    extra = [c for c in df.columns if c.startswith("reproduced_")]
    header = [*keys, "reported", "reproduced ± ci95", "Δ", *extra, "run"]
    rows = []
    for _, r in df.iterrows():
        delta = r["reproduced"] - r["reported"]
        rows.append(
            [
                *(_cell(r[c]) for c in keys),
                _acc(r["reported"], None),
                _acc(r["reproduced"], r["ci95"]),
                "–" if _isnan(delta) else f"{delta:+.1f}",
                *(_cell(r[c]) for c in extra),
                html.escape(str(r["run"])),
            ]
        )
    return header, rows, len(keys)


def table_fragment(df, kind: str) -> str:
    """The table as an HTML ``<table>`` (no page around it)."""
    if df.empty:
        return "<p><em>no results yet</em></p>"
    if kind == "demo":
        header, rows = demo_rows(df)
        return _table(header, rows, key_cols=2)
    if kind == "efficiency":
        header, rows = _efficiency_rows(df)
        return _table(header, rows)
    header, rows, n_keys = _paper_rows(df)
    return _table(header, rows, key_cols=n_keys)


def table_html(df, kind: str, title: str = "", note: str = "") -> str:
    """A self-contained HTML page of one result table (the report shows it as is).

    Args:
        df: the table from :func:`d2st.tables.build_table`.
        kind: ``paper``, ``demo`` or ``efficiency`` (the table's layout).
        title: heading of the page.
        note: a sentence under the table (what the numbers are).
    """
    parts = [_PAGE]
    if title:
        parts.append(f"<h3>{html.escape(title)}</h3>")
    parts.append(table_fragment(df, kind))
    if note:
        parts.append(f'<p class="note">{html.escape(note)}</p>')
    parts.append("</body></html>")
    return "\n".join(parts)


def headline_fragment(tables: Mapping[str, tuple[Any, str, str]]) -> str:
    """The report's first page: per table, the numbers a reader looks for first.

    Args:
        tables: table name -> (DataFrame, kind, title).

    Returns:
        An HTML fragment (inline styles, embeddable in the report's description): demo tables
        pivoted (method x metric: 5-way accuracy and reversed pairs, ± ci95), efficiency tables
        in full, paper tables as rows reproduced and the mean gap to the paper.
    """
    out = [_STYLE]
    for name, (df, kind, title) in tables.items():
        out.append(f"<h4>{html.escape(title or name)}</h4>")
        if df.empty:
            out.append("<p><em>no results yet</em></p>")
        elif kind in ("demo", "efficiency"):
            out.append(table_fragment(df, kind))
        else:
            done = df["reproduced"].notna()
            both = done & df["reported"].notna()
            gap = (df["reproduced"] - df["reported"])[both]
            text = f"{int(done.sum())} of {len(df)} rows reproduced"
            if both.any():
                text += (
                    f"; reproduced − reported: mean {gap.mean():+.1f}, "
                    f"range {gap.min():+.1f} to {gap.max():+.1f} points"
                )
            out.append(f"<p>{html.escape(text)} (table <code>{html.escape(name)}</code>).</p>")
    return "\n".join(out)


def versions(names: tuple[str, ...] = VERSIONED) -> dict[str, str]:
    """Installed version of each distribution ('not installed' when absent) and Python's."""
    import platform

    out = {}
    for n in names:
        try:
            out[n] = metadata.version(n)
        except metadata.PackageNotFoundError:
            out[n] = "not installed"
    if out.get("d2st") == "not installed":
        import d2st

        out["d2st"] = f"{d2st.__version__} (source tree)"
    out["python"] = platform.python_version()
    return out


def config_html(config_yaml: str, vers: Mapping[str, str], note: str = "") -> str:
    """A self-contained HTML page: the library versions, then the workflow's resolved config."""
    rows = [[html.escape(k), html.escape(v)] for k, v in vers.items()]
    parts = [_PAGE]
    parts += ["<h3>Versions</h3>", _table(["package", "version"], rows)]
    parts += ["<h3>Workflow config (resolved, defaults filled in)</h3>"]
    if note:
        parts.append(f'<p class="note">{html.escape(note)}</p>')
    parts += [f"<pre>{html.escape(config_yaml)}</pre>", "</body></html>"]
    return "\n".join(parts)
