"""The breathing part of the report: train-or-reuse, evaluate on held-out subjects, Study vars."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from irtrepro._logging import logger
from irtrepro.breathing.data import ImageSet, clip_index, hard_from_labels, manifest_images
from irtrepro.breathing.evaluate import (
    agreement,
    run_ablation,
    split_subjects,
    true_rate_from_labels,
    window_mean,
)
from irtrepro.breathing.signal import phase_from_signal, signal_baseline

__all__ = ["run_for_report", "session_rates", "study_variables"]

WINDOW_S = 12.0
NAN_REASON = ("NaN outside the face-camera clips (30 s per protocol phase at 8 fps, see "
              "docs/breathing.md), in windows with < 80 % valid frames, and where the nostril "
              "region left the frame")


def session_rates(da: xr.DataArray, labels: np.ndarray | None, *, model=None,
                  window_s: float = WINDOW_S) -> pd.DataFrame:
    """Per-window camera RF, true RF (from labels) and Ti/Te of one session.

    Returns one row per window: ``time`` (s), ``rf_irt`` (min-1, signal baseline periodogram),
    ``rf_peaks``, ``rf_true`` (mean true rate of the frames in the window, from the labels),
    ``ie_ratio`` (INH frames / EXH frames predicted by ``model``, or by the signal level when
    no model is given), ``reason``.
    """
    frames_df, rates = signal_baseline(da, window_s=window_s)
    t = frames_df["time"].to_numpy()
    if model is not None:
        from irtrepro.breathing.data import session_images
        from irtrepro.breathing.train import predict_proba

        imgs = session_images(da, None)
        pred = np.full(len(t), "", dtype=object)
        p = predict_proba(model, imgs.images)
        pred[imgs.meta["frame"].to_numpy()] = np.where(p > 0.5, "EXH", "INH")
    else:
        pred = phase_from_signal(frames_df["filtered"].to_numpy(), method="level")
    pred = np.asarray(pred).astype(str)
    half = window_s / 2
    c = rates["time"].to_numpy()
    n_inh = window_mean(t, (pred == "INH").astype(float), c, half)
    n_exh = window_mean(t, (pred == "EXH").astype(float), c, half)
    with np.errstate(divide="ignore", invalid="ignore"):
        ie = np.where(n_exh > 0, n_inh / n_exh, np.nan)
    out = rates.rename(columns={"rf": "rf_irt"})[["time", "segment", "rf_irt", "rf_peaks",
                                                  "reason"]].copy()
    out["ie_ratio"] = np.where(np.isfinite(out["rf_irt"]), ie, np.nan)
    if labels is not None:
        rf_true = true_rate_from_labels(t, labels)
        out["rf_true"] = window_mean(t, rf_true, c, half)
    else:
        out["rf_true"] = np.nan
    return out


def study_variables(per_session: dict[tuple[str, str], pd.DataFrame], *,
                    t_max: float | None = None) -> xr.Dataset:
    """``rf_irt`` and ``ie_ratio`` on (subject, session, time) at 1 Hz; NaN outside the clips."""
    subjects = sorted({s for s, _ in per_session})
    sessions = sorted({j for _, j in per_session})
    t_end = t_max if t_max is not None else max(
        (float(df["time"].max()) for df in per_session.values() if len(df)), default=0.0)
    grid = np.arange(0, int(np.ceil(t_end)) + 1, dtype=float)
    rf = np.full((len(subjects), len(sessions), len(grid)), np.nan)
    ie = np.full_like(rf, np.nan)
    for (s, j), df in per_session.items():
        if not len(df):
            continue
        i, k = subjects.index(s), sessions.index(j)
        # each grid second takes the window whose centre is nearest, within 0.5 s
        idx = np.clip(np.searchsorted(grid, df["time"].to_numpy()), 0, len(grid) - 1)
        close = np.abs(grid[idx] - df["time"].to_numpy()) <= 0.5
        rf[i, k, idx[close]] = df["rf_irt"].to_numpy()[close]
        ie[i, k, idx[close]] = df["ie_ratio"].to_numpy()[close]
    ds = xr.Dataset(
        {"rf_irt": (("subject", "session", "time"), rf,
                    {"units": "min-1", "long_name": "respiratory rate from face thermography",
                     "method": f"nostril-ROI signal, band-pass 0.1-1.5 Hz, periodogram over "
                               f"{WINDOW_S:g} s windows", "comment": NAN_REASON}),
         "ie_ratio": (("subject", "session", "time"), ie,
                      {"units": "1", "long_name": "inspiration/expiration time ratio (Ti/Te) "
                       "from face thermography", "method": "INH/EXH frame counts predicted "
                       f"by the breathing classifier over {WINDOW_S:g} s windows",
                       "comment": NAN_REASON})},
        coords={"subject": subjects, "session": sessions,
                "time": ("time", grid, {"units": "s", "long_name": "time since exercise start"})})
    return ds


def _data_hash(data: ImageSet) -> str:
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(data.images).tobytes())
    h.update(np.ascontiguousarray(data.labels).tobytes())
    h.update("|".join(data.meta["subject"].astype(str)).encode())
    return h.hexdigest()


def _cart_rf(entry) -> pd.DataFrame | None:
    """Cart breath-by-breath RF of a session on the session clock, or None."""
    fe = entry.files.get("cpet")
    if fe is None:
        return None
    from irtrepro.io.registry import read

    df = read("cpet", fe.path, fe.format, **(fe.options or {}))
    if "rf" not in df:
        return None
    offset = 0.0
    st = df.attrs.get("start_time")
    if st is not None and getattr(entry, "start_time", None) is not None:
        offset = (pd.Timestamp(st) - pd.Timestamp(entry.start_time)).total_seconds()
    return pd.DataFrame({"time": df["time"].to_numpy(float) + offset,
                         "rf": df["rf"].to_numpy(float)})


def run_for_report(manifest, cache_dir: Path, *, seed: int = 0, progress: bool | None = None,
                   rows: list[str] | None = None, overrides: dict | None = None):
    """Breathing section of the report.

    ``rows``: the ablation rows to train and score (default: every row of
    :data:`~irtrepro.breathing.train.ABLATION`); ``overrides``: fields of
    :class:`~irtrepro.breathing.train.BreathConfig` set on every row (e.g. ``epochs``).

    Trains (or reuses from ``cache_dir``, keyed by a hash of the training images and the
    settings) every ablation row on the training subjects, evaluates on held-out subjects,
    estimates RF per window with the signal baseline on every session and compares it with the
    truth (from the frame labels) and with the cart; returns tables, a figure and ``rf_irt`` /
    ``ie_ratio`` on (subject, session, time).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    from irtrepro.breathing.train import ABLATION, BreathModel, config_key
    from irtrepro.report.part import ReportPart

    torch.set_num_threads(min(2, torch.get_num_threads()))
    part = ReportPart(name="breathing", title="Breathing phase and respiratory rate from face "
                      "thermography")
    t0 = time.perf_counter()
    data, frames = manifest_images(manifest, progress=progress)
    part.notes.extend(data.notes)
    part.timings["read_faces"] = time.perf_counter() - t0
    labels_by = {}
    for e in manifest.sessions:
        if "face_labels" in e.files and (e.subject, e.session) in frames:
            from irtrepro.synth.face import read_face_labels

            labels_by[(e.subject, e.session)] = read_face_labels(
                e.files["face_labels"].path)["label"].to_numpy()
    if len(data) == 0 or (data.labels >= 0).sum() == 0:
        part.notes.append("no labelled face sessions in the manifest: breathing part skipped")
        return part
    train_subs, test_subs = split_subjects(data.meta["subject"], seed=seed)
    is_test = data.meta["subject"].isin(test_subs).to_numpy()
    train_set, test_set = data.subset(~is_test & (data.labels >= 0)), \
        data.subset(is_test & (data.labels >= 0))
    part.notes.append(f"held-out subjects: {', '.join(test_subs)}; training subjects: "
                      f"{', '.join(train_subs)}")
    # cache
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    dh = _data_hash(train_set)
    models = {}
    from dataclasses import replace

    unknown = sorted(set(rows or ()) - set(ABLATION))
    if unknown:
        from irtrepro.errors import OptionError

        raise OptionError(f"breathing rows {unknown}: not ablation rows; rows: {list(ABLATION)}")
    rows = {k: replace(v, seed=seed, **(overrides or {})) for k, v in ABLATION.items()
            if rows is None or k in rows}
    for name, cfg in rows.items():
        p = cache_dir / f"breathing-{config_key(cfg, dh)}.pkl"
        if p.is_file():
            models[name] = BreathModel.load(p)
    # signal baseline on the held-out sessions' frames (classification row)
    t1 = time.perf_counter()
    base_rows = []
    for (s, j), da in frames.items():
        if s not in test_subs or (s, j) not in labels_by:
            continue
        tb = time.perf_counter()
        fdf, _ = signal_baseline(da)
        per = (time.perf_counter() - tb) / max(len(fdf), 1)
        t = da["time"].values
        base_rows.append(fdf.assign(label=labels_by[(s, j)], seconds_per_image=per,
                                    hard=hard_from_labels(t, labels_by[(s, j)], clip_index(t))))
    baseline = pd.concat(base_rows, ignore_index=True) if base_rows else None
    table, models_new = run_ablation(train_set, test_set, rows=rows, baseline=baseline,
                                     progress=progress, models=models)
    for name, cfg in rows.items():
        p = cache_dir / f"breathing-{config_key(cfg, dh)}.pkl"
        if name not in models:
            models_new[name].save(p)
    part.timings["ablation"] = time.perf_counter() - t1
    part.tables["ablation"] = (table, (
        "INH/EXH classification of single face frames of held-out subjects (EXH positive; "
        "confusion counts tn/fp/fn/tp, rows truth). accuracy_hard: frames within 15 % of a "
        "phase boundary (from the label file: phase boundaries halfway between frames of "
        "different labels; phases cut by a clip edge excluded). ms_per_image: inference "
        "incl. preprocessing, 1 CPU thread. Rows "
        "follow the BreathAI ablation; the signal baseline labels frames by the sign of the "
        "nostril-ROI temperature slope. The full method standardises its deep features per "
        "held-out subject (its unlabelled frames) before the SVM/RF; the pooled row uses the "
        "training set's statistics instead (docs/breathing.md). Every learned row predicts "
        "with a flip test."))
    # respiratory rate, every session (the baseline has no training data)
    t2 = time.perf_counter()
    full = models_new.get("full method")
    per_session, rr_rows = {}, []
    entries = {(e.subject, e.session): e for e in manifest.sessions}
    for (s, j), da in frames.items():
        df = session_rates(da, labels_by.get((s, j)), model=full)
        cart = _cart_rf(entries[(s, j)]) if (s, j) in entries else None
        df["rf_cart"] = (window_mean(cart["time"], cart["rf"], df["time"], WINDOW_S / 2)
                         if cart is not None else np.nan)
        per_session[(s, j)] = df
        rr_rows.append(df.assign(subject=s, session=j))
    rr = pd.concat(rr_rows, ignore_index=True)
    part.timings["rates"] = time.perf_counter() - t2
    err_rows = []
    for ref in ("rf_true", "rf_cart"):
        for subset, m in (("all sessions", np.ones(len(rr), bool)),
                          ("held-out subjects", rr["subject"].isin(test_subs).to_numpy())):
            a = agreement(rr["rf_irt"].to_numpy()[m], rr[ref].to_numpy()[m])
            err_rows.append({"reference": "truth (labels)" if ref == "rf_true" else "cart RF",
                             "subjects": subset, **a})
    n_nan = int(rr["rf_irt"].isna().sum())
    part.tables["rr_error"] = (pd.DataFrame(err_rows), (
        f"Camera respiratory rate (signal baseline, {WINDOW_S:g} s windows, 1 s step) against "
        "the truth (breaths from the frame labels, mean over the window) and the cart's "
        "breath-by-breath RF (mean over the window), breaths/min. All clips are running "
        f"phases. Windows overlap and repeat within subjects, so LoA are descriptive. "
        f"{n_nan} windows NaN (reasons in the data)."))
    fig, ax = plt.subplots(1, 2, figsize=(9, 4))
    ref = "rf_cart" if rr["rf_cart"].notna().any() else "rf_true"
    ok = rr["rf_irt"].notna() & rr[ref].notna()
    x, y = rr.loc[ok, ref].to_numpy(), rr.loc[ok, "rf_irt"].to_numpy()
    ax[0].plot(x, y, ".", ms=2, alpha=0.4)
    lim = [min(x.min(), y.min()) - 2, max(x.max(), y.max()) + 2] if ok.any() else [0, 60]
    ax[0].plot(lim, lim, "k--", lw=0.8)
    ax[0].set(xlabel=f"{'cart' if ref == 'rf_cart' else 'true'} RF (min$^{{-1}}$)",
              ylabel="camera RF (min$^{-1}$)", title="camera vs reference")
    a = agreement(y, x)
    ax[1].plot((x + y) / 2, y - x, ".", ms=2, alpha=0.4)
    for v, ls in ((a["bias"], "-"), (a["loa_low"], "--"), (a["loa_high"], "--")):
        ax[1].axhline(v, color="k", ls=ls, lw=0.8)
    ax[1].set(xlabel="mean (min$^{-1}$)", ylabel="camera - reference (min$^{-1}$)",
              title="Bland-Altman")
    fig.tight_layout()
    part.figures["rf_agreement"] = (fig, (
        f"Camera RF against the {'cart' if ref == 'rf_cart' else 'true'} RF, one dot per 12 s "
        f"window; Bland-Altman bias {a['bias']:.2f}, LoA {a['loa_low']:.2f} to "
        f"{a['loa_high']:.2f} min-1 ({a['method']})."))
    part.study_vars = study_variables(per_session)
    part.timings["total"] = time.perf_counter() - t0
    logger.info("breathing: ablation\n%s", table.to_string())
    return part
