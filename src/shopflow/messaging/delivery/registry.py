"""Channel name -> its renderer and sender (base.Pair). A new channel is one module with the two
and one line here; the pipeline looks the pair up by the messages' channel name at each batch."""

from __future__ import annotations

from shopflow.messaging.delivery import email, push, sms
from shopflow.messaging.delivery.base import Pair

CHANNELS: dict[str, Pair] = {
    email.CHANNEL: Pair(email.Renderer, email.Sender),
    sms.CHANNEL: Pair(sms.Renderer, sms.Sender),
    push.CHANNEL: Pair(push.Renderer, push.Sender),
}
