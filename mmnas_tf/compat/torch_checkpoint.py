"""A restricted reader of PyTorch's zip checkpoint format (``torch.save`` >= 1.6): no torch needed.

Only plain containers, ``collections.OrderedDict``, ``torch._utils._rebuild_tensor_v2`` /
``_rebuild_parameter`` and the typed storage classes may appear in the pickle; any other global is
refused, so a malicious checkpoint cannot run code. Tensors come back as numpy arrays.
"""

from __future__ import annotations

import collections
import os
import pickle
import zipfile

import numpy as np

_STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "BFloat16Storage": None,  # numpy has no bfloat16: decoded by hand below
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


class _StorageType:
    def __init__(self, name: str):
        self.name = name


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


def _rebuild_parameter(data, requires_grad=False, hooks=None):
    return data


_ALLOWED = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
}


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file, archive: zipfile.ZipFile, prefix: str, path: str):
        super().__init__(file)
        self._archive = archive
        self._prefix = prefix
        self._path = path
        self._storages = {}

    def find_class(self, module, name):
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]
        raise pickle.UnpicklingError(
            f"{self._path}: refusing to load global {module}.{name}; a checkpoint may only hold "
            "tensors, numbers, strings and containers"
        )

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and pid and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"{self._path}: unsupported persistent id {pid!r}")
        _, storage_type, key, _location, numel = pid
        if key not in self._storages:
            raw = self._archive.read(f"{self._prefix}data/{key}")
            if storage_type.name == "BFloat16Storage":
                bits = np.frombuffer(raw, np.uint16).astype(np.uint32) << 16
                array = bits.view(np.float32)
            else:
                array = np.frombuffer(raw, _STORAGE_DTYPES[storage_type.name])
            if array.size < numel:
                raise pickle.UnpicklingError(f"{self._path}: storage {key} is truncated")
            self._storages[key] = array
        return self._storages[key]


def read_torch_checkpoint(path: str):
    """Loads a ``torch.save`` zip checkpoint safely; tensors become numpy arrays.

    Raises ``FileNotFoundError`` for a missing file and ``ValueError`` for a file that is not a
    PyTorch zip checkpoint (the legacy pre-1.6 tar format is not supported) or holds objects other
    than tensors and plain containers.
    """
    if not os.path.exists(path):
        raise FileNotFoundError(f"checkpoint not found: {path}")
    if not zipfile.is_zipfile(path):
        raise ValueError(
            f"{path} is not a PyTorch zip checkpoint (torch.save >= 1.6); re-save it with a "
            "current torch or install the 'torch' extra"
        )
    with zipfile.ZipFile(path) as archive:
        pickles = [n for n in archive.namelist() if n.endswith("data.pkl")]
        if len(pickles) != 1:
            raise ValueError(f"{path}: expected one data.pkl in the archive, found {pickles}")
        prefix = pickles[0][: -len("data.pkl")]
        with archive.open(pickles[0]) as f:
            try:
                return _RestrictedUnpickler(f, archive, prefix, path).load()
            except pickle.UnpicklingError as e:
                raise ValueError(str(e)) from e


def load_state_dict(path: str) -> dict[str, np.ndarray]:
    """The ``state_dict`` of an original MMnas checkpoint (``module.`` prefixes stripped).

    Accepts the training scripts' wrapper ``{"state_dict": ..., "net_optim": ..., "epoch": ...}``
    or a bare state dict; also ``.npz`` files of the same tensors.
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
