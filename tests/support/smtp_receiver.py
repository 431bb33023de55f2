#!/usr/bin/env python3
"""A minimal real SMTP receiver for the alert tests: listens on 127.0.0.1 (port 0 = any),
prints "PORT <n>", and appends every message to --record as one JSON line
{from, to, data, auth} (data is the raw DATA section, CRLF kept, dot-stuffing undone).
--reject CODE answers RCPT TO with CODE (e.g. 550) instead of 250."""
import argparse
import json
import socketserver
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--record", required=True)
    ap.add_argument("--reject", type=int, default=0)
    args = ap.parse_args()

    class Handler(socketserver.StreamRequestHandler):
        def reply(self, line):
            self.wfile.write((line + "\r\n").encode())
            self.wfile.flush()

        def handle(self):
            self.reply("220 localhost test SMTP")
            mail_from, rcpt, authed = None, [], False
            while True:
                raw = self.rfile.readline()
                if not raw:
                    return
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                verb = line.split(" ", 1)[0].upper()
                if verb in ("EHLO", "HELO"):
                    self.wfile.write(b"250-localhost\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n")
                    self.wfile.flush()
                elif verb == "AUTH":
                    parts = line.split()
                    mech = parts[1].upper() if len(parts) > 1 else ""
                    if mech == "LOGIN":
                        for prompt in ("334 VXNlcm5hbWU6", "334 UGFzc3dvcmQ6"):
                            if len(parts) > 2 and prompt.endswith("VXNlcm5hbWU6"):
                                continue  # the user name came with the command
                            self.reply(prompt)
                            self.rfile.readline()
                    elif len(parts) < 3:
                        self.reply("334 ")
                        self.rfile.readline()
                    authed = True
                    self.reply("235 2.7.0 Authentication successful")
                elif verb == "MAIL":
                    mail_from = line[10:].strip()
                    rcpt = []
                    self.reply("250 OK")
                elif verb == "RCPT":
                    if args.reject:
                        self.reply("%d 5.1.1 no such user" % args.reject)
                    else:
                        rcpt.append(line[8:].strip())
                        self.reply("250 OK")
                elif verb == "DATA":
                    self.reply("354 End data with <CR><LF>.<CR><LF>")
                    data = b""
                    while True:
                        l = self.rfile.readline()
                        if not l or l == b".\r\n":
                            break
                        if l.startswith(b".."):
                            l = l[1:]
                        data += l
                    with open(args.record, "a") as f:
                        f.write(json.dumps({"from": mail_from, "to": rcpt, "auth": authed,
                                            "data": data.decode("utf-8", "replace")}) + "\n")
                    self.reply("250 OK: queued")
                elif verb == "QUIT":
                    self.reply("221 Bye")
                    return
                elif verb in ("RSET", "NOOP"):
                    self.reply("250 OK")
                else:
                    self.reply("502 Command not implemented")

    class Server(socketserver.ThreadingTCPServer):
        daemon_threads = True
        allow_reuse_address = True

    srv = Server(("127.0.0.1", args.port), Handler)
    print("PORT %d" % srv.server_address[1], flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
