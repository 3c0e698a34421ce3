"""Where a command may write: never over one of its inputs, never over an unrelated file.

Why: a typo in `--out` or `--beats` must not cost a recording or a session (issue 13). A target that
already exists is replaced only when it is the command's own earlier output of the same kind (a
Kubios RR file over a Kubios RR file, a beats CSV over a beats CSV, ...), or with `--force`; an
input of the same command is refused even with `--force`. The writing itself stays atomic
(temporary file, then rename), done by the callers.
"""

import os

from vagal_host.errors import VagalError

SNIFF_BYTES = 1 << 16  # what is read of an existing file to tell whether it is an earlier output
KUBIOS_MAX_BYTES = 64 << 20


def _head(path, n=SNIFF_BYTES):
    try:
        with open(path, "rb") as f:
            return f.read(n)
    except OSError:
        return b""


def _first_line(path):
    return _head(path, 4096).split(b"\n", 1)[0].rstrip(b"\r").decode("ascii", "replace")


def _is_kubios(path):
    """One RR interval in ms per line, nothing else (what write_kubios writes)."""
    try:
        if os.path.getsize(path) > KUBIOS_MAX_BYTES:
            return False
        with open(path, "rb") as f:
            lines = f.read().split(b"\n")
    except OSError:
        return False
    if lines and lines[-1] == b"":
        lines.pop()
    if not lines:
        return False
    for line in lines:
        try:
            float(line.decode("ascii"))
        except (UnicodeDecodeError, ValueError):
            return False
    return True


def _is_vagal_wfdb(path):
    """The .hea of a record `vagal export --format wfdb` wrote (its comment names the session)."""
    return b"# vagal session " in _head(path, 4096)


def is_own(kind, path):
    """Is the existing file at `path` an earlier output of this `kind`?

    kinds: "kubios"; "beats" (vagal replay); "csv:H1,H2,..." (an export table with that header row);
    "wfdb" (a file of a record whose .hea vagal wrote); "png" (a matplotlib figure); "html" (a
    vagal report page).
    """
    if kind == "kubios":
        return _is_kubios(path)
    if kind == "beats":
        from vagal.replay import HEADER

        return _first_line(path) == HEADER.strip()
    if kind.startswith("csv:"):
        return _first_line(path) == kind[4:]
    if kind == "wfdb":
        hea = os.path.splitext(path)[0] + ".hea"
        return os.path.exists(hea) and _is_vagal_wfdb(hea)
    if kind == "png":
        head = _head(path, 4096)
        return head.startswith(b"\x89PNG") and b"Matplotlib" in head
    if kind == "html":
        return REPORT_MARK.encode() in _head(path)
    raise ValueError("unknown output kind %r" % kind)


REPORT_MARK = "<meta name='generator' content='vagal report'>"
KIND_NAMES = {"kubios": "a Kubios RR file", "beats": "a vagal replay beats file",
              "wfdb": "a vagal WFDB record", "png": "a figure", "html": "a vagal report page"}


def _kind_name(kind):
    return "a vagal export table" if kind.startswith("csv:") else KIND_NAMES[kind]


def same_file(a, b):
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


def check_target(path, kind, inputs=(), force=False, option="--out"):
    """VagalError unless `path` may be (re)written by a command reading `inputs`."""
    for inp in inputs:
        if inp and os.path.exists(path) and same_file(path, inp):
            raise VagalError("%s %s is an input of this command (%s): choose another name"
                             % (option, path, inp))
    if os.path.isdir(path):
        raise VagalError("%s %s is a folder" % (option, path))
    if os.path.lexists(path) and not force and not is_own(kind, path):
        raise VagalError("%s %s exists and is not %s: choose another name, or --force to replace it"
                         % (option, path, _kind_name(kind)))


def wfdb_inputs(path):
    """The files a recording at `path` is read from (a WFDB record's .hea, .dat, annotations)."""
    out = [path]
    stem, ext = os.path.splitext(path)
    if ext.lower() in (".hea", ".dat", "") or not os.path.exists(path):
        folder = os.path.dirname(stem) or "."
        base = os.path.basename(stem)
        try:
            out += [os.path.join(folder, n) for n in os.listdir(folder) if n.startswith(base + ".")]
        except OSError:
            pass
    return out


def unwritable(path, e):
    """The one-line VagalError for an OSError met while writing `path`."""
    return VagalError("cannot write %s: %s" % (path, getattr(e, "strerror", None) or e))
