"""Synthetic physiology with planted answers: subjects, sessions, 1 Hz truth, breaths.

The model is deliberately simple and documented, so the planted answers are known:

* **Cardiopulmonary**: VO2 demand from the ACSM running equation (3.5 + 0.2 * speed in m/min,
  mL/kg/min), capped near VO2max, with a slow component above vIAT; VO2, HR, VCO2, VE follow
  first-order kinetics toward their demand (time constants per subject) plus a slow drift.
  RF and VT split VE. TCORE integrates heat production (proportional to VO2) minus a loss that
  grows with TCORE.
* **Skin temperature** (per side): non-vessel skin TNV drops at exercise onset by a
  subject-specific amount that is planted to correlate with vIAT at ``delta_tnv_viat_r`` *exactly
  in the sample* (Gram-Schmidt on the subject draws), then rises with TCORE; veins TV are warmer
  than TNV and rise with TCORE; perforators TP are coupled inversely to relative HR, so
  within-subject TP-HR correlations sit around ``tp_hr_r``; the perforator region's spatial SD
  rises with TCORE, so TP entropy follows TCORE in the warm-up.
* **Reliability**: every skin metric carries a subject offset (SD ``between_subject_sd``), a day
  offset (``between_day_sd``) and a session offset (``session_sd``); the planted ICC of a
  baseline level is ``s_b^2 / (s_b^2 + s_d^2 + s_s^2)``.

The stored ``ds.attrs["truth"]`` (JSON) lists every planted answer and the sample values
realised on the truth trajectories.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
import xarray as xr

from irtrepro.protocols import Protocol, default_protocols

SIDES = ("left", "right")
SKIN_METRICS = ("tnv", "tp", "tv")
# Phases in which the TP-HR coupling is planted and analysed (reference study: intervals and
# recovery); the coupling itself acts all session long.
COUPLING_PHASES = ("intervals", "recovery")


@dataclass
class SynthConfig:
    """Settings of the synthetic study; every size is configurable.

    Attributes
    ----------
    n_subjects : int
        Number of runners (reference study: 11).
    sessions : tuple of (session id, protocol name, day)
        Sessions per subject; the default puts CON on day 1 and SI, IS on day 2.
    seed : int
        Seed of the whole study; the output is bit-for-bit reproducible from it.
    dt : float
        Step of the truth grid (s).
    viat_range : (float, float)
        Uniform range of vIAT (km/h).
    delta_tnv_viat_r : float
        Planted sample correlation between vIAT and the subject's TNV drop parameter.
    tp_hr_r : float
        Target within-subject correlation of TP with HR (coupling vs noise).
    between_subject_sd, between_day_sd, session_sd : dict
        SD (degC) of subject, day and session offsets per skin metric.
    cart_dropout, hr_dropout_per_hour : float
        Fraction of breaths lost by the cart; HR strap dropouts per hour (each 5-30 s).
    """

    n_subjects: int = 11
    sessions: tuple[tuple[str, str, int], ...] = (("CON", "CON", 1), ("SI", "SI", 2),
                                                  ("IS", "IS", 2))
    seed: int = 20261125
    dt: float = 1.0
    viat_range: tuple[float, float] = (13.0, 18.0)
    delta_tnv_viat_r: float = -0.82
    tp_hr_r: float = -0.78
    # TNV offsets; TP and TV are TNV plus a vessel contrast with offsets of its own
    between_subject_sd: dict = field(default_factory=lambda: {"tnv": 1.0, "tp": 0.4, "tv": 0.4})
    between_day_sd: dict = field(default_factory=lambda: {"tnv": 0.25, "tp": 0.15, "tv": 0.15})
    session_sd: dict = field(default_factory=lambda: {"tnv": 0.25, "tp": 0.2, "tv": 0.2})
    cart_dropout: float = 0.02
    hr_dropout_per_hour: float = 4.0
    protocols: dict[str, Protocol] | None = None

    def protocol(self, name: str) -> Protocol:
        protos = self.protocols or default_protocols()
        return protos[name]

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("protocols")
        d["sessions"] = [list(s) for s in self.sessions]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> SynthConfig:
        d = dict(d)
        if "sessions" in d:
            d["sessions"] = tuple(tuple(s) for s in d["sessions"])
        for k in ("viat_range",):
            if k in d:
                d[k] = tuple(d[k])
        return cls(**d)

    def planted_icc(self) -> dict[str, float]:
        """Population ICC of each metric's baseline level across sessions.

        TNV's level has subject, day and session offsets; TP and TV add a vessel contrast with
        independent offsets of their own, so their variances add.
        """
        out = {}
        for m in SKIN_METRICS:
            parts = ("tnv",) if m == "tnv" else ("tnv", m)
            b = sum(self.between_subject_sd[p] ** 2 for p in parts)
            d = sum(self.between_day_sd[p] ** 2 for p in parts)
            s = sum(self.session_sd[p] ** 2 for p in parts)
            out[m] = b / (b + d + s)
        return out


def _planted_correlate(x: np.ndarray, r: float, rng: np.random.Generator) -> np.ndarray:
    """Standardised values whose *sample* Pearson correlation with ``x`` is exactly ``r``."""
    if len(x) < 3 or x.std() == 0:  # a correlation needs 3 distinct points; nothing to plant
        return rng.standard_normal(len(x))
    zx = (x - x.mean()) / x.std()
    e = rng.standard_normal(len(x))
    e = e - e.mean()
    # exactly rounded sums instead of a BLAS dot, whose CPU-specific kernel changes last bits
    e = e - math.fsum(e * zx) / math.fsum(zx * zx) * zx  # orthogonal to x in the sample
    e /= e.std()
    return r * zx + np.sqrt(1 - r**2) * e


def _first_order(target: np.ndarray, tau: float, dt: float, y0: float) -> np.ndarray:
    """Exact discretisation of dy/dt = (target - y) / tau for piecewise-constant target."""
    a = np.exp(-dt / tau)
    y = np.empty_like(target)
    prev = y0
    # A scan over time; 2760 steps per session, cheap. scipy.signal.lfilter would do the same.
    from scipy.signal import lfilter

    y = lfilter([1 - a], [1, -a], target, zi=[a * prev])[0]
    return y


def _ar1(rng: np.random.Generator, n: int, sd: float, tau: float, dt: float) -> np.ndarray:
    """Stationary AR(1) noise with marginal SD ``sd`` and correlation time ``tau`` (s)."""
    from scipy.signal import lfilter

    a = np.exp(-dt / tau)
    e = rng.standard_normal(n) * sd * np.sqrt(1 - a**2)
    return lfilter([1.0], [1.0, -a], e, zi=[a * rng.standard_normal() * sd])[0]


def _subjects(cfg: SynthConfig, rng: np.random.Generator) -> pd.DataFrame:
    n = cfg.n_subjects
    ids = [f"S{i + 1:02d}" for i in range(n)]
    viat = np.round(rng.uniform(*cfg.viat_range, n), 1)
    sex = rng.choice(["M", "F"], n, p=[0.7, 0.3])
    body_mass = np.round(np.where(sex == "M", rng.normal(70, 6, n), rng.normal(58, 5, n)), 1)
    age = rng.integers(20, 45, n)
    # vIAT sits at about 80-85 % of VO2max in trained runners (ACSM cost of running at vIAT).
    vo2max_rel = (3.5 + 0.2 * viat * 1000 / 60) / rng.uniform(0.8, 0.86, n)
    zdrop = _planted_correlate(viat, cfg.delta_tnv_viat_r, rng)
    return pd.DataFrame({
        "subject": ids, "viat": viat, "sex": sex, "age": age, "body_mass": body_mass,
        "vo2max": np.round(vo2max_rel * body_mass, 0),
        "hr_rest": rng.normal(55, 5, n), "hr_max": rng.normal(190, 6, n),
        "tau_vo2": rng.uniform(25, 40, n), "tau_hr": rng.uniform(35, 60, n),
        "tcore0": rng.normal(37.0, 0.15, n),
        # TNV drop at exercise onset (degC, positive = fall), planted against vIAT
        "tnv_drop": 1.6 - 0.5 * zdrop,
        "tnv_heat_gain": rng.uniform(0.35, 0.6, n),     # degC TNV per degC TCORE rise
        "tp_hr_gain": rng.uniform(2.2, 3.2, n),          # degC TP per unit relative HR
        "tp_sd0": rng.uniform(0.28, 0.38, n),            # spatial SD of perforator pixels
        "cadence0": rng.normal(166, 5, n),               # steps/min at 12 km/h
        "side_offset": rng.normal(0, 0.15, n),           # right minus left (degC)
        "vein_area_fraction": rng.uniform(0.07, 0.12, n),
        "perforator_area_fraction": rng.uniform(0.015, 0.03, n),
    })


def _entropy_normal(sd: np.ndarray, bin_width: float = 0.1) -> np.ndarray:
    """Shannon entropy (bits) of a normal distribution with ``sd`` binned at ``bin_width``."""
    return np.log2(np.asarray(sd) * np.sqrt(2 * np.pi * np.e) / bin_width)


def _session(sub: pd.Series, proto: Protocol, offsets: dict, rng: np.random.Generator,
             cfg: SynthConfig, t: np.ndarray) -> dict[str, np.ndarray]:
    dt = cfg.dt
    n = len(t)
    speed = proto.speed(t, sub.viat)
    speed = np.where(np.isnan(speed), 0.0, speed)
    frac = speed / sub.viat
    m_per_min = speed * 1000 / 60
    vo2max = sub.vo2max
    demand = (3.5 + 0.2 * m_per_min) * sub.body_mass
    # slow component above vIAT: extra demand that builds with time spent above threshold
    above = np.clip(frac - 1.0, 0, None)
    slow = np.cumsum(above) * dt * 0.9 * sub.body_mass / 60.0
    slow = slow * np.exp(-np.cumsum(above == 0) * dt / 600.0)
    demand = np.minimum(demand + slow, 0.98 * vo2max)
    drift = 1 + 0.0015 * t / 60.0  # cardiovascular drift, +1.5 % per 10 min
    vo2 = _first_order(demand * drift * (1 + offsets["vo2"]), sub.tau_vo2, dt, 0.22 * vo2max)
    rel = vo2 / vo2max
    hr_demand = sub.hr_rest + (sub.hr_max - sub.hr_rest) * np.clip(1.05 * rel - 0.02, 0, 1)
    hr = _first_order(hr_demand * (1 + 0.002 * t / 60.0) + offsets["hr"], sub.tau_hr, dt,
                      sub.hr_rest + 25)
    rer_demand = 0.82 + 0.17 * np.clip(frac - 0.6, 0, None) / 0.6
    rer = _first_order(rer_demand, 60.0, dt, 0.85)
    vco2 = vo2 * rer
    ve_vco2 = 27.0 + 6.0 * np.clip(frac - 1.0, 0, None) / 0.2
    ve = _first_order(vco2 * ve_vco2 / 1000.0, 45.0, dt, 20.0)
    rf = 18.0 + 26.0 * np.clip(rel - 0.2, 0, None) / 0.8 + _ar1(rng, n, 1.0, 20.0, dt)
    vt = ve / rf
    # Core temperature: heat production ~ 80 % of metabolic rate (1 L O2 ~ 20.1 kJ),
    # loss proportional to the rise above baseline; heat capacity 3.47 kJ/kg/K.
    heat_w = 0.8 * vo2 / 1000 * 20100 / 60
    cap = 3470 * sub.body_mass
    k_loss = heat_w.mean() / 1.3  # W per K: equilibrium rise about 1.3 K at mean load
    # explicit Euler of d(rise)/dt = (heat - k * rise) / cap, as a linear recursion
    from scipy.signal import lfilter

    tcore0 = sub.tcore0 + offsets["tcore"]
    tcore = tcore0 + lfilter([0.0, dt / cap], [1.0, -(1 - dt * k_loss / cap)], heat_w)
    cadence = sub.cadence0 + 2.2 * (speed - 12.0)

    # ---- skin temperatures ----
    onset = 1 - np.exp(-t / 150.0)
    dtc = tcore - tcore0  # rise of core temperature since exercise onset
    base = 31.8 + offsets["tnv"]
    t_rec = proto.phase_bounds().get("recovery", (np.inf, np.inf))[0]
    recovery = np.where(t >= t_rec, 1 - np.exp(-(t - t_rec) / 90.0), 0.0)
    tnv = (base - sub.tnv_drop * onset + sub.tnv_heat_gain * dtc + 0.6 * recovery
           + _ar1(rng, n, 0.04, 60.0, dt))
    tv = (tnv + 1.2 + offsets["tv"] + 0.5 * dtc + 0.3 * recovery
          + _ar1(rng, n, 0.05, 60.0, dt))
    hrel = (hr - sub.hr_rest) / (sub.hr_max - sub.hr_rest)
    # TP follows skin warming but is coupled inversely to relative HR (vasoconstriction of
    # cutaneous arterial perforators under sympathetic drive). The noise SD is set from the
    # coupling amplitude so the within-phase correlation with HR is near cfg.tp_hr_r.
    coupling = -sub.tp_hr_gain * hrel
    r = abs(cfg.tp_hr_r)
    # SD of the coupling term (the HR swing) in the coupling phases of this session
    in_c = np.isin(proto.phase(t), COUPLING_PHASES)
    ref = coupling[in_c] if in_c.sum() > 30 else coupling
    noise_sd = float(np.std(ref) * np.sqrt(1 - r**2) / r)
    # centred so TP sits 0.6 degC above TNV at a typical running load (relative HR 0.75)
    tp = (tnv + 0.6 + offsets["tp"] + coupling + 0.75 * sub.tp_hr_gain
          + _ar1(rng, n, max(noise_sd, 0.02), 8.0, dt))
    tp_sd = sub.tp_sd0 * (1 + 0.35 * dtc)  # perforator pixels spread more as heat builds
    tnv_sd = np.full(n, 0.35) + 0.05 * dtc
    tv_sd = np.full(n, 0.30) + 0.05 * dtc
    out = dict(speed=speed, hr=hr, vo2=vo2, vco2=vco2, ve=ve, rf=rf, vt=vt, rer=rer,
               tcore=tcore, cadence=cadence)
    half = sub.side_offset / 2
    for name, v in (("tnv", tnv), ("tp", tp), ("tv", tv)):
        out[name] = np.stack([v - half, v + half], axis=-1)
    for name, v in (("tnv_sd", tnv_sd), ("tp_sd", tp_sd), ("tv_sd", tv_sd)):
        out[name] = np.stack([v, v], axis=-1)
    fv, fp = sub.vein_area_fraction, sub.perforator_area_fraction
    out["tsk_mean"] = (1 - fv - fp) * out["tnv"] + fv * out["tv"] + fp * out["tp"]
    out["tp_entropy"] = _entropy_normal(out["tp_sd"])
    out["tnv_entropy"] = _entropy_normal(out["tnv_sd"])
    return out


_ATTRS = {
    "speed": ("km h-1", "treadmill speed"),
    "hr": ("min-1", "heart rate"),
    "vo2": ("mL min-1", "oxygen uptake"),
    "vco2": ("mL min-1", "carbon dioxide output"),
    "ve": ("L min-1", "minute ventilation"),
    "rf": ("min-1", "breathing frequency"),
    "vt": ("L", "tidal volume"),
    "rer": ("1", "respiratory exchange ratio"),
    "tcore": ("degC", "core body temperature"),
    "cadence": ("min-1", "step cadence (steps per minute)"),
    "tnv": ("degC", "mean skin temperature of non-vessel calf skin"),
    "tp": ("degC", "mean skin temperature over cutaneous arterial perforators"),
    "tv": ("degC", "mean skin temperature over superficial veins"),
    "tsk_mean": ("degC", "mean calf skin temperature"),
    "tnv_sd": ("degC", "spatial SD of non-vessel calf skin temperature"),
    "tp_sd": ("degC", "spatial SD of perforator skin temperature"),
    "tv_sd": ("degC", "spatial SD of vein skin temperature"),
    "tp_entropy": ("bit", "Shannon entropy of perforator temperatures (0.1 degC bins)"),
    "tnv_entropy": ("bit", "Shannon entropy of non-vessel skin temperatures (0.1 degC bins)"),
    "viat": ("km h-1", "speed at the individual anaerobic threshold"),
    "vo2max": ("mL min-1", "maximal oxygen uptake"),
    "body_mass": ("kg", "body mass"),
    "age": ("year", "age"),
    "sex": ("1", "sex (M/F)"),
    "phase": ("1", "protocol phase"),
    "protocol": ("1", "running protocol"),
    "day": ("1", "test day"),
    "vein_area_fraction": ("1", "fraction of calf area covered by superficial veins"),
    "perforator_area_fraction": ("1", "fraction of calf area covered by perforator spots"),
}


def simulate_study(config: SynthConfig | None = None) -> xr.Dataset:
    """Simulate the truth of a whole study on the 1 Hz session clock.

    Parameters
    ----------
    config : SynthConfig, optional
        Sizes, seed and planted effects; defaults reproduce the reference design (11 runners,
        CON on day 1, SI and IS on day 2).

    Returns
    -------
    xarray.Dataset
        The truth contract of :mod:`irtrepro.synth` (dims subject, session, time, side) with
        ``attrs["truth"]`` a JSON string of planted and realised answers.

    Examples
    --------
    >>> from irtrepro.synth.physiology import SynthConfig, simulate_study
    >>> ds = simulate_study(SynthConfig(n_subjects=3, seed=1))
    >>> dict(ds.sizes)
    {'subject': 3, 'session': 3, 'time': 2760, 'side': 2}
    """
    cfg = config or SynthConfig()
    rng = np.random.default_rng(cfg.seed)
    subjects = _subjects(cfg, rng)
    protos = {s: cfg.protocol(p) for s, p, _ in cfg.sessions}
    duration = max(p.duration_s for p in protos.values())
    t = np.arange(0, duration, cfg.dt)
    days = sorted({d for _, _, d in cfg.sessions})
    ts_names = ["speed", "hr", "vo2", "vco2", "ve", "rf", "vt", "rer", "tcore", "cadence"]
    side_names = ["tnv", "tp", "tv", "tsk_mean", "tnv_sd", "tp_sd", "tv_sd",
                  "tp_entropy", "tnv_entropy"]
    ns, nj, nt = len(subjects), len(cfg.sessions), len(t)
    data = {k: np.full((ns, nj, nt), np.nan) for k in ts_names}
    data.update({k: np.full((ns, nj, nt, 2), np.nan) for k in side_names})
    phase = np.full((ns, nj, nt), "", dtype=object)
    for i, sub in subjects.iterrows():
        # TNV offsets for the skin level; TP/TV offsets for their contrast above TNV
        sub_off = {m: rng.normal(0, cfg.between_subject_sd[m]) for m in SKIN_METRICS}
        day_off = {d: {m: rng.normal(0, cfg.between_day_sd[m]) for m in SKIN_METRICS}
                   | {"hr": rng.normal(0, 3.0), "vo2": rng.normal(0, 0.03),
                      "tcore": rng.normal(0, 0.12)} for d in days}
        for j, (sid, _pname, day) in enumerate(cfg.sessions):
            proto = protos[sid]
            offsets = {m: sub_off[m] + day_off[day][m] + rng.normal(0, cfg.session_sd[m])
                       for m in SKIN_METRICS}
            # day-to-day and session-to-session variation of the cardiopulmonary response
            offsets["hr"] = day_off[day]["hr"] + rng.normal(0, 2.0)      # min-1
            offsets["vo2"] = day_off[day]["vo2"] + rng.normal(0, 0.02)   # relative
            offsets["tcore"] = day_off[day]["tcore"] + rng.normal(0, 0.06)  # degC
            srng = np.random.default_rng([cfg.seed, i, j])
            inside = t < proto.duration_s
            res = _session(sub, proto, offsets, srng, cfg, t[inside])
            for k, v in res.items():
                data[k][i, j, inside] = v
            phase[i, j, inside] = proto.phase(t[inside])
    ds = xr.Dataset(coords={"subject": subjects.subject.to_numpy().astype(str),
                            "session": np.array([s for s, _, _ in cfg.sessions]),
                            "time": t, "side": list(SIDES)})
    for k in ts_names:
        ds[k] = (("subject", "session", "time"), data[k])
    for k in side_names:
        ds[k] = (("subject", "session", "time", "side"), data[k])
    ds["phase"] = (("subject", "session", "time"), phase.astype(str))
    for k in ("viat", "vo2max", "body_mass", "age", "sex", "vein_area_fraction",
              "perforator_area_fraction"):
        ds[k] = ("subject", subjects[k].to_numpy())
    ds["protocol"] = ("session", np.array([p for _, p, _ in cfg.sessions]))
    ds["day"] = ("session", np.array([d for _, _, d in cfg.sessions]))
    ds["time"].attrs = {"units": "s", "long_name": "time since exercise start"}
    for k, (units, long_name) in _ATTRS.items():
        if k in ds:
            ds[k].attrs = {"units": units, "long_name": long_name}
    ds.attrs["title"] = "irtrepro synthetic study truth"
    ds.attrs["synth_config"] = json.dumps(cfg.to_dict(), sort_keys=True)
    ds.attrs["truth"] = json.dumps(planted_truth(ds, cfg), sort_keys=True)
    return ds


def planted_truth(ds: xr.Dataset, cfg: SynthConfig) -> dict:
    """The planted answers, and the values they take on these truth trajectories."""
    from irtrepro.summaries import delta_tnv

    dtnv = delta_tnv(ds["tnv"].mean("side")).mean("session")
    r_dtnv = float(np.corrcoef(dtnv.values, ds["viat"].values)[0, 1])
    # realised within-subject correlations, vectorised over (subject, session)
    tp = ds.tp.mean("side").values
    phase = ds.phase.values
    rs = _rowwise_r(tp, ds.hr.values, np.isin(phase, COUPLING_PHASES))
    rs = rs[np.isfinite(rs)]
    r_ent = _rowwise_r(ds.tp_entropy.mean("side").values, ds.tcore.values, phase == "warmup")
    return {
        "icc_baseline": cfg.planted_icc(),
        "delta_tnv_viat_r_planted": cfg.delta_tnv_viat_r,
        "delta_tnv_viat_r_truth": r_dtnv,
        "tp_hr_r_target": cfg.tp_hr_r,
        "tp_hr_r_within_truth_median": float(np.median(rs)) if rs.size else None,
        "tp_hr_r_within_truth_range": [float(np.min(rs)), float(np.max(rs))] if rs.size else None,
        "tp_entropy_tcore_warmup_r_truth_median": float(np.nanmedian(r_ent)),
        "coupling_phases": list(COUPLING_PHASES),
        "between_subject_sd": cfg.between_subject_sd,
        "between_day_sd": cfg.between_day_sd,
        "session_sd": cfg.session_sd,
    }


def _rowwise_r(x: np.ndarray, y: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Pearson r along the last axis over ``mask`` (NaN where fewer than 30 points)."""
    m = mask & np.isfinite(x) & np.isfinite(y)
    n = m.sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mx = np.where(m, x, 0).sum(-1) / n
        my = np.where(m, y, 0).sum(-1) / n
        dx = np.where(m, x - mx[..., None], 0)
        dy = np.where(m, y - my[..., None], 0)
        r = (dx * dy).sum(-1) / np.sqrt((dx**2).sum(-1) * (dy**2).sum(-1))
    return np.where(n >= 30, r, np.nan).ravel()


def simulate_breaths(truth_session: xr.Dataset, rng: np.random.Generator | int) -> pd.DataFrame:
    """Breath-by-breath table of one session from its 1 Hz truth.

    Each breath lasts ``60 / rf`` s (with 6 % breath-to-breath variability); inspiration takes
    about 42 % of it. Per-breath gas exchange is the truth at the breath's midpoint with
    breath-to-breath noise (VO2 5 %, VT 8 %), the noise a cart shows.

    Parameters
    ----------
    truth_session : xarray.Dataset
        One subject and session of :func:`simulate_study` (dim ``time``).
    rng : numpy.random.Generator or int
        Randomness (seed).

    Returns
    -------
    pandas.DataFrame
        ``t_start``, ``t_insp_end``, ``t_end`` (s), ``vt`` (L), ``vo2``, ``vco2`` (mL/min),
        ``ve`` (L/min), ``rf`` (min-1), ``hr`` (min-1), one row per breath.
    """
    rng = np.random.default_rng(rng)
    ts = truth_session
    t = ts.time.values
    valid = np.isfinite(ts.rf.values)
    t_end_all = t[valid][-1] if valid.any() else 0.0
    rf_t = ts.rf.values
    starts, ends = [], []
    tt = float(rng.uniform(0, 2))
    while tt < t_end_all:
        rf = np.interp(tt, t[valid], rf_t[valid])
        period = 60.0 / rf * (1 + 0.06 * rng.standard_normal())
        period = float(np.clip(period, 0.6, 10))
        starts.append(tt)
        ends.append(tt + period)
        tt += period
    starts, ends = np.array(starts), np.array(ends)
    mid = (starts + ends) / 2
    dur = ends - starts
    ti = dur * np.clip(0.42 + 0.03 * rng.standard_normal(len(dur)), 0.3, 0.55)

    def at(name):
        return np.interp(mid, t[valid], ts[name].values[valid])

    vt = at("vt") * (1 + 0.08 * rng.standard_normal(len(mid)))
    rf_b = 60.0 / dur
    df = pd.DataFrame({
        "t_start": starts, "t_insp_end": starts + ti, "t_end": ends,
        "vt": vt,
        "vo2": at("vo2") * (1 + 0.05 * rng.standard_normal(len(mid))),
        "vco2": at("vco2") * (1 + 0.05 * rng.standard_normal(len(mid))),
        "ve": vt * rf_b, "rf": rf_b,
        "hr": at("hr") + rng.normal(0, 1.0, len(mid)),
    })
    df.attrs["subject"] = str(ts.subject.values) if "subject" in ts.coords else None
    return df
