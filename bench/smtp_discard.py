"""A minimal SMTP server for benchmarks: aiosmtpd accepting every message and keeping only a count.

    .venv/bin/python bench/smtp_discard.py PORT

It measures the sender, not the disk: `shopflow sink` writes every message to a file as well.
The event loop is uvloop (installed with uvicorn[standard]): a production receiver (Postfix, Haraka,
an ESP's edge) is far cheaper per message than asyncio's pure-Python loop, and on a two-core machine
every millisecond the receiver spends is taken from the sender being measured.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

import uvloop
from aiosmtpd.controller import Controller


class Discard:
    def __init__(self) -> None:
        self.count = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 (aiosmtpd hook)
        self.count += 1
        return "250 OK"


def main() -> None:
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    controller = Controller(
        Discard(),
        hostname="127.0.0.1",
        port=int(sys.argv[1]),
        data_size_limit=50 * 1024 * 1024,
        loop=uvloop.new_event_loop(),
    )
    controller.start()
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
