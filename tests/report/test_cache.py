"""The report's one cache: keys follow settings, data and source; bad entries are recomputed."""

import numpy as np

from irtrepro.report.cache import Cache, cache_key


def test_cache_key_follows_settings_data_and_source():
    a = np.zeros((2, 3), np.float32)
    k0 = cache_key(settings={"seed": 0}, data=(a,), source=("irtrepro.splits",))
    assert k0 == cache_key(settings={"seed": 0}, data=(a,), source=("irtrepro.splits",))
    assert k0 != cache_key(settings={"seed": 1}, data=(a,), source=("irtrepro.splits",))
    assert k0 != cache_key(settings={"seed": 0}, data=(a + 1,), source=("irtrepro.splits",))
    assert k0 != cache_key(settings={"seed": 0}, data=(a.astype(np.float64),),
                           source=("irtrepro.splits",))
    assert k0 != cache_key(settings={"seed": 0}, data=(a,), source=("irtrepro._threads",))


def test_cache_computes_once_and_recomputes_unreadable_entries(tmp_path):
    cache = Cache(tmp_path / "c")
    calls = []

    def compute():
        calls.append(1)
        return {"x": 1}

    assert cache.get("part", "k", compute) == ({"x": 1}, False)
    assert cache.get("part", "k", compute) == ({"x": 1}, True)
    assert len(calls) == 1
    cache.path("part", "k").write_bytes(b"not a pickle")
    assert cache.get("part", "k", compute) == ({"x": 1}, False)
    assert len(calls) == 2
    # a value's own format
    path = cache.save("model", "k", "text", save=lambda v, p: p.write_text(v), suffix=".txt")
    assert path.name == "model-k.txt"
    assert cache.load("model", "k", load=lambda p: p.read_text(), suffix=".txt") == ("text", True)
