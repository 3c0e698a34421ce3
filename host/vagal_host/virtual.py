"""The virtual board, CPython side: runs firmware/main.py in the MicroPython unix port with the fake
machine/rp2 modules (host/virtual_board/fakes) behind a pseudo-terminal that the host opens exactly
like /dev/ttyACM0.

The fakes, firmware and person are compiled with mpy-cross into build/virtual_board (bytecode is what
the Pico runs too, and compiling big modules from source would not fit a 100 KB heap). The process is
respawned when it exits (a watchdog or machine.reset, mpremote's soft reset), on the same pty.
"""

import fcntl
import os
import pty
import shutil
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
import tty
from pathlib import Path

from vagal_host.errors import VagalError

ROOT = Path(__file__).resolve().parents[2]
FIRMWARE = ROOT / "firmware"
VIRTUAL = ROOT / "host" / "virtual_board"
FAKES = VIRTUAL / "fakes"
BUILD = ROOT / "build" / "virtual_board"
ADC_RAW_HZ = 1000  # the rate firmware/vagal/board.py runs the ADC at
INPUT_QUEUE = 1024  # bytes of host input waiting for the firmware; more is dropped (and counted)
TTY_BACKLOG = 256  # at most this many of them in the firmware's tty at once (so they stay droppable)
# mpy-cross's -march for the unix port's CPU (native and viper code); None where it has none
NATIVE_MARCH = {"x86_64": "x64", "amd64": "x64", "i686": "x86"}.get(
    os.uname().machine.lower())


def _tool(name):
    cand = Path(sys.executable).parent / name
    if cand.exists():
        return str(cand)
    found = shutil.which(name)
    if not found:
        raise VagalError("%s not found: install the project (make setup)" % name)
    return found


def build(dest=BUILD):
    """Compile fakes, firmware and the person to .mpy under dest (only what changed). -> MICROPYPATH."""
    mpy_cross = _tool("mpy-cross")
    plan = [(FAKES, dest / "fakes"), (FIRMWARE, dest / "firmware"), (VIRTUAL, dest / "host")]
    for src_dir, out_dir in plan:
        for src in sorted(src_dir.rglob("*.py")):
            rel = src.relative_to(src_dir)
            if src_dir == VIRTUAL and rel.parts[0] == "fakes":
                continue
            if rel.name in ("manifest.py",) or "__pycache__" in rel.parts:
                continue
            out = (out_dir / rel).with_suffix(".mpy")
            if out.exists() and out.stat().st_mtime >= src.stat().st_mtime:
                continue
            out.parent.mkdir(parents=True, exist_ok=True)
            # compiled beside it, then renamed: boards started in parallel (population runs) never
            # load a half-written .mpy
            tmp = out.with_name("%s.%d.tmp" % (out.name, os.getpid()))
            r = subprocess.run([mpy_cross, "-o", str(tmp), str(src)], capture_output=True, text=True)
            if r.returncode != 0 and "invalid arch" in r.stderr and NATIVE_MARCH:
                # viper (pulse_viper.py): native code for the unix port's own CPU, as the Pico's
                r = subprocess.run([mpy_cross, "-march=" + NATIVE_MARCH, "-o", str(tmp), str(src)],
                                   capture_output=True, text=True)
            elif r.returncode != 0 and "invalid arch" in r.stderr:
                continue    # no native emitter for this CPU: the module's import fails, the reference runs
            if r.returncode != 0:
                raise VagalError("mpy-cross failed on %s: %s" % (src, r.stderr.strip()))
            os.replace(tmp, out)
    return ":".join([str(dest / "fakes"), str(dest / "firmware"), str(dest / "host"), ".frozen"])


def write_recording(samples, fs, path, rate=ADC_RAW_HZ):
    """Resample read_u16-scale samples (zero-order hold) to the ADC rate as 12-bit codes: VAGALREC."""
    import numpy as np

    x = np.asarray(samples, dtype=np.int64)
    if x.size == 0:
        raise VagalError("recording has no samples")
    n_out = max(1, int(round(x.size * rate / float(fs))))
    idx = np.minimum((np.arange(n_out) * float(fs) / rate).astype(np.int64), x.size - 1)
    codes = (np.clip(x[idx], 0, 65535) >> 4).astype("<u2")
    with open(path, "wb") as f:
        f.write(b"VAGALREC %d %d\n" % (rate, n_out))
        f.write(codes.tobytes())


def person_spec(seed=1, hr=65.0, resonance=0.09, adherence=0.9, **extra):
    """VAGAL_VIRTUAL_PERSON's "key=value,..." (host/virtual_board/person.py spec_names()); resonance
    None: none (the baroreflex model has no resonance parameter)."""
    parts = ["seed=%d" % seed, "hr=%g" % hr] + (["resonance=%g" % resonance] if resonance is not None else [])
    parts += ["adherence=%g" % adherence]
    parts += ["%s=%g" % (k, v) for k, v in extra.items()]
    return ",".join(parts)


class VirtualBoard:
    """Context manager: a virtual Pico on a pty. `.port` is the path to open with pyserial."""

    def __init__(self, speed=1, recording=None, column=None, fs=None, person=None, wrap_s=None,
                 heapsize="256K", settings_path=None, log_path=None, respawn=True, buttons=None,
                 script=None, env=None, rec_file=None, adc_bits=None):
        if speed != "max" and not 0 < float(speed) < float("inf"):  # nan too
            raise VagalError("--speed must be a number > 0 (or 'max'), not %r" % (speed,))
        self.speed = speed
        self.recording = recording
        self._rec_file = rec_file  # a ready VAGALREC file (tests: a cheap looped source)
        self.column = column
        self.fs = fs
        self.adc_bits = adc_bits
        self.person = person if person is not None else person_spec()
        self.wrap_s = wrap_s
        self.heapsize = heapsize
        self.respawn = respawn
        self.buttons = buttons
        self.module = script or "boot"  # host/virtual_board/boot.py, run as a module (.mpy)
        self.extra_env = env or {}
        self.tmp = Path(tempfile.mkdtemp(prefix="vagal-virtual-"))
        self.settings_path = settings_path or str(self.tmp / "settings.json")
        self.log_path = Path(log_path) if log_path else self.tmp / "board.log"
        self.proc = None
        self.spawns = 0
        self.exit_codes = []
        self._stopping = False
        self._lock = threading.Lock()
        self._master = self._slave = self._a_master = self._a_slave = None
        self._thread = None
        self.port = None

    # -- lifecycle
    def start(self):
        self._mpypath = build()
        if self.recording:
            from vagal_host.recording import load_recording

            rec = load_recording(self.recording, self.column, self.fs, self.adc_bits)
            self._rec_file = self.tmp / "recording.bin"
            write_recording(rec.samples, rec.fs, self._rec_file)
        # pty A: the firmware's USB (its slave end is the process's stdin/stdout, raw);
        # pty B: the port the host opens (its slave path). A relay thread joins the two masters and,
        # like the Pico's USB CDC with no host reading, drops output the host does not take.
        self._a_master, self._a_slave = pty.openpty()
        self._master, self._slave = pty.openpty()
        for fd in (self._a_slave, self._slave):
            tty.setraw(fd)
        os.set_blocking(self._master, False)
        self.port = os.ttyname(self._slave)
        self.dropped_bytes = 0  # firmware output the host did not read in time
        self.dropped_input_bytes = 0  # host input the firmware did not read in time
        self.dropped_input_lines = 0
        self._spawn()
        self._relay_thread = threading.Thread(target=self._relay, daemon=True)
        self._relay_thread.start()
        if self.respawn:
            self._thread = threading.Thread(target=self._watch, daemon=True)
            self._thread.start()
        return self

    def _env(self):
        env = dict(os.environ)
        env["MICROPYPATH"] = self._mpypath
        env["VAGAL_VIRTUAL_SPEED"] = str(self.speed)
        env["VAGAL_VIRTUAL_SETTINGS"] = self.settings_path
        for k in ("VAGAL_VIRTUAL_RECORDING", "VAGAL_VIRTUAL_PERSON", "VAGAL_VIRTUAL_WRAP_S",
                  "VAGAL_VIRTUAL_BUTTON"):
            env.pop(k, None)
        if self.recording or self._rec_file:
            env["VAGAL_VIRTUAL_RECORDING"] = str(self._rec_file)
        else:
            env["VAGAL_VIRTUAL_PERSON"] = self.person
        if self.wrap_s is not None:
            env["VAGAL_VIRTUAL_WRAP_S"] = str(self.wrap_s)
        if self.buttons:
            env["VAGAL_VIRTUAL_BUTTON"] = self.buttons
        env.update(self.extra_env)
        return env

    def _spawn(self):
        micropython = _tool("micropython")
        log = open(self.log_path, "ab")
        # the slave end is stdin and stdout, as USB CDC is sys.stdin/sys.stdout on the Pico
        self.proc = subprocess.Popen(
            [micropython, "-X", "heapsize=%s" % self.heapsize, "-m", self.module],
            stdin=self._a_slave, stdout=self._a_slave, stderr=log, env=self._env(), cwd=str(self.tmp),
            start_new_session=True)
        log.close()
        self.spawns += 1

    def _relay(self):
        """Joins the host's pty and the firmware's, never blocking in either direction.

        Firmware -> host: what the host does not take is dropped (a Pico's USB CDC with no reader).
        Host -> firmware: bytes wait in a queue of INPUT_QUEUE bytes, written as the firmware
        reads them; what does not fit is dropped and counted (dropped_input_bytes/_lines), up to
        the next line end so the next line arrives whole. A blocking write here would stop the
        relay draining the firmware's output while the firmware, blocked writing its replies, stops
        reading: each side waiting on the other for good (issue 13).
        """
        import select

        a, b = self._a_master, self._master
        os.set_blocking(a, False)
        queue = bytearray()
        dropping = False  # dropping the rest of a line that did not fit
        while not self._stopping:
            try:
                r, _, _ = select.select([a, b], [], [], 0.02 if queue else 0.2)
            except (OSError, ValueError):
                return
            if a in r:
                try:
                    data = os.read(a, 65536)
                except OSError:
                    data = b""
                if data:
                    try:
                        n = os.write(b, data)
                    except OSError:  # BlockingIOError too: the host is not reading
                        n = 0
                    self.dropped_bytes += len(data) - n
            if b in r:
                try:
                    data = os.read(b, 4096)
                except OSError:
                    data = b""
                    time.sleep(0.05)  # no host has the port open
                if data:
                    if dropping:
                        end = data.find(b"\n")
                        self._drop_input(data if end < 0 else data[:end + 1])
                        data = b"" if end < 0 else data[end + 1:]
                        dropping = end < 0
                    room = INPUT_QUEUE - len(queue)
                    if len(data) > room:
                        self._drop_input(data[room:])
                        dropping = not data.endswith(b"\n")
                        data = data[:room]
                    queue += data
            room = TTY_BACKLOG - self._firmware_unread()
            if queue and room > 0:
                try:
                    n = os.write(a, queue[:room])
                except BlockingIOError:
                    n = 0
                except OSError:
                    n = len(queue)  # the firmware is gone (respawning): its input goes with it
                del queue[:n]

    def _firmware_unread(self):
        """Bytes written to the firmware's stdin that it has not read yet (its tty's input queue)."""
        try:
            return struct.unpack("i", fcntl.ioctl(self._a_slave, termios.FIONREAD, b"\0\0\0\0"))[0]
        except (OSError, TypeError):
            return 0

    def _drop_input(self, data):
        self.dropped_input_bytes += len(data)
        self.dropped_input_lines += data.count(b"\n")

    def _watch(self):
        while not self._stopping:
            code = self.proc.wait()
            if self._stopping:
                break
            self.exit_codes.append(code)
            time.sleep(0.2)
            with self._lock:  # stop() cannot slip in between the check and the spawn
                if not self._stopping:
                    self._spawn()

    def stop(self):
        with self._lock:
            self._stopping = True
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        # the relay must be out of its select/read before the fds close: a closed number is reused
        # by the next open() (a settings file the caller reads...), and a late os.read on it would
        # silently eat that file's bytes
        relay = getattr(self, "_relay_thread", None)
        if relay is not None and relay is not threading.current_thread():
            relay.join(5)
        for fd in (self._master, self._slave, self._a_master, self._a_slave):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._master = self._slave = self._a_master = self._a_slave = None

    def log_text(self):
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False
