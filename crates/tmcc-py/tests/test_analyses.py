"""Run.eval, Run.response, Run.transplant, Run.forward and tmcc.sweep."""

import numpy as np
import pytest

import tmcc
from conftest import SMALL


def reference_out(w, k, x, r=1.0):
    """emb_res by the maths (docs/science.md): out = W_Eᵀ(W2·ReLU(W1·W_E·x) + r·W_E·x)."""
    u = x @ w["W_E"][k].T
    h = np.maximum(u @ w["W1"][k].T, 0)
    return (h @ w["W2"][k].T + r * u) @ w["W_E"][k]


def test_forward_computes_the_model_for_every_instance(trained):
    w = trained.weights()
    x = np.random.default_rng(0).uniform(-1, 1, size=(5, 8))
    out = trained.forward(x)
    assert out.shape == (2, 5, 8) and out.dtype == np.float32
    for k in range(2):
        np.testing.assert_allclose(out[k], reference_out(w, k, x), rtol=1e-4, atol=1e-5)
    per_instance = trained.forward(np.stack([x, 2 * x]).astype(np.float32))
    np.testing.assert_allclose(per_instance[1], reference_out(w, 1, 2 * x), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "x, error, says",
    [
        (np.zeros((3, 9)), ValueError, "x: expected shape"),
        (np.zeros((3, 3, 8)), ValueError, r"\[2, B, 8\]"),
        (np.zeros(8), ValueError, "got \\[8\\]"),
        (np.zeros((3, 8), dtype=np.int64), TypeError, "dtype int64"),
        ([["a"] * 8], TypeError, "x: expected a float32"),
    ],
)
def test_a_bad_forward_batch_raises_naming_x(trained, x, error, says):
    with pytest.raises(error, match=says):
        trained.forward(x)


def test_eval_at_another_p_and_its_errors(trained):
    e = trained.eval(p=0.05, samples=1000)
    assert list(e["p"]) == [0.05, 0.05] and list(e["samples"]) == [1000, 1000]
    assert set(e) >= {"instance", "loss", "loss_se", "naive", "ratio", "ratio_se"}
    again = trained.eval(p=[0.05, 0.05], samples=1000)
    np.testing.assert_array_equal(e["loss"], again["loss"])
    own = trained.eval(samples=2000)
    np.testing.assert_array_equal(own["ratio"], trained.metrics["eval"]["ratio"])
    with pytest.raises(ValueError, match=r"p: must be in \(0, 1\]"):
        trained.eval(p=2)
    with pytest.raises(ValueError, match="one probability per instance"):
        trained.eval(p=[0.1])
    with pytest.raises(ValueError, match="samples"):
        trained.eval(samples=0)


def test_response_classifies_every_feature(trained):
    r = trained.response(points=9)
    assert r["v"].shape == (9,) and r["resid"].shape == (2, 8, 9)
    assert r["class"].shape == (2, 8)
    assert set(r["class"].ravel()) <= {"computed", "zero", "partial"}
    c = r["counts"]
    np.testing.assert_array_equal(c["computed"] + c["zero"] + c["partial"], [8, 8])
    np.testing.assert_array_equal(c["zero"], (r["class"] == "zero").sum(axis=1))
    # resid = out_i − r·v for x = v·e_i, from forward.
    x = np.zeros((9, 8))
    x[:, 3] = r["v"]
    np.testing.assert_allclose(r["resid"][1, 3], trained.forward(x)[1, :, 3] - r["v"],
                               atol=1e-5)
    with pytest.raises(ValueError, match="points"):
        trained.response(points=2)


def test_transplant_folds_the_embedding_into_the_weights(trained):
    moved = trained.transplant()
    assert moved.config.variant == "res_mlp" and moved.config.res_factor == 1.0
    w, t = trained.weights(), moved.weights()
    np.testing.assert_allclose(t["W1"], w["W1"] @ w["W_E"], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(t["W2"], np.swapaxes(w["W_E"], 1, 2) @ w["W2"], rtol=1e-4,
                               atol=1e-6)
    assert moved.metrics is None and moved.step == 0 and moved.embedding is None
    assert moved.eval(samples=500)["ratio"].shape == (2,)
    mlp = tmcc.train(tmcc.Config(**SMALL).replace(variant="mlp"), progress=False,
                     device="cpu")
    with pytest.raises(RuntimeError, match="embedding variant"):
        mlp.transplant()


def sweep_base():
    return tmcc.Config(**{**SMALL, "instances": 1, "eval_samples": 1000})


def test_sweep_returns_one_column_per_field_and_metric(tmp_path):
    cols = tmcc.sweep(sweep_base(), {"seed": [0, 1], "p": [0.05, 0.1]}, out=tmp_path / "s",
                      progress=False, device="cpu")
    assert list(cols)[:3] == ["run", "p", "seed"]
    assert list(cols["run"]) == [0, 1, 2, 3]
    assert list(cols["p"]) == [0.05, 0.05, 0.1, 0.1] and list(cols["seed"]) == [0, 1, 0, 1]
    for name in ("loss_over_naive", "eval_loss", "final_train_loss", "n_feat", "variant",
                 "importance", "dir"):
        assert len(cols[name]) == 4, name
    assert cols["loss_over_naive"].dtype == np.float64
    assert np.all(np.isfinite(cols["loss_over_naive"]))
    assert cols["variant"][0] == "emb_res" and cols["n_feat"].dtype == np.int64
    assert (tmp_path / "s" / "results.csv").is_file()
    # An instance's numbers do not depend on its group: one run per group gives the same.
    alone = tmcc.sweep(sweep_base(), {"seed": [0, 1], "p": [0.05, 0.1]}, max_instances=1,
                       progress=False, device="cpu")
    np.testing.assert_array_equal(alone["eval_loss"], cols["eval_loss"])
    assert list(alone["instance"]) == [0, 0, 0, 0]


@pytest.mark.parametrize(
    "grid, field",
    [
        ({"p": 0.1}, "p"),
        ({"p": [0.1, 3.0]}, "p"),
        ({"instances": [1, 2]}, "instances"),
        ({"bogus": [1]}, "bogus"),
    ],
)
def test_a_bad_grid_raises_naming_the_field(grid, field):
    with pytest.raises(tmcc.ConfigError) as e:
        tmcc.sweep(sweep_base(), grid, progress=False, device="cpu")
    assert e.value.field == field and "\n" not in str(e.value)


def test_a_sweep_base_must_be_one_instance(small):
    with pytest.raises(tmcc.ConfigError, match="instances"):
        tmcc.sweep(small, {"seed": [0, 1]}, progress=False, device="cpu")


def test_an_oversize_sweep_is_refused_before_anything_exists(tmp_path):
    big = tmcc.Config(n_feat=100000, d_emb=100000)
    with pytest.raises(ValueError, match="memory") as e:
        tmcc.sweep(big, {"seed": [0, 1]}, out=tmp_path / "s", progress=False, device="cpu")
    assert "\n" not in str(e.value)
    assert not (tmp_path / "s").exists()
