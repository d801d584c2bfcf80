"""The package's layers: no module imports from a layer above its own (README, "Layout").

Read from the source with ``ast``, every import (also those inside functions) resolved to a
module of the package. The settings check and the workflow's planning import no torch.
"""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "grokmap"

# Bottom to top; a module may import its own layer and those below.
LAYERS = [
    ("io", "machine", "cache"),  # files and the machine
    ("training",),  # tasks, models and their kinds, specs, engines, the loop (nothing of the workflow)
    ("lattice",),  # the values a sweep axis takes (scales, refinement's lattice)
    ("settings",),  # params.yaml and config.yaml read and checked
    ("analysis",),  # records -> phases, figures, report, explorer, validation
    ("results", "cli"),  # reading finished results; `python -m grokmap`
    ("jobs",),  # what the workflow's rules run
    ("__init__", "__main__"),
]


def layer_of(module: str) -> int:
    top = module.split(".")[0]
    for i, names in enumerate(LAYERS):
        if top in names:
            return i
    raise AssertionError(f"grokmap.{module} is in no layer of {__file__}")


def imports(path: Path, package: Path = PACKAGE) -> list[tuple[str, int]]:
    """(module below grokmap, line) of every import of the package in a file."""
    here = list(path.relative_to(package).parts[:-1])
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[:len(here) - (node.level - 1)] if node.level > 1 else here
                target = ".".join(base + ([node.module] if node.module else []))
            elif node.module and node.module.startswith("grokmap"):
                target = node.module[len("grokmap."):]
            else:
                continue
            # `from . import x` names modules; `from .m import x` names what m holds
            names = [target] if node.module else [f"{target}.{a.name}".lstrip(".") for a in node.names]
            out += [(t, node.lineno) for t in names if t]
        elif isinstance(node, ast.Import):
            out += [(a.name[len("grokmap."):], node.lineno) for a in node.names if a.name.startswith("grokmap.")]
    return out


def test_no_module_imports_from_a_layer_above_it():
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        own = path.relative_to(PACKAGE).with_suffix("").as_posix().replace("/", ".")
        for target, line in imports(path):
            if layer_of(target) > layer_of(own):
                wrong.append(f"grokmap.{own} (layer {layer_of(own)}) imports grokmap.{target} "
                             f"(layer {layer_of(target)}) at line {line}")
    assert not wrong, "\n".join(wrong)


def test_the_layer_check_sees_an_upward_import(tmp_path):
    """The check above can fail: imports from settings up into jobs, in each spelling, are read."""
    probe = tmp_path / "settings" / "probe.py"
    probe.parent.mkdir()
    probe.write_text("from ..jobs.cluster import cell_flops\n"
                     "def f():\n    from ..jobs import cluster\n    import grokmap.analysis.plots\n")
    found = imports(probe, tmp_path)
    assert sorted(found, key=lambda t: t[1]) == [("jobs.cluster", 1), ("jobs", 3), ("analysis.plots", 4)]
    assert all(layer_of(t) > layer_of("settings") for t, _ in found)


@pytest.mark.parametrize("module", ["grokmap.settings", "grokmap.jobs.planning", "grokmap.jobs.plan",
                                    "grokmap.training.kinds"])
def test_parse_time_modules_import_no_torch(module):
    code = f"import sys, {module}; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(PACKAGE.parent)})
    assert out.stdout.strip() == "False"
