"""The layers of the code (docs/DESIGN.md): music → data → models → loading → pipeline → cli / server, with training
and the tools beside them; an import never points up, and generating with a model loads no training code."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import melodiff

PACKAGE = Path(melodiff.__file__).parent
LAYERS = {  # top-level module or package -> layer; lower layers never import higher ones
    "errors": 0, "utils": 0, "options": 0, "config": 0, "device": 0, "music": 0,
    "data": 1, "metrics": 1,
    "layers": 2, "vae": 2, "diffusion": 2, "baseline": 2,
    "loading": 3,
    "pipeline": 4,
    "evaluation": 5, "training": 5, "bundle": 5,
    "cli": 6, "server": 6,
}
TOOLS = {"melodiff.vae.magenta"}  # converts Magenta checkpoints: writes checkpoints as training does (layer 5)


def _layer(module: str) -> int:
    if module == "melodiff":
        return 0
    if module.endswith((".train", "_train")) or module in TOOLS:  # each model's trainer sits with the training loop
        return LAYERS["training"]
    return LAYERS[module.split(".")[1]]


def _imports() -> list[tuple[str, str]]:
    """(importer, imported) for every melodiff import in the package, at module level or inside functions."""
    edges = []
    for path in PACKAGE.rglob("*.py"):
        module = ".".join(("melodiff", *path.relative_to(PACKAGE).with_suffix("").parts)).removesuffix(".__init__")
        for node in ast.walk(ast.parse(path.read_text())):
            names = [node.module] if isinstance(node, ast.ImportFrom) and node.module else \
                [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
            edges += [(module, name) for name in names if name.split(".")[0] == "melodiff"]
    return edges


def test_every_module_has_a_layer() -> None:
    edges = _imports()
    assert len(edges) > 100
    for importer, imported in edges:
        _layer(importer), _layer(imported)  # a new top-level module must be given a layer above


def test_no_import_points_up() -> None:
    upward = [(a, b) for a, b in _imports() if _layer(b) > _layer(a)]
    assert upward == []


GENERATE = """
import json, sys
from melodiff import Pipeline
Pipeline.from_pretrained().generate(4, 1, seed=0)
from melodiff.cli import main
main(["-q", "generate", "--bars", "2", "--seed", "1", "--out", sys.argv[1]])
print(json.dumps(sorted(m for m in sys.modules if m.startswith("melodiff"))))
print(json.dumps("verovio" in sys.modules))
"""


def test_generating_loads_no_training_code(tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, "-c", GENERATE, str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    loaded, verovio = map(json.loads, run.stdout.splitlines()[-2:])
    assert "melodiff.pipeline" in loaded and "melodiff.loading" in loaded
    training = [m for m in loaded if _layer(m) >= LAYERS["training"] and m != "melodiff.cli"]
    assert training == []
    assert "melodiff.music.notation" not in loaded and not verovio  # --sheet costs nothing when not asked for
    assert (tmp_path / "sample_000.mid").is_file()
