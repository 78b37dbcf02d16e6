"""`dataset report`: one HTML page with PNG figures beside a dataset (`<dataset>/_report/`).

Sections: coverage per symbol over time (rows, book-invalid share, gaps and resyncs per hour),
label balance per horizon, each feature's distribution, and each feature's correlation with each
target. Distributions and correlations read a deterministic sample (every k-th row) of at most
`SAMPLE_ROWS`, so a report of a year costs what a report of a week does.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.dataset as pads

NS = 1_000_000_000
HOUR_NS = 3600 * NS
SAMPLE_ROWS = 200_000
REPORT_DIR = "_report"


def load(dataset_dir: Path) -> tuple[dict[str, Any], pa.Table]:
    """The manifest and the rows (symbol from the path); a directory that is not a dataset is a ValueError."""
    try:
        manifest = orjson.loads((dataset_dir / "_manifest.json").read_bytes())
    except (FileNotFoundError, NotADirectoryError):
        raise ValueError(f"{dataset_dir}: not a dataset (no _manifest.json)") from None
    table = pads.dataset(dataset_dir, format="parquet", partitioning="hive").to_table()
    return manifest, table.sort_by([("symbol", "ascending"), ("ts", "ascending")])


def coverage(table: pa.Table) -> dict[str, dict[str, Any]]:
    """Per symbol: rows, invalid rows, gaps (missing whole seconds between rows), resyncs (valid → invalid)."""
    out = {}
    syms = np.array(table.column("symbol").cast(pa.string()).to_pylist(), dtype=object)
    ts_all = table.column("ts").cast(pa.int64()).to_numpy()
    valid_all = table.column("book_valid").to_numpy()
    for sym in sorted(set(syms.tolist())):
        m = syms == sym
        ts, valid = ts_all[m], valid_all[m]
        steps = np.diff(ts) // NS
        out[sym] = {"rows": int(m.sum()), "invalid": int((valid == 0).sum()),
                    "gap_seconds": int(np.maximum(steps - 1, 0).sum()),
                    "resyncs": int(((valid[:-1] == 1) & (valid[1:] == 0)).sum())}
    return out


def correlations(table: pa.Table, features: list[str], targets: list[str]) -> dict[str, dict[str, float]]:
    """Pearson correlation of each feature with each target over rows where both are non-null (NaN if < 3)."""
    out: dict[str, dict[str, float]] = {}
    for f in features:
        x = _floats(table, f)
        out[f] = {}
        for t in targets:
            y = _floats(table, t)
            ok = np.isfinite(x) & np.isfinite(y)
            if ok.sum() < 3 or np.std(x[ok]) == 0 or np.std(y[ok]) == 0:
                out[f][t] = float("nan")
            else:
                out[f][t] = float(np.corrcoef(x[ok], y[ok])[0, 1])
    return out


def _floats(table: pa.Table, col: str) -> np.ndarray:
    return table.column(col).cast(pa.float64()).fill_null(np.nan).to_numpy()


def sample(table: pa.Table, limit: int = SAMPLE_ROWS) -> pa.Table:
    """Every k-th row, at most `limit` of them (deterministic)."""
    k = max(1, -(-table.num_rows // limit))
    return table.take(pa.array(np.arange(0, table.num_rows, k))) if k > 1 else table


def write_report(dataset_dir: Path) -> Path:
    """Write `_report/report.html` and its PNGs; return the HTML's path."""
    import matplotlib

    matplotlib.use("Agg")
    manifest, table = load(Path(dataset_dir))
    out = Path(dataset_dir) / REPORT_DIR
    out.mkdir(exist_ok=True)
    features = list(manifest["feature_names"])
    targets = [c for c in table.column_names if c.startswith("target_return_")]
    small = sample(table)
    cov = coverage(table)
    sections = [("coverage", "Coverage per symbol", _coverage_png(table, out), _coverage_html(cov)),
                ("labels", "Label balance per horizon", _labels_png(manifest, out), ""),
                ("features", "Feature distributions", _features_png(small, features, out), ""),
                ("correlation", "Correlation with the targets", _corr_png(small, features, targets, out), "")]
    page = _page(manifest, sections)
    (out / "report.html").write_text(page, encoding="utf-8")
    return out / "report.html"


def _coverage_png(table: pa.Table, out: Path) -> str:
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(2, 1, figsize=(10, 6), sharex=True)
    syms = np.array(table.column("symbol").cast(pa.string()).to_pylist(), dtype=object)
    ts = table.column("ts").cast(pa.int64()).to_numpy()
    valid = table.column("book_valid").to_numpy()
    for sym in sorted(set(syms.tolist())):
        m = syms == sym
        hours = ts[m] // HOUR_NS
        uniq, counts = np.unique(hours, return_counts=True)
        invalid = np.array([(valid[m][hours == u] == 0).mean() for u in uniq])
        a.plot((uniq * HOUR_NS - ts.min()) / HOUR_NS, counts, marker=".", label=sym)
        b.plot((uniq * HOUR_NS - ts.min()) / HOUR_NS, invalid, marker=".", label=sym)
    a.set_ylabel("rows per hour")
    b.set_ylabel("book-invalid share")
    b.set_xlabel("hours since the first row")
    a.legend(fontsize="small")
    return _save(fig, out, "coverage.png")


def _labels_png(manifest: dict[str, Any], out: Path) -> str:
    import matplotlib.pyplot as plt

    balance = manifest["label_balance"]
    fig, ax = plt.subplots(figsize=(8, 3.5))
    keys = ["-1", "0", "1", "null"]
    width = 0.8 / max(1, len(balance))
    for i, (h, b) in enumerate(balance.items()):
        ax.bar(np.arange(4) + i * width, [b[k] for k in keys], width, label=f"label_{h}")
    ax.set_xticks(np.arange(4) + width * (len(balance) - 1) / 2, ["down", "flat", "up", "undefined"])
    ax.legend(fontsize="small")
    return _save(fig, out, "labels.png")


def _features_png(table: pa.Table, features: list[str], out: Path) -> str:
    import matplotlib.pyplot as plt

    cols = 6
    rows = max(1, -(-len(features) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(2.6 * cols, 2.0 * rows), squeeze=False)
    for ax, f in zip(axes.flat, features + [""] * (rows * cols - len(features)), strict=True):
        if not f:
            ax.axis("off")
            continue
        x = _floats(table, f)
        x = x[np.isfinite(x)]
        if len(x):
            ax.hist(x, bins=40)
        ax.set_title(f, fontsize=7)
        ax.tick_params(labelsize=5)
    fig.tight_layout()
    return _save(fig, out, "features.png")


def _corr_png(table: pa.Table, features: list[str], targets: list[str], out: Path) -> str:
    import matplotlib.pyplot as plt

    corr = correlations(table, features, targets)
    m = np.array([[corr[f][t] for t in targets] for f in features]) if targets else np.zeros((len(features), 0))
    fig, ax = plt.subplots(figsize=(2 + 1.4 * max(1, len(targets)), 0.25 * len(features) + 1.5))
    im = ax.imshow(np.nan_to_num(m), vmin=-1, vmax=1, cmap="coolwarm", aspect="auto")
    ax.set_yticks(range(len(features)), features, fontsize=6)
    ax.set_xticks(range(len(targets)), targets, fontsize=7, rotation=30)
    fig.colorbar(im)
    fig.tight_layout()
    return _save(fig, out, "correlation.png")


def _save(fig: Any, out: Path, name: str) -> str:
    import matplotlib.pyplot as plt

    fig.savefig(out / name, dpi=90)
    plt.close(fig)
    return name


def _coverage_html(cov: dict[str, dict[str, Any]]) -> str:
    rows = "".join(f"<tr><td>{html.escape(s)}</td><td>{c['rows']}</td><td>{c['invalid']}</td>"
                   f"<td>{c['gap_seconds']}</td><td>{c['resyncs']}</td></tr>" for s, c in cov.items())
    return ("<table><tr><th>symbol</th><th>rows</th><th>book invalid</th><th>gap seconds</th>"
            f"<th>resyncs</th></tr>{rows}</table>")


def _page(manifest: dict[str, Any], sections: list[tuple[str, str, str, str]]) -> str:
    p = manifest["params"]
    head = (f"<h1>Dataset {html.escape(manifest['dataset_id'])}</h1><p>{html.escape(p['from'])} → "
            f"{html.escape(p['to'])} · {manifest['rows_total']} rows · registry "
            f"{html.escape(manifest['registry_hash'][:12])} · horizons {html.escape(', '.join(p['horizons']))}</p>")
    body = "".join(f'<section id="{sid}"><h2>{html.escape(title)}</h2>{extra}'
                   f'<img src="{html.escape(png)}" alt="{html.escape(title)}"></section>'
                   for sid, title, png, extra in sections)
    return (f'<!doctype html><html><head><meta charset="utf-8"><title>Dataset {html.escape(manifest["dataset_id"])}'
            f"</title><style>body{{font-family:sans-serif}} td,th{{padding:2px 8px}}</style></head>"
            f"<body>{head}{body}</body></html>")
