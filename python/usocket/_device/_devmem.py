"""The simulated heap behind ``gc.mem_free()``/``gc.mem_alloc()`` and ``micropython.mem_info``.

The heap has the model's size (:data:`HEAP_BYTES`). What is allocated starts at a plausible
boot figure and then follows the script: from the first call on, Python's ``tracemalloc``
counts every allocation and release, so the numbers move as the script allocates and frees.
"""

from __future__ import annotations

import tracemalloc

import _devstate

#: Python heap size per model family, in bytes (plausible figures, not measurements).
HEAP_BYTES = {
    "EC600N": 1024 * 1024,
    "EC600U": 1536 * 1024,
    "EC200U": 1536 * 1024,
    "EC600M": 1024 * 1024,
    "EC800N": 1024 * 1024,
    "BG95": 512 * 1024,
}
_DEFAULT_HEAP = 1024 * 1024
#: What the firmware and its frozen modules use before the script starts.
BOOT_ALLOC = 64 * 1024
_started_here = False


def heap_size() -> int:
    """The heap size of the run's model."""
    model = str(_devstate.identity()["model"]).upper()
    for family, size in HEAP_BYTES.items():
        if model.startswith(family):
            return size
    return _DEFAULT_HEAP


def mem_alloc() -> int:
    """Bytes allocated on the simulated heap."""
    global _started_here
    if not tracemalloc.is_tracing():
        tracemalloc.start()
        _started_here = True
    current, _peak = tracemalloc.get_traced_memory()
    return min(heap_size(), BOOT_ALLOC + current)


def mem_free() -> int:
    """Bytes free on the simulated heap."""
    return heap_size() - mem_alloc()


def stop() -> None:
    """Stop counting if this module started it (end of a run)."""
    global _started_here
    if _started_here and tracemalloc.is_tracing():
        tracemalloc.stop()
    _started_here = False
