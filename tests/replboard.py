"""A REPL board for tests: the MicroPython unix port behind a pseudo-terminal, acting like a Pico on USB.

Why a proxy with two ptys: mpremote needs a device path to open (the "USB" pty slave), while the
unix port needs a terminal of its own on stdin/stdout. A thread forwards bytes between the two and
adds what the unix port lacks compared with a real board:

- Soft reset. Ctrl-D makes the unix process exit; the helper prints "MPY: soft reboot" like the
  Pico and starts a new process in the same working directory. After a reset from the friendly
  REPL it runs `micropython -i main.py` (the app, then the REPL, like a board booting main.py);
  after a reset from the raw REPL (what `mpremote` does) it starts a bare REPL and re-enters raw
  mode, so the host sees "soft reboot" then "raw REPL; CTRL-B to exit" as from a real board.
- Ctrl-C while a script runs. The board's terminal keeps ISIG on and is the process's controlling
  terminal, so a 0x03 from the host becomes SIGINT -> KeyboardInterrupt, like the Pico's USB CDC
  interrupt character. The unix REPL switches its terminal to raw mode while it reads input, so at
  the prompt 0x03 stays a plain byte (what the raw REPL protocol expects).
- Unplugging. `unplug()` kills the process and closes the USB side: the host's reads and writes fail
  like a vanished /dev/ttyACM0. `plug()` powers it up again (a new pty path, same filesystem).

The filesystem: the process runs with its working directory set to `root` (a temp dir) and
MICROPYPATH=".frozen:lib", so `lib/vagal/x.mpy` under root is importable as on a Pico whose
sys.path is ['', '.frozen', '/lib']. Board paths are relative to the working directory; `vagal
deploy` detects the unix port and writes under its working directory instead of "/".
"""

import os
import pty
import select
import shutil
import signal
import subprocess
import termios
import threading
import time
import tty

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MICROPYTHON = os.path.join(REPO, ".venv", "bin", "micropython")

_RAW_BANNER = b"raw REPL; CTRL-B to exit\r\n"
SETSID = shutil.which("setsid")  # util-linux: `setsid --ctty` = new session, stdin as controlling tty


def _open_pty(keep_isig):
    """A pty pair with the slave raw (binary clean); ISIG kept for the board side (Ctrl-C -> SIGINT)."""
    master, slave = pty.openpty()
    tty.setraw(slave)
    if keep_isig:
        attrs = termios.tcgetattr(slave)
        attrs[3] |= termios.ISIG
        termios.tcsetattr(slave, termios.TCSANOW, attrs)
    return master, slave


class ReplBoard:
    """One emulated board; use as a context manager. `port` is the path to hand to mpremote."""

    def __init__(self, root, micropython=MICROPYTHON, heapsize="256K"):
        self.root = str(root)
        self.micropython = micropython
        self.heapsize = heapsize
        self.output = bytearray()  # everything the board printed since start (for asserts)
        self.resets = 0
        self.boots = 0
        self._lock = threading.Lock()
        self._proc = None
        self._proc_master = None
        self._usb_master = None
        self._usb_slave = None
        self.port = None
        self._thread = None
        self._running = False
        self._interrupt_until = 0
        self._next_sigint = 0

    # ---- lifecycle -------------------------------------------------------------------------
    def __enter__(self):
        self.plug()
        return self

    def __exit__(self, *exc):
        self.unplug()

    def plug(self):
        """Power up: new USB pty, boot like a Pico (main.py if present, else the REPL)."""
        if self._running:
            return
        self._usb_master, self._usb_slave = _open_pty(keep_isig=False)
        self.port = os.ttyname(self._usb_slave)
        self._running = True
        self._spawn(raw=False)
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()

    def unplug(self):
        """Vanish from the host: kill the process and close the USB pty (host I/O then fails)."""
        if not self._running:
            return
        self._running = False
        self._thread.join(timeout=5)
        self._kill()
        for fd in (self._usb_master, self._usb_slave):
            try:
                os.close(fd)
            except OSError:
                pass
        self._usb_master = self._usb_slave = None

    # ---- the board process -----------------------------------------------------------------
    def _spawn(self, raw, run_main=True):
        master, slave = _open_pty(keep_isig=True)
        slave_name = os.ttyname(slave)
        args = [self.micropython, "-X", "heapsize=" + self.heapsize]
        if run_main and not raw and os.path.exists(os.path.join(self.root, "main.py")):
            args += ["-i", "main.py"]
        env = dict(os.environ, MICROPYPATH=".frozen:lib")
        if SETSID:
            # New session with the board pty as controlling terminal, without a Python preexec_fn:
            # that would keep a forked copy of the host's open serial port (and its lock) alive
            # for milliseconds, and a deploy right after a reset would find the port locked.
            # SIGINT starts ignored (see _pump): CPython, which hosts this unix port, then leaves it
            # alone and only MicroPython's own handler ever catches it.
            args = ["sh", "-c", 'trap "" INT; exec "$@"', "sh", SETSID, "--ctty"] + args
            self._proc = subprocess.Popen(args, stdin=slave, stdout=slave, stderr=slave, cwd=self.root, env=env)
        else:
            def make_controlling_tty():
                signal.signal(signal.SIGINT, signal.SIG_IGN)
                os.setsid()
                os.close(os.open(slave_name, os.O_RDWR))  # first tty opened after setsid -> ctty

            self._proc = subprocess.Popen(args, stdin=slave, stdout=slave, stderr=slave, cwd=self.root,
                                          env=env, preexec_fn=make_controlling_tty)
        os.close(slave)
        self._proc_master = master
        self._raw_mode = False
        self._tail = b""
        self.boots += 1
        if raw:
            # Like a Pico after a raw-REPL soft reset: stay in raw mode. Wait for the prompt first
            # (the REPL may flush pending input when it switches its terminal to raw mode).
            self._read_board_until(b">>> ", timeout=10, forward=False)
            os.write(master, b"\x01")
            self._read_board_until(_RAW_BANNER + b">", timeout=10, forward=True)

    def _read_board_until(self, marker, timeout, forward):
        data = b""
        end = time.monotonic() + timeout
        while marker not in data and time.monotonic() < end:
            r, _, _ = select.select([self._proc_master], [], [], 0.05)
            if r:
                try:
                    chunk = os.read(self._proc_master, 4096)
                except OSError:
                    break
                data += chunk
        if forward:
            self._to_host(data[data.find(_RAW_BANNER):] if _RAW_BANNER in data else data)

    def _kill(self):
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except OSError:
                proc.kill()
        if proc is not None:
            proc.wait()
        if self._proc_master is not None:
            try:
                os.close(self._proc_master)
            except OSError:
                pass
            self._proc_master = None

    def _to_host(self, data):
        if not data:
            return
        with self._lock:
            self.output += data
        self._tail = (self._tail + data)[-64:]
        try:
            os.write(self._usb_master, data)
        except OSError:
            pass

    def _soft_reset(self):
        was_raw = self._tail.rfind(_RAW_BANNER) > self._tail.rfind(b">>> ")
        # Ctrl-C that came before the process set up its handler killed it: a Pico interrupted
        # while booting lands in the REPL, so come back without main.py (and say nothing).
        interrupted = self._proc is not None and self._proc.poll() == -signal.SIGINT
        self._kill()
        if interrupted:
            self._spawn(raw=False, run_main=False)
            return
        self.resets += 1
        self._to_host(b"MPY: soft reboot\r\n")
        self._spawn(raw=was_raw)

    def _pump(self):
        while self._running:
            fds = [self._usb_master, self._proc_master]
            try:
                readable, _, _ = select.select(fds, [], [], 0.05)
            except (OSError, ValueError):
                readable = []
            board_gone = False
            if self._proc_master in readable:
                try:
                    self._to_host(os.read(self._proc_master, 4096))
                except OSError:  # EIO: the process closed its terminal (exited)
                    board_gone = True
            if self._usb_master in readable:
                try:
                    data = os.read(self._usb_master, 4096)
                except OSError:
                    data = b""
                if data:
                    if b"\x03" in data and self._executing():
                        self._interrupt_until = time.monotonic() + 3.0
                        self._next_sigint = time.monotonic() + 0.2
                    try:
                        os.write(self._proc_master, data)
                    except OSError:
                        board_gone = True
            self._keep_interrupting()
            if board_gone or (self._proc is not None and self._proc.poll() is not None):
                if self._running:
                    self._drain_board()
                    self._soft_reset()

    def _executing(self):
        """True while the process runs code: its REPL clears ISIG only while it waits for input."""
        try:
            return bool(termios.tcgetattr(self._proc_master)[3] & termios.ISIG)
        except (termios.error, OSError, TypeError):
            return False

    def _keep_interrupting(self):
        """A Pico acts on Ctrl-C at any moment; the unix port misses a SIGINT that comes before
        it installs its handler (while it is still starting). So until the program has stopped
        (its REPL waits for input) send SIGINT again every 0.2 s, for at most 3 s."""
        if not self._interrupt_until:
            return
        now = time.monotonic()
        if now > self._interrupt_until or self._proc is None or not self._executing():
            self._interrupt_until = 0
            return
        if now >= self._next_sigint:
            self._next_sigint = now + 0.2
            try:
                os.killpg(self._proc.pid, signal.SIGINT)
            except OSError:
                pass

    def _drain_board(self):
        while True:
            try:
                r, _, _ = select.select([self._proc_master], [], [], 0)
                if not r:
                    return
                chunk = os.read(self._proc_master, 4096)
            except OSError:
                return
            if not chunk:
                return
            self._to_host(chunk)

    # ---- helpers for tests -----------------------------------------------------------------
    def wait_output(self, marker, timeout=10.0, start=0):
        """Wait until `marker` (bytes) appears in the board output after offset `start`."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with self._lock:
                if bytes(self.output).find(marker, start) >= 0:
                    return True
            time.sleep(0.02)
        return False
