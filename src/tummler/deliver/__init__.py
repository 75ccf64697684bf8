"""The outside world: channel connectors that hand messages over.

Every connector is a :class:`Connector`: ``await connector.send(message)`` returns a
:class:`SendResult` with the provider's message id, or raises :class:`TransientSendError` (retry
later) or :class:`PermanentSendError` (record the reason, do not retry). The outbox in ``app``
builds :class:`OutboundMessage` records, keeps the idempotency keys, and decides about retries.

Optional dependencies are imported by the connector that needs them, when it is built:

==================== ================ ==========================
connector            package          extra
==================== ================ ==========================
:class:`SmtpConnector`      aiosmtplib       ``tummler[email]``
:class:`WebhookConnector`   httpx            ``tummler[webhook]``
:class:`SmsConnector`       httpx            ``tummler[sms]``
:class:`MastodonConnector`  Mastodon.py      ``tummler[social]``
:class:`BlueskyConnector`   atproto          ``tummler[social]``
:class:`FileSinkConnector`  (none)
==================== ================ ==========================
"""

from tummler.deliver._base import Connector
from tummler.deliver._bluesky import BlueskyConnector
from tummler.deliver._failures import PermanentSendError, TransientSendError
from tummler.deliver._file import FileSinkConnector
from tummler.deliver._http import parse_retry_after
from tummler.deliver._mastodon import MastodonConnector
from tummler.deliver._message import OutboundMessage, Publicity, SendResult, stable_message_id
from tummler.deliver._rate import TokenBucket
from tummler.deliver._secrets import (
    SecretMaskingFilter,
    mask_secrets,
    register_secret,
    secret_from_env,
)
from tummler.deliver._sms import SmsConnector, is_e164
from tummler.deliver._smtp import SmtpConnector, build_email
from tummler.deliver._webhook import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookConnector,
    sign_webhook,
    verify_webhook,
)

__all__ = [
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "BlueskyConnector",
    "Connector",
    "FileSinkConnector",
    "MastodonConnector",
    "OutboundMessage",
    "PermanentSendError",
    "Publicity",
    "SecretMaskingFilter",
    "SendResult",
    "SmsConnector",
    "SmtpConnector",
    "TokenBucket",
    "TransientSendError",
    "WebhookConnector",
    "build_email",
    "is_e164",
    "mask_secrets",
    "parse_retry_after",
    "register_secret",
    "secret_from_env",
    "sign_webhook",
    "stable_message_id",
    "verify_webhook",
]
