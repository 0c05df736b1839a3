"""Bytecode for what a cold start imports (`import app.lambda_handlers`: about 135 modules of
Flask, Werkzeug, Jinja, Click, WTForms and the app), written into the package.

The Lambda file system is read-only, so Python compiles every imported module again on each
cold start unless the package carries its bytecode. Measured on the built package: about
300 ms for the import without bytecode, 130 ms with all of it (2.6 MB, which takes the package
past its 10 MB budget), 170-230 ms with all but Click's and WTForms' (2.0 MB: 9.5 MB in all).
Blinker's and Flask-WTF's left out too (61 KB, when alerts took the package past 10 MB): a median
of 208 ms with their bytecode and without (15 imports each, 2026-12-03).
Unchecked-hash .pyc files: zip archives round file times to 2 s, so time-stamped ones would be
ignored. Skipped, harmlessly, when the building Python is not the runtime's 3.11.

    python3 compile_cold_start.py ARTIFACTS_DIR
"""
import py_compile
import sys
from pathlib import Path

if sys.version_info[:2] != (3, 11):
    print(f"compile_cold_start: Python {sys.version_info[0]}.{sys.version_info[1]} is not the runtime's 3.11: "
          "no bytecode shipped (cold starts take ~0.2 s longer)")
    sys.exit(0)
root = Path(sys.argv[1]).resolve()
sys.path.insert(0, str(root))
import app.lambda_handlers  # noqa: E402,F401  (what a cold start imports)

LEFT_OUT = {"click", "wtforms", "blinker", "flask_wtf"}  # the least import time saved per byte of bytecode

for module in list(sys.modules.values()):
    source = Path(getattr(module, "__file__", None) or "/")
    if source.suffix == ".py" and root in source.parents and source.relative_to(root).parts[0] not in LEFT_OUT:
        py_compile.compile(str(source), doraise=True, invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
