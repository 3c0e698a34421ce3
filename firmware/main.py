"""Boot file on the Pico (/main.py): create the board, run the vagal app.

If the app dies of an unexpected exception, the traceback goes out as protocol `log` lines (so the
host shows it and counts nothing as corrupt), then the watchdog, no longer fed, resets the board.
If the failure came before the watchdog was started, machine.reset() does it after a short grace
period. Ctrl-C (mpremote) is not caught: it drops to the REPL so new code can be deployed.
"""

import sys
import time

RESET_GRACE_MS = 10000  # longer than the 8.3 s watchdog maximum, so the watchdog normally wins


def report(exc):
    """The exception as protocol log lines (printable ASCII, never Ctrl-C/Ctrl-D)."""
    try:
        from vagal import protocol
        try:
            import io
            buf = io.StringIO()
            sys.print_exception(exc, buf)
            lines = buf.getvalue().split("\n")
        except Exception:
            lines = []
        sys.stdout.write(protocol.encode("log", 0, "error", "fatal: %s: %s" % (type(exc).__name__, exc)))
        for line in lines:
            if line:
                sys.stdout.write(protocol.encode("log", 0, "error", line))
    except Exception:
        pass


def main():
    try:
        from vagal import app, board
        app.run(board.Board())
    except KeyboardInterrupt:
        raise
    except Exception as e:
        report(e)
        time.sleep_ms(RESET_GRACE_MS)  # the unfed watchdog resets us here
        import machine
        machine.reset()


main()
