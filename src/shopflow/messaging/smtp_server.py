"""One SMTP server on a thread (aiosmtpd), shared by the local mail sink and the inbound endpoint.

The owner gives the aiosmtpd handler (its `handle_DATA` and friends) and a message size limit;
this class picks the port, starts and stops the server, and can block a command until Ctrl-C.
"""

from __future__ import annotations

import logging
import socket
import time
from typing import Self

from aiosmtpd.controller import Controller


def quiet_protocol_log() -> None:
    """aiosmtpd logs every SMTP command at INFO; a command prints one line per message instead."""
    logging.getLogger("mail.log").setLevel(logging.WARNING)


class SmtpServer:
    def __init__(self, handler: object, *, host: str, port: int, data_size_limit: int) -> None:
        self.host = host
        self.port = port
        self._handler = handler
        self._data_size_limit = data_size_limit
        self._controller: Controller | None = None

    def start(self) -> None:
        if not self.port:
            # aiosmtpd probes its own port once started, so it needs a concrete one, not 0.
            with socket.socket() as probe:
                probe.bind((self.host, 0))
                self.port = int(probe.getsockname()[1])
        controller = Controller(
            self._handler, hostname=self.host, port=self.port, data_size_limit=self._data_size_limit
        )
        controller.start()
        self._controller = controller

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def serve_until_interrupted(self) -> None:
        """Block until Ctrl-C (KeyboardInterrupt), then stop; the server must be started."""
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()
