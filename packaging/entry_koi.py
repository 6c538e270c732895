"""The frozen ``koi`` executable's script (pyproject: ``koi = inspector.cli:main``).

PyInstaller needs a script, not an entry point; this is the one koi.spec freezes.
"""

import multiprocessing
import sys

from inspector.cli import main

if __name__ == "__main__":
    # A frozen app has no python to start workers with: child processes re-run this
    # executable, and freeze_support() turns such a run into the worker it was meant to be.
    multiprocessing.freeze_support()
    sys.exit(main())
