"""Docstring examples run as doctests: every module of the installed package, imported by its
package name (``reskernels.theory.arch``, ...), so that the examples use the public import paths."""
import doctest
import importlib
import pkgutil

import pytest

import reskernels

SKIP = {"reskernels.__main__"}      # running it would start the command line program


def _modules():
    names = ["reskernels"]
    for info in pkgutil.walk_packages(reskernels.__path__, "reskernels."):
        if info.name.split(".")[1] in ("theory", "numerics", "proofs_check", "activations") \
                and info.name not in SKIP:
            names.append(info.name)
    return sorted(set(names))


MODULES = _modules()


def test_every_subpackage_is_walked():
    assert {"reskernels.theory.arch", "reskernels.numerics.gram", "reskernels.proofs_check.registry"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in finder.find(module, name):
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} doctest examples failed in {name}"
