"""Running cadence from a keypoint model on thermal clips, and as a Study variable."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import xarray as xr

__all__ = ["cadence_study_variables", "clip_cadence"]


def clip_cadence(model, thermal: np.ndarray, fps: float, cfg, *,
                 truth: np.ndarray | None = None) -> dict:
    """Cadence of one clip from the model's ankle trajectories.

    Parameters
    ----------
    model
        A trained keypoint model (:func:`irtrepro.keypoints.train.run_experiment`).
    thermal : ndarray (frame, y, x)
        The clip's thermal frames.
    fps : float
        Frame rate (Hz).
    cfg : KeypointConfig
        The model's settings.
    truth : ndarray (frame, 17, 3), optional
        Ground-truth keypoints of the same frames (visibility 0 = unlabelled); their cadence
        is given beside the model's.

    Returns
    -------
    dict
        ``n_frames``, ``frames_with_person``, ``cadence`` (steps/min), ``cadence_truth_keypoints``
        (NaN without a truth of the same length), ``periodicity``, ``reason``.
    """
    from irtrepro.keypoints.gait import cadence_from_ankles
    from irtrepro.keypoints.train import predict_frames

    pred = predict_frames(model, thermal, cfg, all_people=False)
    kp = np.full((len(pred), 17, 3), np.nan)
    for i, people in enumerate(pred):
        if people:
            kp[i] = people[0]["keypoints"]
    est = cadence_from_ankles(kp, fps)
    t_true = np.nan
    if truth is not None and len(truth) == len(kp):
        kk = np.where(truth[..., 2:3] > 0, truth, np.nan)
        t_true = cadence_from_ankles(kk, fps)["cadence"]
    return {"n_frames": len(kp), "frames_with_person": int(sum(bool(p) for p in pred)),
            "cadence": est["cadence"], "cadence_truth_keypoints": t_true,
            "periodicity": est["periodicity"], "reason": est["reason"]}


def cadence_study_variables(cadence: pd.DataFrame, subjects: Sequence[str],
                            sessions: Sequence[str]) -> xr.Dataset:
    """``cadence`` (steps/min) on (subject, session, time), NaN where no clip covers a second.

    Parameters
    ----------
    cadence : pandas.DataFrame
        One row per clip: ``subject``, ``session``, ``t_start``, ``t_end`` (s on the session
        clock), ``cadence``.
    subjects, sessions : sequence of str
        The Study's coordinates.
    """
    subjects, sessions = list(subjects), list(sessions)
    times = np.unique(np.concatenate([np.arange(np.floor(r.t_start), np.floor(r.t_end) + 1)
                                      for r in cadence.itertuples()]))
    arr = np.full((len(subjects), len(sessions), len(times)), np.nan)
    for r in cadence.itertuples():
        sel = (times >= np.floor(r.t_start)) & (times <= np.floor(r.t_end))
        arr[subjects.index(r.subject), sessions.index(r.session), sel] = r.cadence
    return xr.Dataset(
        {"cadence": (("subject", "session", "time"), arr,
                     {"units": "min-1", "long_name": "running cadence (steps/min) from "
                      "thermal keypoints",
                      "missing": "NaN where no pose clip covers the time or no "
                                 "periodic ankle motion was found"})},
        coords={"subject": subjects, "session": sessions, "time": times})
