"""Make torchvision's pure-Python parts importable when its C++ ops cannot load.

The PyPI torchvision wheel is a CUDA build. Against a CPU-only torch its ``_C`` extension fails to load,
and ``import torchvision`` then dies registering fake kernels for ops that were never defined
("operator torchvision::nms does not exist"). torchmetrics and lightning import torchvision, so the
whole stack goes down with it. We only need datasets and transforms, so when -- and only when -- that
exact failure happens, we define the two op schemas torchvision's import touches and import it again.
A healthy install is never modified: the first, untouched import succeeds and we return.
"""

from __future__ import annotations

import sys

import torch

_SCHEMAS = {
    "nms": "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms": "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
}
_LIBRARY: torch.library.Library | None = None  # kept alive: dropping it unregisters the schemas
PATCHED = False


def _is_missing_op_error(err: BaseException) -> bool:
    return isinstance(err, RuntimeError) and "torchvision::" in str(err) and "does not exist" in str(err)


def _define_missing_schemas() -> None:
    global _LIBRARY
    _LIBRARY = torch.library.Library("torchvision", "DEF")
    for schema in _SCHEMAS.values():
        _LIBRARY.define(schema)


def ensure_torchvision() -> bool:
    """Import torchvision, patching missing op schemas if its C++ extension failed to load.

    Returns True when the patch was needed (the C++ ops are then unavailable; nms would raise).
    """
    global PATCHED
    if "torchvision" in sys.modules and not PATCHED:
        return False
    try:
        import torchvision
        return PATCHED
    except RuntimeError as err:
        if not _is_missing_op_error(err):
            raise
    for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
        del sys.modules[name]
    _define_missing_schemas()
    import torchvision  # noqa: F401

    PATCHED = True
    return True
