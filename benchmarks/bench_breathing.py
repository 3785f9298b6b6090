"""Breathing benchmark: ablation table on held-out synthetic subjects and camera RR errors.

Prints the table (no assertions) on the physiology truth.
``python benchmarks/bench_breathing.py [n_subjects] [--validation]``; ``--validation`` also scores
every row on validation subjects drawn from the training subjects only (two inner splits,
:func:`irtrepro.breathing.evaluate.validate_ablation`), where settings are to be chosen.
"""

from __future__ import annotations

import sys
import time

import numpy as np
import pandas as pd


def main(n_subjects: int = 6, validation: bool = False) -> None:
    import torch

    torch.set_num_threads(1)
    from irtrepro.breathing.data import ImageSet, session_images
    from irtrepro.breathing.evaluate import run_ablation, validate_ablation
    from irtrepro.breathing.signal import signal_baseline
    from irtrepro.splits import subject_split
    from irtrepro.synth.face import render_face_session
    from irtrepro.synth.physiology import SynthConfig, simulate_breaths, simulate_study

    st = simulate_study(SynthConfig(n_subjects=n_subjects, seed=1))
    sets, base, rr = [], [], []
    train_subs, test_subs = subject_split(st.subject.values, n_test=0.3, seed=0)
    for s in st.subject.values:
        for j in st.session.values:
            tr = st.sel(subject=s, session=j)
            ds = render_face_session(tr, simulate_breaths(tr, 0), seed=0)
            sets.append(session_images(ds, subject=s, session=j))
            t0 = time.perf_counter()
            fdf, rates = signal_baseline(ds)
            per = (time.perf_counter() - t0) / len(fdf)
            t = ds["time"].values
            truth = np.array([ds["rf"].values[(np.abs(t - c) <= 6)
                                              & (ds["clip_index"].values == g)].mean()
                              for c, g in zip(rates["time"], rates["segment"], strict=True)])
            rr.append(pd.DataFrame({"subject": s, "err": rates["rf"] - truth,
                                    "err_periodogram": rates["rf_periodogram"] - truth}))
            if s in test_subs:
                base.append(fdf.assign(label=ds["label"].values, hard=ds["hard"].values,
                                       seconds_per_image=per))
    data = ImageSet.concat(sets)
    test = data.meta["subject"].isin(test_subs).to_numpy()
    t0 = time.perf_counter()
    table, _ = run_ablation(data.subset(~test), data.subset(test),
                            baseline=pd.concat(base, ignore_index=True))
    pd.set_option("display.width", 200)
    print(f"held-out subjects {test_subs}; {int((~test).sum())} train / {int(test.sum())} test "
          f"frames; ablation wall time {time.perf_counter() - t0:.0f} s")
    print(table.round(3).to_string(index=False))
    if validation:
        t0 = time.perf_counter()
        val = validate_ablation(data.subset(~test))
        print(f"validation on training subjects only ({time.perf_counter() - t0:.0f} s)")
        print(val.round(3)[["fold", "validation_subjects", "method", "accuracy", "f1", "fp",
                            "fn", "train_s"]].to_string(index=False))
    rr = pd.concat(rr, ignore_index=True)
    print(f"RR MAE vs truth (all sessions, running): {rr['err'].abs().mean():.2f} min-1 "
          f"(periodogram only {rr['err_periodogram'].abs().mean():.2f}), n={rr['err'].notna().sum()}"
          f" windows, NaN {rr['err'].isna().sum()}")


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--validation"]
    main(int(args[0]) if args else 6, validation="--validation" in sys.argv[1:])
