"""JSON report: the full ``ScanReport.as_dict()``, stable and diffable."""

import json
import math
import numbers
from typing import Any, TextIO

from forensics_scan.results import ScanReport


def _finite(value: Any) -> Any:
    """Copy of ``value`` with NaN/inf as None and numpy scalars as plain numbers.

    JSON has no NaN, and ``allow_nan=False`` would otherwise abort the whole report
    after a long scan because of one degenerate score.
    """
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        value = float(value)
        return value if math.isfinite(value) else None
    return value


def write_json(report: ScanReport, handle: TextIO) -> None:
    """Write ``report.as_dict()`` as indented JSON with sorted keys.

    Non-finite numbers become ``null``; any other value JSON cannot represent (a
    ``pathlib.Path`` in ``settings``, say) is written as its string form.
    """
    json.dump(
        _finite(report.as_dict()), handle, sort_keys=True, indent=2, allow_nan=False, default=str
    )
    handle.write("\n")
