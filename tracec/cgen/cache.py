"""The on-disk cache of compiled modules, safe under concurrency.

Layout under ``tc.config.cache_dir`` (mode 0700)::

    modules/<key[:2]>/<key>/module.so   the shared object
                            source.c    what it was compiled from
                            meta.json   key, size and SHA-256 of module.so, compiler, flags
    tmp/                                 builds in progress, entries being deleted

An entry is built in its own directory under tmp/ and published with one
atomic rename, so readers see a complete entry or none; when several
processes build the same key at once, the first rename wins and the others
discard their copy. Nothing waits on a lock. Before an entry is loaded its
owner, permissions and checksum are verified: loading a module is running
its code, and a truncated or corrupt entry is removed and rebuilt.
A directory's mtime marks when it was last used (least-recently-used pruning).
"""
import hashlib
import json
import os
import shutil
import stat
import tempfile
import time

from ..config import config

MODULE, SOURCE, META = "module.so", "source.c", "meta.json"


class InsecureCacheError(RuntimeError):
    """The cache directory or an entry is owned by another user or writable by others."""


def _check_secure(path, st=None):
    st = st or os.lstat(path)
    if stat.S_ISLNK(st.st_mode):
        raise InsecureCacheError(f"{path} is a symbolic link; tracec refuses to load code through it")
    if st.st_uid != os.getuid():
        raise InsecureCacheError(f"{path} belongs to user id {st.st_uid}, not to you ({os.getuid()}); "
                                 "tracec only loads compiled code you own")
    if st.st_mode & 0o022:
        raise InsecureCacheError(f"{path} is writable by group or others (mode {stat.S_IMODE(st.st_mode):o}); "
                                 "tracec refuses to load code others could have changed")


def root():
    """The cache directory, created (mode 0700) and checked."""
    path = config.cache_dir
    if not os.path.isdir(path):
        os.makedirs(path, mode=0o700, exist_ok=True)
    _check_secure(path, os.stat(path))
    for sub in ("modules", "tmp"):
        os.makedirs(os.path.join(path, sub), mode=0o700, exist_ok=True)
    return path


def entry_dir(key):
    return os.path.join(root(), "modules", key[:2], key)


def sha256_file(path):
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def lookup(key):
    """Path of the verified module for `key`, or None (missing; a corrupt entry is removed)."""
    path = entry_dir(key)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    _check_secure(path, st)
    module = os.path.join(path, MODULE)
    try:
        for name in (MODULE, META):
            _check_secure(os.path.join(path, name))
        with open(os.path.join(path, META)) as fh:
            meta = json.load(fh)
        ok = (meta.get("key") == key and os.path.getsize(module) == meta.get("size")
              and sha256_file(module) == meta.get("sha256"))
    except (OSError, ValueError, AttributeError):
        ok = False
    if not ok:
        remove(path)
        return None
    try:
        os.utime(path)  # last used
    except OSError:
        pass
    return module


def new_build_dir():
    """A private directory for one build, on the cache's filesystem (atomic rename)."""
    return tempfile.mkdtemp(prefix="build-", dir=os.path.join(root(), "tmp"))


def publish(key, build_dir, module_path, source, extra_meta):
    """Move a finished build into place; return the module path of the published entry."""
    final = entry_dir(key)
    meta = dict(extra_meta, key=key, size=os.path.getsize(module_path), sha256=sha256_file(module_path),
                created=time.time())
    with open(os.path.join(build_dir, SOURCE), "w") as fh:
        fh.write(source)
    with open(os.path.join(build_dir, META), "w") as fh:
        json.dump(meta, fh, indent=1)
    if os.path.basename(module_path) != MODULE:
        os.replace(module_path, os.path.join(build_dir, MODULE))
    for name in os.listdir(build_dir):
        os.chmod(os.path.join(build_dir, name), 0o600 if name != MODULE else 0o700)
    os.chmod(build_dir, 0o700)
    os.makedirs(os.path.dirname(final), mode=0o700, exist_ok=True)
    try:
        os.rename(build_dir, final)  # atomic; fails if another process published first
    except OSError:
        shutil.rmtree(build_dir, ignore_errors=True)
        found = lookup(key)
        if found is None:  # theirs was corrupt and is gone: publish ours again
            raise RuntimeError(f"could not publish cache entry {key}") from None
        return found
    return os.path.join(final, MODULE)


def remove(path):
    """Delete an entry: first renamed out of modules/ (atomic), then removed."""
    trash = tempfile.mkdtemp(prefix="trash-", dir=os.path.join(root(), "tmp"))
    try:
        os.rename(path, os.path.join(trash, "entry"))
    except OSError:
        pass  # already gone (another process removed it)
    shutil.rmtree(trash, ignore_errors=True)


def entries():
    """[(key, path, size in bytes, last used)] of every entry."""
    base = os.path.join(root(), "modules")
    found = []
    for prefix in sorted(os.listdir(base)):
        sub = os.path.join(base, prefix)
        if not os.path.isdir(sub):
            continue
        for key in sorted(os.listdir(sub)):
            path = os.path.join(sub, key)
            try:
                size = sum(os.path.getsize(os.path.join(path, f)) for f in os.listdir(path))
                found.append((key, path, size, os.stat(path).st_mtime))
            except OSError:
                continue  # removed meanwhile
    return found


def prune(limit=None, max_tmp_age=3600.0):
    """Remove least recently used entries until the cache is within `limit` bytes.

    Also removes leftovers of builds that died more than `max_tmp_age` seconds ago.
    Returns the number of entries removed.
    """
    limit = config.cache_size_limit if limit is None else limit
    tmp = os.path.join(root(), "tmp")
    now = time.time()
    for name in os.listdir(tmp):
        path = os.path.join(tmp, name)
        try:
            if now - os.stat(path).st_mtime > max_tmp_age:
                shutil.rmtree(path, ignore_errors=True)
        except OSError:
            pass
    found = sorted(entries(), key=lambda e: e[3])
    total = sum(e[2] for e in found)
    removed = 0
    for key, path, size, _ in found:
        if total <= limit:
            break
        remove(path)
        total -= size
        removed += 1
    return removed


def clear():
    """Remove every entry; returns how many there were."""
    found = entries()
    for _, path, _, _ in found:
        remove(path)
    return len(found)


def info():
    """A short description of the cache: where, how many entries, how big."""
    found = entries()
    total = sum(e[2] for e in found)
    return (f"cache directory: {root()}\nentries: {len(found)}\nsize: {total / 1e6:.1f} MB "
            f"(limit {config.cache_size_limit / 1e6:.0f} MB, flag cache_size_limit)")


def command(action):
    """Text output of ``python -m tracec cache <action>``."""
    if action == "info":
        return info()
    if action == "list":
        lines = [f"{'key':<42}{'size':>10}  last used"]
        for key, _, size, used in sorted(entries(), key=lambda e: -e[3]):
            lines.append(f"{key:<42}{size:>10}  {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(used))}")
        return "\n".join(lines)
    if action == "clear":
        return f"removed {clear()} entries from {root()}"
    if action == "prune":
        return f"removed {prune()} entries; " + info().replace("\n", "; ")
    raise ValueError(f"unknown cache action {action!r}")
