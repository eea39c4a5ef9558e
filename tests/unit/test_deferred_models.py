"""The models in threadrunner.models build their validators on first use (DeferredModel), not at INIT: a Lambda
defines all of them and uses a few."""

from __future__ import annotations

import importlib
import pkgutil

import threadrunner.models
from pydantic import BaseModel


def _models() -> list[type[BaseModel]]:
    for module in pkgutil.iter_modules(threadrunner.models.__path__, "threadrunner.models."):
        importlib.import_module(module.name)
    found: list[type[BaseModel]] = []
    pending = [BaseModel]
    while pending:
        for subclass in pending.pop().__subclasses__():
            pending.append(subclass)
            if subclass.__module__.startswith("threadrunner.models."):
                found.append(subclass)
    return found


def test_every_model_of_the_library_is_built_on_first_use() -> None:
    models = _models()
    # Given the library's models (the API's answers, the records, the workflow state)
    assert len(models) > 40
    # Then every one defers building its validator until first used
    eager = sorted(model.__qualname__ for model in models if not model.model_config.get("defer_build"))
    assert not eager, f"built at import: {eager} (derive them from DeferredModel)"
