"""The machine a run measures on: its description for the report, and the
file systems under test (the root file system, or a journaled ext4 image on a
loop device, set up and removed here).

The description is taken when the run starts and kept in the run's first
record, so that a report re-rendered later still says what the figures came
from, not what the machine looks like today.
"""
import contextlib
import os
import platform
import subprocess
import tempfile
import time

from procs import log, rmtree, run

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def first_line(cmd):
    try:
        return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              timeout=60).stdout.strip().splitlines()[0]
    except Exception:  # noqa: BLE001 - description only
        return "?"


def describe(postern_binary, postfix_version):
    """(machine rows, software rows) for the report's machine table; the file
    systems go between the two."""
    cpu = "?"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem = int(f.readline().split()[1]) / 2**20
    binary = os.path.realpath(postern_binary)
    source = binary.split("/.build/")[0] if "/.build/" in binary else REPO
    commit = first_line(["git", "-C", source, "rev-parse", "--short=12", "HEAD"])
    dirty = subprocess.run(["git", "-C", source, "status", "--porcelain", "--", "Sources", "Package.swift"],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True).stdout.strip()
    if source != REPO:
        commit += f" (binary {binary})"
    distro = "?"
    with contextlib.suppress(OSError), open("/etc/os-release") as f:
        for line in f:
            if line.startswith("PRETTY_NAME="):
                distro = line.split("=", 1)[1].strip().strip('"')
    machine = [
        ["cores", f"{os.cpu_count()} × {cpu}"],
        ["memory", f"{mem:.0f} GiB"],
        ["OS, kernel", f"{distro}, Linux {platform.release()}"],
    ]
    software = [
        ["postern", f"{commit}{' (with uncommitted changes in Sources/)' if dirty else ''}, "
                    f"built with `swift build -c release --static-swift-stdlib` (as the Debian package is)"],
        ["Postfix", f"{postfix_version} (Debian package), private instance"],
        ["Swift", first_line(["swift", "--version"])],
        ["Python", platform.python_version()],
    ]
    return machine, software


def describe_fs(path):
    """"ext4, journaled (/dev/loop0 on /mnt, rw,relatime)": the file system
    holding `path`, from /proc/mounts and /sys/fs/ext4."""
    st = os.stat(path)
    best = ("?", "?", "?", "?")
    with open("/proc/mounts") as f:
        for line in f:
            dev, mnt, fstype, opts = line.split()[:4]
            try:
                if os.stat(mnt).st_dev == st.st_dev and len(mnt) >= len(best[1]) and \
                        (path == mnt or path.startswith(mnt.rstrip("/") + "/")):
                    best = (dev, mnt, fstype, opts)
            except OSError:
                pass
    dev, mnt, fstype, opts = best
    journal = ""
    if fstype == "ext4":
        try:
            with open(f"/sys/fs/ext4/{os.path.basename(os.path.realpath(dev))}/journal_task") as f:
                journal = ", no journal" if f.read().strip() == "<none>" else ", journaled"
        except OSError:
            pass
    return f"{fstype}{journal} ({dev} on {mnt}, {opts})"


@contextlib.contextmanager
def loop_fs(workdir, size):
    """A fresh ext4 image (mkfs.ext4 defaults: journaled) of `size` bytes,
    sparse, under `workdir`, loop-mounted; yields (mount point, what backs it).
    Unmounted and removed afterwards, also on Ctrl-C."""
    base = tempfile.mkdtemp(prefix="postern-bench-loop.", dir=workdir)
    os.chmod(base, 0o755)
    image, mnt = os.path.join(base, "ext4.img"), os.path.join(base, "mnt")
    os.mkdir(mnt)
    mounted = False
    try:
        run(["truncate", "-s", str(size), image])
        run(["mkfs.ext4", "-q", "-F", image])
        run(["mount", "-o", "loop", image, mnt])
        mounted = True
        os.chmod(mnt, 0o755)
        yield mnt, f"{size >> 30} GiB sparse image on the root file system"
    finally:
        if mounted:
            for _ in range(20):
                if subprocess.run(["umount", mnt], stderr=subprocess.DEVNULL).returncode == 0:
                    break
                time.sleep(0.5)
            else:
                # Not `return`: in a finally it would swallow a Ctrl-C or an error.
                log(f"could not unmount {mnt}; left mounted (umount -l {mnt}; rm -r {base})")
                mounted = None
        if mounted is not None:
            rmtree(base)


@contextlib.contextmanager
def tmpfs_fs(workdir, size=2 << 30):
    """A fresh tmpfs under `workdir`: the disk taken out, so that what is left
    of a drop is the submitting program itself. Unmounted and removed afterwards."""
    base = tempfile.mkdtemp(prefix="postern-bench-tmpfs.", dir=workdir)
    os.chmod(base, 0o755)
    mounted = False
    try:
        run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "none", base])
        mounted = True
        yield base, f"tmpfs of {size >> 30} GiB"
    finally:
        if mounted and subprocess.run(["umount", base], stderr=subprocess.DEVNULL).returncode != 0:
            log(f"could not unmount {base}; left mounted (umount -l {base})")
        else:
            rmtree(base)


def loop_size(requested, biggest_queue):
    """The image's size: as asked, else 8 GiB or enough inodes for the biggest
    start-up queue (mkfs.ext4's default: one inode per 16 KiB; a message
    needs three)."""
    return requested or max(8 << 30, biggest_queue * 3 * 16384 * 5 // 4)
