"""A tiny notes app for the sandbox-notes web task: the files of site/ and a JSON API.

GET /api/notes lists the notes; POST /api/notes ({"text": ...}) adds one;
POST /api/notes/<id>/delete deletes one. The notes live in memory, so every episode
(a fresh sandbox, a fresh server) starts from the same three.
"""

import json
import sys
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

SITE = Path(__file__).resolve().parent / "site"
LOCK = threading.Lock()
NOTES = [
    {"id": 1, "text": "Buy milk"},
    {"id": 2, "text": "Old draft"},
    {"id": 3, "text": "Call Ada about the report"},
]
NEXT_ID = [4]


class Handler(SimpleHTTPRequestHandler):
    def send_json(self, status, value):
        body = json.dumps(value).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.send_header("cache-control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path.split("?")[0] == "/api/notes":
            with LOCK:
                self.send_json(200, NOTES)
            return
        super().do_GET()

    def do_POST(self):
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = self.path.split("?")[0].strip("/").split("/")
        with LOCK:
            if parts == ["api", "notes"]:
                try:
                    text = str(json.loads(body or b"{}").get("text", "")).strip()
                except (ValueError, AttributeError):
                    text = ""
                if not text:
                    self.send_json(400, {"error": "empty note"})
                    return
                note = {"id": NEXT_ID[0], "text": text}
                NEXT_ID[0] += 1
                NOTES.append(note)
                self.send_json(201, note)
                return
            if len(parts) == 4 and parts[:2] == ["api", "notes"] and parts[3] == "delete":
                before = len(NOTES)
                NOTES[:] = [note for note in NOTES if str(note["id"]) != parts[2]]
                self.send_json(200 if len(NOTES) < before else 404, {"deleted": len(NOTES) < before})
                return
        self.send_json(404, {"error": "not found"})

    def log_message(self, format, *args):
        pass


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8000
    ThreadingHTTPServer(("127.0.0.1", port), partial(Handler, directory=str(SITE))).serve_forever()
