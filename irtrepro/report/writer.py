"""Write report parts to ``reports/``: figures (PNG + PDF), tables (CSV, Markdown, LaTeX), HTML.

Tables are rounded only here, for display (CSV keeps full precision). The page lists at the top
everything that was left out and why, and ends with a provenance block.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from irtrepro._atomic import atomic_path
from irtrepro.report.part import ReportPart

_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;max-width:1100px;margin:2em auto;
padding:0 1em;color:#222;line-height:1.45}
h1{font-size:1.7em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}
figure{margin:1.2em 0}figure img{max-width:100%;border:1px solid #eee}
figcaption,.caption{font-size:.92em;color:#444;margin:.3em 0 .8em}
table{border-collapse:collapse;font-size:.85em;margin:.4em 0 .3em;display:block;overflow-x:auto}
th,td{border:1px solid #ddd;padding:.25em .5em;text-align:right;white-space:nowrap}
th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}
.failed{background:#fde8e8;border:2px solid #c81e1e;padding:.6em 1em;border-radius:4px}
.leftout{background:#fff4e5;border:1px solid #f0b46b;padding:.6em 1em;border-radius:4px}
.ok{background:#eef8ee;border:1px solid #9c9;padding:.6em 1em;border-radius:4px}
pre{background:#f7f7f7;padding:.8em;overflow-x:auto;font-size:.85em}
.links a{margin-right:.8em;font-size:.85em}
"""


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")


def display_table(df: pd.DataFrame, digits: int = 3) -> pd.DataFrame:
    """Round floats for display: ``digits`` decimals, p-values in scientific notation."""
    out = df.copy()
    for c in out.columns:
        if pd.api.types.is_float_dtype(out[c]):
            if c in ("p", "p_adj", "p_holm", "p_bh", "pval", "p_value"):
                out[c] = out[c].map(lambda v: "" if pd.isna(v) else f"{v:.2e}")
            else:
                out[c] = out[c].map(lambda v: "" if pd.isna(v) else f"{v:.{digits}f}")
    return out


def _write_table(df: pd.DataFrame, tables: Path, name: str, caption: str) -> dict[str, str]:
    base = tables / _slug(name)
    paths = {}
    with atomic_path(base.with_suffix(".csv")) as tmp:
        df.to_csv(tmp, index=False)
    paths["csv"] = base.with_suffix(".csv")
    shown = display_table(df)
    with atomic_path(base.with_suffix(".md")) as tmp:
        tmp.write_text(f"{caption}\n\n" + shown.to_markdown(index=False) + "\n")
    paths["md"] = base.with_suffix(".md")
    with atomic_path(base.with_suffix(".tex")) as tmp:
        tex = shown.to_latex(index=False, caption=caption, label=f"tab:{_slug(name)}",
                             escape=True)
        tmp.write_text(tex)
    paths["tex"] = base.with_suffix(".tex")
    return {k: str(v) for k, v in paths.items()}


_FIGURE_FORMATS = ((".png", {"dpi": 130}), (".pdf", {}))


def _write_figure(fig, figures: Path, name: str, rendered: Path | None = None
                  ) -> dict[str, str]:
    """PNG and PDF of a figure; with ``rendered`` (a folder of this figure's files from an
    earlier report of the same part result), copied from there instead of drawn again."""
    import matplotlib.pyplot as plt

    base = figures / _slug(name)
    out = {}
    have = rendered is not None and all((rendered / (base.name + ext)).is_file()
                                        for ext, _ in _FIGURE_FORMATS)
    for ext, kw in _FIGURE_FORMATS:
        with atomic_path(base.with_suffix(ext)) as tmp:
            if have:
                shutil.copyfile(rendered / (base.name + ext), tmp)
            else:
                fig.savefig(tmp, format=ext[1:], bbox_inches="tight", **kw)
        out[ext[1:]] = str(base.with_suffix(ext))
    if rendered is not None and not have:
        rendered.mkdir(parents=True, exist_ok=True)
        for ext, _ in _FIGURE_FORMATS:
            with atomic_path(rendered / (base.name + ext)) as tmp:
                shutil.copyfile(base.with_suffix(ext), tmp)
    plt.close(fig)
    return out


def write_report(parts: Sequence[ReportPart], out: str | os.PathLike, *,
                 title: str = "irtrepro report", provenance: dict | None = None,
                 left_out: Sequence[str] = (), failures: Sequence[str] = (),
                 intro: str = "", headline=None,
                 render_cache: str | os.PathLike | None = None) -> Path:
    """Write every part's figures and tables, and ``index.html`` linking them all.

    Parameters
    ----------
    parts : sequence of ReportPart
        In page order.
    out : path-like
        The ``reports/`` folder; ``figures/`` and ``tables/`` are replaced.
    title : str
        Page title.
    provenance : dict
        Shown as a block at the end (git commit, versions, manifest sha256, seeds, timings).
    left_out : sequence of str
        Sessions or analyses left out and why, listed at the top of the page (in addition to
        each part's ``notes``).
    failures : sequence of str
        What failed (a model part, an analysis, a file of the manifest that could not be
        read): a red block at the very top, so a partial report is never mistaken for a
        whole one.
    intro : str
        A paragraph (plain text) under the title.
    headline : callable, optional
        ``headline(tables_dir) -> str``: HTML of a first section, made once every table is
        written (the report's headline figures, gathered from its tables).
    render_cache : path-like, optional
        Folder of rendered figures by part result: a part with a ``cache_key`` gets the
        figure files rendered for that key last time (drawing the figures is most of a warm
        report's time), and leaves its own there for next time.

    Returns
    -------
    Path
        ``out / "index.html"``.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    figures, tables = out / "figures", out / "tables"
    for d in (figures, tables):
        if d.exists():
            shutil.rmtree(d)
        d.mkdir()
    all_left = list(left_out) + [f"{p.title}: {n}" for p in parts for n in p.notes]
    body = [f"<h1>{html.escape(title)}</h1>"]
    if failures:
        items = "".join(f"<li>{html.escape(x)}</li>" for x in failures)
        body.append(f'<div class="failed" id="failures"><strong>Incomplete report: '
                    f"{len(failures)} step(s) failed; the results below lack them:</strong>"
                    f"<ul>{items}</ul></div>")
    if intro:
        body.append(f"<p>{html.escape(intro)}</p>")
    if all_left:
        items = "".join(f"<li>{html.escape(x)}</li>" for x in all_left)
        body.append(f'<div class="leftout" id="left-out"><strong>Left out or flagged '
                    f"({len(all_left)}: missing data, failed parts, model warnings):</strong>"
                    f"<ul>{items}</ul></div>")
    else:
        body.append('<div class="ok" id="left-out">Nothing was left out: every session and '
                    "analysis of the manifest is included.</div>")
    toc = "".join(f'<li><a href="#{_slug(p.name)}">{html.escape(p.title)}</a></li>'
                  for p in parts)
    if headline is not None:
        toc = "<li><a href='#headline'>Headline figures</a></li>" + toc
    body.append(f"<h2>Contents</h2><ol>{toc}<li><a href='#provenance'>Provenance</a></li></ol>")
    at = len(body)
    index: dict[str, dict] = {}
    for p in parts:
        body.append(f'<h2 id="{_slug(p.name)}">{html.escape(p.title)}</h2>')
        for name, (fig, caption) in p.figures.items():
            rendered = (Path(render_cache) / f"{p.name}-{p.cache_key}"
                        if render_cache is not None and p.cache_key else None)
            files = _write_figure(fig, figures, f"{p.name}_{name}", rendered)
            index[f"figure:{p.name}_{name}"] = files
            rel = os.path.relpath(files["png"], out)
            relpdf = os.path.relpath(files["pdf"], out)
            body.append(f'<figure><img src="{html.escape(rel)}" alt="{html.escape(caption)}">'
                        f"<figcaption>{html.escape(caption)} "
                        f'<a href="{html.escape(relpdf)}">PDF</a></figcaption></figure>')
        for name, (df, caption) in p.tables.items():
            files = _write_table(df, tables, f"{p.name}_{name}", caption)
            index[f"table:{p.name}_{name}"] = files
            links = " ".join(f'<a href="{html.escape(os.path.relpath(v, out))}">{k.upper()}</a>'
                             for k, v in files.items())
            shown = display_table(df)
            body.append(f'<p class="caption">{html.escape(caption)}</p>'
                        + shown.to_html(index=False, border=0, na_rep="")
                        + f'<p class="links">{links}</p>')
    if headline is not None:
        body.insert(at, '<h2 id="headline">Headline figures</h2>' + headline(tables))
    prov = provenance or {}
    body.append('<h2 id="provenance">Provenance</h2><pre>'
                + html.escape(json.dumps(prov, indent=2, sort_keys=True, default=str))
                + "</pre>")
    page = (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>"
            + "\n".join(body) + "</body></html>\n")
    with atomic_path(out / "index.html") as tmp:
        tmp.write_text(page)
    with atomic_path(out / "manifest.json") as tmp:
        tmp.write_text(json.dumps({"files": index, "failures": list(failures),
                                   "left_out": all_left}, indent=2))
    return out / "index.html"

