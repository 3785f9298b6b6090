"""The report's model parts: each adapts the manifest to its domain package's functions.

- :mod:`~irtrepro.report.parts.vision`: segmentation models, thermal metrics.
- :mod:`~irtrepro.report.parts.breathing`: breathing classifier, respiratory rate.
- :mod:`~irtrepro.report.parts.keypoints`: keypoint models, cadence.

Each module has ``run_for_report(manifest, cache_dir, *, seed, progress, **settings)`` returning
a :class:`~irtrepro.report.part.ReportPart`; :func:`irtrepro.report.run.run_report` finds it by
the module's last name (``--parts vision``, ``settings={"vision": {...}}``).
"""
