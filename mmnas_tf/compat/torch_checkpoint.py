"""Restricted readers of PyTorch checkpoints: no torch needed, nothing arbitrary unpickled.

Two formats, told apart by their first bytes:

- the zip format (``torch.save`` since torch 1.6): ``<name>/data.pkl`` (the object, whose storages
  are persistent ids), ``<name>/data/<key>`` (one raw little-endian storage per key);
- the legacy format (torch 0.4 - 1.5, and ``_use_new_zipfile_serialization=False`` since): one
  stream of five pickles and raw data: the magic number ``0x1950a86a20f9469cfc6c``, the protocol
  version 1001, a sys-info dict (byte order, C type sizes), the object (storages as persistent ids
  ``('storage', type, key, location, numel, view)``), the sorted list of storage keys, then per
  key an int64 element count followed by the storage's raw little-endian bytes.

In both, the object pickle may only hold plain containers, numbers and strings,
``collections.OrderedDict``, ``torch._utils._rebuild_tensor(_v2)`` / ``_rebuild_parameter`` and the
typed storage classes; any other global is refused, so a malicious checkpoint cannot run code.
Storage locations (``cpu``, ``cuda:N``) are ignored: every tensor comes back as a numpy array.
"""

from __future__ import annotations

import collections
import os
import pickle
import struct
import zipfile

import numpy as np

_STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "BFloat16Storage": np.uint16,  # numpy has no bfloat16: widened to float32 by _storage_array
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}
# torch.cuda.FloatStorage etc.: what torch < 1.0 wrote for storages saved from a GPU.
_STORAGE_MODULES = ("torch", "torch.cuda")

LEGACY_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL_VERSION = 1001
_ZIP_SIGNATURE = b"PK\x03\x04"


class _StorageType:
    def __init__(self, name: str):
        self.name = name
        self.dtype = np.dtype(_STORAGE_DTYPES[name]).newbyteorder("<")


def _storage_array(storage_type: _StorageType, raw: bytes, numel: int) -> np.ndarray:
    array = np.frombuffer(raw, storage_type.dtype, count=numel)
    if storage_type.name == "BFloat16Storage":
        return (array.astype(np.uint32) << 16).view(np.float32)
    return array.astype(storage_type.dtype.newbyteorder("="), copy=False)


def _rebuild_tensor_v2(
    storage, storage_offset, size, stride, requires_grad=False, hooks=None, metadata=None
):
    size, stride = tuple(size), tuple(stride)
    if not size:
        return storage[storage_offset].copy()
    itemsize = storage.dtype.itemsize
    return np.lib.stride_tricks.as_strided(
        storage[storage_offset:], shape=size, strides=tuple(s * itemsize for s in stride)
    ).copy()


def _rebuild_tensor(storage, storage_offset, size, stride):
    return _rebuild_tensor_v2(storage, storage_offset, size, stride)


def _rebuild_parameter(data, requires_grad=False, hooks=None):
    return data


def _placeholder_tensor(*args, **kwargs):
    return None


_TENSOR_REBUILDERS = {("torch._utils", "_rebuild_tensor_v2"), ("torch._utils", "_rebuild_tensor")}
_ALLOWED = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
}


class _RestrictedUnpickler(pickle.Unpickler):
    """Admits only the globals above; storages come from ``storage(type, key, numel, view)``."""

    def __init__(self, file, path: str, storage=None, placeholders: bool = False):
        super().__init__(file, encoding="utf-8")
        self._path = path
        self._storage = storage
        self._placeholders = placeholders

    def find_class(self, module, name):
        if module in _STORAGE_MODULES and name in _STORAGE_DTYPES:
            return _StorageType(name)
        if self._placeholders and (module, name) in _TENSOR_REBUILDERS:
            return _placeholder_tensor
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]
        raise pickle.UnpicklingError(
            f"refusing to load global {module}.{name}; a checkpoint may only hold "
            "tensors, numbers, strings and containers"
        )

    def persistent_load(self, pid):
        if self._storage is None:
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}")
        if isinstance(pid, tuple) and pid and pid[0] == "module":
            raise pickle.UnpicklingError(
                "holds a pickled torch.nn.Module (torch.save(model)); only state dicts of "
                "tensors can be read: save model.state_dict() instead"
            )
        if not (
            isinstance(pid, tuple)
            and len(pid) in (5, 6)
            and pid[0] == "storage"
            and isinstance(pid[1], _StorageType)
        ):
            raise pickle.UnpicklingError(f"unsupported persistent id {pid!r}")
        # pid[3], the location ("cpu", "cuda:0", ...), does not matter here.
        view = pid[5] if len(pid) == 6 else None
        return self._storage(pid[1], str(pid[2]), int(pid[4]), view)


def _unpickle(file, path: str, what: str, storage=None, placeholders: bool = False):
    """One pickle from ``file``; every failure becomes a ValueError naming the file."""
    try:
        return _RestrictedUnpickler(file, path, storage, placeholders).load()
    except EOFError as e:
        raise ValueError(f"{path}: truncated: the file ends inside the {what}") from e
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from e
    except (pickle.UnpicklingError, struct.error, IndexError, KeyError, TypeError) as e:
        message = str(e)
        if "truncated" in message or "ran out of input" in message.lower():
            raise ValueError(f"{path}: truncated: the file ends inside the {what}") from e
        raise ValueError(f"{path}: cannot read the {what}: {message}") from e


def _read_zip(path: str):
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as e:
        raise ValueError(
            f"{path}: truncated or corrupt zip checkpoint (its zip directory cannot be read: {e})"
        ) from e
    with archive:
        pickles = [n for n in archive.namelist() if n.endswith("data.pkl")]
        if len(pickles) != 1:
            raise ValueError(f"{path}: expected one data.pkl in the archive, found {pickles}")
        prefix = pickles[0][: -len("data.pkl")]
        storages: dict[str, np.ndarray] = {}

        def storage(storage_type, key, numel, view):
            if key not in storages:
                raw = archive.read(f"{prefix}data/{key}")
                if len(raw) < numel * storage_type.dtype.itemsize:
                    raise pickle.UnpicklingError(
                        f"storage {key} is truncated: {len(raw)} bytes for {numel} elements"
                    )
                storages[key] = _storage_array(storage_type, raw, numel)
            return storages[key]

        try:
            with archive.open(pickles[0]) as f:
                return _unpickle(f, path, "object pickle (data.pkl)", storage)
        except (zipfile.BadZipFile, KeyError, OSError, EOFError) as e:
            raise ValueError(f"{path}: corrupt zip checkpoint: {e}") from e


def _read_legacy(path: str, f):
    protocol = _unpickle(f, path, "protocol version")
    if protocol != LEGACY_PROTOCOL_VERSION:
        raise ValueError(
            f"{path}: legacy PyTorch checkpoint with protocol version {protocol!r}; only "
            f"{LEGACY_PROTOCOL_VERSION} (torch 0.4 - 1.5) is known"
        )
    sys_info = _unpickle(f, path, "sys-info header")
    if not isinstance(sys_info, dict) or not sys_info.get("little_endian", True):
        raise ValueError(
            f"{path}: written on a big-endian machine (sys info {sys_info!r}); only "
            "little-endian legacy checkpoints are supported"
        )
    # Pass 1 learns the storages (type and size per key) the object refers to; their bytes follow
    # the object, so pass 2 unpickles it again with the storages filled in.
    start = f.tell()
    declared: dict[str, tuple[_StorageType, int]] = {}

    def declare(storage_type, key, numel, view):
        if view is not None:
            _view_key, offset, view_numel = view
            numel = max(numel, int(offset) + int(view_numel))
        known = declared.get(key, (storage_type, 0))[1]
        declared[key] = (storage_type, max(numel, known))
        return np.zeros(0, storage_type.dtype)

    what = "object pickle"
    _unpickle(f, path, what, declare, placeholders=True)
    keys = _unpickle(f, path, "storage key list")
    if not isinstance(keys, list) or set(map(str, keys)) != set(declared):
        raise ValueError(
            f"{path}: corrupt legacy checkpoint: the storage key list {keys!r:.200} does not "
            f"match the {len(declared)} storages the object refers to"
        )
    storages: dict[str, np.ndarray] = {}
    for key in map(str, keys):
        storage_type, numel = declared[key]
        head = f.read(8)
        if len(head) < 8:
            raise ValueError(f"{path}: truncated: the file ends before storage {key}")
        (count,) = struct.unpack("<q", head)
        if count < numel:
            raise ValueError(
                f"{path}: corrupt legacy checkpoint: storage {key} holds {count} elements, the "
                f"object needs {numel}"
            )
        nbytes = count * storage_type.dtype.itemsize
        raw = f.read(nbytes)
        if len(raw) < nbytes:
            raise ValueError(
                f"{path}: truncated: storage {key} needs {nbytes} bytes, only {len(raw)} are left"
            )
        storages[key] = _storage_array(storage_type, raw, count)

    def storage(storage_type, key, numel, view):
        array = storages[key]
        if view is not None:
            _view_key, offset, view_numel = view
            array = array[int(offset) : int(offset) + int(view_numel)]
        return array

    f.seek(start)
    return _unpickle(f, path, what, storage)


def read_torch_checkpoint(path: str):
    """Loads a ``torch.save`` checkpoint (zip or legacy format) safely; tensors become numpy
    arrays, whatever device they were saved from.

    Raises ``FileNotFoundError`` for a missing file and ``ValueError`` naming the file for one in
    neither format, a truncated or corrupt one, or one holding objects other than tensors and
    plain containers.
    """
    if not os.path.exists(path):
        raise FileNotFoundError(f"checkpoint not found: {path}")
    with open(path, "rb") as f:
        head = f.read(len(_ZIP_SIGNATURE))
        if head == _ZIP_SIGNATURE or zipfile.is_zipfile(f):
            return _read_zip(path)
        f.seek(0)
        magic = _read_magic(f)
        if magic == LEGACY_MAGIC_NUMBER:
            return _read_legacy(path, f)
    raise ValueError(
        f"{path} is not a PyTorch checkpoint: neither the zip format (torch.save since torch 1.6) "
        "nor the legacy format (torch 0.4 - 1.5, starting with the magic number "
        f"{LEGACY_MAGIC_NUMBER:#x})"
    )


def _read_magic(f):
    """The first pickle of a legacy checkpoint, or None when the file does not start with one."""
    try:
        return _RestrictedUnpickler(f, "").load()
    except Exception:  # any other file: not even a pickle, or a pickle of something else
        return None


def load_state_dict(path: str) -> dict[str, np.ndarray]:
    """The ``state_dict`` of an original MMnas checkpoint (``module.`` prefixes stripped).

    Accepts the training scripts' wrapper ``{"state_dict": ..., "net_optim": ..., "epoch": ...}``
    or a bare state dict, in either ``torch.save`` format; also ``.npz`` files of the same tensors.
    """
    if path.endswith(".npz"):
        with np.load(path) as z:
            raw = {k: z[k] for k in z.files}
    else:
        raw = read_torch_checkpoint(path)
        if isinstance(raw, dict) and "state_dict" in raw:
            raw = raw["state_dict"]
    if not isinstance(raw, dict) or not all(isinstance(v, np.ndarray) for v in raw.values()):
        raise ValueError(f"{path}: no state_dict of tensors found")
    return {k.removeprefix("module."): np.asarray(v) for k, v in raw.items()}
