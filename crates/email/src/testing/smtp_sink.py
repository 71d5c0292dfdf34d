"""Herald's SMTP sink for tests: aiosmtpd on 127.0.0.1, one file per accepted message.

Usage: smtp_sink.py OUT_DIR [--auth USER PASSWORD] [--tls starttls|implicit]

Binds port 0 and prints "READY <port>" once listening. Each accepted message becomes
OUT_DIR/<seq>.eml (written as .tmp then renamed, so readers never see half a file): a first
line of JSON {"mail_from", "rcpt_tos"} and then the raw message. With --auth, AUTH
PLAIN/LOGIN is offered (over plain text too) and required. With --tls, STARTTLS is offered
and required, or the port speaks TLS from the first byte; the certificate is the self-signed
one below (CN=localhost, 127.0.0.1, valid until 2126), so clients must accept invalid
certificates. Exits when stdin closes, so the sink never outlives the test process that
started it.

Scripted replies by the recipient's local part:
  tempfail-once...  451 at RCPT the first time that address is seen, accepted afterwards
  throttle-once...  451 4.7.1 with a rate-limit text at RCPT the first time, accepted afterwards
  tempfail...       451 4.3.0 Try again later at RCPT
  reject...         550 5.1.1 No such user at RCPT
  slow<N>...        the reply to DATA waits N seconds (default 5)
"""

import argparse
import asyncio
import json
import os
import ssl
import sys
import tempfile
import threading

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


# A throwaway test certificate and key: not a secret, never trusted by anything.
CERT = """-----BEGIN CERTIFICATE-----
MIIBmjCCAUGgAwIBAgIUbj0/IWrOAdkCCcimCTs3up4WjpkwCgYIKoZIzj0EAwIw
FDESMBAGA1UEAwwJbG9jYWxob3N0MCAXDTI2MTEyMzA0MDUwNVoYDzIxMjYxMDMw
MDQwNTA1WjAUMRIwEAYDVQQDDAlsb2NhbGhvc3QwWTATBgcqhkjOPQIBBggqhkjO
PQMBBwNCAAQyBAzwpSU9knSIkqFSHbxCJ4rx3hJPK5Dxmr8kFd3Xm79uWZigXkV9
WncuaXsxCIIsKQCizO+En/NFKF6TD0+ko28wbTAdBgNVHQ4EFgQUKsaJQYk/OIIL
CgJ4knn507H7rFwwHwYDVR0jBBgwFoAUKsaJQYk/OIILCgJ4knn507H7rFwwDwYD
VR0TAQH/BAUwAwEB/zAaBgNVHREEEzARgglsb2NhbGhvc3SHBH8AAAEwCgYIKoZI
zj0EAwIDRwAwRAIgW7wB0nANbNLIACDEd5bxqEgvMp0Hd+0lgwFsJdEcG+oCIF8x
ob2kTrF6hv5f/dW78qQcEznIzgZ9r51FLF1LPzM1
-----END CERTIFICATE-----
"""
KEY = """-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg5UDn80Nup1ql4tkH
UMpOPhLn3+OIM9OUBAxtMiD0aHShRANCAAQyBAzwpSU9knSIkqFSHbxCJ4rx3hJP
K5Dxmr8kFd3Xm79uWZigXkV9WncuaXsxCIIsKQCizO+En/NFKF6TD0+k
-----END PRIVATE KEY-----
"""


def tls_context():
    with tempfile.TemporaryDirectory() as d:
        cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
        with open(cert, "w") as f:
            f.write(CERT)
        with open(key, "w") as f:
            f.write(KEY)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
    return context


class Handler:
    def __init__(self, out_dir):
        self.out_dir = out_dir
        self.seq = 0
        self.seen_tempfail_once = set()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@", 1)[0].lower()
        if local.startswith("throttle-once"):
            if address.lower() not in self.seen_tempfail_once:
                self.seen_tempfail_once.add(address.lower())
                return "451 4.7.1 Rate limited: too many messages, slow down"
        elif local.startswith("tempfail-once"):
            if address.lower() not in self.seen_tempfail_once:
                self.seen_tempfail_once.add(address.lower())
                return "451 4.3.0 Try again later"
        elif local.startswith("tempfail"):
            return "451 4.3.0 Try again later"
        elif local.startswith("reject"):
            return "550 5.1.1 No such user"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        for rcpt in envelope.rcpt_tos:
            local = rcpt.split("@", 1)[0].lower()
            if local.startswith("slow"):
                digits = "".join(c for c in local[4:] if c.isdigit())
                await asyncio.sleep(int(digits) if digits else 5)
                break
        # Numbered in the order transactions complete; the event loop is single-threaded.
        self.seq += 1
        name = "%08d" % self.seq
        head = json.dumps({"mail_from": envelope.mail_from, "rcpt_tos": envelope.rcpt_tos})
        tmp = os.path.join(self.out_dir, name + ".tmp")
        with open(tmp, "wb") as f:
            f.write(head.encode() + b"\n")
            f.write(envelope.original_content)
        os.rename(tmp, os.path.join(self.out_dir, name + ".eml"))
        return "250 2.0.0 Ok: queued as %s" % name


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out_dir")
    parser.add_argument("--auth", nargs=2, metavar=("USER", "PASSWORD"))
    parser.add_argument("--tls", choices=["starttls", "implicit"])
    args = parser.parse_args()
    credentials = (args.auth[0].encode(), args.auth[1].encode()) if args.auth else None
    context = tls_context() if args.tls else None
    handler = Handler(args.out_dir)

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == credentials
        # handled=False: aiosmtpd then answers 535 itself on failure.
        return AuthResult(success=ok, handled=False)

    def factory():
        kwargs = dict(hostname="sink.herald.test", decode_data=False, enable_SMTPUTF8=True)
        if credentials:
            kwargs.update(authenticator=authenticator, auth_required=True, auth_require_tls=False)
        if args.tls == "starttls":
            kwargs.update(tls_context=context, require_starttls=True)
        return SMTP(handler, **kwargs)

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    server = loop.run_until_complete(loop.create_server(
        factory, host="127.0.0.1", port=0, ssl=context if args.tls == "implicit" else None
    ))
    port = server.sockets[0].getsockname()[1]

    def watch_stdin():
        sys.stdin.buffer.read()
        os._exit(0)

    threading.Thread(target=watch_stdin, daemon=True).start()
    print("READY %d" % port, flush=True)
    loop.run_forever()


if __name__ == "__main__":
    main()
