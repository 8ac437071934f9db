#!/usr/bin/python3
"""A real SMTP server for the email tests (aiosmtpd): STARTTLS required, AUTH required
(and only over TLS). Each message received is parsed and written as JSON to OUT_DIR.

Usage: smtp_server.py PORT CERT KEY OUT_DIR USER PASSWORD

RCPT TO an address starting with "nobody@" is refused with 550 (no such user).
Writes OUT_DIR/ready when it listens; stops on SIGTERM.
"""
import email
import email.policy
import json
import os
import signal
import ssl
import sys
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult


class Recorder:
    def __init__(self, out_dir):
        self.out_dir = out_dir
        self.count = 0
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("nobody@"):
            return "550 5.1.1 no such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.original_content or envelope.content, policy=email.policy.default)
        parts = {}
        for part in message.walk():
            if part.get_content_maintype() == "text":
                parts[part.get_content_type()] = part.get_content()
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "tls": session.ssl is not None,
            "auth_login": session.auth_data.login.decode() if session.auth_data else None,
            "subject": str(message["subject"]),
            "to": str(message["to"]),
            "message_id": str(message["message-id"]),
            "content_type": message.get_content_type(),
            "text": parts.get("text/plain"),
            "html": parts.get("text/html"),
        }
        with self.lock:
            self.count += 1
            path = os.path.join(self.out_dir, "%04d.json" % self.count)
        with open(path + ".tmp", "w") as out:
            json.dump(record, out)
        os.rename(path + ".tmp", path)
        return "250 2.0.0 queued"


def main(port, cert, key, out_dir, user, password):
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)

    def authenticate(server, session, envelope, mechanism, auth_data):
        ok = auth_data.login == user.encode() and auth_data.password == password.encode()
        return AuthResult(success=ok, handled=False, auth_data=auth_data)

    controller = Controller(
        Recorder(out_dir), hostname="127.0.0.1", port=int(port), tls_context=context, require_starttls=True,
        authenticator=authenticate, auth_required=True, auth_require_tls=True)
    controller.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    open(os.path.join(out_dir, "ready"), "w").close()
    while not stop.wait(0.2):  # a plain wait() would not let the SIGTERM handler run
        pass
    controller.stop()


if __name__ == "__main__":
    main(*sys.argv[1:7])
