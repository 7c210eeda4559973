"""Connection and process hygiene for ``cxnlp serve``: uvicorn's limits, a deadline for request
headers, workers that end with their parent, and a malloc that gives freed memory back."""
from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time
from asyncio import TimerHandle
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from cxnlp.settings import Settings

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
M_ARENA_MAX = -8      # <malloc.h>
# glibc gives every thread that allocates its own malloc arena (up to 8 per core), and a freed block goes
# back to the arena it came from: a worker's request threads (FastAPI runs plain routes on up to 40) each
# kept their own free memory, and a ten-minute soak saw a worker's heap grow by 54 MB of which only 10 MB
# was in use. Two arenas (the main one and one for all threads) kept the free part to about 13 MB.
MALLOC_ARENAS = 2
# What fragmentation still leaves free inside the heap is handed back (madvise) this often.
TRIM_SECONDS = 30.0
MAX_HEADER_BYTES = 64 * 1024
_431_BODY = b'{"detail":"request headers are over 64 KiB"}'
_HEADERS_TOO_LARGE = (b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: application/json\r\n"
                      b"connection: close\r\ncontent-length: %d\r\n\r\n%s" % (len(_431_BODY), _431_BODY))


class _HeadersTooLarge(Exception):
    """Raised from a parser callback to stop parsing headers over the limit."""


def header_deadline_protocol(timeout: float) -> type[HttpToolsProtocol]:
    """uvicorn's httptools protocol with a deadline and a size cap for each request's headers.

    uvicorn arms its keep-alive timer only after a response, and cancels it on the first byte: a
    socket that connects and sends nothing, or trickles a header a byte at a time, stays open for
    good (2,200 of them made fresh requests fail). Here the clock runs from the moment the
    connection waits for a request until its headers are complete; past it the socket is closed.
    Neither does httptools bound the headers' size (2 MB of them were answered 200): past
    ``MAX_HEADER_BYTES`` the answer is 431 and the connection is closed. A read that starts where the
    parser waits for headers is counted before the parser sees it, up to the blank line that ends them,
    so headers that arrive whole in one read are held to the limit too (70 KB of them in one packet
    were answered 200). Headers that begin in the middle of a read (a request pipelined behind another:
    8 MB of them were answered 200) are counted as the parser hands them over. The rest of a body that
    the app answered without reading is no header: it is not counted (100 KB of it made the next
    request on the connection a 431).
    """

    class HeaderDeadlineProtocol(HttpToolsProtocol):
        _header_timer: TimerHandle | None = None
        _header_bytes = 0  # raw bytes of the headers being waited for, counted before the parser sees them
        _header_tail = b""  # the last bytes of the headers so far: their end may straddle two reads
        _parsed_bytes = 0  # the request line and headers of the current request, as the parser hands them over
        _awaiting_headers = True  # the next bytes are a request's line and headers (not a body)
        _in_headers = False  # a request has begun and its headers are not complete
        _too_large = False

        def _arm_header_deadline(self) -> None:
            self._cancel_header_deadline()
            self._header_timer = self.loop.call_later(timeout, self._header_deadline_passed)

        def _cancel_header_deadline(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _header_deadline_passed(self) -> None:
            self._header_timer = None
            if not self.transport.is_closing():
                self.transport.close()

        def _refuse_headers(self) -> None:
            self._cancel_header_deadline()
            self.transport.write(_HEADERS_TOO_LARGE)
            self.transport.close()

        def connection_made(self, transport: Any) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm_header_deadline()

        def connection_lost(self, exc: Exception | None) -> None:
            self._cancel_header_deadline()
            super().connection_lost(exc)

        def _header_part(self, data: bytes) -> int:
            """How many bytes of ``data`` belong to the headers being waited for."""
            end = (self._header_tail + data).find(b"\r\n\r\n")
            return len(data) if end < 0 else end + 4 - len(self._header_tail)

        def data_received(self, data: bytes) -> None:
            if self._awaiting_headers and not self.transport.is_closing():
                self._header_bytes += self._header_part(data)
                if self._header_bytes > MAX_HEADER_BYTES:
                    self._refuse_headers()
                    return
            super().data_received(data)
            # a request's headers that go on in the next read may end across the two
            self._header_tail = (self._header_tail + data)[-3:] if self._in_headers else b""

        def _count_parsed(self, size: int) -> None:
            self._parsed_bytes += size
            if self._parsed_bytes > MAX_HEADER_BYTES:
                self._too_large = True
                raise _HeadersTooLarge  # stops the parser: the request is never started

        def on_message_begin(self) -> None:
            self._parsed_bytes = 0
            self._in_headers = True
            super().on_message_begin()

        def on_url(self, url: bytes) -> None:
            self._count_parsed(len(url))
            super().on_url(url)

        def on_header(self, name: bytes, value: bytes) -> None:
            self._count_parsed(len(name) + len(value) + 4)
            super().on_header(name, value)

        def send_400_response(self, msg: str) -> None:
            if self._too_large:  # the parser stopped at our bidding, not at malformed input
                self._refuse_headers()
                return
            super().send_400_response(msg)

        def on_headers_complete(self) -> None:
            self._cancel_header_deadline()
            self._awaiting_headers = self._in_headers = False
            self._header_bytes = 0
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            super().on_message_complete()
            self._awaiting_headers = True  # the body is read: what comes next is the next request

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing() and not self.pipeline:
                self._arm_header_deadline()

    return HeaderDeadlineProtocol


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """Server limits from the settings: concurrency, keep-alive, header deadline and size."""
    return {
        "http": header_deadline_protocol(settings.header_timeout),
        "limit_concurrency": settings.limit_concurrency,
        "timeout_keep_alive": settings.keep_alive_timeout,
        "h11_max_incomplete_event_size": MAX_HEADER_BYTES,  # used only if h11 serves; httptools caps at 80 KiB
    }


def die_with_parent(parent: int) -> None:
    """In a forked worker: exit when the parent goes, even by ``kill -9`` (it cannot forward a signal then).

    On Linux the kernel sends SIGTERM at the parent's death (prctl PR_SET_PDEATHSIG); everywhere a
    watchdog thread also checks once a second whether the worker has been re-parented.
    """
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)

    def watch() -> None:
        while True:
            threading.Event().wait(1.0)
            if os.getppid() != parent:
                os.kill(os.getpid(), signal.SIGTERM)
                threading.Event().wait(15.0)  # a graceful stop normally ends the process before this
                os._exit(1)

    threading.Thread(target=watch, name="cxnlp-parent-watchdog", daemon=True).start()


def _glibc() -> Any:
    """The C library when it is glibc (``mallopt`` and ``malloc_trim``), else None (musl, macOS)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt, libc.malloc_trim  # noqa: B018 - AttributeError where the C library is not glibc
    except (OSError, AttributeError):
        return None
    return libc


def limit_malloc_arenas(arenas: int = MALLOC_ARENAS) -> bool:
    """Cap glibc's malloc arenas (see ``MALLOC_ARENAS``); True when the cap was set. Call it before any
    thread starts: arenas already made stay. ``MALLOC_ARENA_MAX`` in the environment, the operator's
    own choice, wins."""
    if "MALLOC_ARENA_MAX" in os.environ:
        return False
    libc = _glibc()
    return bool(libc is not None and libc.mallopt(M_ARENA_MAX, arenas))


def trim_malloc_every(seconds: float = TRIM_SECONDS) -> threading.Thread | None:
    """In a worker: a daemon thread that hands the heap's free pages back to the system every ``seconds``
    (``malloc_trim``; a millisecond or two for a worker's heap). None where malloc is not glibc's."""
    libc = _glibc()
    if libc is None:
        return None

    def trim() -> None:
        while True:
            time.sleep(seconds)
            libc.malloc_trim(0)

    thread = threading.Thread(target=trim, name="cxnlp-malloc-trim", daemon=True)
    thread.start()
    return thread
