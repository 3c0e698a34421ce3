"""The portable-test runners themselves, on CPython, the MicroPython unix port and the wasm port.

A runner that swallowed a failure would make every portable test worthless, so each runtime is
given a directory of passing, failing, skipping and broken test modules and must count them,
show them, and exit non-zero.
"""

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RUN_PY = ROOT / "tests" / "portable" / "run.py"
RUN_MJS = ROOT / "tests" / "wasm" / "run.mjs"
WASM_PACKAGE = ROOT / "tests" / "wasm" / "node_modules" / "@micropython" / "micropython-webassembly-pyscript"
TIMEOUT_S = 60

CASES = {
    "test_case_pass.py": """
        CALLS = []

        def test_z_defined_first():
            CALLS.append("z")

        def test_a_defined_second():
            CALLS.append("a")

        def test_runs_in_definition_order():
            assert CALLS == ["z", "a"], CALLS
    """,
    "test_case_fail.py": """
        def test_passes():
            assert 2 + 2 == 4

        def test_fails():
            total = 1 + 1
            assert total == 3, "arithmetic is broken"
    """,
    "test_case_skip.py": """
        from portable import Skip

        def test_skips():
            raise Skip("no sensor on this runtime")

        def test_passes_beside_a_skip():
            pass
    """,
    "test_case_broken.py": """
        import no_such_module_for_the_runner_test

        def test_never_runs():
            pass
    """,
    "test_case_module_skip.py": """
        from portable import Skip

        raise Skip("whole module needs hardware")

        def test_never_runs():
            pass
    """,
    "helper_not_a_test.py": """
        raise RuntimeError("the runner must only import test_*.py")
    """,
}


def _micropython():
    for candidate in (Path(sys.executable).parent / "micropython", ROOT / ".venv" / "bin" / "micropython"):
        if candidate.exists():
            return str(candidate)
    found = shutil.which("micropython")
    if not found:
        pytest.skip("MicroPython unix port not installed (make setup installs it into .venv)")
    return found


def _node():
    node = shutil.which("node")
    if not node:
        pytest.skip("node not installed: the wasm port runs under node")
    if not WASM_PACKAGE.exists():
        pytest.skip("wasm package not installed: run `make setup` (npm ci in tests/wasm)")
    return node


def _command(runtime, args):
    if runtime == "cpython":
        return [sys.executable, str(RUN_PY), *args], None
    if runtime == "unix":
        env = dict(os.environ, MICROPYPATH="firmware:tests/portable:.frozen")
        return [_micropython(), "-X", "heapsize=96K", str(RUN_PY), *args], env
    return [_node(), str(RUN_MJS), *args], None


def _run(cmd, env=None):
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)


def _run_on(runtime, args):
    cmd, env = _command(runtime, args)
    return _run(cmd, env)


@pytest.fixture(scope="module")
def cases_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("portable_cases")
    for name, body in CASES.items():
        (d / name).write_text(textwrap.dedent(body).lstrip())
    return d


def _last_line(text):
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


RUNTIMES = ["cpython", "unix", "wasm"]


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_failures_skips_and_broken_modules_are_counted_and_fail_the_run(runtime, cases_dir):
    r = _run_on(runtime, [str(cases_dir)])
    out = r.stdout
    assert _last_line(out) == "5 passed, 2 failed, 2 skipped", out + r.stderr
    assert r.returncode == 1, out + r.stderr
    assert "FAIL test_case_fail.test_fails: AssertionError: arithmetic is broken" in out
    assert "test_case_fail.test_passes" not in out  # quiet about passes without -v
    assert "total == 3" in out  # the failing source line, also on MicroPython
    assert "FAIL test_case_broken (import):" in out
    assert "no_such_module_for_the_runner_test" in out
    assert "SKIP test_case_skip.test_skips: no sensor on this runtime" in out
    assert "SKIP test_case_module_skip: whole module needs hardware" in out
    assert "helper_not_a_test" not in out and "RuntimeError" not in out
    assert "test_runs_in_definition_order" not in out  # it passed: the order held


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_a_passing_selection_exits_zero(runtime, cases_dir):
    r = _run_on(runtime, [str(cases_dir), "-k", "case_pass", "-v"])
    assert _last_line(r.stdout) == "3 passed, 0 failed, 0 skipped", r.stdout + r.stderr
    assert r.returncode == 0
    assert "ok   test_case_pass.test_z_defined_first" in r.stdout


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_a_selection_matching_nothing_fails(runtime, cases_dir):
    r = _run_on(runtime, [str(cases_dir), "-k", "no_test_has_this_name"])
    assert r.returncode == 1, r.stdout + r.stderr
    assert "no tests found" in r.stdout


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_a_missing_directory_is_a_usage_error(runtime, tmp_path):
    r = _run_on(runtime, [str(tmp_path / "nowhere")])
    assert r.returncode == 2, r.stdout + r.stderr
    assert "nowhere" in r.stdout + r.stderr


EXEC_SCRIPT = """
import sys
from vagal.ticks import TICKS_MAX, ticks_add, ticks_diff

with open("/in/values.txt") as f:
    values = [int(line) for line in f if line.strip()]
with open("/out/result.txt", "w") as f:
    for v in values:
        f.write("%d %d\\n" % (ticks_add(TICKS_MAX, v), ticks_diff(v, TICKS_MAX)))
    f.write("%s %s\\n" % (sys.platform, " ".join(sys.argv[1:])))
print("no newline at the end: caf\\u00e9", end="")
"""


def _exec(tmp_path, script, *args):
    path = tmp_path / "script.py"
    path.write_text(textwrap.dedent(script))
    return _run([_node(), str(RUN_MJS), "--exec", str(path), *args])


def test_exec_copies_files_in_and_out_and_passes_output_through(tmp_path):
    values = [0, 1, 5, 1000, (1 << 29) - 1]
    (tmp_path / "values.txt").write_text("".join("%d\n" % v for v in values))
    result = tmp_path / "result.txt"
    r = _exec(
        tmp_path,
        EXEC_SCRIPT,
        "--file",
        "/in/values.txt=%s" % (tmp_path / "values.txt"),
        "--out",
        "/out/result.txt=%s" % result,
        "--",
        "alpha",
        "beta",
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout == "no newline at the end: caf\u00e9"
    tmax = (1 << 30) - 1
    expected = "".join(
        "%d %d\n" % ((tmax + v) % (1 << 30), ((v - tmax + (1 << 29)) % (1 << 30)) - (1 << 29)) for v in values
    )
    assert result.read_bytes() == (expected + "webassembly alpha beta\n").encode()


def test_exec_returns_the_scripts_exit_status_and_writes_no_outputs(tmp_path):
    out = tmp_path / "never.txt"
    script = """
        with open("/out.txt", "w") as f:
            f.write("partial")
        import sys
        sys.exit(3)
    """
    r = _exec(tmp_path, script, "--out", "/out.txt=%s" % out)
    assert r.returncode == 3, r.stdout + r.stderr
    assert not out.exists()


def test_exec_fails_on_an_uncaught_exception_with_its_traceback(tmp_path):
    r = _exec(tmp_path, "raise ValueError('bad sample at row 7')\n")
    assert r.returncode == 1
    assert "ValueError: bad sample at row 7" in r.stderr


def test_exec_fails_when_a_promised_output_was_not_written(tmp_path):
    r = _exec(tmp_path, "print('did nothing')\n", "--out", "/missing.txt=%s" % (tmp_path / "m.txt"))
    assert r.returncode == 1
    assert "/missing.txt" in r.stderr
    assert not (tmp_path / "m.txt").exists()


def test_exec_refuses_a_missing_input_file(tmp_path):
    r = _exec(tmp_path, "print('hi')\n", "--file", "/in.txt=%s" % (tmp_path / "absent.csv"))
    assert r.returncode == 2
    assert "absent.csv" in r.stderr
    assert "hi" not in r.stdout


LOCKING_CASE = """
import micropython


def test_leaves_the_heap_locked():
    micropython.heap_lock()


def test_after_it_can_allocate():
    assert len([0] * 100) == 100
"""


@pytest.mark.parametrize("runtime", ["unix", "wasm"])
def test_a_test_that_leaves_the_heap_locked_fails_and_the_next_runs(runtime, tmp_path):
    (tmp_path / "test_case_lock.py").write_text(LOCKING_CASE)
    r = _run_on(runtime, [str(tmp_path)])
    assert _last_line(r.stdout) == "1 passed, 1 failed, 0 skipped", r.stdout + r.stderr
    assert "FAIL test_case_lock.test_leaves_the_heap_locked" in r.stdout
    assert "left the heap locked" in r.stdout
    assert r.returncode == 1
