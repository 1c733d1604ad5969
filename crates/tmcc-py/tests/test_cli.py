"""The same numbers as the command line: a config trained by `tmcc train` and by
tmcc.train ends with identical weights, and tmcc.load reads the CLI's run directory."""

import subprocess

import numpy as np

import tmcc
from conftest import SMALL


def test_python_and_cli_training_end_with_identical_weights(cli, tmp_path, small):
    sets = [f"--set={k}={v}" for k, v in SMALL.items()]
    subprocess.run([cli, "train", *sets, "--out", tmp_path / "cli", "--device", "cpu", "-q"],
                   check=True, capture_output=True)
    from_cli = tmcc.load(tmp_path / "cli", device="cpu")
    assert from_cli.config == small and from_cli.step == SMALL["steps"]
    ours = tmcc.train(small, out=tmp_path / "py", progress=False, device="cpu")
    for name, array in ours.weights().items():
        np.testing.assert_array_equal(from_cli.weights()[name], array, err_msg=name)
    for key in ("ratio", "loss", "loss_se"):
        np.testing.assert_array_equal(from_cli.metrics["eval"][key], ours.metrics["eval"][key])
    # metrics.json: serde_json reads floats back to within an ulp.
    np.testing.assert_allclose(from_cli.metrics["loss_curve"]["loss"],
                               ours.metrics["loss_curve"]["loss"], rtol=1e-15, atol=0)
    # And the CLI reads the directory tmcc.train wrote.
    shown = subprocess.run([cli, "eval", tmp_path / "py", "--json", "--device", "cpu"],
                           check=True, capture_output=True, text=True).stdout
    assert '"instance": 1' in shown


def test_the_device_note_is_recorded_as_the_cli_records_it(cli, tmp_path, small):
    """`device="auto"` keeps why it chose the CPU (or nothing, on CUDA) in metrics.json."""
    sets = [f"--set={k}={v}" for k, v in SMALL.items()]
    subprocess.run([cli, "train", *sets, "--out", tmp_path / "cli", "--device", "auto", "-q"],
                   check=True, capture_output=True)
    ours = tmcc.train(small, out=tmp_path / "py", progress=False, device="auto")
    cli_note = tmcc.load(tmp_path / "cli", device="cpu").metrics.get("device_note")
    assert ours.metrics.get("device_note") == cli_note
    on_cpu = tmcc.train(small, out=tmp_path / "cpu", progress=False, device="cpu")
    assert on_cpu.metrics.get("device_note") is None
