"""tmcc.Config: built from keywords through serde, validated, every error one line
naming the field."""

import numpy as np
import pytest

import tmcc


def test_defaults_are_the_seed_setting_and_fields_are_attributes():
    c = tmcc.Config()
    assert (c.variant, c.n_feat, c.n_hidden, c.d_emb, c.p) == ("emb_res", 100, 50, 1000, 0.01)
    assert c.res_factor is None
    assert "variant" in tmcc.Config.fields() and "steps" in dir(c)
    assert c == tmcc.Config.from_toml(c.to_toml())
    assert repr(c) == "Config()"


def test_keywords_set_fields_through_serde():
    c = tmcc.Config(variant="mix", p=np.float32(0.25), n_feat=np.int64(12), lr=1,
                    p_per_instance=np.array([0.1, 0.2]), instances=2, bias1=True)
    assert (c.variant, c.p, c.n_feat, c.lr, c.bias1) == ("mix", 0.25, 12, 1.0, True)
    assert c.p_per_instance == [pytest.approx(0.1), pytest.approx(0.2)]
    d = c.replace(p=0.5, res_factor=0.7)
    assert (d.p, d.res_factor, c.p) == (0.5, 0.7, 0.25)
    assert d.replace(res_factor=None).res_factor is None
    assert "variant='mix'" in repr(c) and "bias1=True" in repr(c)
    assert c.to_dict()["n_feat"] == 12
    assert tmcc.Config().naive_loss() == pytest.approx((1 - 50 / 100) * 0.01 / 6)
    with pytest.raises(AttributeError):
        c.p = 0.3


@pytest.mark.parametrize(
    "fields, field, says",
    [
        (dict(nope=1), "nope", "unknown field"),
        (dict(p=2.0), "p", "(0, 1]"),
        (dict(p=0.0), "p", "(0, 1]"),
        (dict(n_feat="many"), "n_feat", "invalid type"),
        (dict(variant="bogus"), "variant", "unknown variant"),
        (dict(steps=-1), "steps", ""),
        (dict(importance=[1.0, 2.0]), "importance", "n_feat = 100"),
        (dict(beta1=1.0), "beta1", "[0, 1)"),
        (dict(nope=None), "nope", "unknown field"),
    ],
)
def test_bad_fields_raise_one_line_naming_the_field(fields, field, says):
    with pytest.raises(tmcc.ConfigError) as e:
        tmcc.Config(**fields)
    assert isinstance(e.value, ValueError)
    assert e.value.field == field
    text = str(e.value)
    assert f"`{field}`" in text and says in text and "\n" not in text


def test_a_value_of_no_config_type_is_a_type_error_naming_the_field():
    with pytest.raises(TypeError, match="`p`"):
        tmcc.Config(p=object())
    with pytest.raises(tmcc.ConfigError, match="<toml>"):
        tmcc.Config.from_toml("p = [")


def test_presets_are_bases_that_keywords_override():
    names = [n for n, _ in tmcc.presets()]
    assert "apd-1layer" in names
    apd = tmcc.preset("apd-1layer")
    assert (apd.lr, apd.n_feat, apd.d_emb, apd.batch_size) == (3e-3, 100, 1000, 2048)
    short = tmcc.preset("apd-1layer", steps=10, instances=3)
    assert (short.steps, short.instances, short.lr) == (10, 3, 3e-3)
    assert short == apd.replace(steps=10, instances=3)
    with pytest.raises(tmcc.ConfigError, match="known presets: .*apd-1layer") as e:
        tmcc.preset("nope")
    assert e.value.field == "preset"
    with pytest.raises(tmcc.ConfigError) as e:
        tmcc.preset("apd-1layer", lr=-1)
    assert e.value.field == "lr"


def test_fields_added_to_the_rust_config_need_no_binding_code():
    # `init_bound` came with the presets; it is a keyword through serde.
    c = tmcc.Config(init="uniform", init_bound=0.05)
    assert (c.init, c.init_bound) == ("uniform", 0.05)
