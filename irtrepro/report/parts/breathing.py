"""The breathing part of ``make report``: manifest -> ablation, respiratory rate, Study vars."""

from __future__ import annotations

import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pandas as pd

from irtrepro._logging import logger
from irtrepro.report.cache import Cache, cache_key
from irtrepro.report.part import ReportPart

__all__ = ["cart_rf", "run_for_report"]

#: source of a trained breathing model (its cache key)
MODEL_SOURCE = ("irtrepro.breathing.train", "irtrepro.breathing.models",
                "irtrepro.breathing.amt", "irtrepro.breathing.ensemble",
                "irtrepro.breathing.data")

ABLATION_CAPTION = (
    "INH/EXH classification of single face frames of held-out subjects (EXH positive; "
    "confusion counts tn/fp/fn/tp, rows truth). accuracy_hard: frames within 15 % of a "
    "phase boundary (from the label file: phase boundaries halfway between frames of "
    "different labels; phases cut by a clip edge excluded). ms_per_image: inference "
    "incl. preprocessing, 1 CPU thread. Rows "
    "follow the BreathAI ablation; the signal baseline labels frames by the sign of the "
    "nostril-ROI temperature slope. The full method standardises its deep features per "
    "held-out subject (its unlabelled frames) before the SVM/RF; the pooled row uses the "
    "training set's statistics instead (docs/breathing.md). Every learned row predicts "
    "with a flip test.")


def cart_rf(entry) -> pd.DataFrame | None:
    """Cart breath-by-breath RF (min-1) of a manifest session on the session clock, or None."""
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


def _labels(manifest, frames) -> dict:
    from irtrepro.io.face import read_face_labels

    return {(e.subject, e.session): read_face_labels(e.files["face_labels"].path)["label"]
            .to_numpy() for e in manifest.sessions
            if "face_labels" in e.files and (e.subject, e.session) in frames}


def run_for_report(manifest, cache_dir: Path, *, seed: int = 0, progress: bool | None = None,
                   rows: list[str] | None = None, overrides: dict | None = None) -> ReportPart:
    """Breathing section of the report.

    Parameters
    ----------
    manifest : Manifest
    cache_dir : path-like
        Where the trained models are cached (keyed by the training images, the settings and
        the training code).
    seed : int
        Seed of the subject split and of training.
    progress : bool or None
    rows : list of str, optional
        The ablation rows to train and score (default: every row of
        :data:`~irtrepro.breathing.train.ABLATION`).
    overrides : dict, optional
        Fields of :class:`~irtrepro.breathing.train.BreathConfig` set on every row (e.g.
        ``epochs``).

    Returns
    -------
    ReportPart
        Tables ``ablation`` (every row on the held-out subjects) and ``rr_error`` (camera RF by
        the signal baseline against the truth from the frame labels and against the cart),
        figure ``rf_agreement``, ``study_vars`` with ``rf_irt`` / ``ie_ratio`` on (subject,
        session, time).
    """
    from irtrepro._threads import torch_threads
    from irtrepro.breathing.data import manifest_images
    from irtrepro.breathing.evaluate import (
        baseline_labels,
        rate_agreement,
        run_ablation,
        window_mean,
    )
    from irtrepro.breathing.rates import WINDOW_S, session_rates, study_variables
    from irtrepro.breathing.train import ABLATION, BreathModel
    from irtrepro.errors import OptionError
    from irtrepro.plots.agreement import method_comparison
    from irtrepro.splits import subject_split
    from irtrepro.stats import bland_altman

    torch_threads()
    part = ReportPart(name="breathing", title="Breathing phase and respiratory rate from face "
                      "thermography")
    t0 = time.perf_counter()
    data, frames = manifest_images(manifest, progress=progress)
    part.notes.extend(data.notes)
    part.timings["read_faces"] = time.perf_counter() - t0
    labels_by = _labels(manifest, frames)
    if len(data) == 0 or (data.labels >= 0).sum() == 0:
        part.notes.append("no labelled face sessions in the manifest: breathing part skipped")
        return part
    train_subs, test_subs = subject_split(data.meta["subject"], n_test=0.3, seed=seed)
    is_test = data.meta["subject"].isin(test_subs).to_numpy()
    train_set = data.subset(~is_test & (data.labels >= 0))
    test_set = data.subset(is_test & (data.labels >= 0))
    part.notes.append(f"held-out subjects: {', '.join(test_subs)}; training subjects: "
                      f"{', '.join(train_subs)}")
    unknown = sorted(set(rows or ()) - set(ABLATION))
    if unknown:
        raise OptionError(f"breathing rows {unknown}: not ablation rows; rows: {list(ABLATION)}")
    configs = {k: replace(v, seed=seed, **(overrides or {})) for k, v in ABLATION.items()
               if rows is None or k in rows}
    cache = Cache(cache_dir)
    data_id = (train_set.images, train_set.labels, list(train_set.meta["subject"].astype(str)))
    keys = {name: cache_key(settings=asdict(cfg), data=data_id, source=MODEL_SOURCE)
            for name, cfg in configs.items()}
    models = {}
    for name in configs:
        model, found = cache.load("breathing", keys[name], load=BreathModel.load)
        if found:
            models[name] = model
    t1 = time.perf_counter()
    baseline = baseline_labels(frames, labels_by, test_subs)
    table, models_new = run_ablation(train_set, test_set, rows=configs, baseline=baseline,
                                     progress=progress, models=models)
    for name in configs:
        if name not in models:
            cache.save("breathing", keys[name], models_new[name],
                       save=lambda m, path: m.save(path))
    part.timings["ablation"] = time.perf_counter() - t1
    part.tables["ablation"] = (table, ABLATION_CAPTION)
    # respiratory rate, every session (the baseline has no training data)
    t2 = time.perf_counter()
    full = models_new.get("full method")
    per_session, rr_rows = {}, []
    entries = {(e.subject, e.session): e for e in manifest.sessions}
    for (s, j), da in frames.items():
        df = session_rates(da, labels_by.get((s, j)), model=full)
        cart = cart_rf(entries[(s, j)]) if (s, j) in entries else None
        df["rf_cart"] = (window_mean(cart["time"], cart["rf"], df["time"], WINDOW_S / 2)
                         if cart is not None else np.nan)
        per_session[(s, j)] = df
        rr_rows.append(df.assign(subject=s, session=j))
    rr = pd.concat(rr_rows, ignore_index=True)
    part.timings["rates"] = time.perf_counter() - t2
    n_nan = int(rr["rf_irt"].isna().sum())
    part.tables["rr_error"] = (rate_agreement(rr, test_subs), (
        f"Camera respiratory rate (signal baseline, {WINDOW_S:g} s windows, 1 s step) against "
        "the truth (breaths from the frame labels, mean over the window) and the cart's "
        "breath-by-breath RF (mean over the window), breaths/min. All clips are running "
        f"phases. Windows overlap and repeat within subjects, so LoA are descriptive. "
        f"{n_nan} windows NaN (reasons in the data)."))
    ref = "rf_cart" if rr["rf_cart"].notna().any() else "rf_true"
    ok = rr["rf_irt"].notna() & rr[ref].notna()
    if ok.sum() >= 3:
        who = "cart" if ref == "rf_cart" else "true"
        ba = bland_altman(rr.loc[ok, "rf_irt"].to_numpy(), rr.loc[ok, ref].to_numpy())
        part.figures["rf_agreement"] = (
            method_comparison(ba, units="min$^{-1}$", measure="RF", x_name="camera",
                              y_name=who),
            f"Camera RF against the {who} RF, one dot per {WINDOW_S:g} s window; Bland-Altman "
            f"bias {ba.bias:.2f}, LoA {ba.loa_low:.2f} to {ba.loa_high:.2f} min-1 "
            "(irtrepro.stats.bland_altman).")
    else:
        part.notes.append("breathing: fewer than 3 windows with both a camera and a reference "
                          "rate; no agreement figure")
    part.study_vars = study_variables(per_session)
    part.timings["total"] = time.perf_counter() - t0
    logger.info("breathing: ablation\n%s", table.to_string())
    return part
