"""A real SMTP server for the e-mail destination test: aiosmtpd (PyPI), with STARTTLS
required (`starttls`) or TLS from the first byte (`tls`), and AUTH required inside TLS.

Usage: server.py MODE CERT KEY USER PASSWORD [REFUSE_FIRST]
Prints `LISTENING port` once it accepts connections, then one JSON line per message it
accepted (sender, recipients, whether the session was encrypted, the authenticated user and
the message as Python's e-mail parser reads it), until stdin closes. The first REFUSE_FIRST messages are answered with a
temporary failure (451), as a busy server does.
"""

import email
import email.policy
import json
import socket
import ssl
import sys
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

mode, cert, key, user, password = sys.argv[1:6]
refuse = [int(sys.argv[6]) if len(sys.argv) > 6 else 0]
lock = threading.Lock()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Auth:
    def __call__(self, server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == user
            and auth_data.password.decode() == password
        )
        if ok:
            session.authenticated_user = auth_data.login.decode()
        return AuthResult(success=ok, handled=False)


def parsed(content):
    """The message as Python's e-mail parser reads it: headers unfolded and decoded."""
    msg = email.message_from_bytes(content, policy=email.policy.default)
    return {
        "subject": msg["Subject"],
        "header_from": msg["From"],
        "header_to": msg["To"],
        "message_id": msg["Message-ID"],
        "date": msg["Date"],
        "content_type": msg.get_content_type(),
        "charset": msg.get_content_charset(),
        # SMTP carries lines ended by CRLF; the text as a reader sees it.
        "text": msg.get_content().replace("\r\n", "\n"),
    }


class Handler:
    async def handle_DATA(self, server, session, envelope):
        with lock:
            if refuse[0] > 0:
                refuse[0] -= 1
                return "451 4.3.0 Busy, try again later"
            print(
                json.dumps(
                    {
                        "from": envelope.mail_from,
                        "to": envelope.rcpt_tos,
                        "tls": server.transport.get_extra_info("ssl_object") is not None,
                        "user": getattr(session, "authenticated_user", None),
                        **parsed(envelope.content),
                    }
                ),
                flush=True,
            )
        return "250 2.0.0 Message accepted for delivery"


ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
ctx.load_cert_chain(cert, key)
port = free_port()
common = dict(hostname="127.0.0.1", port=port, authenticator=Auth(), auth_required=True)
if mode == "starttls":
    controller = Controller(
        Handler(), tls_context=ctx, require_starttls=True, auth_require_tls=True, **common
    )
else:
    # TLS from the first byte: aiosmtpd's auth_require_tls only knows STARTTLS, so it is off;
    # every byte of this listener is inside TLS anyway.
    controller = Controller(Handler(), ssl_context=ctx, auth_require_tls=False, **common)
controller.start()
print(f"LISTENING {port}", flush=True)
sys.stdin.read()
controller.stop()
