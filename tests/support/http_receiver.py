#!/usr/bin/env python3
"""A real HTTP receiver for the alert tests and bench: listens on 127.0.0.1 (port 0 = any),
prints "PORT <n>" on stdout, appends every request to --record as one JSON line
{method, path, headers, body, t} and answers from --script, a comma-separated list of
STATUS, STATUS:RETRY_AFTER_SECONDS or "hang" (never answer); the last entry repeats."""
import argparse
import http.server
import json
import sys
import threading
import time

BODIES = {
    200: "ok",
    202: '{"status":"success","message":"Event processed","dedup_key":"x"}',
    400: '{"status":"invalid event","message":"Event object is invalid","errors":["bad"]}',
    429: '{"status":"throttle event","message":"Requests for this service are arriving too quickly"}',
    500: "internal error",
    503: "unavailable",
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--record", required=True)
    ap.add_argument("--script", default="200")
    args = ap.parse_args()
    script = [s.strip() for s in args.script.split(",") if s.strip()]
    lock = threading.Lock()
    count = [0]

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def do_POST(self):
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n).decode("utf-8", "replace")
            with lock:
                i = count[0]
                count[0] += 1
                with open(args.record, "a") as f:
                    f.write(json.dumps({"method": self.command, "path": self.path,
                                        "headers": {k.lower(): v for k, v in self.headers.items()},
                                        "body": body, "t": time.time()}) + "\n")
                    f.flush()
            step = script[min(i, len(script) - 1)]
            if step == "hang":
                time.sleep(3600)
                return
            status, _, retry_after = step.partition(":")
            status = int(status)
            text = BODIES.get(status, "answer %d" % status).encode()
            self.send_response(status)
            if retry_after:
                self.send_header("Retry-After", retry_after)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(text)))
            self.end_headers()
            self.wfile.write(text)

        do_PUT = do_POST

    class Server(http.server.ThreadingHTTPServer):
        daemon_threads = True

    srv = Server(("127.0.0.1", args.port), Handler)
    print("PORT %d" % srv.server_address[1], flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
