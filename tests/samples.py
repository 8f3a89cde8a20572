"""The real exports in ``../shared/cpet-samples``: read in place, never copied into the project."""

from pathlib import Path

import pytest

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "cpet-samples"


def sample(relative: str) -> Path:
    """``SAMPLES / relative``; skips the calling test when the samples folder is absent."""
    if not SAMPLES.is_dir():
        pytest.skip(f"real CPET samples not available ({SAMPLES})")
    return SAMPLES / relative


def visible_metadata(metadata) -> str:
    """Everything a record's metadata shows, without its sha256 (whose hex digits could
    contain any short number a privacy check looks for)."""
    from dataclasses import replace

    return repr(replace(metadata, source_sha256=None))
