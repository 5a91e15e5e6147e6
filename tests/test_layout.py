"""The package's rooms import downwards only: reports < stages < tasks, launch; the core never imports them."""

from __future__ import annotations

import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "lth_lightning"
RANK = {"reports": 1, "stages": 2, "tasks": 3, "launch": 3}  # a room may import rooms of a lower rank only
CORE = ("attacks", "callbacks", "data", "models", "modules", "pruning")  # below every room


def _imports(path: Path) -> set[str]:
    """Top-level lth_lightning subpackages a file imports, lazily inside functions too."""
    return set(re.findall(r"(?:from|import) lth_lightning\.(\w+)", path.read_text()))


def test_rooms_import_downwards_only():
    wrong = []
    for path in PACKAGE.rglob("*.py"):
        room = path.relative_to(PACKAGE).parts[0]
        for target in _imports(path):
            if room in RANK and target in RANK and target != room and RANK[target] >= RANK[room]:
                wrong.append(f"{room}/{path.name} imports {target}")
            if room in CORE and target in RANK:
                wrong.append(f"{room}/{path.name} imports {target}")
    assert not wrong, wrong


def test_every_room_exists_and_pipelines_is_gone():
    assert all((PACKAGE / room / "__init__.py").exists() for room in RANK)
    assert not (PACKAGE / "pipelines").exists()


def test_each_bench_is_a_module_of_its_own_and_main_only_dispatches():
    """#25: a reader finds a bench by its name, benches/<name>.py, with run(args); __main__ parses and dispatches."""
    import importlib
    from pathlib import Path

    from benches.__main__ import ALL, BENCHES

    root = Path(__file__).resolve().parents[1] / "benches"
    assert set(ALL) <= set(BENCHES)
    for name in BENCHES:
        module = importlib.import_module(f"benches.{name}")
        assert callable(module.run) and (root / f"{name}.py").is_file(), name
    main = (root / "__main__.py").read_text()
    assert main.count("\ndef ") == 1 and len(main.splitlines()) < 60  # main() alone
