"""Batch settings: one validated object, from defaults, a config file, the environment and
keyword arguments (later sources win, in that order).

Every job stores its settings (:meth:`Settings.to_dict`), so each result says how it was made,
and :meth:`Settings.analysis_key` tells whether two results are comparable: it covers the
settings that change results (not worker counts or timeouts), the model and cpet_nb's version.

A config file is TOML with a ``[cpet_nb]`` table::

    [cpet_nb]
    file_timeout_s = 120
    vo2peak_window = 20

Environment variables are ``CPET_NB_`` plus the upper-case field name, e.g.
``CPET_NB_WORKERS=4``; ``CPET_NB_CONFIG`` names a config file.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from functools import cache
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from .io._files import NotRegularFile, open_regular
from .physiology.averaging import METHODS
from .physiology.consensus import MAX_SPREAD_VO2_ML_MIN
from .physiology.measures import HR_MAX_FORMULAS, PEAK_WITHIN, VO2PEAK_WINDOW_S

ENV_PREFIX = "CPET_NB_"
CONFIG_ENV = "CPET_NB_CONFIG"
SHIP_FILES = ("auto", "path", "bytes")


@dataclass(frozen=True)
class Settings:
    """How a batch runs and how its files are analysed. Validated on construction.

    Attributes
    ----------
    max_file_mb : float
        Larger input files are refused (finding ``file-too-large``); MB = 10^6 bytes.
    file_timeout_s : float
        Wall time one file may take on a worker before it is stopped (finding
        ``file-timeout``); the other files go on.
    file_memory_mb : float
        Memory (MiB) one file's analysis may allocate on top of what the analysis process
        holds (data segment; enforced on Linux) before it is stopped (finding
        ``file-memory-limit``).
    partition_size : int
        Files per dask task; 0 chooses from the batch and cluster size (enough tasks to
        balance the workers, few enough that scheduling overhead stays small).
    workers : int
        Worker processes of the embedded cluster; 0 means one per CPU core. Ignored when an
        existing scheduler is used.
    retries : int
        Times a partition is retried after an unexpected failure; a partition whose worker
        died is then split so that one bad file cannot sink the others.
    ship_files : str
        How workers get the files: ``path`` (they read the client's paths: a shared file
        system), ``bytes`` (each task carries its partition's bytes), or ``auto`` (``path``
        when every worker runs on this machine, else ``bytes``).
    vo2peak_method, vo2peak_window : str, int
        Averaging of every peak value (:mod:`cpet_nb.physiology.averaging`, Nolte et al. 2023):
        ``time-moving`` (s; the default, 30 s), ``time-binned`` (s) or ``breath-moving``
        (breaths).
    peak_within : str
        ``exercise`` (default: peaks from the exercise phase only, so recovery cannot raise
        RERpeak) or ``test`` (the whole recording, as Nolte et al. 2023).
    hr_max_formula : str
        Age-predicted maximal HR for the effort criterion: ``fox`` (220 - age) or
        ``tanaka`` (208 - 0.7 age).
    rer_criterion, hr_criterion_pct : float
        Maximal-effort criteria: RERpeak at or above ``rer_criterion`` (1.10), HRpeak at or
        above ``hr_criterion_pct`` % (90) of the age-predicted maximum.
    review_spread_ml_min : float
        A test is flagged for review when the threshold estimates spread over more than this
        (mL/min; default 161, the 95 % limits of agreement between two experts,
        :mod:`cpet_nb.physiology.consensus`).
    profile : dict, optional
        A column mapping (:meth:`cpet_nb.ColumnMapping.to_dict`) for files no built-in
        reader knows; ``Settings.load(profile="name")`` reads a saved lab profile.
    keep_uploads : bool
        Keep in-memory uploads and extracted archive members after their job ends (they are
        needed only to resume an unfinished job).
    job_expiry_days : float, optional
        ``cpet-nb store cleanup`` deletes jobs finished longer ago; None keeps them.
    backups_keep : int
        Backups that ``cpet-nb store backup`` keeps.
    """

    max_file_mb: float = 10.0
    file_timeout_s: float = 60.0
    file_memory_mb: float = 2048.0
    partition_size: int = 0
    workers: int = 0
    retries: int = 1
    ship_files: str = "auto"
    vo2peak_method: str = "time-moving"
    vo2peak_window: int = VO2PEAK_WINDOW_S
    peak_within: str = "exercise"
    hr_max_formula: str = "fox"
    rer_criterion: float = 1.10
    hr_criterion_pct: float = 90.0
    review_spread_ml_min: float = MAX_SPREAD_VO2_ML_MIN
    profile: dict[str, Any] | None = None
    keep_uploads: bool = False
    job_expiry_days: float | None = None
    backups_keep: int = 5

    #: Fields that change results: the rest only change how fast or where they are made.
    ANALYSIS_FIELDS = ("max_file_mb", "vo2peak_method", "vo2peak_window", "peak_within",
                       "hr_max_formula", "rer_criterion", "hr_criterion_pct",
                       "review_spread_ml_min", "profile")

    def __post_init__(self) -> None:
        for name in ("max_file_mb", "file_timeout_s", "file_memory_mb"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)!r}")
        for name in ("partition_size", "workers", "retries"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be 0 or more, got {getattr(self, name)!r}")
        if self.backups_keep < 1:
            raise ValueError(f"backups_keep must be at least 1, got {self.backups_keep!r}")
        if self.ship_files not in SHIP_FILES:
            raise ValueError(f"ship_files must be one of {', '.join(SHIP_FILES)}, "
                             f"got {self.ship_files!r}")
        for name, choices in (("vo2peak_method", METHODS), ("peak_within", PEAK_WITHIN),
                              ("hr_max_formula", tuple(HR_MAX_FORMULAS))):
            if getattr(self, name) not in choices:
                raise ValueError(f"{name} must be one of {', '.join(choices)}, "
                                 f"got {getattr(self, name)!r}")
        if not 1.0 <= self.rer_criterion <= 1.5:
            raise ValueError(f"rer_criterion must be 1.0 to 1.5, got {self.rer_criterion!r}")
        if not self.review_spread_ml_min > 0:
            raise ValueError(f"review_spread_ml_min must be positive, "
                             f"got {self.review_spread_ml_min!r}")
        if not 50.0 <= self.hr_criterion_pct <= 100.0:
            raise ValueError(f"hr_criterion_pct must be 50 to 100, "
                             f"got {self.hr_criterion_pct!r}")
        if not 1 <= self.vo2peak_window <= 600:
            raise ValueError(f"vo2peak_window must be 1 to 600 (s or breaths), "
                             f"got {self.vo2peak_window!r}")
        if self.job_expiry_days is not None and not self.job_expiry_days > 0:
            raise ValueError(f"job_expiry_days must be positive or None, "
                             f"got {self.job_expiry_days!r}")
        if self.profile is not None:
            from .io import ColumnMapping
            ColumnMapping.from_dict(self.profile)  # raises naming what is wrong

    @property
    def max_file_bytes(self) -> int:
        """:attr:`max_file_mb` in bytes (1 MB = 10^6 bytes, as in ``cpet-nb analyze``)."""
        return int(self.max_file_mb * 1_000_000)

    @classmethod
    def load(cls, config: str | os.PathLike | None = None,
             environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Settings from defaults < config file < environment < ``overrides``.

        Parameters
        ----------
        config : str or path-like, optional
            A TOML file with a ``[cpet_nb]`` table (default: ``$CPET_NB_CONFIG`` if set).
        environ : mapping, optional
            Environment to read ``CPET_NB_*`` variables from (default ``os.environ``).
        **overrides
            Field values; ``None`` values are ignored. ``profile`` may be a saved profile's
            name, a :class:`~cpet_nb.ColumnMapping` or its dictionary.

        Raises
        ------
        ValueError
            Naming the unknown field, the source and the bad value.
        """
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        config = config or environ.get(CONFIG_ENV)
        if config:
            values.update(_from_config(Path(config)))
        values.update(_from_environ(environ))
        values.update({k: v for k, v in overrides.items() if v is not None})
        unknown = sorted(set(values) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(f"unknown setting(s): {', '.join(unknown)}")
        if "profile" in values:
            values["profile"] = _profile_dict(values["profile"])
        return cls(**values)

    def replace(self, **changes: Any) -> Settings:
        """A copy with ``changes`` (validated)."""
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary (what a job records)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Settings:
        """Settings from :meth:`to_dict`'s form; unknown keys (from newer versions) ignored."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def peak_options(self) -> dict[str, Any]:
        """Keyword arguments of :func:`cpet_nb.physiology.measures.peak_measures`."""
        return {"method": self.vo2peak_method, "window": self.vo2peak_window,
                "within": self.peak_within, "hr_max_formula": self.hr_max_formula,
                "rer_min": self.rer_criterion, "hr_pct_min": self.hr_criterion_pct}

    def analysis_key(self, model_version: str, participants_sha256: str | None = None) -> str:
        """A digest of what makes results comparable: the analysis settings, the model,
        cpet_nb's version and the participants table (its sha256) if one is used. Equal keys
        and equal file contents give equal results."""
        from . import __version__

        basis = {name: getattr(self, name) for name in self.ANALYSIS_FIELDS}
        basis.update(model=model_version, cpet_nb=__version__, participants=participants_sha256)
        text = json.dumps(basis, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@cache
def _field_types() -> dict[str, type]:
    return {f.name: type(getattr(Settings(), f.name)) for f in fields(Settings)}


def _convert(name: str, value: Any, source: str) -> Any:
    """``value`` as the type of field ``name``; ValueError naming ``source`` if impossible."""
    kinds = _field_types()
    if name not in kinds:
        raise ValueError(f"unknown setting {name!r} in {source}")
    kind = kinds[name]
    if name == "job_expiry_days":
        kind = float
    try:
        if kind is bool:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        if kind is int:
            number = float(value)
            if number != int(number):
                raise ValueError(value)
            return int(number)
        if kind is float:
            return float(value)
        return value if name == "profile" else str(value)
    except (TypeError, ValueError):
        raise ValueError(f"setting {name!r} in {source}: expected {kind.__name__}, "
                         f"got {value!r}") from None


def _from_config(path: Path) -> dict[str, Any]:
    try:
        with open_regular(path) as stream:  # never a FIFO: it would block
            document = tomllib.load(stream)
    except FileNotFoundError:
        raise ValueError(f"config file {path} does not exist") from None
    except NotRegularFile as exc:
        raise ValueError(f"config file {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"config file {path} is not valid TOML: {exc}") from None
    table = document.get("cpet_nb")
    if not isinstance(table, dict):
        raise ValueError(f"config file {path} has no [cpet_nb] table")
    return {k: _convert(k, v, f"config file {path}") for k, v in table.items()}


def _from_environ(environ: Mapping[str, str]) -> dict[str, Any]:
    out = {}
    for key, value in environ.items():
        if key.startswith(ENV_PREFIX) and key != CONFIG_ENV:
            name = key[len(ENV_PREFIX):].lower()
            if name in _field_types():
                out[name] = _convert(name, value, f"environment variable {key}")
    return out


def _profile_dict(profile: Any) -> dict[str, Any] | None:
    from .io import ColumnMapping
    from .io.profiles import load_profile

    if profile is None or isinstance(profile, dict):
        return profile
    if isinstance(profile, ColumnMapping):
        return profile.to_dict()
    return load_profile(str(profile)).to_dict()
