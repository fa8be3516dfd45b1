"""DLPack's structs in ctypes, and a hand-made producer for tests.

The producer builds capsules field by field, so that tests can hand
tensorbridge exactly the malformed, foreign-device or already-consumed input
that real frameworks never produce, and count deleter calls.
"""

from __future__ import annotations

import ctypes

DLPACK_FLAG_READ_ONLY = 1 << 0
DLPACK_FLAG_IS_COPIED = 1 << 1
DLPACK_FLAG_IS_SUBBYTE_TYPE_PADDED = 1 << 2

CPU, CUDA, CUDA_HOST = 1, 2, 3
INT, UINT, FLOAT, BFLOAT, COMPLEX, BOOL = 0, 1, 2, 4, 5, 6


class DLDevice(ctypes.Structure):
    _fields_ = [("device_type", ctypes.c_int32), ("device_id", ctypes.c_int32)]


class DLDataType(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint8), ("bits", ctypes.c_uint8), ("lanes", ctypes.c_uint16)]


class DLTensor(ctypes.Structure):
    _fields_ = [
        ("data", ctypes.c_void_p),
        ("device", DLDevice),
        ("ndim", ctypes.c_int32),
        ("dtype", DLDataType),
        ("shape", ctypes.POINTER(ctypes.c_int64)),
        ("strides", ctypes.POINTER(ctypes.c_int64)),
        ("byte_offset", ctypes.c_uint64),
    ]


class DLPackVersion(ctypes.Structure):
    _fields_ = [("major", ctypes.c_uint32), ("minor", ctypes.c_uint32)]


class DLManagedTensor(ctypes.Structure):
    pass


LEGACY_DELETER = ctypes.CFUNCTYPE(None, ctypes.POINTER(DLManagedTensor))
DLManagedTensor._fields_ = [
    ("dl_tensor", DLTensor),
    ("manager_ctx", ctypes.c_void_p),
    ("deleter", LEGACY_DELETER),
]


class DLManagedTensorVersioned(ctypes.Structure):
    pass


VERSIONED_DELETER = ctypes.CFUNCTYPE(None, ctypes.POINTER(DLManagedTensorVersioned))
DLManagedTensorVersioned._fields_ = [
    ("version", DLPackVersion),
    ("manager_ctx", ctypes.c_void_p),
    ("deleter", VERSIONED_DELETER),
    ("flags", ctypes.c_uint64),
    ("dl_tensor", DLTensor),
]

# ---- the C exchange table (DLPack 1.2/1.3) ----


class ExchangeHeader(ctypes.Structure):
    pass


ExchangeHeader._fields_ = [("version", DLPackVersion), ("prev_api", ctypes.POINTER(ExchangeHeader))]

SET_ERROR = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p)
# Functions that may set Python exceptions are called with the GIL held.
ALLOCATOR = ctypes.PYFUNCTYPE(ctypes.c_int, ctypes.POINTER(DLTensor),
                              ctypes.POINTER(ctypes.POINTER(DLManagedTensorVersioned)),
                              ctypes.c_void_p, SET_ERROR)
FROM_PY = ctypes.PYFUNCTYPE(ctypes.c_int, ctypes.py_object,
                            ctypes.POINTER(ctypes.POINTER(DLManagedTensorVersioned)))
TO_PY = ctypes.PYFUNCTYPE(ctypes.c_int, ctypes.POINTER(DLManagedTensorVersioned),
                          ctypes.POINTER(ctypes.c_void_p))
DLTENSOR_FROM_PY = ctypes.PYFUNCTYPE(ctypes.c_int, ctypes.py_object, ctypes.POINTER(DLTensor))
CURRENT_STREAM = ctypes.PYFUNCTYPE(ctypes.c_int, ctypes.c_int32, ctypes.c_int32,
                                   ctypes.POINTER(ctypes.c_void_p))


class ExchangeAPI(ctypes.Structure):
    _fields_ = [
        ("header", ExchangeHeader),
        ("managed_tensor_allocator", ALLOCATOR),
        ("managed_tensor_from_py_object_no_sync", FROM_PY),
        ("managed_tensor_to_py_object_no_sync", TO_PY),
        ("dltensor_from_py_object_no_sync", DLTENSOR_FROM_PY),
        ("current_work_stream", CURRENT_STREAM),
    ]


# ---- capsules through the C API ----

_api = ctypes.pythonapi
# The destructor gets the dying capsule as a raw pointer: turning it into a
# py_object would revive an object whose reference count already reached 0.
CAPSULE_DESTRUCTOR = ctypes.CFUNCTYPE(None, ctypes.c_void_p)
_capsule_is_valid_raw = ctypes.PYFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p)(
    ("PyCapsule_IsValid", _api))
_api.PyCapsule_New.restype = ctypes.py_object
_api.PyCapsule_New.argtypes = [ctypes.c_void_p, ctypes.c_char_p, CAPSULE_DESTRUCTOR]
_api.PyCapsule_GetPointer.restype = ctypes.c_void_p
_api.PyCapsule_GetPointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
_api.PyCapsule_GetName.restype = ctypes.c_char_p
_api.PyCapsule_GetName.argtypes = [ctypes.py_object]
_api.PyCapsule_IsValid.restype = ctypes.c_int
_api.PyCapsule_IsValid.argtypes = [ctypes.py_object, ctypes.c_char_p]
_api.PyCapsule_SetName.restype = ctypes.c_int
_api.PyCapsule_SetName.argtypes = [ctypes.py_object, ctypes.c_char_p]
_api.Py_DecRef.argtypes = [ctypes.c_void_p]
_api.Py_DecRef.restype = None

# Capsule names must outlive their capsules: module-level constants.
NAMES = {n: n.encode() for n in ("dltensor", "dltensor_versioned", "used_dltensor",
                                 "used_dltensor_versioned", "not_a_tensor",
                                 "dlpack_exchange_api")}
_NO_DESTRUCTOR = ctypes.cast(None, CAPSULE_DESTRUCTOR)


def new_capsule(address: int, name: str):
    """A capsule around address with no destructor (the caller owns what it points to)."""
    return _api.PyCapsule_New(address, NAMES[name], _NO_DESTRUCTOR)


def capsule_name(capsule) -> str:
    name = _api.PyCapsule_GetName(capsule)
    return name.decode() if name is not None else None


def capsule_pointer(capsule, name: str) -> int:
    return _api.PyCapsule_GetPointer(capsule, NAMES[name])


def rename_capsule(capsule, name: str) -> None:
    assert _api.PyCapsule_SetName(capsule, NAMES[name]) == 0


def managed_from_capsule(capsule):
    """The DLManagedTensorVersioned or DLManagedTensor a capsule holds."""
    name = capsule_name(capsule)
    struct = DLManagedTensorVersioned if name.endswith("versioned") else DLManagedTensor
    return ctypes.cast(capsule_pointer(capsule, name), ctypes.POINTER(struct)).contents


class Producer:
    """A DLPack producer over a ctypes buffer, with every field settable.

    `deleted` counts deleter calls; the capsule's destructor calls the deleter
    only while the capsule keeps its unused name, as real producers do.
    """

    def __init__(self, values=(1.0, 2.0, 3.0, 4.0), *, ctype=ctypes.c_double, code=FLOAT,
                 bits=64, lanes=1, shape=None, strides="C", device=(CPU, 0), version=(1, 3),
                 flags=0, versioned=True, name=None, byte_offset=0, data_null=False):
        self.buffer = (ctype * max(len(values), 1))(*values)
        shape = (len(values),) if shape is None else tuple(shape)
        self.shape = (ctypes.c_int64 * max(len(shape), 1))(*shape)
        self.strides = None
        if strides == "C":
            strides = [1] * len(shape)
            for d in range(len(shape) - 2, -1, -1):
                strides[d] = strides[d + 1] * max(shape[d + 1], 1)
        if strides is not None:
            self.strides = (ctypes.c_int64 * max(len(strides), 1))(*strides)
        self.ndim = len(shape)
        self.code, self.bits, self.lanes = code, bits, lanes
        self.device, self.version, self.flags = device, version, flags
        self.versioned, self.byte_offset, self.data_null = versioned, byte_offset, data_null
        self.name = name or ("dltensor_versioned" if versioned else "dltensor")
        self.deleted = 0
        self.calls = []
        self._keep = []
        self._deleter_v = VERSIONED_DELETER(self._on_delete)
        self._deleter_l = LEGACY_DELETER(self._on_delete)
        self._destructor = CAPSULE_DESTRUCTOR(self._on_capsule_destroyed)

    @property
    def address(self) -> int:
        return ctypes.addressof(self.buffer)

    def _on_delete(self, _ptr):
        self.deleted += 1

    def _on_capsule_destroyed(self, capsule):
        name = NAMES.get(self.name)
        if name is not None and _capsule_is_valid_raw(capsule, name):
            self.managed.deleter(ctypes.pointer(self.managed))

    def _fill(self, dl):
        dl.data = None if self.data_null else self.address
        dl.device = DLDevice(*self.device)
        dl.ndim = self.ndim
        dl.dtype = DLDataType(self.code, self.bits, self.lanes)
        dl.shape = ctypes.cast(self.shape, ctypes.POINTER(ctypes.c_int64))
        if self.strides is not None:
            dl.strides = ctypes.cast(self.strides, ctypes.POINTER(ctypes.c_int64))
        dl.byte_offset = self.byte_offset

    def capsule(self):
        if self.versioned:
            m = DLManagedTensorVersioned()
            m.version = DLPackVersion(*self.version)
            m.deleter = self._deleter_v
            m.flags = self.flags
        else:
            m = DLManagedTensor()
            m.deleter = self._deleter_l
        self._fill(m.dl_tensor)
        self.managed = m
        self._keep.append(m)
        return _api.PyCapsule_New(ctypes.addressof(m), NAMES[self.name], self._destructor)

    def __dlpack__(self, *, stream=None, max_version=None, dl_device=None, copy=None):
        self.calls.append(dict(stream=stream, max_version=max_version, dl_device=dl_device,
                               copy=copy))
        return self.capsule()

    def __dlpack_device__(self):
        return self.device


class LegacyOnlyProducer(Producer):
    """A producer from before DLPack 1.0: __dlpack__ takes only `stream`."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("strides", None)
        super().__init__(*args, versioned=False, **kwargs)

    def __dlpack__(self, *, stream=None):
        self.calls.append(dict(stream=stream))
        return self.capsule()
