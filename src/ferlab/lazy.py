"""Names a package gives from its submodules, each imported on first use (PEP 562), so that
importing the package (`import ferlab`, `ferlab --help`) loads none of their dependencies."""

import importlib
import sys


def lazy_names(package: str, homes: dict[str, str]):
    """A module `__getattr__` for `package`: each name in `homes` comes from the submodule
    `homes[name]` of `package` the first time it is asked for, and stays in the package."""

    def __getattr__(name: str):
        if name not in homes:
            raise AttributeError(f"module '{package}' has no attribute '{name}'")
        value = getattr(importlib.import_module(f"{package}.{homes[name]}"), name)
        setattr(sys.modules[package], name, value)
        return value

    return __getattr__
