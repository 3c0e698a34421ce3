"""vagal flash: UF2 checks before anything is copied, BOOTSEL drive discovery, copy failures, waiting."""

import errno
import os
import struct

import pytest

from vagal_host import uf2
from vagal_host.cli import main

# From the UF2 specification (github.com/microsoft/uf2) and the RP2040 datasheet, written out here
# rather than imported so a wrong constant in uf2.py shows up.
MAGIC0, MAGIC1, MAGIC_END = 0x0A324655, 0x9E5D5157, 0x0AB16F30
FLAG_FAMILY = 0x2000
RP2040, RP2350_ARM = 0xE48BFF56, 0xE48BFF59
INFO = "UF2 Bootloader v3.0\nModel: Raspberry Pi RP2\nBoard-ID: RPI-RP2\n"


def make_uf2(n=6, family=RP2040, flags=FLAG_FAMILY, base=0x10000000, total=None, numbers=None,
             payload=256):
    blocks = []
    for i in range(n):
        data = bytes((i * 31 + j) & 0xFF for j in range(payload)).ljust(476, b"\0")
        number = numbers[i] if numbers else i
        header = struct.pack("<8I", MAGIC0, MAGIC1, flags, base + 256 * i, payload, number,
                             n if total is None else total, family)
        blocks.append(header + data + struct.pack("<I", MAGIC_END))
    return b"".join(blocks)


def make_volume(parent, name="RPI-RP2", info=INFO):
    vol = parent / name
    vol.mkdir(parents=True)
    (vol / "INFO_UF2.TXT").write_text(info)
    return vol


def write(tmp_path, data, name="fw.uf2"):
    path = tmp_path / name
    path.write_bytes(data)
    return path


class Ports:
    """A fake serial-port lister: the board shows up after `after` calls."""

    def __init__(self, before=(), after=2, port="/dev/ttyACM0"):
        self.before, self.after, self.port, self.calls = list(before), after, port, 0

    def __call__(self):
        self.calls += 1
        return self.before + ([self.port] if self.calls > self.after else [])


def test_valid_image_is_copied_byte_for_byte_and_the_new_port_is_returned(tmp_path):
    data = make_uf2(n=10)
    image = uf2.check_uf2(data)
    assert (image.blocks, image.low, image.high) == (10, 0x10000000, 0x10000000 + 10 * 256)
    vol = make_volume(tmp_path / "media")
    fw = write(tmp_path, data)
    ports = Ports(before=["/dev/ttyACM5"], after=3, port="/dev/ttyACM6")
    port = uf2.flash(fw, mount=vol, progress=lambda m: None, list_ports=ports, sleep=lambda s: None)
    assert port == "/dev/ttyACM6"  # the pre-existing Pico's port is not mistaken for it
    assert (vol / "fw.uf2").read_bytes() == data


BAD_IMAGES = {
    "wrong family": (lambda: make_uf2(family=RP2350_ARM), "RP2350"),
    "no family flag": (lambda: make_uf2(flags=0), "no family id"),
    "not uf2 at all": (lambda: b"\x7fELF" + bytes(2000), "not a UF2 image"),
    "bad magic in a later block": (lambda: (lambda d: d[:3 * 512 + 508] + b"XXXX" + d[3 * 512 + 512:])(make_uf2()),
                                   "block 3 has a bad UF2 magic"),
    "truncated mid-block": (lambda: make_uf2()[:-100], "truncated"),
    "truncated whole blocks": (lambda: make_uf2(n=8)[:5 * 512], "has 5 of its 8 blocks"),
    "inconsistent block count": (lambda: make_uf2(n=6)[:512] + make_uf2(n=6, total=7)[512:], "block 1 says"),
    "blocks out of order": (lambda: make_uf2(n=4, numbers=[0, 2, 1, 3]), "numbered 2"),
    "address outside flash": (lambda: make_uf2(base=0x20000000), "outside the RP2040's flash"),
    "payload not 256": (lambda: make_uf2(payload=476), "256 bytes"),
    "empty": (lambda: b"", "empty"),
}


@pytest.mark.parametrize("case", sorted(BAD_IMAGES))
def test_bad_image_is_refused_before_anything_is_copied(tmp_path, capsys, case):
    build, message = BAD_IMAGES[case]
    vol = make_volume(tmp_path)
    fw = write(tmp_path, build())
    assert main(["flash", str(fw), "--mount", str(vol), "--no-wait"]) == 2
    err = capsys.readouterr().err
    assert len(error_lines(err)) == 1 and message in error_lines(err)[0], err
    assert sorted(os.listdir(vol)) == ["INFO_UF2.TXT"]


def test_drives_are_found_under_the_mount_folders(tmp_path, monkeypatch, capsys):
    media = tmp_path / "media" / "user"
    make_volume(media, "SOMESTICK", info="nothing\n")  # no INFO_UF2.TXT board id
    (media / "USBDISK").mkdir()
    make_volume(media, "PICO2", info="Board-ID: RP2350\n")
    fw = write(tmp_path, make_uf2())
    monkeypatch.setattr(uf2, "default_search_places", lambda: ([media], []))

    assert main(["flash", str(fw), "--no-wait"]) == 2  # only a Pico 2 drive: refused, named
    err = capsys.readouterr().err
    assert "no Pico in BOOTSEL mode" in err and "RP2350" in err

    pico = make_volume(media, "RPI-RP2")
    assert main(["flash", str(fw), "--no-wait"]) == 0
    assert (pico / "fw.uf2").read_bytes() == fw.read_bytes()
    capsys.readouterr()

    second = make_volume(media, "RPI-RP21")
    assert main(["flash", str(fw), "--no-wait"]) == 2
    assert "2 Picos in BOOTSEL mode" in capsys.readouterr().err
    assert sorted(os.listdir(second)) == ["INFO_UF2.TXT"]


def test_mount_that_is_not_a_pico_is_refused(tmp_path, capsys):
    fw = write(tmp_path, make_uf2())
    plain = tmp_path / "plain"
    plain.mkdir()
    assert main(["flash", str(fw), "--mount", str(plain), "--no-wait"]) == 2
    assert "not a Pico in BOOTSEL mode" in capsys.readouterr().err
    other = make_volume(tmp_path, "FEATHERBOOT", info="Board-ID: SAMD21-Feather\n")
    assert main(["flash", str(fw), "--mount", str(other), "--no-wait"]) == 2
    assert "SAMD21-Feather" in capsys.readouterr().err
    assert sorted(os.listdir(other)) == ["INFO_UF2.TXT"]


def error_lines(err):
    return [line for line in err.splitlines() if line.startswith("vagal flash: error:")]


def _raise(code):
    def fail(*args):
        raise OSError(code, os.strerror(code))
    return fail


def test_read_only_drive_one_message_nothing_left(tmp_path, monkeypatch, capsys):
    vol = make_volume(tmp_path)
    fw = write(tmp_path, make_uf2())
    monkeypatch.setattr(uf2, "_open", _raise(errno.EROFS))
    assert main(["flash", str(fw), "--mount", str(vol), "--no-wait"]) == 2
    err = capsys.readouterr().err
    assert len(error_lines(err)) == 1 and "read-only" in error_lines(err)[0]
    assert sorted(os.listdir(vol)) == ["INFO_UF2.TXT"]


def test_full_drive_refused_before_writing(tmp_path, monkeypatch, capsys):
    vol = make_volume(tmp_path)
    fw = write(tmp_path, make_uf2(n=20))
    monkeypatch.setattr(uf2, "_free_bytes", lambda path: 4096)
    assert main(["flash", str(fw), "--mount", str(vol), "--no-wait"]) == 2
    assert "is full" in capsys.readouterr().err
    assert sorted(os.listdir(vol)) == ["INFO_UF2.TXT"]


def test_drive_filling_up_mid_copy_removes_the_partial_file(tmp_path, monkeypatch, capsys):
    vol = make_volume(tmp_path)
    fw = write(tmp_path, make_uf2(n=300))  # 150 KB: several writes
    real_write = os.write
    calls = []

    def write_then_full(fd, data):
        calls.append(len(data))
        if len(calls) > 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(uf2, "_write", write_then_full)
    assert main(["flash", str(fw), "--mount", str(vol), "--no-wait"]) == 2
    err = capsys.readouterr().err
    assert "is full" in err and "nothing was flashed" in err
    assert len(calls) == 2 and sorted(os.listdir(vol)) == ["INFO_UF2.TXT"]


def test_drive_vanishing_after_the_last_byte_is_success(tmp_path, monkeypatch):
    """A real Pico reboots as soon as it has every block; fsync can then fail on the gone drive."""
    vol = make_volume(tmp_path)
    fw = write(tmp_path, make_uf2())

    def reboot(fd):
        (vol / "INFO_UF2.TXT").unlink()
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(uf2, "_fsync", reboot)
    port = uf2.flash(fw, mount=vol, progress=lambda m: None, list_ports=Ports(after=1), sleep=lambda s: None)
    assert port == "/dev/ttyACM0"


def test_board_not_coming_back_times_out_with_a_message():
    now = [0.0]
    messages = []

    def sleep(s):
        now[0] += s

    with pytest.raises(uf2.VagalError, match="no MicroPython serial port"):
        uf2.wait_for_serial(set(), 5.0, messages.append, list_ports=lambda: [], clock=lambda: now[0], sleep=sleep)
    assert 5.0 <= now[0] < 5.5
    assert len(messages) == 5 and "4 s" in messages[-1]  # progress once a second


def test_no_argument_says_where_to_get_micropython(capsys):
    assert main(["flash"]) == 0
    out = capsys.readouterr().out
    assert "https://micropython.org/download/RPI_PICO/" in out
    assert "1.28" in out and "1.29" in out and "BOOTSEL" in out


def test_missing_file_is_one_message(tmp_path, capsys):
    assert main(["flash", str(tmp_path / "nope.uf2"), "--no-wait"]) == 2
    assert "no such file" in capsys.readouterr().err
