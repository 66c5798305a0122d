"""crossent._registry: one table of losses read by grad, advise, explain, compare and the CLI;
no import cycle; `import crossent` stays light."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import crossent as ce
from crossent import _registry, explain
from crossent import grad as ce_grad
from crossent.advise import LOSSES as ADVISED
from crossent.compare import LOSSES as COMPARED

SOURCE = Path(ce.__file__).resolve().parent


@pytest.mark.parametrize("entry", _registry.ENTRIES, ids=lambda entry: entry.name)
def test_every_entry_resolves(entry: _registry.Entry) -> None:
    module, _, name = entry.public.rpartition(".")
    assert entry.function is getattr(sys.modules[module], name)
    if entry.is_loss:
        assert entry.function is getattr(ce, entry.name)  # the top-level public function
        assert entry.loss_and_grad.__name__ == f"_{entry.name}"
        assert _registry.by_function(entry.function) is entry
    else:
        assert entry.loss_and_grad is None and _registry.by_function(entry.function) is None


def test_names_aliases_and_the_command_lines_spelling() -> None:
    keys = [key for entry in _registry.ENTRIES for key in (entry.name, *entry.aliases)]
    assert len(keys) == len(set(keys))
    assert _registry.resolve("binary-cross-entropy").name == "binary_cross_entropy"
    assert _registry.resolve(" BCE-with-logits ").name == "binary_cross_entropy_with_logits"
    assert _registry.resolve("grad").public == "crossent.grad.cross_entropy"
    assert _registry.spelling("binary_cross_entropy_with_logits") == (
        "binary-cross-entropy-with-logits")
    with pytest.raises(ValueError, match=r"^unknown loss 'hinge'; expected one of cross_entropy, "
                                         r"nll_loss, .* \(aliases: ce, .*bce-with-logits"):
        _registry.resolve("hinge", _registry.losses(), what="loss")
    with pytest.raises(ValueError, match="unknown name 3"):
        _registry.resolve(3)
    # a name outside the given choices is unknown there
    with pytest.raises(ValueError, match="unknown loss 'entropy'"):
        _registry.resolve("entropy", _registry.losses(), what="loss")


def test_every_reader_takes_its_names_from_the_registry() -> None:
    assert set(explain.TRACERS) == {entry.name for entry in _registry.ENTRIES}
    assert ADVISED == tuple(e.name for e in _registry.losses() if e.takes_target)
    assert set(ADVISED) == {"cross_entropy", "nll_loss", "binary_cross_entropy",
                                  "binary_cross_entropy_with_logits", "sigmoid_focal_loss",
                                  "softmax_focal_loss"}
    assert COMPARED == ("cross_entropy", "binary_cross_entropy", "kl_divergence_with_logits")
    # an alias works everywhere
    assert ce.advise([[0.7, 0.2, 0.1]], [0], loss="ce")[0].code == "probabilities-as-logits"
    assert explain.explain("nll", [[-0.5, -1.0]], [1]).function == "crossent.nll_loss"
    assert ce.compare("bce", [[0.3]], [[1.0]], inputs="probs", real=False).loss == (
        "binary_cross_entropy")
    from typer.testing import CliRunner

    from crossent.cli import app

    help_text = " ".join(CliRunner().invoke(app, ["explain", "--help"], env={
        "COLUMNS": "300"}).output.split())
    for entry in _registry.ENTRIES:
        assert entry.name in help_text


def test_value_and_grad_takes_every_loss_of_the_table() -> None:
    logits, target = np.array([[0.5, -1.0, 2.0]]), np.array([2])
    probs, binary = np.array([[0.2, 0.5, 0.9]]), np.array([[0.0, 1.0, 1.0]])
    arrays = {"logits": logits, "log_probs": np.log(probs), "probs": probs,
              "student_logits": logits}
    seconds = {"class-axis": target, "element-wise": binary, "divergence": logits[:, ::-1]}
    for entry in _registry.losses():
        first = arrays[entry.arrays[0]]
        second = seconds[entry.family]
        loss, gradient = ce.value_and_grad(entry.function, first, second)
        assert gradient.shape == first.shape
        # the table pairs each loss with its own implementation: the grad module agrees
        np.testing.assert_array_equal(gradient, getattr(ce_grad, entry.name)(first, second))
    with pytest.raises(TypeError, match=r"value_and_grad supports crossent's losses "
                                        r"\(crossent.cross_entropy, .*\), got <function"):
        ce.value_and_grad(ce.softmax, logits, target)


def test_a_new_entry_is_explained_without_a_trace_of_its_own() -> None:
    from crossent.explain import _names
    from crossent.explain.render import latex_to_svg, to_text

    entry = _registry.Entry("cross_entropy_of_probabilities", "crossent.information.cross_entropy",
                            ("p", "q"), "information", summary="H(p, q) of two distributions")
    trace = _names._value_trace(entry)([1.0, 0.0], [0.5, 0.5])
    assert float(trace.value) == pytest.approx(np.log(2))  # -log 0.5, by hand
    assert trace.function == "crossent.information.cross_entropy"
    assert list(trace.inputs) == ["p", "q"] and trace.steps[0].meaning.endswith(".")
    assert "<path" in latex_to_svg(trace.steps[0].latex)
    assert "H(p, q) of two distributions" in to_text(trace)


# --- imports ---------------------------------------------------------------------------------


def _module_name(path: Path) -> tuple[str, bool]:
    parts = list(path.relative_to(SOURCE.parent).with_suffix("").parts)
    package = parts[-1] == "__init__"
    return ".".join(parts[:-1] if package else parts), package


def _crossent_imports(path: Path, modules: set[str]) -> set[str]:
    """Every crossent module ``path`` imports, at module level or inside a function."""
    name, package = _module_name(path)
    here = name.split(".") if package else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("crossent")}
        elif isinstance(node, ast.ImportFrom):
            base = here[: len(here) - node.level + 1] if node.level else []
            target = ".".join(base + ([node.module] if node.module else []))
            if target.startswith("crossent"):
                for alias in node.names:
                    child = f"{target}.{alias.name}"
                    found.add(child if child in modules else target)
    return found - {name}


def test_no_import_cycle_even_through_function_local_imports() -> None:
    """The import graph of src/crossent, counting imports inside functions too, has no cycle
    (so no function-local import dodges one). A module importing a package it lives in is
    not an edge: that package runs first anyway."""
    paths = {_module_name(path)[0]: path for path in SOURCE.rglob("*.py")}
    graph = {name: {target for target in _crossent_imports(path, set(paths))
                    if not name.startswith(target + ".")}
             for name, path in paths.items()}
    state: dict[str, int] = {}
    cycles = []

    def visit(name: str, stack: list[str]) -> None:
        state[name] = 1
        for target in sorted(graph.get(name, ())):
            if state.get(target) == 1:
                cycles.append(stack[stack.index(target):] + [target])
            elif target not in state:
                visit(target, [*stack, target])
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert cycles == []
    assert "crossent.explain._names" in graph["crossent.explain._report"]  # the graph is read
    assert "crossent._registry" in graph["crossent.grad"]


def test_import_crossent_is_light() -> None:
    code = (
        "import sys, crossent as ce\n"
        "heavy = ['crossent.compat', 'crossent.compare', 'crossent.explain', 'crossent.advise',\n"
        "         'crossent.experiments', 'crossent.torch', 'typer', 'rich', 'matplotlib', 'torch',\n"
        "         'jax', 'tensorflow', 'numba']\n"
        "print([m for m in heavy if m in sys.modules])\n"
        "import crossent.compare, crossent.advise\n"  # the modules first, then the functions
        "print(callable(ce.compare), callable(ce.advise), ce.explain.__name__)\n"
        "print(sorted(set(ce.__all__) - set(dir(ce))))\n"
    )
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                               timeout=120, check=True)
    assert completed.stdout.splitlines() == ["[]", "True True crossent.explain", "[]"]
    with pytest.raises(AttributeError, match="module 'crossent' has no attribute 'nope'"):
        ce.nope  # noqa: B018
