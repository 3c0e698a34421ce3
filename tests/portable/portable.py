"""Helpers shared by the portable tests (CPython, MicroPython unix, MicroPython WebAssembly).

Plain code in the common subset: the same test file must be able to fail on all three runtimes.
"""

import sys

IS_MICROPYTHON = sys.implementation.name == "micropython"

try:
    import micropython

    _CAN_LOCK_HEAP = hasattr(micropython, "heap_lock")
except ImportError:  # CPython
    micropython = None
    _CAN_LOCK_HEAP = False

# Directory this file (and the portable tests beside it) lives in, for test-vector files.
_file = globals().get("__file__", "")
TEST_DIR = _file.rsplit("/", 1)[0] if "/" in _file else "."


if "_pytest" in sys.modules:
    # pytest also collects these files on CPython: let it report a Skip as a skip, not a failure.
    from _pytest.outcomes import Skipped

    class Skip(Skipped):
        """Raise Skip("reason") in a test (or at import of a test module) to skip it visibly."""

        def __init__(self, reason=""):
            Skipped.__init__(self, msg=str(reason), allow_module_level=True)

else:

    class Skip(Exception):
        """Raise Skip("reason") in a test (or at import of a test module) to skip it visibly."""


def tmp_dir():
    """A folder tests may write in: /tmp where there is one (unix), else the current one (wasm MEMFS)."""
    import os

    for d in ("/tmp", "."):
        try:
            os.stat(d)
            return d
        except OSError:
            pass
    return "."


def data_path(name):
    """Path of a data file that sits beside the portable tests (works in the wasm MEMFS too)."""
    return TEST_DIR + "/" + name


def _name_of(fn):
    return getattr(fn, "__name__", None) or repr(fn)


def _call(fn, args):
    # fn(*args) makes MicroPython allocate the argument array on the heap; spell the call out.
    n = len(args)
    if n == 0:
        return fn()
    if n == 1:
        return fn(args[0])
    if n == 2:
        return fn(args[0], args[1])
    if n == 3:
        return fn(args[0], args[1], args[2])
    if n == 4:
        return fn(args[0], args[1], args[2], args[3])
    raise ValueError("no_alloc supports at most 4 arguments")


def no_alloc(fn, *args):
    """Call fn(*args) with the heap locked; any allocation fails as AssertionError naming fn.

    On MicroPython heap_lock() makes every allocation raise MemoryError, so a per-sample path that
    allocates (lists, bound-method lookups, floats, ints >= 2**30 on 32-bit ports) is caught.
    Other exceptions raised by fn pass through unchanged. CPython has no equivalent: there fn is
    only called, and the allocation check is made by the MicroPython runs of the same test.
    Returns fn's result.
    """
    if not _CAN_LOCK_HEAP:
        return _call(fn, args)
    micropython.heap_lock()
    try:
        try:
            result = _call(fn, args)
        finally:
            micropython.heap_unlock()
    except MemoryError:
        raise AssertionError("allocated: %s ran out of heap with the heap locked" % _name_of(fn))
    return result


def assert_raises(exc, fn, *args):
    """Assert fn(*args) raises exc (or a subclass); return the exception for further checks."""
    try:
        fn(*args)
    except exc as e:
        return e
    raise AssertionError("%s did not raise %s" % (_name_of(fn), _name_of(exc)))


def _sum(a, b):
    return a + b


def _detect_32bit_smallint():
    # 2**30 is a heap-allocated big int where small ints are 31-bit (RP2040, the wasm port).
    if _CAN_LOCK_HEAP:
        try:
            no_alloc(_sum, 1 << 29, 1 << 29)
        except AssertionError:
            return True
        return False
    if IS_MICROPYTHON:
        return sys.maxsize < (1 << 32)
    return False


IS_32BIT_SMALLINT = _detect_32bit_smallint()
