"""melodiff studio: a local web page and JSON API over ``Pipeline`` (``melodiff serve``; docs/STUDIO.md).

Needs the ``studio`` extra (``pip install 'melodiff[studio]'``: FastAPI, uvicorn, python-multipart); importing
``create_app`` or ``serve`` without it raises a MelodiffError that says so."""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING, Any

from melodiff.errors import MelodiffError

if TYPE_CHECKING:
    from melodiff.server.app import create_app, serve

__all__ = ["create_app", "serve"]
INSTALL_HINT = "pip install 'melodiff[studio]'"


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    for module, package in (("fastapi", "fastapi"), ("uvicorn", "uvicorn"), ("multipart", "python-multipart")):
        if importlib.util.find_spec(module) is None:
            raise MelodiffError(f"the studio needs {package}: {INSTALL_HINT}")
    from melodiff.server import app

    return getattr(app, name)
