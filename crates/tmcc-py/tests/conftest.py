"""Shared set-up of the tmcc Python tests: a small config that trains in well under a
second, and the `tmcc` command-line binary for the comparisons with the CLI."""

import os
import pathlib
import shutil

import pytest

import tmcc

REPO = pathlib.Path(__file__).resolve().parents[3]

# Two instances of a small emb_res model; every test trains in well under a second.
SMALL = dict(
    n_feat=8,
    n_hidden=4,
    d_emb=16,
    p=0.1,
    batch_size=32,
    steps=60,
    log_every=10,
    instances=2,
    eval_samples=2000,
    eval_batch=512,
)


@pytest.fixture
def small():
    return tmcc.Config(**SMALL)


@pytest.fixture(scope="session")
def trained():
    """One trained run shared by the read-only tests."""
    return tmcc.train(tmcc.Config(**SMALL), progress=False, device="cpu")


def cli_binary():
    """The `tmcc` binary: $TMCC_BIN (then it must exist), else a release or debug build in
    the workspace's target directory; None when there is none."""
    if os.environ.get("TMCC_BIN"):
        path = pathlib.Path(os.environ["TMCC_BIN"])
        assert path.is_file(), f"TMCC_BIN={path} does not exist"
        return path
    target = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    for profile in ("release", "debug"):
        if (target / profile / "tmcc").is_file():
            return target / profile / "tmcc"
    return shutil.which("tmcc") and pathlib.Path(shutil.which("tmcc"))


@pytest.fixture(scope="session")
def cli():
    path = cli_binary()
    if path is None:
        pytest.skip("no tmcc binary (set TMCC_BIN or build tmcc-cli)")
    return path
