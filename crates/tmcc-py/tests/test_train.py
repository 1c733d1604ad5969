"""tmcc.train and the Run: shapes, metrics, the GIL, progress, Ctrl-C, save and load."""

import os
import subprocess
import sys
import threading
import time
import types

import numpy as np
import pytest

import tmcc
from conftest import SMALL


def test_weights_metrics_and_embedding_have_instances_first(trained):
    w = trained.weights()
    assert set(w) == {"W1", "W2", "W_E"}
    assert w["W1"].shape == (2, 4, 16) and w["W2"].shape == (2, 16, 4)
    assert w["W_E"].shape == (2, 16, 8) and w["W1"].dtype == np.float32
    np.testing.assert_array_equal(trained.embedding, w["W_E"])
    assert not np.array_equal(w["W1"][0], w["W1"][1])
    m = trained.metrics
    assert m["steps_done"] == trained.step == 60
    assert list(m["loss_curve"]["step"]) == [1, 10, 20, 30, 40, 50, 60]
    assert m["loss_curve"]["loss"].shape == (7, 2)
    np.testing.assert_array_equal(m["final_train_loss"], m["loss_curve"]["loss"][-1])
    assert list(m["eval"]["instance"]) == [0, 1]
    assert np.all(np.isfinite(m["eval"]["ratio"]))
    assert trained.config == tmcc.Config(**SMALL) and trained.dir is None
    assert "emb_res, 2 instance(s), step 60/60" in repr(trained)


def test_training_is_determined_by_the_config(small):
    a = tmcc.train(small, progress=False, device="cpu").weights()
    b = tmcc.train(small, progress=False, device="cpu").weights()
    c = tmcc.train(small.replace(seed=5), progress=False, device="cpu").weights()
    np.testing.assert_array_equal(a["W1"], b["W1"])
    assert not np.array_equal(a["W1"], c["W1"])


def test_variants_without_embedding_or_with_biases_and_mixing(small):
    run = tmcc.train(small.replace(variant="mix", bias1=True, bias2=True), progress=False,
                     device="cpu")
    w = run.weights()
    assert set(w) == {"W1", "b1", "W2", "b2", "M"}
    assert w["b2"].shape == (2, 8) and w["M"].shape == (2, 8, 8)
    assert run.embedding is None


def test_each_block_of_a_deep_model_has_its_own_weights(small):
    w = tmcc.train(small.replace(variant="res_mlp", n_layers=2), progress=False,
                   device="cpu").weights()
    assert {"W1", "W2", "W1.1", "W2.1"} <= set(w)
    assert w["W1.1"].shape == (2, 4, 8) and not np.array_equal(w["W1"], w["W1.1"])


def test_a_learned_sigma_is_a_weight_and_a_metric(small):
    cfg = small.replace(variant="mix", learn_sigma=True, sigma_per_instance=[0.2, -0.1])
    run = tmcc.train(cfg, progress=False, device="cpu")
    sigma = run.weights()["sigma"]
    assert sigma.shape == (2, 1)
    np.testing.assert_allclose(run.metrics["learned_sigma"], sigma[:, 0], rtol=1e-6)
    assert sigma[0, 0] != np.float32(0.2) and sigma[1, 0] != np.float32(-0.1)
    with pytest.raises(ValueError, match="learn_sigma"):
        tmcc.train(small.replace(learn_sigma=True), progress=False, device="cpu")


def test_the_gil_is_released_while_training(small):
    ticks = []
    done = threading.Event()

    def count():
        while not done.is_set():
            ticks.append(time.perf_counter())
            time.sleep(0.002)

    t = threading.Thread(target=count)
    t.start()
    time.sleep(0.05)
    start = time.perf_counter()
    tmcc.train(small.replace(steps=60000, log_every=60000), progress=False, device="cpu")
    end = time.perf_counter()
    done.set()
    t.join()
    during = [x for x in ticks if start < x < end]
    assert end - start > 0.1, "training too short to tell"
    # Holding the GIL, the counter could not run at all while Rust trains.
    assert len(during) >= 10, (len(during), end - start)


def test_progress_falls_back_to_a_text_line(small, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    tmcc.train(small, progress=True, device="cpu")
    err = capsys.readouterr().err
    assert "step 60/60" in err and "loss/naive" in err


def test_progress_uses_tqdm_when_installed(small, monkeypatch):
    bars = []

    class Bar:
        def __init__(self, total, **kw):
            self.total, self.n, self.closed = total, 0, False
            bars.append(self)

        def update(self, n):
            self.n += n

        def set_postfix_str(self, s):
            self.postfix = s

        def close(self):
            self.closed = True

    auto = types.ModuleType("tqdm.auto")
    auto.tqdm = Bar
    package = types.ModuleType("tqdm")
    package.auto = auto
    monkeypatch.setitem(sys.modules, "tqdm", package)
    monkeypatch.setitem(sys.modules, "tqdm.auto", auto)
    tmcc.train(small, progress=True, device="cpu")
    assert len(bars) == 1
    assert (bars[0].total, bars[0].n, bars[0].closed) == (60, 60, True)
    assert "loss/naive" in bars[0].postfix


def test_ctrl_c_stops_cleanly_with_a_checkpoint(small, tmp_path):
    """A real SIGINT from outside the process, as a notebook's stop button sends it to its
    kernel, while Rust trains: sent once the first checkpoint shows the loop is running."""
    out = tmp_path / "run"
    cfg = small.replace(steps=1_000_000, log_every=50)
    wait_then_kill = (
        f'while [ ! -f "{out}/progress.json" ]; do sleep 0.02; done; kill -INT {os.getpid()}'
    )
    killer = subprocess.Popen(["sh", "-c", wait_then_kill])
    try:
        with pytest.raises(KeyboardInterrupt, match="stopped at step"):
            tmcc.train(cfg, out=out, progress=False, device="cpu", checkpoint_every=500)
    finally:
        killer.kill()
        killer.wait()
    run = tmcc.load(out)
    assert 0 < run.step < cfg.steps and run.metrics is None
    assert (out / "progress.json").is_file()


def test_save_and_load_round_trip(trained, tmp_path):
    trained.save(tmp_path / "r")
    back = tmcc.load(tmp_path / "r")
    for name, array in trained.weights().items():
        np.testing.assert_array_equal(back.weights()[name], array)
    assert back.metrics["steps_done"] == 60 and back.config == trained.config
    assert back.dir == str(tmp_path / "r")
    back_file = tmcc.load(tmp_path / "r" / "checkpoint.safetensors")
    np.testing.assert_array_equal(back_file.weights()["W1"], trained.weights()["W1"])
    with pytest.raises(FileExistsError, match="force=True"):
        trained.save(tmp_path / "r")
    trained.save(tmp_path / "r", force=True)


def test_train_into_a_directory_refuses_to_overwrite(small, tmp_path):
    tmcc.train(small, out=tmp_path / "r", progress=False, device="cpu")
    assert (tmp_path / "r" / "metrics.json").is_file()
    with pytest.raises(FileExistsError, match="out: .* exists; pass force=True"):
        tmcc.train(small, out=tmp_path / "r", progress=False, device="cpu")
    tmcc.train(small, out=tmp_path / "r", progress=False, device="cpu", force=True)


def test_bad_arguments_raise_one_line(small, tmp_path):
    with pytest.raises(ValueError, match="device: unknown device `tpu`"):
        tmcc.train(small, device="tpu")
    with pytest.raises(TypeError):
        tmcc.train({"p": 0.1})
    with pytest.raises(FileNotFoundError):
        tmcc.load(tmp_path / "nothing")


def test_an_oversize_config_is_refused_before_anything_exists(tmp_path):
    big = tmcc.Config(n_feat=100000, d_emb=100000)
    with pytest.raises(ValueError, match="`n_feat`.*memory") as e:
        tmcc.train(big, out=tmp_path / "big", progress=False, device="cpu")
    assert "\n" not in str(e.value)
    assert not (tmp_path / "big").exists()


def test_a_damaged_checkpoint_is_a_value_error(trained, tmp_path):
    trained.save(tmp_path / "r")
    path = tmp_path / "r" / "checkpoint.safetensors"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(ValueError, match="not a valid safetensors file") as e:
        tmcc.load(tmp_path / "r")
    assert "\n" not in str(e.value)
    path.write_bytes(b"\x00" * 7)
    with pytest.raises(ValueError, match="checkpoint"):
        tmcc.load(path)
