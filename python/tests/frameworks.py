"""Helpers shared by the framework interop tests."""

from dlpack_ctypes import capsule_name


class Spy:
    """Wraps a DLPack producer and records how a consumer called __dlpack__ and
    which capsule it got back."""

    def __init__(self, inner):
        self.inner = inner
        self.calls = []
        self.capsules = []

    def __dlpack__(self, **kwargs):
        self.calls.append(kwargs)
        cap = self.inner.__dlpack__(**kwargs)
        self.capsules.append(capsule_name(cap))
        return cap

    def __dlpack_device__(self):
        return self.inner.__dlpack_device__()
