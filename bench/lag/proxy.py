"""A TCP delay proxy on loopback: every chunk of bytes waits a while before it
is passed on, like on a slow, jittery network.

Each direction gets its own delay: a normal distribution (mean, jitter = its
standard deviation, never below zero). Bytes are never reordered: a chunk
whose random delay would let it overtake the chunk before it waits for that
one, just as TCP would deliver it.

    python bench/lag/proxy.py RELAY_PORT --delay 30 --jitter 10
    (prints "Proxy listening on 127.0.0.1:PORT"; Ctrl+C stops it)

Inside a program:

    with DelayProxy(relay_port, delay_ms=30, jitter_ms=10) as proxy:
        ... connect games to 127.0.0.1:proxy.port ...
"""
import argparse
import asyncio
import random
import socket
import sys
import threading
import time

HOST = "127.0.0.1"


class DelayProxy:
    """Listens on a free loopback port; each connection to it is passed on to
    target_port, delayed both ways by delay_ms +- jitter_ms."""

    def __init__(self, target_port, delay_ms, jitter_ms, seed=None):
        self.target_port = target_port
        self.delay_s = delay_ms / 1000
        self.jitter_s = jitter_ms / 1000
        self.random = random.Random(seed)
        self.port = None
        self.chunks = 0
        self._loop = None
        self._server = None
        self._thread = None
        self._ready = threading.Event()

    # -- running in a thread of its own -------------------------------------

    def start(self):
        self._thread = threading.Thread(target=self._run, name="delay-proxy", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the delay proxy did not start")
        return self

    def stop(self):
        if self._loop is not None and self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()

    def _run(self):
        self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._serve, HOST, 0))
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            self._server.close()
            for task in asyncio.all_tasks(self._loop):
                task.cancel()
            self._loop.run_until_complete(asyncio.sleep(0))
            self._loop.close()

    # -- one connection ------------------------------------------------------

    def _delay(self):
        return max(0.0, self.random.gauss(self.delay_s, self.jitter_s))

    async def _serve(self, client_reader, client_writer):
        try:
            relay_reader, relay_writer = await asyncio.open_connection(HOST, self.target_port)
        except OSError:
            client_writer.close()
            return
        for writer in (client_writer, relay_writer):
            sock = writer.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        await asyncio.gather(self._pass_on(client_reader, relay_writer),
                             self._pass_on(relay_reader, client_writer),
                             return_exceptions=True)

    async def _pass_on(self, reader, writer):
        """Read chunks as they come; a second task writes each one at its time."""
        queue = asyncio.Queue()
        sender = asyncio.ensure_future(self._send_when_due(queue, writer))
        last_due = 0.0
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                self.chunks += 1
                last_due = max(time.monotonic() + self._delay(), last_due)   # order kept
                queue.put_nowait((last_due, data))
        except (OSError, asyncio.CancelledError):
            pass
        queue.put_nowait((last_due, None))
        await sender

    @staticmethod
    async def _send_when_due(queue, writer):
        try:
            while True:
                due, data = await queue.get()
                wait = due - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                if data is None:
                    break
                writer.write(data)
                await writer.drain()
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            writer.close()


def main(argv=None):
    parser = argparse.ArgumentParser(description="A TCP delay proxy on 127.0.0.1.")
    parser.add_argument("target_port", type=int, help="the relay's port on 127.0.0.1")
    parser.add_argument("--delay", type=float, default=30, help="mean one-way delay, ms")
    parser.add_argument("--jitter", type=float, default=10, help="its standard deviation, ms")
    parser.add_argument("--seed", type=int, help="random seed, for repeatable delays")
    options = parser.parse_args(argv)
    proxy = DelayProxy(options.target_port, options.delay, options.jitter, options.seed).start()
    print("Proxy listening on %s:%d (%g +- %g ms each way)" % (
        HOST, proxy.port, options.delay, options.jitter), flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        proxy.stop()


if __name__ == "__main__":
    sys.exit(main())
