"""Test-retest reliability of every metric across sessions and days.

Summaries per session: the onset window (first 60 s, before the skin responds) and each phase
mean. ICCs (all six forms, F-based CIs as psych::ICC; ICC(A,.) with Satterthwaite df), SEM,
MDC95, typical error, CV%; Bland-Altman of day 1 against day 2.

Headline ICC: ICC(A,1) (two-way random, absolute agreement, single measurement). Sessions are
repeats on different days, and a shift between days (skin temperature on another day, camera
set-up) is measurement error for test-retest, so absolute agreement is the form that answers
"does a second session give the same value" (Koo & Li 2016; Weir 2005). ICC(C,1) (consistency)
ignores that shift and is shown beside it; a gap between the two measures the systematic
session effect. Each CI is read with Koo & Li's bands applied to its bounds.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import xarray as xr

from irtrepro.errors import StatsError
from irtrepro.plots import bland_altman_plot, icc_forest_plot
from irtrepro.report.part import ReportPart
from irtrepro.stats import bland_altman, icc, koo_li, reliability, rubin_pool
from irtrepro.summaries import CARDIO_SIGNALS, ONSET_WINDOW, THERMAL_METRICS, present
from irtrepro.vision.uncertainty import GROUND_TRUTH

NAME = "reliability"
#: Windows identical in every protocol, where sessions are true repeats: the first minute of
#: exercise (before the skin responds) and the warm-up and recovery phases.
REPEAT_WINDOWS = {"onset": ONSET_WINDOW, "warmup": "warmup", "recovery": "recovery"}
#: Headline form and its reason (stated in every caption that shows it).
HEADLINE = "ICC(A,1)"
#: Segmentation SD of a window mean at or above this fraction of the metric's within-subject
#: SD flags it as limited by segmentation: its segmentation variance is then >= 25 % of the
#: session-to-session variance the ICC and limits of agreement are made of.
SEGMENTATION_LIMITED = 0.5
#: Versions drawn from the measured segmentation error (Rubin's rules over them).
ERROR_DRAWS = 20
Z975 = 1.959963984540054
HEADLINE_REASON = ("ICC(A,1) (absolute agreement) is the headline: sessions are repeats on "
                   "different days, and a systematic shift between days is measurement error "
                   "for test-retest reliability (Koo & Li 2016; Weir 2005); ICC(C,1) "
                   "(consistency, ignores that shift) is shown beside it")


def by_window(table):
    """A stats table of a window summary with ``metric`` the variable and its ``window``.

    :func:`irtrepro.stats.icc` labels each metric ``"tnv/onset"`` and adds ``variable`` and
    ``window`` columns; the report's tables name the variable ``metric`` beside ``window``.
    """
    table = table.drop(columns="metric").rename(columns={"variable": "metric"})
    first = ["metric", "window"]
    return table[first + [c for c in table.columns if c not in first]]


def icc_choice_table(icc_table):
    """ICC(A,1) and ICC(C,1) side by side per metric and window, with Koo & Li readings."""
    out = None
    for form, tag in (("ICC(A,1)", "a1"), ("ICC(C,1)", "c1")):
        rows = icc_table[icc_table.form == form]
        part = rows[["metric", "window", "icc", "ci_low", "ci_high"]].rename(columns={
            "icc": f"icc_{tag}", "ci_low": f"ci_low_{tag}", "ci_high": f"ci_high_{tag}"})
        part[f"koo_li_{tag}"] = koo_li(rows.ci_low, rows.ci_high)
        out = part if out is None else out.merge(part, on=["metric", "window"])
    out["headline"] = HEADLINE
    out["ci_level"] = icc_table.ci_level.iloc[0] if len(icc_table) else 0.95
    return out.reset_index(drop=True)


def run(study: xr.Dataset, *, seed: int = 0) -> ReportPart:
    part = ReportPart(NAME, "Test-retest reliability")
    metrics = present(study, (*THERMAL_METRICS, *CARDIO_SIGNALS))
    if not present(study, THERMAL_METRICS):
        part.notes.append("no skin-temperature metrics: reliability of cardiopulmonary "
                          "signals only")
    summary = study.irt.summary(REPEAT_WINDOWS, metrics, side="both")
    summary = summary.drop_vars("window_definition")
    icc_table = by_window(icc(summary, errors="warn"))
    part.tables["icc"] = (icc_table, "ICCs of per-session summaries across all sessions "
                          "(McGraw & Wong forms with Shrout & Fleiss names; F-based 95 % CIs as "
                          "psych::ICC; ICC(A,.) with Satterthwaite df). Windows: onset = first "
                          "60 s; warmup and recovery phase means (identical in every protocol). "
                          + HEADLINE_REASON + ".")
    part.tables["icc_choice"] = (icc_choice_table(icc_table), "ICC(A,1) and ICC(C,1) per metric "
                                 "and window with 95 % CIs and the Koo & Li (2016) reading of "
                                 "each CI from its bounds (poor < 0.5, moderate 0.5-0.75, good "
                                 "0.75-0.9, excellent > 0.9; e.g. 'moderate to excellent'). "
                                 + HEADLINE_REASON + ".")
    rel = by_window(reliability(summary, n_boot=200, seed=seed, errors="warn",
                                sem_form=HEADLINE))
    part.tables["reliability"] = (rel, "Reliability per metric and window: SEM as sqrt(MSE) and "
                                  "as SD*sqrt(1-ICC(A,1)) (the headline form), MDC95 = 1.96*sqrt(2)*SEM, typical error "
                                  "(SD of differences / sqrt 2) with chi-square CI, change in mean "
                                  "with t CI, CV% from log-transformed data (Hopkins), 200 subject-"
                                  "level bootstrap resamples (seeded).")
    sub = icc_table.assign(metric=icc_table.metric + " (" + icc_table.window + ")")
    fig = icc_forest_plot(sub, form=("ICC(A,1)", "ICC(C,1)"))
    part.figures["icc_forest"] = (fig, "ICC(A,1) (filled) and ICC(C,1) (open) with 95 % CIs per "
                                  "metric and window; reference lines at 0.5, 0.75, 0.9 (Koo & "
                                  "Li 2016: poor/moderate/good/excellent). "
                                  + HEADLINE_REASON + ".")
    # Bland-Altman: day 1 against day 2 (first session of each day), warm-up phase means
    pair = day_sessions(study)
    if pair is not None:
        d1, d2 = pair
        for m in [x for x in ("tnv", "tp", "hr") if x in metrics]:
            w = summary[m].sel(window="warmup")
            x, y = w.sel(session=d1).values, w.sel(session=d2).values
            ok = np.isfinite(x) & np.isfinite(y)
            if ok.sum() < 3:
                part.notes.append(f"Bland-Altman {m}: fewer than 3 subjects with both days")
                continue
            try:
                ba = bland_altman(x[ok], y[ok], loa_ci="exact")
            except StatsError as exc:
                part.notes.append(f"Bland-Altman {m}: {exc}")
                continue
            units = study[m].attrs.get("units", "")
            fig = bland_altman_plot(ba, units=units, measure=f"{m} warm-up mean",
                                    x_name=f"day 1 ({d1})", y_name=f"day 2 ({d2})")
            part.figures[f"bland_altman_{m}"] = (fig, f"Bland-Altman of the warm-up mean of {m} "
                                                 f"({units}), day 1 ({d1}) minus day 2 "
                                                 f"({d2}): bias and 95 % limits (1.96 SD) "
                                                 "with exact CIs.")
            part.tables[f"bland_altman_{m}"] = (ba.to_frame().assign(metric=m, window="warmup"),
                                                f"Bland-Altman statistics of {m}, warm-up.")
    _segmentation_tables(part, study, summary, metrics, pair, seed)
    return part


def day_sessions(study: xr.Dataset) -> tuple[str, str] | None:
    """The first session of day 1 and of day 2 (the Bland-Altman pair), or None."""
    if "day" not in study:
        return None
    day = study["day"].isel(subject=0).to_series() if study["day"].ndim == 2 \
        else study["day"].to_series()
    d1 = [s for s, d in day.items() if d == 1][:1]
    d2 = [s for s, d in day.items() if d == 2][:1]
    return (d1[0], d2[0]) if d1 and d2 else None


def _fisher_z_icc(r, k: int):
    """Fisher's z of an intraclass correlation of k measurements: 0.5 ln((1+(k-1)r)/(1-r))."""
    r = np.asarray(r, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return 0.5 * np.log((1 + (k - 1) * r) / (1 - r))


def _inside_icc_range(values, k: int) -> np.ndarray:
    """ICC values kept just inside the range (-1/(k-1), 1) where Fisher's z is finite.

    A bound at the edge carries almost no information; the huge variance on z it then gets
    says so."""
    return np.clip(np.asarray(values, float), -1 / (k - 1) + 1e-6, 1 - 1e-6)


def _from_fisher_z(z, k: int):
    e = np.exp(2 * np.asarray(z, float))
    return (e - 1) / (e + k - 1)


def segmentation_versions(study: xr.Dataset, summary: xr.Dataset, metrics, *,
                          seed: int = 0, draws: int = ERROR_DRAWS) -> dict | None:
    """Versions of the window summaries under segmentation uncertainty, two ways.

    ``<metric>_seg`` (the vision part: the metric at sampled seconds under each
    test-time-augmented segmentation, and under the ground-truth masks where a held-out
    session has them) gives:

    - ``"augmentation"``: per variant, the full-data window mean of ``summary`` shifted by
      that variant's difference from the untransformed segmentation over the same sampled
      seconds (the first version is ``summary`` itself);
    - ``"measured error"``: ``draws`` versions ``summary + e``, ``e`` drawn independently per
      subject-session from N(0, sd_w), sd_w the SD (ddof 1) over the held-out sessions of the
      window-mean error (untransformed segmentation minus ground truth, same seconds); absent
      without ground truth.

    Returns
    -------
    dict or None
        ``{"augmentation": {label: Dataset}, "measured error": [Dataset] or None,
        "error_sd": Dataset, "error_n": Dataset}``; None when no ``<metric>_seg`` is present.
    """
    names = [m for m in metrics if f"{m}_seg" in study and m in summary]
    if not names or "segmentation" not in study.dims:
        return None
    seg = window_summary_of(study, [f"{m}_seg" for m in names])
    labels = [str(v) for v in study["segmentation"].values]
    tta = [v for v in labels if v != GROUND_TRUTH]
    versions = {}
    for v in tta:
        ds = xr.Dataset({m: summary[m] + (seg[f"{m}_seg"].sel(segmentation=v)
                                          - seg[f"{m}_seg"].sel(segmentation=tta[0])
                                          ).drop_vars("segmentation", errors="ignore")
                         for m in names})
        versions[v] = ds
    out = {"augmentation": versions, "measured error": None}
    if GROUND_TRUTH in labels:
        err = xr.Dataset({m: (seg[f"{m}_seg"].sel(segmentation=tta[0])
                              - seg[f"{m}_seg"].sel(segmentation=GROUND_TRUTH))
                          .drop_vars("segmentation", errors="ignore") for m in names})
        n = err.notnull().sum(("subject", "session"))
        sd = err.std(("subject", "session"), ddof=1, skipna=True).where(n >= 3)
        out["error_sd"], out["error_n"] = sd, n
        if bool(np.isfinite(sd.to_array()).any()):
            rng = np.random.default_rng(seed)
            draws_out = []
            for _ in range(draws):
                ds = xr.Dataset({m: summary[m] + sd[m] * summary[m].copy(
                    data=rng.standard_normal(summary[m].shape)) for m in names})
                draws_out.append(ds.transpose(*summary[names[0]].dims))
            out["measured error"] = draws_out
    for group in ("augmentation", "measured error"):
        vs = out[group]
        for ds in (vs.values() if isinstance(vs, dict) else vs or []):
            for m in names:
                ds[m].attrs = dict(summary[m].attrs)
    return out


def window_summary_of(study: xr.Dataset, variables) -> xr.Dataset:
    return study.irt.summary(REPEAT_WINDOWS, variables).drop_vars("window_definition")


def _icc_rows(ds: xr.Dataset) -> pd.DataFrame:
    with warnings.catch_warnings():
        # a version's missing cells are what the as-segmented table already warned about
        warnings.simplefilter("ignore")
        t = by_window(icc(ds, errors="warn"))
    return t[t.form == HEADLINE].set_index(["metric", "window"])


def _stretch(pool: dict) -> float:
    """Rubin's pooled half-width over a single version's 95 % half-width:
    t(df) sqrt(T) / (1.96 sqrt(W)); 1 when the versions agree."""
    half = (pool["ci_high"] - pool["ci_low"]) / 2
    return float(half / (Z975 * np.sqrt(pool["within"]))) if pool["within"] > 0 else np.inf


def _stretched(est: float, lo: float, hi: float, f: float, fwd=None, back=None):
    """The interval (lo, hi) around est with each half multiplied by f (on the scale of
    ``fwd``, back-transformed by ``back``): the as-segmented interval keeps its shape."""
    fwd = fwd or (lambda x: np.asarray(x, float))
    back = back or (lambda x: x)
    e, a, b = fwd([est, lo, hi])
    return float(back(e - (e - a) * f)), float(back(e + (b - e) * f))


def pooled_icc(versions, k: int) -> pd.DataFrame:
    """ICC(A,1) of each version pooled by Rubin's rules on Fisher's z for intraclass
    correlations (within-version variance from each F-based 95 % CI): the range of the
    versions' ICCs, ``se_widening`` (sqrt(T / W)), ``stretch`` (:func:`_stretch`) and
    ``fmi``."""
    tables = [_icc_rows(ds) for ds in versions]
    rows = {}
    for key in tables[0].index:
        est, var = [], []
        for t in tables:
            r = t.loc[key] if key in t.index else None
            if r is None or not np.isfinite([r.icc, r.ci_low, r.ci_high]).all():
                break
            z = _fisher_z_icc(_inside_icc_range([r.icc, r.ci_low, r.ci_high], k), k)
            est.append(z[0])
            var.append(((z[2] - z[1]) / (2 * Z975)) ** 2)
        if len(est) != len(tables) or not np.isfinite(est + var).all():
            continue
        pool = rubin_pool(est, var)
        iccs = _from_fisher_z(est, k)
        rows[key] = {"icc_min": float(iccs.min()), "icc_max": float(iccs.max()),
                     "fmi": pool["fmi"], "se_widening": pool["widening"],
                     "stretch": _stretch(pool)}
    out = pd.DataFrame.from_dict(rows, orient="index")
    if len(out):
        out.index = pd.MultiIndex.from_tuples(out.index, names=["metric", "window"])
    return out


def _rms_sd(stack: np.ndarray, axis: int) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(np.sqrt(np.nanmean(np.nanvar(stack, axis=axis, ddof=1))))


def segmentation_sensitivity(versions: dict) -> pd.DataFrame:
    """Per metric and window: ICC(A,1) as segmented, and pooled over each kind of version.

    Columns: ``icc``, ``ci_low``, ``ci_high`` (as segmented, F-based); per kind (``tta_``:
    augmentation, ``error_``: measured error) ``ci_low``/``ci_high`` (the as-segmented CI with
    each half stretched on Fisher's z by Rubin's factor, :func:`_stretch`), the range of
    the versions' ICCs and ``se_widening`` (Rubin's sqrt(T / W) on Fisher's z: how much the
    versions' disagreement widens the interval, >= 1);
    ``tta_seg_sd`` (RMS over subject-sessions of a window mean's SD over the augmented
    segmentations), ``error_sd`` and ``error_n`` (the window-mean error's SD over held-out
    sessions), ``within_subject_sd`` (RMS over subjects of a window mean's SD over sessions),
    ``seg_to_within_sd`` (``error_sd`` where measured, else ``tta_seg_sd``, over
    ``within_subject_sd``) and ``segmentation_limited``.
    """
    aug = versions["augmentation"]
    labels = list(aug)
    first = aug[labels[0]]
    k = int(first.sizes["session"])
    ref = _icc_rows(first)
    pooled = {"tta": pooled_icc(list(aug.values()), k)}
    if versions.get("measured error"):
        pooled["error"] = pooled_icc(versions["measured error"], k)
    rows = []
    for (metric, window), r in ref.iterrows():
        stack = np.stack([aug[v][metric].sel(window=window).values for v in labels])
        row = {"metric": metric, "window": window, "form": HEADLINE, "icc": r.icc,
               "ci_low": r.ci_low, "ci_high": r.ci_high}
        notes: list[str] = []
        for tag in ("tta", "error"):
            p = pooled.get(tag)
            got = p is not None and (metric, window) in p.index
            q = p.loc[(metric, window)] if got else None
            lo = hi = np.nan
            if got and np.isfinite([r.icc, r.ci_low, r.ci_high]).all():
                edge = _inside_icc_range([r.icc, r.ci_low, r.ci_high], k)
                lo, hi = _stretched(*edge, q.stretch,
                                    lambda x: _fisher_z_icc(x, k),
                                    lambda z: _from_fisher_z(z, k))
            row.update({f"{tag}_icc_min": q.icc_min if got else np.nan,
                        f"{tag}_icc_max": q.icc_max if got else np.nan,
                        f"{tag}_ci_low": lo, f"{tag}_ci_high": hi,
                        f"{tag}_se_widening": q.se_widening if got else np.nan})
            if p is not None and not got:
                notes.append(f"{tag}: not pooled (a version has no ICC or CI)")
        row["tta_seg_sd"] = _rms_sd(stack, 0)
        sd = versions.get("error_sd")
        row["error_sd"] = float(sd[metric].sel(window=window)) if sd is not None else np.nan
        row["error_n"] = (int(versions["error_n"][metric].sel(window=window))
                          if sd is not None else 0)
        row["within_subject_sd"] = within = _rms_sd(stack[0], 1)
        basis = row["error_sd"] if np.isfinite(row["error_sd"]) else row["tta_seg_sd"]
        row["seg_to_within_sd"] = basis / within if within > 0 else np.nan
        row["basis"] = "measured error" if np.isfinite(row["error_sd"]) else "augmentation"
        row["segmentation_limited"] = bool(row["seg_to_within_sd"] >= SEGMENTATION_LIMITED)
        row["variants"] = ", ".join(labels[1:])
        row["ci_level"] = 0.95
        row["note"] = "; ".join(notes)
        rows.append(row)
    return pd.DataFrame(rows)


def segmentation_loa(versions: dict, pair: tuple[str, str], window: str = "warmup"
                     ) -> pd.DataFrame:
    """Bland-Altman limits (day 1 - day 2) as segmented and pooled by Rubin's rules over each
    kind of version (within-version variance from each limit's exact 95 % CI)."""
    aug = versions["augmentation"]
    kinds = {"tta": list(aug.values())}
    if versions.get("measured error"):
        kinds["error"] = versions["measured error"]
    rows = []
    for metric in aug[next(iter(aug))].data_vars:
        fits = {}
        for tag, vs in kinds.items():
            res = []
            for ds in vs:
                w = ds[metric].sel(window=window)
                x, y = w.sel(session=pair[0]).values, w.sel(session=pair[1]).values
                ok = np.isfinite(x) & np.isfinite(y)
                try:
                    res.append(bland_altman(x[ok], y[ok], loa_ci="exact"))
                except StatsError:
                    break
            if len(res) == len(vs):
                fits[tag] = res
        if "tta" not in fits:
            continue
        for bound in ("loa_low", "loa_high"):
            own = fits["tta"][0]
            lo0, hi0 = getattr(own, f"{bound}_ci")
            row = {"metric": metric, "window": window, "statistic": bound,
                   "estimate": getattr(own, bound), "ci_low": lo0, "ci_high": hi0}
            for tag in ("tta", "error"):
                res = fits.get(tag)
                if res is None:
                    row.update({f"{tag}_ci_low": np.nan, f"{tag}_ci_high": np.nan,
                                f"{tag}_se_widening": np.nan})
                    continue
                est = [getattr(r, bound) for r in res]
                var = [((getattr(r, f"{bound}_ci")[1] - getattr(r, f"{bound}_ci")[0])
                        / (2 * Z975)) ** 2 for r in res]
                pool = rubin_pool(est, var)
                lo, hi = _stretched(row["estimate"], lo0, hi0, _stretch(pool))
                row.update({f"{tag}_ci_low": lo, f"{tag}_ci_high": hi,
                            f"{tag}_se_widening": pool["widening"]})
            row.update({"pair": f"{pair[0]} - {pair[1]}", "ci_level": 0.95})
            rows.append(row)
    return pd.DataFrame(rows)


_SENSITIVITY_CAPTION = (
    "How much segmentation uncertainty widens the headline ICC(A,1) per metric and window, two "
    "ways. tta_: the metrics measured again under each test-time-augmented segmentation "
    "({variants}; vision: segmentation_uncertainty), each version's window means the full-data "
    "means shifted by that variant's difference over the sampled seconds; augmentation misses "
    "errors every variant shares, so these are lower bounds. error_: {draws} versions with "
    "independent N(0, error_sd) errors added per subject-session, error_sd the SD of the "
    "window-mean error against the ground-truth masks over the error_n held-out sessions "
    "(seeded). Each kind's ICCs are pooled by Rubin's rules on Fisher's z for intraclass "
    "correlations (within-version variance from each F-based 95 % CI; Rubin 1987); "
    "tta_/error_ci_low, _ci_high: the as-segmented F-based CI with each half stretched on "
    "Fisher's z by Rubin's factor t(df) sqrt(T) / (1.96 sqrt(W)) (so versions that agree "
    "leave it as it is); the error_ versions add a second dose of the error, so their ICC "
    "range sits low, and only their spread is used; se_widening = sqrt(T / W), the pooled standard error over the "
    "mean within-version one on Fisher's z (1: the versions agree). "
    "within_subject_sd: RMS over subjects of a window mean's SD over sessions; "
    "segmentation_limited: seg_to_within_sd >= {limit:g} (the segmentation's variance >= 25 % "
    "of the session-to-session variance; basis: the measured error where there is ground "
    "truth, else the augmentation spread).")


def _segmentation_tables(part: ReportPart, study, summary, metrics, pair, seed: int) -> None:
    versions = segmentation_versions(study, summary, metrics, seed=seed)
    if versions is None:
        return
    names = ", ".join(list(versions["augmentation"])[1:])
    sens = segmentation_sensitivity(versions)
    part.tables["segmentation_sensitivity"] = (sens, _SENSITIVITY_CAPTION.format(
        variants=names, limit=SEGMENTATION_LIMITED, draws=ERROR_DRAWS))
    for row in sens[sens.segmentation_limited].itertuples():
        part.notes.append(
            f"{row.metric} ({row.window}): segmentation moves its window mean by "
            f"{row.seg_to_within_sd:.2f}x its SD between sessions ({row.basis}): its "
            "reliability is limited by segmentation (table segmentation_sensitivity)")
    if pair is not None:
        loa = segmentation_loa(versions, pair)
        if len(loa):
            part.tables["segmentation_loa"] = (loa, (
                f"Bland-Altman 95 % limits of agreement ({pair[0]} - {pair[1]}, warm-up mean): "
                "as segmented with exact CIs, and pooled by Rubin's rules over the augmented "
                f"segmentations (tta_: {names}) and over the measured-error versions (error_) "
                "of segmentation_sensitivity (within-version variance from each limit's exact "
                "95 % CI; the as-segmented exact CI with each half stretched by Rubin's "
                "factor); se_widening = sqrt(T / W), the pooled standard error over the mean "
                "within-version one (1: the versions agree)."))


if __name__ == "__main__":
    from _cli import main

    main(run, NAME, __doc__)
