"""`dataset report`: coverage and correlation against hand-made rows; the page has its four sections and PNGs."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tools.dataset.dataset_report import correlations, coverage, load, write_report

NS = 1_000_000_000
T0 = 1_790_000_000 * NS // (86_400 * NS) * 86_400 * NS


def _dataset(root: Path) -> Path:
    rng = np.random.default_rng(1)
    for sym in ("BTCUSDT", "ETHUSDT"):
        for day in (0, 1):
            ts = T0 + day * 86_400 * NS + np.arange(0, 100) * NS
            ts = np.delete(ts, [10, 11, 12])  # a three-second gap
            valid = np.ones(len(ts), np.int8)
            valid[50:55] = 0  # one resync
            ret = rng.normal(0, 1e-4, len(ts))
            t = pa.table({"ts": pa.array(ts, pa.timestamp("ns", tz="UTC")), "book_valid": pa.array(valid),
                          "f_same": ret, "f_noise": rng.normal(size=len(ts)),
                          "target_return_60s": pa.array(ret, mask=np.arange(len(ts)) % 7 == 0),
                          "label_60s": pa.array(np.sign(ret).astype(np.int8))})
            d = root / f"symbol={sym}" / f"date=2026-09-{21 + day}"
            d.mkdir(parents=True)
            pq.write_table(t, d / "part-0.parquet")
    manifest = {"dataset_id": "0123456789abcdef", "params": {"from": "a", "to": "b", "horizons": ["60s"]},
                "rows_total": 4 * 97, "registry_hash": "ab" * 32, "feature_names": ["f_same", "f_noise"],
                "label_balance": {"60s": {"-1": 190, "0": 0, "1": 198, "null": 0}}}
    (root / "_manifest.json").write_text(json.dumps(manifest))
    return root


def test_coverage_counts_rows_invalid_gaps_and_resyncs(tmp_path: Path) -> None:
    _, table = load(_dataset(tmp_path / "ds"))
    cov = coverage(table)
    # per symbol: 2 days × 97 rows; 5 invalid a day; a 3 s gap a day plus the jump between the days
    day_gap = (86_400 + 0) - 99 - 1
    assert cov["BTCUSDT"] == {"rows": 194, "invalid": 10, "gap_seconds": 3 * 2 + day_gap, "resyncs": 2}


def test_a_feature_equal_to_the_target_correlates_one(tmp_path: Path) -> None:
    _, table = load(_dataset(tmp_path / "ds"))
    corr = correlations(table, ["f_same", "f_noise"], ["target_return_60s"])
    assert corr["f_same"]["target_return_60s"] == pytest.approx(1.0, abs=1e-12)
    assert abs(corr["f_noise"]["target_return_60s"]) < 0.3
    x = table.column("f_noise").to_numpy()
    y = table.column("target_return_60s").to_numpy(zero_copy_only=False).astype(float)
    ok = ~np.isnan(y)
    mx, my = x[ok].mean(), y[ok].mean()  # Pearson by hand
    r = ((x[ok] - mx) * (y[ok] - my)).sum() / math.sqrt(((x[ok] - mx) ** 2).sum() * ((y[ok] - my) ** 2).sum())
    assert corr["f_noise"]["target_return_60s"] == pytest.approx(r, rel=1e-9)


def test_the_page_has_four_sections_each_with_a_png(tmp_path: Path) -> None:
    page = write_report(_dataset(tmp_path / "ds"))
    text = page.read_text()
    for section in ("coverage", "labels", "features", "correlation"):
        m = re.search(rf'<section id="{section}">.*?<img src="([^"]+)"', text, re.S)
        assert m, section
        assert (page.parent / m.group(1)).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "BTCUSDT" in text and "0123456789abcdef" in text


def test_not_a_dataset_is_a_value_error_naming_the_path(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=str(tmp_path)):
        write_report(tmp_path)


def test_headless_chromium_renders_the_sections(tmp_path: Path) -> None:
    import shutil
    import subprocess

    browser = next((b for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)
    if browser is None:
        pytest.skip("no headless Chromium on this machine")
    page = write_report(_dataset(tmp_path / "ds"))
    dom = subprocess.run([browser, "--headless", "--no-sandbox", "--dump-dom", page.as_uri()], capture_output=True,
                         text=True, timeout=60).stdout
    assert all(f'id="{s}"' in dom for s in ("coverage", "labels", "features", "correlation"))
