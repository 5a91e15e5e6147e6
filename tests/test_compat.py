"""The torchvision shim patches only the specific missing-op failure, never a healthy install."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import lth_lightning._compat as compat


def _run_with_fake_torchvision(tmp_path: Path, body: str) -> subprocess.CompletedProcess:
    pkg = tmp_path / "fake" / "torchvision"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(textwrap.dedent(body))
    script = textwrap.dedent(f"""
        import sys; sys.path.insert(0, {str(tmp_path / 'fake')!r})
        import importlib.util
        spec = importlib.util.spec_from_file_location("compat", {compat.__file__!r})
        compat = importlib.util.module_from_spec(spec); spec.loader.exec_module(compat)
        print("patched", compat.ensure_torchvision())
    """)
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)


def test_healthy_install_is_left_alone(tmp_path):
    out = _run_with_fake_torchvision(tmp_path, "VERSION = 'healthy'\n")
    assert out.returncode == 0, out.stderr
    assert "patched False" in out.stdout


def test_missing_op_failure_is_patched(tmp_path):
    # Mimics the CUDA wheel on CPU torch: the import fails unless the nms schema exists.
    body = """
        import torch
        try:
            torch.ops.torchvision.nms.default
        except (AttributeError, RuntimeError):
            raise RuntimeError("operator torchvision::nms does not exist")
    """
    out = _run_with_fake_torchvision(tmp_path, body)
    assert out.returncode == 0, out.stderr
    assert "patched True" in out.stdout


def test_other_import_errors_propagate(tmp_path):
    out = _run_with_fake_torchvision(tmp_path, "raise RuntimeError('something else entirely')\n")
    assert out.returncode != 0
    assert "something else entirely" in out.stderr


def test_real_torchvision_works_here():
    """On this install the shim leaves torchvision usable: a transform runs and lightning sees it."""
    import numpy as np
    import torch
    from lightning.pytorch.utilities.imports import _TORCHVISION_AVAILABLE
    from torchvision import datasets, transforms

    image = transforms.ToTensor()(np.full((4, 4, 1), 255, dtype=np.uint8))
    assert torch.equal(image, torch.ones(1, 4, 4))
    assert issubclass(datasets.MNIST, torch.utils.data.Dataset)
    assert bool(_TORCHVISION_AVAILABLE)
