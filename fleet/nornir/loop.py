"""An event loop in a background thread, for synchronous callers (Nornir's runner threads).

asyncssh's connections belong to the event loop that opened them, and Nornir's runners are
threads that call tasks synchronously. So the connections Nornir keeps between calls live on one
loop that runs in a thread of its own, and each runner thread hands its coroutine over and waits
for the outcome (`LoopThread.run`). `SHARED` is that loop for every fleet connection of the
process: started by the first connection, stopped when the last one closes.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

STOP_TIMEOUT = 30.0  # seconds stop() waits for the thread to finish what was left on the loop


class LoopThread:
    """An asyncio event loop running in a daemon thread until stop()."""

    def __init__(self, name: str) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        self._thread.start()

    def _main(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_forever()
        finally:  # as asyncio.run ends: what is left is cancelled and waited for
            left = asyncio.all_tasks(self._loop)
            for task in left:
                task.cancel()
            self._loop.run_until_complete(asyncio.gather(*left, return_exceptions=True))
            self._loop.run_until_complete(self._loop.shutdown_asyncgens())
            self._loop.run_until_complete(self._loop.shutdown_default_executor())
            self._loop.close()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run `coroutine` on the loop and wait for its outcome in the calling thread; when the
        wait ends otherwise (KeyboardInterrupt ...), the coroutine is cancelled."""
        if threading.current_thread() is self._thread:
            coroutine.close()
            raise RuntimeError("LoopThread.run called on its own loop: await the coroutine instead")
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        try:
            return future.result()
        except BaseException:
            future.cancel()
            raise

    def stop(self) -> None:
        """Stop the loop and wait for its thread (STOP_TIMEOUT at most)."""
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            if threading.current_thread() is not self._thread:
                self._thread.join(STOP_TIMEOUT)


class SharedLoop:
    """One LoopThread for every user: acquire() starts it when it is not running, release()
    stops it when its last user lets go."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._lock = threading.Lock()
        self._loop: LoopThread | None = None
        self._users = 0

    @property
    def users(self) -> int:
        return self._users

    def acquire(self) -> LoopThread:
        with self._lock:
            if self._loop is None or not self._loop.running:
                self._loop, self._users = LoopThread(self._name), 0
            self._users += 1
            return self._loop

    def release(self, loop: LoopThread) -> None:
        with self._lock:
            if loop is not self._loop:  # a loop that stopped already
                return
            self._users -= 1
            if self._users > 0:
                return
            self._loop = None
        loop.stop()


SHARED = SharedLoop("fleet-nornir-loop")

__all__ = ["SHARED", "LoopThread", "SharedLoop"]
