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


def error_of(fn):
    """None when fn() works, else 'ExceptionType: message': a peer's own answer
    to being asked something, quoted in the skips that document its limits."""
    try:
        fn()
    except Exception as e:  # the peer's answer, whatever its type
        return f"{type(e).__name__}: {e}"
    return None


class CapsuleHolder:
    """Hands out one given capsule every time it is asked: for consumers that
    take producers, not bare capsules (NumPy's and JAX's from_dlpack)."""

    def __init__(self, capsule):
        self.capsule = capsule

    def __dlpack__(self, **kwargs):
        return self.capsule

    def __dlpack_device__(self):
        return (1, 0)
