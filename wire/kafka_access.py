"""How a client reaches Kafka: the servers, and how it proves who it is.

Each deployable's settings describe it (``KAFKA__SECURITY_PROTOCOL``, ``USERNAME``, ``PASSWORD``,
``SASL_MECHANISM``, ``SSL_CAFILE``) and hand out one :class:`KafkaAccess`; every Kafka client the
deployable builds takes its keyword arguments from :meth:`KafkaAccess.aiokafka`, so the three
speak to a secured broker alike. Principals and what each may do: docs/deploy.md ("Kafka").
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from typing import Any, Literal

SecurityProtocol = Literal["PLAINTEXT", "SASL_PLAINTEXT", "SASL_SSL", "SSL"]
SaslMechanism = Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"]


@dataclass(frozen=True)
class KafkaAccess:
    bootstrap: str
    protocol: SecurityProtocol = "PLAINTEXT"
    mechanism: SaslMechanism = "SCRAM-SHA-512"
    username: str = ""
    password: str = field(default="", repr=False)
    cafile: str = ""
    """A CA bundle to verify the brokers with (``*_SSL``); empty: the system's."""

    @property
    def sasl(self) -> bool:
        return self.protocol.startswith("SASL")

    @property
    def tls(self) -> bool:
        return self.protocol.endswith("SSL")

    def aiokafka(self) -> dict[str, Any]:
        """Keyword arguments of every aiokafka client (producer, consumer, admin): the servers
        and the credentials. Builds the TLS context — the one file wire reads: the CA bundle."""
        kwargs: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap, "security_protocol": self.protocol,
        }  # fmt: skip
        if self.sasl:
            kwargs |= {"sasl_mechanism": self.mechanism, "sasl_plain_username": self.username,
                       "sasl_plain_password": self.password}  # fmt: skip
        if self.tls:
            kwargs["ssl_context"] = self.ssl_context()
        return kwargs

    def ssl_context(self) -> ssl.SSLContext | None:
        return ssl.create_default_context(cafile=self.cafile or None) if self.tls else None
