"""Synthetic study with planted, known answers.

The generator is the embedded default study and the ground truth of the tests. It writes real
export formats to disk; the readers read them back through the same code as real data.

Parts
-----
- :mod:`irtrepro.synth.physiology`: subject traits, protocols, cardiopulmonary and thermal truth
  on a 1 Hz session clock, breath-by-breath table.
- :mod:`irtrepro.synth.thermogram`: calf thermograms + ground-truth masks from the truth.
- :mod:`irtrepro.synth.face`: face thermograms with INH/EXH labels from the breath table.
- :mod:`irtrepro.synth.pose`: articulated people with 17 COCO keypoints, thermal + RGB frames.
- :mod:`irtrepro.synth.study`: writes everything to disk and the manifest.
- :mod:`irtrepro.synth.annotations`: LabelMe, COCO and PNG label-map files traced from
  ground-truth masks, as a lab's annotation tool would write them.

Truth contract (``simulate_study(config)`` -> :class:`xarray.Dataset`)
--------------------------------------------------------------------------
dims ``subject`` (``"S01"``...), ``session`` (``"CON"``, ``"SI"``, ``"IS"``), ``time`` (s since
exercise start, 1 Hz), ``side`` (``"left"``, ``"right"``).

- per subject: ``viat`` (km/h), ``vo2max`` (mL/min), ``age``, ``sex``, ``body_mass`` (kg)
- per session: ``protocol``, ``day``
- time series: ``speed`` (km/h), ``phase`` (str), ``hr`` (min-1), ``vo2``, ``vco2`` (mL/min),
  ``ve`` (L/min), ``rf`` (min-1), ``vt`` (L), ``rer``, ``tcore`` (degC), ``cadence`` (steps/min)
- thermal truth with ``side``: ``tsk_mean``, ``tnv``, ``tp``, ``tv`` (degC, region means) and
  ``tnv_sd``, ``tp_sd``, ``tv_sd`` (degC, spatial SD of the pixels inside each region), and
  ``tp_entropy``, ``tnv_entropy`` (bits, the Shannon entropy a 0.1 degC histogram of a normal
  distribution with that SD has).
- ``ds.attrs["truth"]``: JSON string of the planted answers (target ICCs, couplings, ...).

The breath table (``simulate_breaths``) has one row per breath: ``t_start``, ``t_insp_end``,
``t_end`` (s on the session clock), ``vt`` (L), ``vo2``, ``vco2`` (mL/min), ``ve`` (L/min),
``rf`` (min-1), ``hr`` (min-1).
"""
