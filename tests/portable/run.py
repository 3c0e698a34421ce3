"""A tiny test runner for the portable tests, the same file on CPython, MicroPython unix and wasm.

pytest does not run on MicroPython, so this finds tests/portable/test_*.py, runs each module's
test_* functions in definition order, and ends with the line `N passed, N failed, N skipped`.

    run.py [DIR] [-k SUBSTRING] [-v]

DIR defaults to this file's directory; -k keeps tests whose "module.function" contains SUBSTRING;
-v prints every test. A test skips by raising portable.Skip(reason). A module that fails to
import counts as one failure. main() returns the exit status (1 on any failure, 2 on bad usage).
"""

import sys
import os

try:
    from time import ticks_ms, ticks_diff
except ImportError:  # CPython
    import time

    def ticks_ms():
        return int(time.monotonic() * 1000)

    def ticks_diff(a, b):
        return a - b


try:
    import gc
except ImportError:
    gc = None

IS_MICROPYTHON = sys.implementation.name == "micropython"
SLOW_MS = 2000
USAGE = "usage: run.py [DIR] [-k SUBSTRING] [-v]"

_file = globals().get("__file__", "")
RUNNER_DIR = _file.rsplit("/", 1)[0] if "/" in _file else "."

if RUNNER_DIR not in sys.path:
    sys.path.append(RUNNER_DIR)  # so test modules in another DIR can still import portable

if not IS_MICROPYTHON:
    # A plain `python3 tests/portable/run.py` finds the core without the editable install.
    sys.path.append(RUNNER_DIR + "/../../firmware")

from portable import Skip  # noqa: E402

try:
    import micropython

    _CAN_LOCK_HEAP = hasattr(micropython, "heap_lock")
except ImportError:
    _CAN_LOCK_HEAP = False


def _failing_source_line(text):
    """The source line of the innermost frame of a MicroPython traceback (CPython shows it itself)."""
    path = None
    lineno = 0
    for line in text.split("\n"):
        line = line.strip()
        if line.startswith('File "') and ", line " in line:
            path = line[6 : line.index('"', 6)]
            rest = line[line.index(", line ") + 7 :]
            digits = rest.split(",")[0].strip()
            lineno = int(digits) if digits.isdigit() else 0
    if path is None or lineno <= 0:
        return None
    try:
        with open(path) as f:
            n = 0
            for src in f:
                n += 1
                if n == lineno:
                    return src.strip()
    except OSError:
        return None
    return None


def print_exception(e):
    """Print e's traceback to stdout (in order with the runner's own lines)."""
    if IS_MICROPYTHON:
        import io

        buf = io.StringIO()
        sys.print_exception(e, buf)
        text = buf.getvalue()
        sys.stdout.write(text)
        src = _failing_source_line(text)
        if src:
            print("    > " + src)
    else:
        import traceback

        traceback.print_exception(type(e), e, e.__traceback__, file=sys.stdout)


def _describe(e):
    msg = str(e)
    name = type(e).__name__
    return name + ": " + msg if msg else name


def _heap_was_left_locked():
    """Unlock a heap a test left locked (else every later test fails oddly); True if it was."""
    if not _CAN_LOCK_HEAP:
        return False
    try:
        bytearray(16)
        return False
    except MemoryError:
        pass
    depth = micropython.heap_unlock()
    was_locked = depth >= 0
    while depth > 0:
        depth = micropython.heap_unlock()
    if not was_locked:  # a real out-of-memory, not a lock: undo the extra unlock
        micropython.heap_lock()
    return was_locked


def _definition_order(path):
    """Names of `def test_*` at the top level of the file, in source order."""
    names = []
    try:
        with open(path) as f:
            for line in f:
                if line.startswith("def test_"):
                    names.append(line[4 : line.index("(")] if "(" in line else line[4:].strip())
    except OSError:
        pass
    return names


def _is_test_function(obj):
    return callable(obj) and not isinstance(obj, type)


class Counts:
    def __init__(self):
        self.passed = 0
        self.failed = 0
        self.skipped = 0


def run_test(fullname, fn, counts, verbose):
    if gc:
        gc.collect()
    t0 = ticks_ms()
    error = None
    try:
        fn()
    except Skip as e:
        counts.skipped += 1
        print("SKIP %s: %s" % (fullname, e))
        return
    except Exception as e:
        error = e
    left_locked = _heap_was_left_locked()
    ms = ticks_diff(ticks_ms(), t0)
    if error is None and left_locked:
        error = AssertionError("test left the heap locked (heap_lock without heap_unlock)")
    if error is not None:
        counts.failed += 1
        print("FAIL %s: %s" % (fullname, _describe(error)))
        print_exception(error)
    else:
        counts.passed += 1
        if verbose:
            print("ok   %s (%d ms)" % (fullname, ms))
    if ms > SLOW_MS:
        print("SLOW %s took %d ms (keep portable tests under %d ms)" % (fullname, ms, SLOW_MS))


def run_module(directory, filename, pattern, counts, verbose):
    modname = filename[:-3]
    path = directory + "/" + filename
    ordered = _definition_order(path)
    if pattern and pattern not in modname:
        if not [n for n in ordered if pattern in modname + "." + n]:
            return  # nothing here can match: do not spend heap importing it
    loaded_before = list(sys.modules.keys())
    if gc:
        gc.collect()
    try:
        _import_and_run(modname, ordered, pattern, counts, verbose)
    finally:
        if IS_MICROPYTHON:
            _unload_modules_since(loaded_before)


def _import_and_run(modname, ordered, pattern, counts, verbose):
    try:
        module = __import__(modname)
    except Skip as e:
        counts.skipped += 1
        print("SKIP %s: %s" % (modname, e))
        return
    except Exception as e:
        counts.failed += 1
        print("FAIL %s (import): %s" % (modname, _describe(e)))
        print_exception(e)
        return
    found = [n for n in dir(module) if n.startswith("test_") and _is_test_function(getattr(module, n))]
    names = [n for n in ordered if n in found]
    names += sorted([n for n in found if n not in names])
    for name in names:
        fullname = modname + "." + name
        if pattern and pattern not in fullname:
            continue
        run_test(fullname, getattr(module, name), counts, verbose)


def _unload_modules_since(loaded_before):
    """Forget the modules a test module imported, so the next starts from the same small heap.

    With a small heap (-X heapsize=96K) code kept from earlier modules fragments it until a big
    module no longer compiles. Each test module re-imports what it needs.
    """
    for name in list(sys.modules.keys()):
        if name in loaded_before:
            continue
        if "." in name:
            parent, _, child = name.rpartition(".")
            if parent in sys.modules:
                try:
                    delattr(sys.modules[parent], child)
                except (AttributeError, TypeError):
                    pass
        del sys.modules[name]
    if gc:
        gc.collect()


def _runtime():
    impl = sys.implementation
    version = ".".join([str(v) for v in impl.version[:3]])
    machine = getattr(impl, "_machine", sys.platform)
    return "%s %s (%s)" % (impl.name, version, machine)


def main(argv):
    directory = RUNNER_DIR
    pattern = None
    verbose = False
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "-k" and i + 1 < len(argv):
            pattern = argv[i + 1]
            i += 1
        elif a == "-v":
            verbose = True
        elif a.startswith("-"):
            print(USAGE)
            return 2
        else:
            directory = a.rstrip("/") or "/"
        i += 1
    try:
        files = sorted([n for n in os.listdir(directory) if n.startswith("test_") and n.endswith(".py")])
    except OSError as e:
        print("run.py: cannot list test directory %s: %s" % (directory, _describe(e)))
        return 2
    if directory not in sys.path:
        sys.path.insert(0, directory)
    print("portable tests in %s on %s" % (directory, _runtime()))
    counts = Counts()
    t0 = ticks_ms()
    for filename in files:
        run_module(directory, filename, pattern, counts, verbose)
    if counts.passed + counts.failed + counts.skipped == 0:
        print("no tests found in %s%s" % (directory, " matching -k " + pattern if pattern else ""))
        counts.failed += 1
    if verbose:
        print("total %d ms" % ticks_diff(ticks_ms(), t0))
    print("%d passed, %d failed, %d skipped" % (counts.passed, counts.failed, counts.skipped))
    return 1 if counts.failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
