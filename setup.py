"""Build of the optional C accelerator; every other setting is in pyproject.toml.

``rapidws.protocol._speedups`` is optional: when no C compiler is available the
build goes on without it and ``_fallback.py`` runs instead. Set
``RAPIDWS_BUILD_EXTENSION=yes`` to make a failed build an error (CI does, so
the C path is always the one tested there).
"""

import os

from setuptools import Extension, setup

required = os.environ.get("RAPIDWS_BUILD_EXTENSION") == "yes"

setup(
    ext_modules=[
        Extension(
            "rapidws.protocol._speedups",
            sources=["src/rapidws/protocol/_speedups.c"],
            optional=not required,
        )
    ]
)
