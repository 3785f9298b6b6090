"""Device exports as the devices write them: the generator's writers, one module per kind.

- :mod:`~irtrepro.synth.exports.cpet`: COSMED Omnia and CORTEX xlsx, plain CSV.
- :mod:`~irtrepro.synth.exports.hr`: Polar Flow session CSV.
- :mod:`~irtrepro.synth.exports.core`: e-Celsius-style CSV.
- :mod:`~irtrepro.synth.exports.fit`: FIT activity files (heart rate, core temperature).
- :mod:`~irtrepro.synth.exports.flir`: FLIR SEQ recordings (raw counts, constants, time stamps).

Each writes atomically and deterministically (same data, same bytes); the readers of
:mod:`irtrepro.io` read the files back as they read a lab's. Writers that are part of the
public data API (the zarr frame store, mask and annotation stores, pose clips, face labels)
stay in :mod:`irtrepro.io`.
"""
