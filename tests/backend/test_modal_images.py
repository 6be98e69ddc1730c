"""Each Modal function and class can import what its code imports with only its image's packages installed.

A container has the standard library, the packages its image installs (and what they depend on), Modal's own
client, and `backend/` (added as local source). A test per function/class runs a fresh interpreter whose import
system refuses every other top-level module, then imports `backend.modal_app` (what the container does first)
and every module the function's code imports, following `backend` modules to what they import, lazy imports
included. What the image installs is read from the image's own build commands, and what a package brings with
it from this environment's installed metadata, so a package missing from an image fails here, not on deploy.
"""

from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
import inspect
import json
import re
import shlex
import subprocess
import sys
import textwrap
from functools import cache
from pathlib import Path

import pytest
from modal._utils.async_utils import synchronizer
from packaging.requirements import Requirement

from backend import modal_app
from tests.backend.test_modal_app import dockerfile_layers

ROOT = Path(__file__).resolve().parents[2]
APP = synchronizer._translate_in(modal_app.app)
FUNCTIONS = {name: fn for name, fn in APP._local_state.functions.items() if not name.endswith(".*")}
CLASSES = dict(APP._local_state.classes)


# -- what an image holds -----------------------------------------------------------------------------------
def image_requirements(image) -> list[str]:
    """The requirement strings of every `pip install` in the image's build, in order."""
    found = []
    for layer in dockerfile_layers(image):
        for command in layer:
            words = shlex.split(command.removeprefix("RUN "))
            if words[:4] == ["python", "-m", "pip", "install"]:
                found += [w for w in words[4:] if not w.startswith("-")]
    return found


def requirement_name(spec: str) -> tuple[str, set[str]]:
    """(distribution name, extras) of a pip argument: a requirement or a wheel URL."""
    if spec.endswith(".whl"):
        return spec.rsplit("/", 1)[-1].split("-")[0], set()
    requirement = Requirement(spec)
    return requirement.name, set(requirement.extras)


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def installed_closure(specs: list[str]) -> set[str]:
    """Normalised names of the distributions pip would install for `specs`, as far as this environment's
    metadata says (a package not installed here, e.g. the flash-attn wheel, contributes only itself)."""
    seen: set[tuple[str, frozenset[str]]] = set()
    todo = [requirement_name(spec) for spec in specs]
    while todo:
        name, extras = todo.pop()
        if (_normal(name), frozenset(extras)) in seen:
            continue
        seen.add((_normal(name), frozenset(extras)))
        try:
            requires = importlib.metadata.distribution(name).requires or []
        except importlib.metadata.PackageNotFoundError:
            continue
        for line in requires:
            requirement = Requirement(line)
            environments = [{"extra": extra} for extra in extras] or [{"extra": ""}]
            if requirement.marker is None or any(requirement.marker.evaluate(env) for env in environments):
                todo.append((requirement.name, set(requirement.extras)))
    return {name for name, _ in seen}


def importable_roots(specs: list[str]) -> set[str]:
    """Top-level module names provided by those distributions (plus Modal's client, in every container)."""
    distributions = installed_closure([*specs, "modal"])
    return {module for module, owners in importlib.metadata.packages_distributions().items()
            if any(_normal(owner) in distributions for owner in owners)}


# -- what a function's code imports ------------------------------------------------------------------------
def _imports(tree: ast.AST, package: str | None) -> set[str]:
    """Modules named by the import statements in `tree` (not those under `if TYPE_CHECKING:`)."""
    names: set[str] = set()
    skipped = {id(node) for block in ast.walk(tree) if isinstance(block, ast.If)
               and isinstance(block.test, ast.Name) and block.test.id == "TYPE_CHECKING"
               for node in ast.walk(block)}
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = importlib.util.resolve_name("." * node.level + (node.module or ""), package) if node.level \
                else node.module
            names.add(base)
            if base.split(".")[0] == "backend":  # `from backend.engine import fast` names a module too
                names |= {f"{base}.{alias.name}" for alias in node.names if _is_module(f"{base}.{alias.name}")}
    return names


def _is_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def _module_tree(name: str) -> tuple[ast.AST, str]:
    spec = importlib.util.find_spec(name)
    package = name if spec.submodule_search_locations else name.rpartition(".")[0]
    return ast.parse(Path(spec.origin).read_text()), package


def module_level(tree: ast.Module) -> ast.Module:
    """The statements a module runs on import: function and class bodies left out."""
    kept = [node for node in tree.body if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef
                                                         | ast.ClassDef)]
    return ast.Module(body=kept, type_ignores=[])


def needed_modules(entry: set[str]) -> list[str]:
    """`entry` plus, for every `backend` module reached, everything it imports (lazy imports too: a function
    the container calls may run them), followed through `backend` modules. The Modal module itself is not
    followed: `entry` already holds the parts of it that the function runs."""
    todo, seen = [name for name in entry if name != modal_app.__name__], {modal_app.__name__}
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        if name.split(".")[0] == "backend" and _is_module(name):
            tree, package = _module_tree(name)
            todo += sorted(_imports(tree, package))
    return sorted(name for name in seen if _is_module(name) or name.split(".")[0] != "backend")


def function_entry(fn) -> set[str]:
    """The module's import-time statements plus the function's own body."""
    module_tree, package = _module_tree(modal_app.__name__)
    body = ast.parse(textwrap.dedent(inspect.getsource(fn._raw_f)))
    return {modal_app.__name__} | _imports(module_level(module_tree), package) | _imports(body, package)


def class_entry(cls) -> set[str]:
    """The module's import-time statements plus every method the class defines or inherits from `backend`."""
    module_tree, package = _module_tree(modal_app.__name__)
    names = {modal_app.__name__} | _imports(module_level(module_tree), package)
    for klass in cls._get_user_cls().__mro__:
        if klass.__module__.startswith("backend") and "variant" not in vars(klass):  # not the generated leaf
            names |= _imports(ast.parse(textwrap.dedent(inspect.getsource(klass))), package)
    return names


# -- the check ---------------------------------------------------------------------------------------------
GUARD = """
import importlib.abc, importlib.machinery, json, sys
allowed = set(json.loads(sys.argv[1])) | set(sys.stdlib_module_names) | {"backend"}
allowed |= {name.split(".")[0] for name in sys.modules}  # what the interpreter loaded before this line

class OnlyTheImage(importlib.abc.MetaPathFinder):
    \"\"\"The path finders, blind to every top-level name the image lacks (so `find_spec` says None and an
    import fails as if the package were not installed, which optional imports handle as usual).\"\"\"

    def __init__(self, finders):
        self.finders = finders

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] not in allowed and not name.startswith("_"):  # "_": interpreter internals
            return None
        for finder in self.finders:
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                return spec
        return None

    def find_distributions(self, *args, **kwargs):  # package metadata (versions) stays readable
        for finder in self.finders:
            if hasattr(finder, "find_distributions"):
                yield from finder.find_distributions(*args, **kwargs)

builtin = (importlib.machinery.BuiltinImporter, importlib.machinery.FrozenImporter)
sys.meta_path[:] = [f for f in sys.meta_path if f in builtin] + [
    OnlyTheImage([f for f in sys.meta_path if f not in builtin])]
failed = []
for module in json.loads(sys.argv[2]):
    try:
        __import__(module)
    except ModuleNotFoundError as error:
        failed.append(f"{module}: {error}")
print(json.dumps(failed))
"""


@cache
def failures(allowed: frozenset[str], modules: tuple[str, ...]) -> list[str]:
    """Modules that fail to import when only `allowed` top-level names (and the standard library) exist."""
    done = subprocess.run([sys.executable, "-c", GUARD, json.dumps(sorted(allowed)), json.dumps(list(modules))],
                          capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def check(image, entry: set[str]) -> None:
    allowed = frozenset(importable_roots(image_requirements(image)))
    modules = tuple(needed_modules(entry))
    assert failures(allowed, modules) == []


def test_the_guard_refuses_what_an_image_lacks():
    """The check can fail: with the download image's packages, the engine cannot be imported."""
    download = synchronizer._translate_in(modal_app.DOWNLOAD_IMAGE)
    allowed = frozenset(importable_roots(image_requirements(download)))
    assert "torch" not in allowed and "pydantic" in allowed
    [failure] = failures(allowed, ("backend.engine.fast",))
    assert failure.startswith("backend.engine.fast: No module named")


def test_every_modal_function_and_class_is_checked():
    assert set(FUNCTIONS) == {"download_models"}
    assert set(CLASSES) == {variant.class_name for variant in modal_app.VARIANTS.values()}


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_function_imports_with_only_its_image(name):
    fn = FUNCTIONS[name]
    check(fn._spec.image, function_entry(fn))


@pytest.mark.parametrize("name", sorted(CLASSES))
def test_class_imports_with_only_its_image(name):
    cls = CLASSES[name]
    service = cls._get_class_service_function()
    entry = class_entry(cls)
    assert {"backend.engine", "qwen_tts", "torch"} <= set(needed_modules(entry))  # the engine is followed
    check(service._spec.image, entry)
