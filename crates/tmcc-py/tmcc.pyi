"""tmcc: toy models of computation in superposition, from Python.

Train, sweep, evaluate and intervene on TMCC models with the Rust laboratory's code
(the same numbers as the `tmcc` command), numpy arrays in and out. Arrays are
instances first: `K` instances, `B` batch rows, `F` features, `H` hidden, `D` input width.
"""

from os import PathLike
from typing import Any, Optional, Sequence, Union

import numpy as np
import numpy.typing as npt

__version__: str

_Path = Union[str, PathLike[str]]
_Columns = dict[str, np.ndarray]

class ConfigError(ValueError):
    """A config field with a bad value; the message gives the allowed range."""

    field: str
    """The name of the field."""

class Config:
    """The configuration that determines a run: the defaults (the seed setting) with
    `fields` set, validated on creation. Every field of `config.toml` is a keyword.
    `None` resets a field to its default. Immutable: `replace` makes a changed copy.
    Raises `ConfigError` (unknown field, value of the wrong kind or out of range) or
    `TypeError` (a value that is no bool, int, float, str or list)."""

    def __init__(self, **fields: Any) -> None: ...
    def replace(self, **fields: Any) -> Config:
        """A copy with `fields` changed, validated."""
    def to_dict(self) -> dict[str, Any]:
        """Every field and its value (`res_factor` is `None` when the variant's default applies)."""
    def to_toml(self) -> str:
        """The config as the TOML of `config.toml`."""
    @staticmethod
    def from_toml(text: str) -> Config:
        """A config from TOML text (fields over the defaults), validated."""
    @staticmethod
    def fields() -> list[str]:
        """The names of all fields."""
    def naive_loss(self, p: Optional[float] = None) -> float:
        """The loss of the naive model at probability `p` (default: the config's `p`)."""
    def __getattr__(self, name: str) -> Any:
        """The value of field `name` (e.g. `cfg.p`)."""
    def __eq__(self, other: object) -> bool: ...

def preset(name: str, **overrides: Any) -> Config:
    """The config of preset `name` (`presets/NAME.toml`, as `tmcc train --preset NAME`)
    with `overrides` set, validated. An unknown name raises `ConfigError` listing them."""

def presets() -> list[tuple[str, str]]:
    """Every preset's name and one-line summary."""

class Run:
    """A trained (or loaded) model of `K` instances, with its metrics and analyses."""

    @property
    def config(self) -> Config:
        """The run's config."""
    @property
    def step(self) -> int:
        """Training steps done."""
    @property
    def dir(self) -> Optional[str]:
        """The run directory, or `None` for a run kept only in memory."""
    @property
    def device(self) -> str:
        """Where the run's analyses compute."""
    def weights(self) -> dict[str, npt.NDArray[np.float32]]:
        """Every checkpoint tensor by name: `W1` [K, H, D], `b1` [K, H], `W2` [K, D, H],
        `b2` [K, D], `W_E` [K, D, F], `M` [K, F, F], `sigma` [K, 1] (`learn_sigma`) (those
        the model has; block `l ≥ 1` of a deep model as `W1.l`, `b1.l`, …)."""
    @property
    def embedding(self) -> Optional[npt.NDArray[np.float32]]:
        """The fixed embedding `W_E` [K, D, F], or `None` without one."""
    @property
    def metrics(self) -> Optional[dict[str, Any]]:
        """A finished run's metrics: `steps_done`, `seconds`, `device`,
        `device_note` (why `device="auto"` chose the CPU, else `None`), `final_train_loss`
        [K], `loss_curve` {`step` [n], `loss` [n, K]} and `eval`
        (columns, one row per instance), with `learn_sigma` also `learned_sigma` [K];
        `None` for an unfinished or transplanted run."""
    def eval(
        self,
        p: Union[None, float, Sequence[float]] = None,
        samples: Optional[int] = None,
        device: Optional[str] = None,
    ) -> _Columns:
        """Evaluates every instance on the evaluation stream at `p` (default: each
        instance's training p) on `samples` samples (default: `eval_samples`). Columns
        `instance`, `loss`, `loss_se`, `naive`, `p`, `ratio` (loss/naive), `ratio_se`,
        `samples`, one row per instance."""
    def response(self, points: int = 41, device: Optional[str] = None) -> dict[str, Any]:
        """Every feature's input–output response for `x = v·e_i`, `v` on `points` values
        of [-1, 1]: `v` [points], `resid` [K, F, points] (`out_i − r·v`), `err_computed`,
        `err_zero` and `class` [K, F] (`computed`, `zero`, `partial`), `counts`
        (columns `computed`, `partial`, `zero`, one row per instance), `tolerance`."""
    def transplant(self) -> Run:
        """The embedding folded into the weights (`W1·W_E`, `W_Eᵀ·W2`, `W_Eᵀ·b2`), run
        without it as a `res_mlp` (or `mlp` for `emb_mlp`): a new Run at step 0."""
    def forward(self, x: npt.ArrayLike) -> npt.NDArray[np.float32]:
        """The model's output on the batch `x` ([B, F] for every instance, or [K, B, F];
        float32 or float64): [K, B, F] float32, by the dense reference path."""
    def save(self, dir: _Path, force: bool = False) -> None:
        """Writes a run directory as `tmcc train` does (an existing one only with `force`)."""

def train(
    config: Config,
    out: Optional[_Path] = None,
    progress: bool = True,
    device: str = "auto",
    *,
    force: bool = False,
    checkpoint_every: int = 2000,
) -> Run:
    """Trains and evaluates `config` (the GIL is released meanwhile); with `out`, writes
    the run directory `tmcc train --out` writes. `progress`: a tqdm bar if tqdm is
    installed, else a text line. `device`: `auto`, `cpu` or `cuda`. Ctrl-C raises
    `KeyboardInterrupt` after the current logged step (with a checkpoint in `out`)."""

def load(path: _Path, device: str = "auto") -> Run:
    """A run directory (or checkpoint file) written by `tmcc train`, `train` or `Run.save`."""

def sweep(
    base: Config,
    grid: dict[str, Sequence[Any]],
    out: Optional[_Path] = None,
    max_instances: int = 64,
    *,
    progress: bool = True,
    device: str = "auto",
    force: bool = False,
) -> _Columns:
    """Trains every run of the grid (`{field: [values]}` over `base`, as `tmcc sweep`
    does) and returns the results table as columns: `run`, the swept fields, the other
    fields, the metrics (`final_train_loss`, `eval_loss`, `eval_loss_se`, `naive_loss`,
    `loss_over_naive`, `loss_over_naive_se`, `learned_sigma`, `steps_done`) and where each row was
    computed (`shard`, `dir`, `instance`). With `out`, writes the sweep directory."""
