"""The habits that keep the project healthy: one dependency list, clean notebooks, CI."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent


def _name(req: str) -> str:
    name = re.split(r"[<>=!~\[ ;]", req.strip(), maxsplit=1)[0]
    return name.lower().replace("_", "-")


#: PyPI name -> conda-forge name, where they differ (conda-forge's "igraph" is the C library)
CONDA_NAMES = {"igraph": "python-igraph"}


def _spec(req: str) -> str:
    spec = re.sub(r"\[.*?\]", "", req).replace(" ", "").lower().replace("_", "-")
    name = _name(spec)
    return CONDA_NAMES.get(name, name) + spec[len(name) :]


def test_environment_yml_lists_the_same_dependencies_as_pyproject():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    deps = project["dependencies"] + [
        r for extra in project["optional-dependencies"].values() for r in extra
    ]
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    conda = [d for d in conda if _name(d) not in ("python", "pip")]
    assert sorted(map(_spec, deps)) == sorted(map(_spec, conda))
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert "-e ." in pip
    assert "python=3.11" in env["dependencies"]


def test_lock_file_pins_every_dependency():
    lock = tomllib.loads((REPO / "uv.lock").read_text())
    locked = {p["name"].lower() for p in lock["package"]}
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    for req in project["dependencies"] + [
        r for extra in project["optional-dependencies"].values() for r in extra
    ]:
        assert _name(req) in locked, f"{req} missing from uv.lock: run `make lock`"


def test_notebooks_are_committed_without_outputs():
    notebooks = sorted((REPO / "notebooks").glob("*.ipynb"))
    assert notebooks, "no notebooks found"
    for nb_path in notebooks:
        nb = json.loads(nb_path.read_text())
        for i, cell in enumerate(nb["cells"]):
            if cell["cell_type"] != "code":
                continue
            assert not cell.get("outputs"), f"{nb_path.name} cell {i} has outputs: strip them"
            assert cell.get("execution_count") is None, f"{nb_path.name} cell {i} was executed"


def test_every_notebook_has_one_parameters_cell():
    for nb_path in sorted((REPO / "notebooks").glob("*.ipynb")):
        nb = json.loads(nb_path.read_text())
        tagged = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
        assert len(tagged) == 1, nb_path.name
        assert "ENGAGEMENT" in "".join(tagged[0]["source"])


def test_ci_runs_the_readme_test_command():
    ci = (REPO / ".ci" / "run").read_text()
    readme = (REPO / "README.md").read_text()
    assert "make test" in ci and "make test" in readme and "make demo" in readme


def test_ruff_is_configured_and_run_by_make_test():
    assert "[tool.ruff" in (REPO / "pyproject.toml").read_text()
    makefile = (REPO / "Makefile").read_text()
    test_target = makefile.split("\ntest:")[1].split("\n\n")[0]
    assert "lint" in test_target
    assert "ruff check" in makefile and "ruff format --check" in makefile
