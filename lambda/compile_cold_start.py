"""Bytecode for what a cold start imports (`import app.lambda_handlers`: about 135 modules of
Flask, Werkzeug, Jinja, Click, WTForms and the app), written into the package.

The Lambda file system is read-only, so Python compiles every imported module again on each
cold start unless the package carries its bytecode: about 300 ms for the import without it.
A library's bytecode replaces its source (`module.pyc` beside where `module.py` was, which
Python imports as it is): shipping both took the package past its 10 MB budget, so Click's,
WTForms', Blinker's and Flask-WTF's bytecode had been left out, at 40-100 ms a cold start.
Library frames in a traceback still name their file and line, not the line's text. The app
keeps its source, its bytecode in __pycache__ beside it.
Each code object names its file as Lambda sees it (/var/task/...), not the build folder, so
tracebacks read right and the package's size does not depend on where it was built.
Unchecked-hash .pyc files for the app: zip archives round file times to 2 s, so time-stamped
ones would be ignored. Skipped, harmlessly, when the building Python is not the runtime's 3.11.

    python3 compile_cold_start.py ARTIFACTS_DIR
"""
import py_compile
import sys
from pathlib import Path, PurePosixPath

if sys.version_info[:2] != (3, 11):
    print(f"compile_cold_start: Python {sys.version_info[0]}.{sys.version_info[1]} is not the runtime's 3.11: "
          "no bytecode shipped (cold starts take ~0.1-0.2 s longer)")
    sys.exit(0)
root = Path(sys.argv[1]).resolve()
sys.path.insert(0, str(root))
import app.lambda_handlers  # noqa: E402,F401  (what a cold start imports)

TASK_ROOT = PurePosixPath("/var/task")  # where Lambda unpacks the package
UNCHECKED = py_compile.PycInvalidationMode.UNCHECKED_HASH

for module in list(sys.modules.values()):
    source = Path(getattr(module, "__file__", None) or "/")
    if source.suffix != ".py" or root not in source.parents:
        continue
    relative = source.relative_to(root)
    deployed = str(TASK_ROOT / relative.as_posix())
    if relative.parts[0] == "app":
        py_compile.compile(str(source), dfile=deployed, doraise=True, invalidation_mode=UNCHECKED)
    else:
        py_compile.compile(str(source), cfile=str(source.with_suffix(".pyc")), dfile=deployed, doraise=True,
                           invalidation_mode=UNCHECKED)
        source.unlink()
