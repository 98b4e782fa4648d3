"""One device check (`interp.devices.check_device`) for the API and every command."""

import pytest

from interp.cli import main
from interp.devices import check_device
from interp.errors import InterpError

BAD = ["cuda", "cuda:99", "meta", "nonsense", "", "cpu:x", 7, None]


@pytest.mark.parametrize("device", BAD)
def test_bad_device_is_one_line(device):
    import torch

    if isinstance(device, str) and device.startswith("cuda") and torch.cuda.is_available() and device == "cuda":
        pytest.skip("this machine has a GPU")
    with pytest.raises(InterpError) as e:
        check_device(device)
    assert "\n" not in str(e.value) and repr(device) in str(e.value)


def test_cpu_is_accepted():
    assert check_device("cpu") == "cpu"


@pytest.mark.parametrize("device", ["nonsense", "cuda:99", "meta"])
def test_load_refuses_before_loading(device):
    import interp

    with pytest.raises(InterpError, match="device"):
        interp.load("zoo-2l", device=device)


@pytest.mark.parametrize("device", ["nonsense", "cuda:99"])
def test_cli_device_exit_2_one_line(device, capsys):
    code = main(["inspect", "--model", "zoo-2l", "--device", device])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err and device in err
