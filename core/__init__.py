"""KOI's core: the simulated NT kernel, structure layouts and typed kernel memory.

Plain Python: nothing here imports Qt (tests/test_architecture.py enforces it).
"""

__version__ = "0.1.0"
