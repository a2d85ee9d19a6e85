"""The pycuda backend's per-call context check (trtops.emit.runtime.cuda): the driver is
asked first (one ``cuCtxGetCurrent``); pycuda's own check and push run only when another
context is current. Stand-ins for pycuda and the driver library; tests/gpu/test_loader.py
runs the real ones."""

from __future__ import annotations

import sys
import types

import pytest

from trtops.emit.runtime import cuda as runtime_cuda

HANDLE = 0x7000


class Context:
    pushes = pops = get_current_calls = 0
    current = None

    def __init__(self, handle: int) -> None:
        self.handle = handle

    def push(self) -> None:
        Context.pushes += 1
        Context.current = self

    @staticmethod
    def pop() -> None:
        Context.pops += 1
        Context.current = None

    @staticmethod
    def get_current():
        Context.get_current_calls += 1
        return Context.current


class Stream:
    def __init__(self, flags: int = 0) -> None:
        self.handle = 0xBEEF

    def synchronize(self) -> None:
        pass


class Device:
    def __init__(self, index: int) -> None:
        self.index = index

    @staticmethod
    def count() -> int:
        return 1

    def retain_primary_context(self) -> Context:
        return Context(HANDLE)


@pytest.fixture
def backend(monkeypatch):
    driver_module = types.SimpleNamespace(init=lambda: None, Device=Device, Context=Context,
                                          Stream=Stream)
    package = types.ModuleType("pycuda")
    package.driver = driver_module
    monkeypatch.setitem(sys.modules, "pycuda", package)
    monkeypatch.setitem(sys.modules, "pycuda.driver", driver_module)
    said = {"current": HANDLE}

    def cu_ctx_get_current(reference) -> int:
        reference._obj.value = said["current"]  # what the driver writes through the pointer
        return 0

    lib = types.SimpleNamespace(cuCtxGetCurrent=cu_ctx_get_current)
    monkeypatch.setattr(runtime_cuda._Driver, "get", staticmethod(lambda: types.SimpleNamespace(lib=lib)))
    for name in ("pushes", "pops", "get_current_calls"):
        monkeypatch.setattr(Context, name, 0)
    monkeypatch.setattr(Context, "current", None)
    made = runtime_cuda._PycudaBackend(0)
    Context.pushes = Context.pops = 0
    return made, said


def test_our_context_current_in_the_driver_needs_no_pycuda_call(backend):
    made, _ = backend
    assert made.enter_fast() is False
    assert (Context.get_current_calls, Context.pushes) == (0, 0)
    assert made.bind_synchronize() == made.stream.synchronize


def test_another_context_current_falls_back_to_push_and_pop(backend):
    made, said = backend
    said["current"] = 0x9999  # e.g. pycuda.autoinit's own context
    pushed = made.enter_fast()
    assert pushed is True and Context.get_current_calls == 1 and Context.pushes == 1
    made.leave(pushed)
    assert Context.pops == 1


def test_without_the_driver_library_pycudas_check_decides(backend, monkeypatch):
    monkeypatch.setattr(runtime_cuda._Driver, "get", staticmethod(lambda: None))
    made = runtime_cuda._PycudaBackend(0)
    Context.current = made.context
    assert made.enter_fast() is False and Context.get_current_calls >= 1
