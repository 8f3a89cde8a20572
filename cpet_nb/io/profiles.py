"""Lab profiles: column mappings saved under a name and reused.

A profile is a :class:`~cpet_nb.io.generic.ColumnMapping` stored as one JSON file,
``<name>.json``, in the profiles folder, which is, in this order:

1. the ``folder`` given to a function;
2. ``$CPET_NB_PROFILES`` when set;
3. ``$XDG_CONFIG_HOME/cpet_nb/profiles`` when ``XDG_CONFIG_HOME`` is an absolute path;
4. ``~/.config/cpet_nb/profiles``.

A name is 1 to 64 ASCII letters, digits, ``-`` and ``_``, so it always names a file in that
folder, never a path elsewhere. The file holds the format version and the mapping as
:meth:`~cpet_nb.io.generic.ColumnMapping.to_dict` writes it::

    {"cpet_nb_profile": 1,
     "mapping": {"channels": {"t": {"column": "Zeit", "unit": "clock"}, ...},
                 "delimiter": ";", "decimal": ",", ...}}

Loading validates the mapping as its constructor does; a profile that is missing, is not
JSON or is not a valid mapping raises ``ValueError`` saying which and why.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from .exports import atomic_path
from .generic import ColumnMapping

#: Environment variable that names the profiles folder.
PROFILES_ENV = "CPET_NB_PROFILES"
#: Version of the profile file format written by :func:`save_profile`.
PROFILE_VERSION = 1

_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


def profiles_folder(folder: str | os.PathLike | None = None) -> Path:
    """The folder profiles are stored in (see the module docstring); it may not exist yet."""
    if folder is not None:
        return Path(folder)
    if os.environ.get(PROFILES_ENV):
        return Path(os.environ[PROFILES_ENV])
    config = os.environ.get("XDG_CONFIG_HOME", "")
    base = Path(config) if os.path.isabs(config) else Path.home() / ".config"
    return base / "cpet_nb" / "profiles"


def save_profile(name: str, mapping: ColumnMapping,
                 folder: str | os.PathLike | None = None) -> Path:
    """Save ``mapping`` as profile ``name``, replacing a profile of that name.

    Parameters
    ----------
    name : str
        1 to 64 letters, digits, ``-`` or ``_``.
    mapping : ColumnMapping
    folder : str or path-like, optional
        Defaults to :func:`profiles_folder`; created when missing.

    Returns
    -------
    Path
        The profile's file.

    Raises
    ------
    ValueError
        If ``name`` is not a valid profile name.
    """
    _check_name(name)
    if not isinstance(mapping, ColumnMapping):
        raise TypeError(f"expected a ColumnMapping, not {type(mapping).__name__}")
    directory = profiles_folder(folder)
    directory.mkdir(parents=True, exist_ok=True)
    text = json.dumps({"cpet_nb_profile": PROFILE_VERSION, "mapping": mapping.to_dict()},
                      indent=2, ensure_ascii=False)
    path = directory / f"{name}.json"
    with atomic_path(path) as tmp:  # a reader never sees half a profile
        tmp.write_text(text + "\n", encoding="utf-8")
    return path


def load_profile(name: str, folder: str | os.PathLike | None = None) -> ColumnMapping:
    """The column mapping saved as profile ``name``.

    Raises
    ------
    ValueError
        If ``name`` is not a valid name, no such profile exists (the message lists the
        known ones), or its file is not a valid profile (the message says why).
    """
    _check_name(name)
    directory = profiles_folder(folder)
    path = directory / f"{name}.json"
    if not path.is_file():
        known = ", ".join(list_profiles(directory)) or "none"
        raise ValueError(f"no profile named {name!r} in {directory}; known profiles: {known}")
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"profile {name!r} ({path}) is not valid JSON: {exc}") from None
    if not isinstance(content, dict) or not {"cpet_nb_profile", "mapping"} <= set(content):
        raise ValueError(f"profile {name!r} ({path}) is not a cpet_nb profile: expected an "
                         "object with 'cpet_nb_profile' and 'mapping'")
    if content.get("cpet_nb_profile") != PROFILE_VERSION:
        raise ValueError(f"profile {name!r} ({path}) has format version "
                         f"{content.get('cpet_nb_profile')!r}; this cpet_nb reads version "
                         f"{PROFILE_VERSION}")
    try:
        return ColumnMapping.from_dict(content["mapping"])
    except ValueError as exc:
        raise ValueError(f"profile {name!r} ({path}) is not a valid column mapping: "
                         f"{exc}") from None


def list_profiles(folder: str | os.PathLike | None = None) -> list[str]:
    """Names of the saved profiles, sorted; ``[]`` when the folder does not exist."""
    directory = profiles_folder(folder)
    if not directory.is_dir():
        return []
    return sorted(path.stem for path in directory.glob("*.json")
                  if path.is_file() and _NAME.fullmatch(path.stem))


def _check_name(name: str) -> None:
    """ValueError unless ``name`` is 1 to 64 ASCII letters, digits, ``-`` or ``_``."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(f"profile name {name!r} is not valid: use 1 to 64 letters, digits, "
                         "'-' or '_' (no paths, dots or spaces)")
