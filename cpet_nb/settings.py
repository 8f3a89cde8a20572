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
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from ._checks import check_choice
from .io._files import NotRegularFile, open_regular
from .io.end_tidal import PB_RANGE_MMHG
from .io.exports import CSV_DIALECTS
from .model import DEFAULT_MODEL, MODEL_NAMES
from .physiology.averaging import METHODS
from .physiology.effort import EFFORT_CONVENTIONS
from .physiology.measures import HR_MAX_FORMULAS, PEAK_WITHIN, VO2PEAK_WINDOW_S
from .physiology.uncertainty import REVIEW_UNCERTAINTY_ML_MIN

ENV_PREFIX = "CPET_NB_"
CONFIG_ENV = "CPET_NB_CONFIG"
SHIP_FILES = ("auto", "path", "bytes")
#: Groups of settings, in the order a panel shows them.
GROUPS = ("analysis", "limits", "engine", "store")


@dataclass(frozen=True)
class Option:
    """How one setting is declared: its type, bounds or choices, unit, help and group.

    Validation, conversion from TOML and environment text, the analysis key, the invalid
    value tests and the panel's controls all read these declarations
    (:func:`Settings.options`); nothing else lists the settings.

    Attributes
    ----------
    kind : type
        ``float``, ``int``, ``bool``, ``str``, ``dict`` or ``list`` (one or more distinct
        ``choices``, held as a tuple; from the environment, comma-separated).
    help : str
        One sentence for a person (shown in docs, ``--help`` and the panel).
    unit : str
        Unit of a number (``"s"``, ``"MB"``, ``"mL/min"``), empty for none.
    choices : tuple of str, optional
        The allowed values of a ``str`` setting, or of each element of a ``list`` setting.
    low, high : float, optional
        Bounds of a number (inclusive unless ``low_open``).
    low_open : bool
        The value must be strictly above ``low`` (``low=0, low_open=True``: positive).
    optional : bool
        ``None`` is allowed (and means "not set").
    analysis : bool
        The setting changes results, so it is part of :meth:`Settings.analysis_key`.
    group : str
        One of :data:`GROUPS`.
    """

    kind: type
    help: str
    unit: str = ""
    choices: tuple[str, ...] | None = None
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    optional: bool = False
    analysis: bool = False
    group: str = "engine"

    def describe(self) -> str:
        """What a valid value is, in words (``"1 to 600 s"``, ``"one of a, b"``)."""
        unit = f" ({self.unit})" if self.unit else ""
        if self.kind is list:
            return f"one or more of {', '.join(self.choices or ())}"
        if self.choices is not None:
            return f"one of {', '.join(self.choices)}"
        if self.kind is bool:
            return "true or false"
        if self.kind is dict:
            return "a mapping"
        if self.low is not None and self.high is not None:
            return f"{self.low:g} to {self.high:g}{unit}"
        if self.low is not None:
            if self.low_open:
                return ("positive" if self.low == 0 else f"above {self.low:g}") + unit
            return ("0 or more" if self.low == 0 else f"at least {self.low:g}") + unit
        return self.kind.__name__ + unit

    def json_schema(self) -> dict[str, Any]:
        """The JSON Schema (OpenAPI 3.0) of a valid value, e.g. for the server's document.

        >>> Settings.options()["rer_criterion"].json_schema()["maximum"]
        1.5
        """
        if self.kind is list:
            schema: dict[str, Any] = {"type": "array", "minItems": 1, "uniqueItems": True,
                                      "items": {"type": "string", "enum": list(self.choices)}}
        else:
            schema = {"type": {float: "number", int: "integer", bool: "boolean", str: "string",
                               dict: "object"}[self.kind]}
        if self.choices is not None and self.kind is str:
            schema["enum"] = list(self.choices)
        if self.low is not None:
            schema["minimum"] = self.low
            if self.low_open:
                schema["exclusiveMinimum"] = True
        if self.high is not None:
            schema["maximum"] = self.high
        if self.optional:
            schema["nullable"] = True
        unit = f" ({self.unit})" if self.unit else ""
        return schema | {"description": self.help + unit}

    def check(self, name: str, value: Any) -> None:
        """Raise ``ValueError`` naming ``name`` unless ``value`` is valid."""
        if value is None and self.optional:
            return
        if self.kind is list:
            self._check_list(name, value)
            return
        if self.choices is not None:
            check_choice(value, self.choices, name)
            return
        if self.kind in (int, float) and self.low is not None:
            below = value <= self.low if self.low_open else value < self.low
            if below or (self.high is not None and value > self.high):
                raise ValueError(f"{name} must be {self.describe()}"
                                 + (" or None" if self.optional else "") + f", got {value!r}")

    def _check_list(self, name: str, value: Any) -> None:
        """Raise ``ValueError`` unless ``value`` is a non-empty tuple of distinct choices."""
        problem = self._list_problem(value)
        if problem:
            raise ValueError(f"{name} must be {self.describe()}, each at most once; "
                             f"got {value!r} ({problem})")

    def _list_problem(self, value: Any) -> str | None:
        """What is wrong with ``value`` as a ``list`` setting, or None."""
        if not isinstance(value, tuple):
            return "it is not a list"
        if not value:
            return "it is empty"
        for element in value:
            if element not in (self.choices or ()):
                return f"{element!r} is not one"
            if value.count(element) > 1:
                return f"{element!r} is repeated"
        return None

    def normalize(self, value: Any) -> Any:
        """``value`` in the form the setting holds: a list given to a ``list`` setting
        becomes a tuple; anything else is unchanged (:meth:`check` judges it)."""
        if self.kind is list and isinstance(value, list):
            return tuple(value)
        return value

    def convert(self, name: str, value: Any, source: str) -> Any:
        """``value`` (TOML or environment text) as this setting's type; ``ValueError``
        naming ``source`` when it cannot be."""
        try:
            if self.kind is bool:
                if isinstance(value, bool):
                    return value
                text = str(value).strip().lower()
                if text in ("1", "true", "yes", "on"):
                    return True
                if text in ("0", "false", "no", "off"):
                    return False
                raise ValueError(value)
            if self.kind is int:
                number = float(value)
                if number != int(number):
                    raise ValueError(value)
                return int(number)
            if self.kind is float:
                return float(value)
            if self.kind is list:
                if isinstance(value, str):
                    return tuple(part.strip() for part in value.split(",") if part.strip())
                if not isinstance(value, list):
                    raise ValueError(value)
                return tuple(value)
            return value if self.kind is dict else str(value)
        except (TypeError, ValueError):
            expected = "a list" if self.kind is list else self.kind.__name__
            raise ValueError(f"setting {name!r} in {source}: expected {expected}, "
                             f"got {value!r}") from None


def _setting(default: Any, **option: Any) -> Any:
    """A dataclass field with its :class:`Option` (the one place a setting is declared)."""
    return field(default=default, metadata={"option": Option(**option)})


@dataclass(frozen=True)
class Settings:
    """How a batch runs and how its files are analysed. Validated on construction.

    Every field is declared once, with its :class:`Option` (type, bounds or choices, unit,
    help, group): :meth:`options` lists them, :meth:`markdown_table` renders them (the table
    in ``docs/batch.md``), and the attributes below are written from them.
    """

    # -- analysis: change results (part of the analysis key)
    vo2peak_method: str = _setting(
        "time-moving", kind=str, choices=METHODS, analysis=True, group="analysis",
        help="Averaging of every peak value (Nolte et al. 2023): a moving time window, "
             "time bins, or a moving window of breaths.")
    vo2peak_window: int = _setting(
        VO2PEAK_WINDOW_S, kind=int, low=1, high=600, unit="s or breaths", analysis=True,
        group="analysis", help="Length of the peak averaging window (s; breaths for "
                               "breath-moving).")
    peak_within: str = _setting(
        "exercise", kind=str, choices=PEAK_WITHIN, analysis=True, group="analysis",
        help="Take peaks from the exercise phase only (recovery cannot raise RERpeak), or "
             "from the whole recording as Nolte et al. 2023.")
    hr_max_formula: str = _setting(
        "fox", kind=str, choices=tuple(HR_MAX_FORMULAS), analysis=True, group="analysis",
        help="Age-predicted maximal HR for the effort criterion: fox (220 - age) or tanaka "
             "(208 - 0.7 age).")
    rer_criterion: float = _setting(
        1.10, kind=float, low=1.0, high=1.5, analysis=True, group="analysis",
        help="Maximal-effort criterion: RERpeak at or above this.")
    hr_criterion_pct: float = _setting(
        90.0, kind=float, low=50.0, high=100.0, unit="%", analysis=True, group="analysis",
        help="Maximal-effort criterion: HRpeak at or above this share of the age-predicted "
             "maximum.")
    effort_convention: str = _setting(
        EFFORT_CONVENTIONS[0], kind=str, choices=EFFORT_CONVENTIONS, analysis=True,
        group="analysis",
        help="Which criteria make a maximal effort (effort_met, review_effort): a VO2 plateau "
             "or else both RER and HR criteria (Howley et al. 1995), both secondary criteria, "
             "the plateau alone, or off (docs/measures.md).")
    review_uncertainty_ml_min: float = _setting(
        REVIEW_UNCERTAINTY_ML_MIN, kind=float, low=0.0, low_open=True, unit="mL/min",
        analysis=True, group="analysis",
        help="Flag a test for review when the uncertainty of its VT1 or VT2 is above this "
             "(chosen on the odd half of pyoxynet's labelled tests to flag at most 33 % of them; "
             "docs/accuracy.md).")
    barometric_pressure_mmhg: float | None = _setting(
        None, kind=float, optional=True, low=PB_RANGE_MMHG[0], high=PB_RANGE_MMHG[1],
        unit="mmHg", analysis=True, group="analysis",
        help="The lab's barometric pressure, for files that give end-tidal fractions but no "
             "pressure (ZAN): PetO2 and PetCO2 are derived from it unless the file or a "
             "participants-table column gives the test's own.")
    models: tuple[str, ...] = _setting(
        (DEFAULT_MODEL,), kind=list, choices=MODEL_NAMES, analysis=True, group="analysis",
        help="pyoxynet's models to run (docs/model.md): each gets its own thresholds "
             "(vt1_<name>_time_s, ...; the CNN's are vt1_time_s, ...); with several, their "
             "averaged domain curves (the ensemble) are the model's vote in the consensus.")
    model_vote_lag: bool = _setting(
        True, kind=bool, analysis=True, group="analysis",
        help="In the consensus, the CNN run alone votes earlier by its median lateness against "
             "pyoxynet's labelled tests (VT1 95 s, VT2 45 s; measured on the odd half, "
             "docs/accuracy.md); False: it votes at its own thresholds. Its reported "
             "thresholds are never moved.")
    profile: dict[str, Any] | None = _setting(
        None, kind=dict, optional=True, analysis=True, group="analysis",
        help="A column mapping (ColumnMapping.to_dict) for files no built-in reader knows; "
             "Settings.load(profile='name') reads a saved lab profile.")
    # -- limits: what a file may be
    max_file_mb: float = _setting(
        10.0, kind=float, low=0.0, low_open=True, unit="MB", analysis=True, group="limits",
        help="Larger input files are refused (finding file-too-large; the other limits on "
             "what is read: docs/api.md); 1 MB = 10^6 bytes.")
    file_timeout_s: float = _setting(
        60.0, kind=float, low=0.0, low_open=True, unit="s", group="limits",
        help="Wall time one file may take on a worker before it is stopped (finding "
             "file-timeout); the other files go on.")
    file_memory_mb: float = _setting(
        2048.0, kind=float, low=0.0, low_open=True, unit="MiB", group="limits",
        help="Memory one file's analysis may allocate on top of what the analysis process "
             "holds (enforced on Linux) before it is stopped (finding file-memory-limit).")
    # -- engine: how and where files are analysed
    partition_size: int = _setting(
        0, kind=int, low=0, unit="files", group="engine",
        help="Files per dask task; 0 chooses from the batch and cluster size (up to 25 "
             "files, at least 4 tasks per worker thread).")
    workers: int = _setting(
        0, kind=int, low=0, unit="workers", group="engine",
        help="Workers of the embedded cluster, each with one thread and one analysis "
             "process; 0 means one per CPU core (ignored with an existing scheduler).")
    dashboard: bool = _setting(
        False, kind=bool, group="engine",
        help="Start the embedded cluster with dask's dashboard (the panel links to it). Off "
             "by default: it imports Bokeh's server into this process as the cluster starts "
             "(about 0.4 s and 20 MiB). Used when the embedded cluster starts; a cluster "
             "or scheduler of your own keeps its own dashboard.")
    retries: int = _setting(
        1, kind=int, low=0, group="engine",
        help="Retries of a partition after an unexpected failure; a partition whose worker "
             "died is then split so that one bad file cannot sink the others.")
    ship_files: str = _setting(
        "auto", kind=str, choices=SHIP_FILES, group="engine",
        help="How workers get the files: path (a shared file system), bytes (each task "
             "carries its files) or auto (path when every worker runs on this machine).")
    # -- store: what is kept
    keep_uploads: bool = _setting(
        False, kind=bool, group="store",
        help="Keep uploads and extracted archive members after their job ends (they are "
             "needed only to resume an unfinished job).")
    job_expiry_days: float | None = _setting(
        None, kind=float, optional=True, low=0.0, low_open=True, unit="days", group="store",
        help="cpet-nb store cleanup deletes jobs finished longer ago; None keeps them.")
    backups_keep: int = _setting(
        5, kind=int, low=1, unit="backups", group="store",
        help="Backups that cpet-nb store backup keeps.")
    csv_dialect: str = _setting(
        "comma", kind=str, choices=tuple(CSV_DIALECTS), group="store",
        help="CSV exports: comma (',' between values, decimal point, UTF-8) or semicolon "
             "(';' and a decimal comma, UTF-8 with a byte order mark: what Excel expects "
             "where 1,5 is written for 1.5).")

    def __post_init__(self) -> None:
        for name, option in self.options().items():
            object.__setattr__(self, name, option.normalize(getattr(self, name)))
            option.check(name, getattr(self, name))
        if self.profile is not None:
            from .io import ColumnMapping
            ColumnMapping.from_dict(self.profile)  # raises naming what is wrong

    @classmethod
    def options(cls) -> dict[str, Option]:
        """Every setting's :class:`Option`, in declaration order (grouped)."""
        return {f.name: f.metadata["option"] for f in fields(cls)}

    @classmethod
    def markdown_table(cls) -> str:
        """The settings as a Markdown table: name, default, valid values, meaning."""
        lines = ["| setting | group | default | valid | meaning |", "|---|---|---|---|---|"]
        defaults = cls()
        for name, option in cls.options().items():
            default = getattr(defaults, name)
            shown = "none" if default is None else json.dumps(default)
            valid = option.describe() + (" or none" if option.optional else "")
            lines.append(f"| `{name}` | {option.group} | `{shown}` | {valid} | {option.help} |")
        return "\n".join(lines)

    @classmethod
    def analysis_fields(cls) -> tuple[str, ...]:
        """The settings that change results (the rest change how fast or where)."""
        return tuple(name for name, option in cls.options().items() if option.analysis)

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
        from ._version import __version__

        basis = {name: getattr(self, name) for name in self.analysis_fields()}
        basis.update(model=model_version, cpet_nb=__version__, participants=participants_sha256)
        text = json.dumps(basis, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


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
            if name in Settings.options():
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


def _attributes_doc() -> str:
    """The numpydoc ``Attributes`` section of :class:`Settings`, from the declarations."""
    lines = ["", "    Attributes", "    ----------"]
    for name, option in Settings.options().items():
        kind = option.kind.__name__ + (", optional" if option.optional else "")
        lines += [f"    {name} : {kind}",
                  f"        {option.help} Valid: {option.describe()}."]
    return "\n".join(lines) + "\n"


Settings.__doc__ = (Settings.__doc__ or "") + _attributes_doc()


def _convert(name: str, value: Any, source: str) -> Any:
    """``value`` from ``source`` as the type of setting ``name``."""
    options = Settings.options()
    if name not in options:
        raise ValueError(f"unknown setting {name!r} in {source}")
    return options[name].convert(name, value, source)
