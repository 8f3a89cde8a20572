"""The installed version of cpet_nb (part of every analysis key)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("cpet-nb")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0+unknown"
