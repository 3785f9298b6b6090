"""The device line of provenance names the machine well enough to compare trainings."""

import pytest

from irtrepro.info import cpu_model, device, machine


def test_cpu_device_names_model_kernels_and_threads():
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("a GPU is named instead")
    line = device()
    assert line.startswith("cpu (") and cpu_model() in line
    assert torch.backends.cpu.get_cpu_capability() in line
    assert f"torch threads {torch.get_num_threads()}" in line
    assert cpu_model() != ""
    # the machine is the device without the thread setting (compared across jobs)
    assert line.startswith(machine()[:-1]) and "threads" not in machine()
