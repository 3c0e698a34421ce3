"""Flashing a Pico in BOOTSEL mode: check a UF2 image, find the RPI-RP2 drive, copy, wait for USB serial.

Why check the image ourselves: the RP2040 boot ROM silently ignores blocks it does not like (wrong
family, wrong payload size) and a truncated copy never reboots the board, so a bad file would leave
the user looking at a drive that does nothing. Every check runs before a byte is written.

UF2 block layout (https://github.com/microsoft/uf2), 512 bytes, little endian:
  0 magic 0x0A324655 | 4 magic 0x9E5D5157 | 8 flags | 12 target address | 16 payload size
  20 block number | 24 number of blocks | 28 family id (when flag 0x2000) | 32..508 data
  508 magic 0x0AB16F30
"""

import errno
import os
import shutil
import string
import struct
import sys
import time
from pathlib import Path

from vagal_host.errors import VagalError

BLOCK_SIZE = 512
MAGIC_START0 = 0x0A324655
MAGIC_START1 = 0x9E5D5157
MAGIC_END = 0x0AB16F30
FLAG_NOT_MAIN_FLASH = 0x00000001
FLAG_FAMILY_ID = 0x00002000
RP2040_FAMILY_ID = 0xE48BFF56
RP2040_PAYLOAD = 256  # the RP2040 boot ROM only accepts 256-byte, 256-aligned payloads
FLASH_START = 0x10000000
FLASH_END = 0x11000000  # 16 MB, the most the RP2040 can map
FAMILY_NAMES = {
    0xE48BFF56: "RP2040",
    0xE48BFF57: "RP2XXX absolute",
    0xE48BFF58: "RP2XXX data",
    0xE48BFF59: "RP2350 (Arm, Pico 2)",
    0xE48BFF5A: "RP2350 (RISC-V, Pico 2)",
    0xE48BFF5B: "RP2350 (Arm non-secure, Pico 2)",
    0x68ED2B88: "SAMD21",
    0x55114460: "SAMD51",
    0xADA52840: "nRF52840",
    0x1C5F21B0: "ESP32",
    0xBFDD4EEE: "ESP32-S2",
    0xC47E5767: "ESP32-S3",
    0x57755A57: "STM32F4",
}
BOOTSEL_LABEL = "RPI-RP2"
INFO_FILE = "INFO_UF2.TXT"
PICO_USB_VID = 0x2E8A

MICROPYTHON_DOWNLOAD = "https://micropython.org/download/RPI_PICO/"
# What is known, not more: the versions the firmware is written and compiled for. The host tests run
# the unix port and mpy-cross; no test here runs on a physical Pico.
TESTED_WITH = ("MicroPython 1.28 or 1.29: the host tests run the MicroPython unix port 1.29.0-preview and "
               "mpy-cross 1.29, and vagal deploy checks that the board loads the .mpy files it compiles")


class Uf2Image:
    """A checked RP2040 image: the bytes to copy and what they cover."""

    def __init__(self, data, blocks, low, high):
        self.data = data
        self.blocks = blocks
        self.low = low
        self.high = high

    def describe(self):
        return "%d blocks, flash 0x%08X..0x%08X (%d KB)" % (self.blocks, self.low, self.high,
                                                          (self.high - self.low) // 1024)


def _family_name(family):
    return FAMILY_NAMES.get(family, "unknown family 0x%08X" % family)


def check_uf2(data, name="image"):
    """Check `data` is a complete UF2 image for the RP2040's flash; return a Uf2Image or raise VagalError."""
    if not data:
        raise VagalError("%s is empty" % name)
    if len(data) < BLOCK_SIZE or struct.unpack_from("<II", data, 0) != (MAGIC_START0, MAGIC_START1):
        if len(data) >= 8 and struct.unpack_from("<II", data, 0) == (MAGIC_START0, MAGIC_START1):
            raise VagalError("%s is truncated: %d bytes, less than one 512-byte UF2 block" % (name, len(data)))
        raise VagalError("%s is not a UF2 image (no UF2 magic number at the start); download the .uf2 "
                         "file, not .bin/.elf/.hex" % name)
    if len(data) % BLOCK_SIZE:
        raise VagalError("%s is truncated: %d bytes is not a whole number of 512-byte UF2 blocks (%d full "
                         "blocks and %d bytes)" % (name, len(data), len(data) // BLOCK_SIZE, len(data) % BLOCK_SIZE))
    count = len(data) // BLOCK_SIZE
    declared = None
    low, high = None, None
    seen = set()
    for i in range(count):
        off = i * BLOCK_SIZE
        m0, m1, flags, addr, size, number, total, family = struct.unpack_from("<8I", data, off)
        (m_end,) = struct.unpack_from("<I", data, off + BLOCK_SIZE - 4)
        if (m0, m1, m_end) != (MAGIC_START0, MAGIC_START1, MAGIC_END):
            raise VagalError("%s block %d has a bad UF2 magic number: the file is corrupted" % (name, i))
        if not flags & FLAG_FAMILY_ID:
            raise VagalError("%s block %d has no family id: not an image built for the RP2040" % (name, i))
        if family != RP2040_FAMILY_ID:
            hint = " (an image for the Pico 2; this board is a Pico, RPI_PICO)" if "RP2350" in _family_name(family) else ""
            raise VagalError("%s is for %s, not the RP2040 of a Raspberry Pi Pico%s"
                             % (name, _family_name(family), hint))
        if declared is None:
            declared = total
        if total != declared:
            raise VagalError("%s block %d says the image has %d blocks but block 0 says %d: the file is "
                             "corrupted" % (name, i, total, declared))
        if number != i:
            raise VagalError("%s block %d is numbered %d: blocks out of order or missing" % (name, i, number))
        if flags & FLAG_NOT_MAIN_FLASH:
            continue
        if size != RP2040_PAYLOAD or addr % RP2040_PAYLOAD:
            raise VagalError("%s block %d carries %d bytes at 0x%08X: the RP2040 boot ROM needs 256 bytes "
                             "at 256-byte aligned addresses" % (name, i, size, addr))
        if not FLASH_START <= addr < FLASH_END - size + 1:
            raise VagalError("%s block %d targets 0x%08X, outside the RP2040's flash (0x%08X..0x%08X)"
                             % (name, i, addr, FLASH_START, FLASH_END))
        if addr in seen:
            raise VagalError("%s writes address 0x%08X twice (block %d): the file is corrupted" % (name, addr, i))
        seen.add(addr)
        low = addr if low is None else min(low, addr)
        high = addr + size if high is None else max(high, addr + size)
    if declared != count:
        if declared > count:
            raise VagalError("%s is truncated: it has %d of its %d blocks" % (name, count, declared))
        raise VagalError("%s has %d blocks but declares %d: the file is corrupted" % (name, count, declared))
    if not seen:
        raise VagalError("%s has no blocks for the main flash" % name)
    return Uf2Image(data, count, low, high)


def load_uf2(path):
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise VagalError("no such file: %s" % path)
    except IsADirectoryError:
        raise VagalError("%s is a directory, not a .uf2 file" % path)
    except OSError as e:
        raise VagalError("cannot read %s: %s" % (path, e.strerror or e))
    return check_uf2(data, path.name)


# ---------------------------------------------------------------------------------------------
# The BOOTSEL drive

def read_info(volume):
    """INFO_UF2.TXT as a dict ({} when absent or unreadable)."""
    info = {}
    try:
        text = (Path(volume) / INFO_FILE).read_text(errors="replace")
    except OSError:
        return info
    for line in text.splitlines():
        if ":" in line:
            key, value = line.split(":", 1)
            info[key.strip()] = value.strip()
    return info


def is_uf2_volume(path):
    return (Path(path) / INFO_FILE).is_file()


def is_rp2040_bootsel(path):
    return read_info(path).get("Board-ID", "").startswith(BOOTSEL_LABEL)


def default_search_places():
    """(parent folders whose entries may be drives, paths that may be drives) for this OS."""
    if sys.platform == "win32":
        return [], [Path("%s:\\" % d) for d in string.ascii_uppercase[2:]]
    if sys.platform == "darwin":
        return [Path("/Volumes")], []
    user = os.environ.get("USER") or os.environ.get("LOGNAME") or ""
    parents = [Path("/media") / user, Path("/run/media") / user, Path("/media"), Path("/mnt")]
    mounts = []
    try:
        with open("/proc/mounts") as f:
            for line in f:
                fields = line.split()
                if len(fields) > 2 and fields[2] in ("vfat", "msdos", "fuseblk", "exfat"):
                    mounts.append(Path(fields[1].replace("\\040", " ")))
    except OSError:
        pass
    return parents, mounts


def find_uf2_volumes(places=None):
    """Every mounted UF2 bootloader drive (RP2040 or not), de-duplicated.

    `places`: folders whose entries are candidate drives (default: this OS's mount folders)."""
    parents, candidates = default_search_places() if places is None else (list(places), [])
    for parent in parents:
        try:
            candidates.extend(sorted(Path(parent).iterdir()))
        except OSError:
            pass
    seen, volumes = set(), []
    for c in candidates:
        try:
            if not is_uf2_volume(c):
                continue
            key = os.path.realpath(c)
        except OSError:
            continue
        if key not in seen:
            seen.add(key)
            volumes.append(Path(c))
    return volumes


def find_bootsel_volume(mount=None, places=None):
    """The one RPI-RP2 drive, or VagalError saying why there is none / too many."""
    if mount is not None:
        mount = Path(mount)
        if not mount.is_dir():
            raise VagalError("%s is not a folder (give the RPI-RP2 drive's mount point)" % mount)
        if not is_uf2_volume(mount):
            raise VagalError("%s has no %s: not a Pico in BOOTSEL mode" % (mount, INFO_FILE))
        if not is_rp2040_bootsel(mount):
            raise VagalError("%s is a UF2 drive for %s, not a Pico (RPI-RP2)"
                             % (mount, read_info(mount).get("Board-ID", "an unknown board")))
        return mount
    volumes = find_uf2_volumes(places)
    picos = [v for v in volumes if is_rp2040_bootsel(v)]
    if not picos:
        others = ", ".join("%s (%s)" % (v, read_info(v).get("Board-ID", "?")) for v in volumes)
        raise VagalError("no Pico in BOOTSEL mode found (no RPI-RP2 drive with %s). Hold the BOOTSEL "
                         "button while plugging the Pico in, or give --mount PATH%s"
                         % (INFO_FILE, "; other UF2 drives: " + others if others else ""))
    if len(picos) > 1:
        raise VagalError("%d Picos in BOOTSEL mode (%s): unplug all but one, or choose with --mount"
                         % (len(picos), ", ".join(str(p) for p in picos)))
    return picos[0]


# The file-system calls copy_to_volume makes, named so tests can make a drive fail like a real one
# (tests run as root, so a read-only folder cannot be simulated with permissions).
_free_bytes = lambda path: shutil.disk_usage(path).free  # noqa: E731
_open = os.open
_write = os.write
_fsync = os.fsync


def copy_to_volume(image, volume, name):
    """Write the image in one go with fsync; on failure remove what was written and explain."""
    volume = Path(volume)
    dest = volume / name
    try:
        free = _free_bytes(volume)
    except OSError as e:
        raise VagalError("cannot use %s: %s" % (volume, e.strerror or e))
    if free < len(image.data):
        raise VagalError("the BOOTSEL drive %s is full (%d KB free, the image needs %d KB): unplug the "
                         "Pico and hold BOOTSEL while plugging it in again" % (volume, free // 1024,
                                                                              (len(image.data) + 1023) // 1024))
    written = 0
    fd = None
    try:
        fd = _open(dest, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0), 0o644)
        view = memoryview(image.data)
        while written < len(view):
            written += _write(fd, view[written:written + 65536])
        _fsync(fd)
        os.close(fd)
        fd = None
    except OSError as e:
        if fd is not None:
            try:
                os.close(fd)
            except OSError:
                pass
        if written == len(image.data) and not is_uf2_volume(volume):
            return  # the Pico took the last block and rebooted: its drive vanished under us
        try:
            os.remove(dest)
        except OSError:
            pass
        if e.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            raise VagalError("the BOOTSEL drive %s is read-only (%s): nothing was flashed. Remount it "
                             "writable, or unplug and replug the Pico with BOOTSEL held" % (volume, e.strerror))
        if e.errno in (errno.ENOSPC, errno.EDQUOT):
            raise VagalError("the BOOTSEL drive %s is full: nothing was flashed. Unplug and replug the Pico "
                             "with BOOTSEL held" % volume)
        raise VagalError("copying to %s failed after %d of %d bytes (%s): nothing was flashed, the partial "
                         "file was removed; replug the Pico with BOOTSEL held and try again"
                         % (volume, written, len(image.data), e.strerror or e))


def pico_serial_ports(comports=None):
    if comports is None:
        from serial.tools import list_ports
        comports = list_ports.comports()
    return sorted(p.device for p in comports if getattr(p, "vid", None) == PICO_USB_VID)


def wait_for_serial(before, timeout, progress, list_ports=None, poll_s=0.25, clock=time.monotonic,
                    sleep=time.sleep):
    """Wait for a new Pico serial port (one not in `before`); return its path."""
    list_ports = list_ports or pico_serial_ports
    start = clock()
    last_report = -1
    while True:
        new = [p for p in list_ports() if p not in before]
        if new:
            return new[0]
        waited = clock() - start
        if waited >= timeout:
            raise VagalError("the image was copied but no MicroPython serial port (USB vendor 0x2E8A) "
                             "appeared within %g s: unplug and replug the Pico (without BOOTSEL); if it "
                             "shows the RPI-RP2 drive again, the image did not start" % timeout)
        if int(waited) != last_report:
            last_report = int(waited)
            progress("waiting for the board to come back as a serial port... %d s" % last_report)
        sleep(poll_s)


def flash(path, mount=None, places=None, wait=True, timeout=30.0, progress=None, list_ports=None,
          sleep=time.sleep):
    """Check, copy and wait; return the new serial port (or None without waiting)."""
    progress = progress or (lambda m: print("vagal flash: " + m, file=sys.stderr, flush=True))
    image = load_uf2(path)
    progress("%s: RP2040 UF2 image, %s" % (Path(path).name, image.describe()))
    volume = find_bootsel_volume(mount, places)
    info = read_info(volume)
    progress("Pico in BOOTSEL mode at %s (%s)" % (volume, info.get("Model", info.get("Board-ID", "?"))))
    list_ports = list_ports or pico_serial_ports
    before = set(list_ports()) if wait else set()
    progress("copying %d KB..." % ((len(image.data) + 1023) // 1024))
    copy_to_volume(image, volume, Path(path).name)
    progress("copied; the Pico reboots into the new firmware")
    if not wait:
        return None
    port = wait_for_serial(before, timeout, progress, list_ports, sleep=sleep)
    progress("the board is back as %s" % port)
    return port


def guidance(places=None):
    """What to do when `vagal flash` is run without an image."""
    lines = [
        "vagal flash puts MicroPython on a Raspberry Pi Pico (RP2040). You need the official image:",
        "  1. download the .uf2 for RPI_PICO (RPI_PICO_W for a Pico W) from " + MICROPYTHON_DOWNLOAD,
        "     use " + TESTED_WITH,
        "  2. hold the BOOTSEL button while plugging the Pico in: a drive named RPI-RP2 appears",
        "  3. vagal flash RPI_PICO-<date>-v1.29.x.uf2",
        "  4. vagal deploy        (copies the vagal firmware onto it)",
    ]
    try:
        picos = [v for v in find_uf2_volumes(places) if is_rp2040_bootsel(v)]
    except OSError:
        picos = []
    if picos:
        lines.append("A Pico in BOOTSEL mode is ready at " + ", ".join(str(p) for p in picos) + ".")
    else:
        lines.append("No Pico in BOOTSEL mode is connected right now.")
    return "\n".join(lines)
