"""``gftp server`` for the devnet: yagna's file-transfer JSON-RPC, with HTTP underneath.

golem-core's ``SendFile``/``DownloadFile`` (and every requestor library) spawn ``gftp
server`` from ``PATH`` and speak JSON-RPC to it over stdin/stdout, one request per line:
``version``, ``publish`` (files become URLs a provider downloads), ``receive`` (a URL a
provider uploads a file to), ``upload``, ``download``, ``close`` and ``shutdown``. Answers
and error texts follow yagna's gftp. The real gftp moves bytes over the Golem network; this
one serves them over HTTP from where the requestor runs, and its URLs say where:
``gftp://<host>:<port>/<hash-or-token>``, which the devnet's ``transfer`` reads with GET and
writes with PUT. So a worker on another host than the devnet works too: bind
``GOLEM_TASKS_GFTP_HOST`` (default 127.0.0.1) to an address the devnet can reach, and
``GOLEM_TASKS_GFTP_ADVERTISE`` names the host put in URLs when the bind address is not it.

Standard library only, so that starting it (once per golem-core transfer command) is quick.
Files are streamed both ways, never read whole into memory.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import secrets
import socket
import string
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from io import BufferedIOBase
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlparse
from urllib.request import Request, urlopen

VERSION = "0.15.0 (golem-tasks devnet gftp)"
CHUNK = 1 << 20
HOST_ENV = "GOLEM_TASKS_GFTP_HOST"
ADVERTISE_ENV = "GOLEM_TASKS_GFTP_ADVERTISE"
METHODS = ("version", "publish", "close", "download", "receive", "upload", "shutdown")
#: JSON-RPC error codes as yagna's gftp uses them.
SERVER_ERROR = -32000
INVALID_REQUEST = -32600
PARSE_ERROR = -32700
_TOKEN_CHARS = string.ascii_letters + string.digits


class GftpError(Exception):
    """A request that failed; the message is what yagna's gftp would say."""

    def __init__(self, message: str, code: int = SERVER_ERROR) -> None:
        super().__init__(message)
        self.code = code


def _os_text(exc: OSError) -> str:
    """An OS error as Rust's ``std::io::Error`` prints it."""
    if exc.errno is None:
        return str(exc)
    return f"{os.strerror(exc.errno)} (os error {exc.errno})"


@dataclass
class Published:
    """A file served for download: opened (and hashed) when published, as yagna does."""

    fd: int
    size: int


@dataclass
class Receiving:
    """A file waiting for an upload: created (truncated) when the URL was made."""

    fd: int
    path: Path


class Files:
    """What this server publishes and receives, by URL token; shared with HTTP threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.published: dict[str, Published] = {}
        self.receiving: dict[str, Receiving] = {}

    def publish(self, path: Path) -> str:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            raise GftpError(f"Can't open file {path}.: {_os_text(exc)}") from None
        try:
            digest = hashlib.sha3_256()
            offset = 0
            while chunk := os.pread(fd, CHUNK, offset):
                digest.update(chunk)
                offset += len(chunk)
        except OSError as exc:
            os.close(fd)
            raise GftpError(_os_text(exc)) from None
        token = digest.hexdigest()
        with self.lock:
            old = self.published.get(token)
            self.published[token] = Published(fd, offset)
        if old is not None:
            os.close(old.fd)
        return token

    def receive(self, path: Path) -> str:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise GftpError(
                f"Can't create destination directory for file: [{path}].: {_os_text(exc)}"
            ) from None
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise GftpError(f"Can't create destination file: [{path}].: {_os_text(exc)}") from None
        token = "".join(secrets.choice(_TOKEN_CHARS) for _ in range(65))
        with self.lock:
            self.receiving[token] = Receiving(fd, path)
        return token

    def close(self, token: str) -> bool:
        with self.lock:
            entry: Published | Receiving | None = self.published.pop(token, None)
            if entry is None:
                entry = self.receiving.pop(token, None)
        if entry is None:
            return False
        os.close(entry.fd)
        return True


class Handler(http.server.BaseHTTPRequestHandler):
    """GET a published file, PUT a received one; anything else is not there."""

    files: Files
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet: stdout is the RPC channel
        pass

    def _token(self) -> str:
        return self.path.lstrip("/").split("?", 1)[0]

    def _answer(self, status: int, text: str) -> None:
        body = text.encode()
        self.close_connection = True  # a refused upload's body is left unread
        self.send_response(status)
        self.send_header("Connection", "close")
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        with self.files.lock:
            entry = self.files.published.get(self._token())
            fd = os.dup(entry.fd) if entry is not None else None
        if entry is None or fd is None:
            self._answer(404, "not published")
            return
        try:
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(entry.size))
            self.end_headers()
            offset = 0
            while offset < entry.size:
                chunk = os.pread(fd, min(CHUNK, entry.size - offset), offset)
                if not chunk:
                    break
                self.wfile.write(chunk)
                offset += len(chunk)
        finally:
            os.close(fd)

    def do_PUT(self) -> None:
        with self.files.lock:
            entry = self.files.receiving.get(self._token())
            fd = os.dup(entry.fd) if entry is not None else None
        if entry is None or fd is None:
            self._answer(404, "not open for upload")
            return
        try:
            os.ftruncate(fd, 0)
            size = 0
            for chunk in self._body():
                os.pwrite(fd, chunk, size)
                size += len(chunk)
            os.fsync(fd)
        finally:
            os.close(fd)
        self._answer(200, f"{size}")

    def _body(self) -> Any:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return
                yield from _read_exactly(self.rfile, size)
                self.rfile.readline()
        else:
            yield from _read_exactly(self.rfile, int(self.headers.get("Content-Length") or 0))


def _read_exactly(stream: BufferedIOBase, size: int) -> Iterator[bytes]:
    left = size
    while left > 0:
        chunk = stream.read(min(CHUNK, left))
        if not chunk:
            raise ConnectionError(f"upload ended {left} bytes short")
        left -= len(chunk)
        yield chunk


class HttpServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # One line on stderr (stdout is the RPC channel): a peer that went away mid-transfer.
        print(f"gftp: transfer with {client_address} failed: {sys.exc_info()[1]}", file=sys.stderr)


class Server:
    """The JSON-RPC loop on stdin/stdout and the HTTP server behind its URLs."""

    def __init__(self, host: str, advertise: str) -> None:
        self.files = Files()
        handler = type("BoundHandler", (Handler,), {"files": self.files})
        server_class: type[HttpServer] = HttpServer
        if ":" in host:
            server_class = type("HttpServer6", (HttpServer,), {"address_family": socket.AF_INET6})
        self.http = server_class((host, 0), handler)
        port = self.http.server_address[1]
        shown = f"[{advertise}]" if ":" in advertise else advertise
        self.base = f"gftp://{shown}:{port}"

    def serve(self, stdin: BinaryIO, stdout: BinaryIO) -> int:
        thread = threading.Thread(target=self.http.serve_forever, daemon=True)
        thread.start()
        try:
            for line in stdin:
                if not line.strip():
                    continue
                reply, stop = self.handle(line)
                stdout.write(json.dumps(reply).encode() + b"\r\n")
                stdout.flush()
                if stop:
                    break
        finally:
            # No http.shutdown(): it waits out serve_forever's poll. The serving threads
            # are daemons and end with the process, transfers in flight included.
            self.http.server_close()
        return 0

    def handle(self, line: bytes) -> tuple[dict[str, Any], bool]:
        """One request line: its answer, and whether the server should stop."""
        try:
            message = json.loads(line)
        except ValueError as exc:
            return _error(None, PARSE_ERROR, str(exc)), False
        if not isinstance(message, dict):
            return _error(None, INVALID_REQUEST, "InvalidRequest"), False
        ident = message.get("id")
        if message.get("jsonrpc") != "2.0":
            return _error(ident, INVALID_REQUEST, "InvalidRequest"), False
        method = message.get("method")
        if method not in METHODS:
            expected = ", ".join(f"`{name}`" for name in METHODS)
            return _error(
                None, INVALID_REQUEST, f"unknown variant `{method}`, expected one of {expected}"
            ), False
        params = message.get("params") or {}
        try:
            result = getattr(self, f"rpc_{method}")(**params)
        except TypeError as exc:
            return _error(None, INVALID_REQUEST, str(exc)), False
        except GftpError as exc:
            return _error(ident, exc.code, str(exc)), False
        return {"jsonrpc": "2.0", "id": ident, "result": result}, method == "shutdown"

    # -- methods ----------------------------------------------------------------------

    def rpc_version(self) -> str:
        return VERSION

    def rpc_publish(self, files: list[str]) -> list[dict[str, str]]:
        if not files:
            raise GftpError("Empty file list provided.")
        links = []
        for name in files:
            token = self.files.publish(Path(name))
            links.append({"file": name, "url": f"{self.base}/{token}"})
        return links

    def rpc_receive(self, output_file: str) -> dict[str, str]:
        token = self.files.receive(Path(output_file))
        return {"file": output_file, "url": f"{self.base}/{token}"}

    def rpc_close(self, urls: list[str]) -> list[str]:
        if not urls:
            raise GftpError("InvalidRequest", INVALID_REQUEST)
        statuses = []
        for url in urls:
            token = urlparse(url).path.rstrip("/").rsplit("/", 1)[-1]
            if not token:
                raise GftpError(f"Invalid URL: {url}")
            statuses.append("ok" if self.files.close(token) else "error")
        return statuses

    def rpc_upload(self, file: str, url: str) -> dict[str, str]:
        target = http_url(url)
        try:
            size = os.path.getsize(file)
            with open(file, "rb") as reader:
                request = Request(target, data=reader, method="PUT")
                request.add_header("Content-Length", str(size))
                with urlopen(request, timeout=60):
                    pass
        except OSError as exc:
            raise GftpError(_transfer_text(url, exc)) from None
        return {"file": file, "url": url}

    def rpc_download(self, url: str, output_file: str) -> dict[str, str]:
        target = http_url(url)
        try:
            Path(output_file).parent.mkdir(parents=True, exist_ok=True)
            with urlopen(target, timeout=60) as response, open(output_file, "wb") as writer:
                while chunk := response.read(CHUNK):
                    writer.write(chunk)
        except OSError as exc:
            raise GftpError(_transfer_text(url, exc)) from None
        return {"file": output_file, "url": url}

    def rpc_shutdown(self) -> str:
        return "ok"


def http_url(url: str) -> str:
    """The HTTP location behind one of these gftp URLs."""
    parsed = urlparse(url)
    if parsed.scheme != "gftp":
        raise GftpError(f"Unsupported url scheme {parsed.scheme}.")
    if not parsed.port:
        raise GftpError(f"Url {url} has invalid node_id.")
    return parsed._replace(scheme="http").geturl()


def _transfer_text(url: str, exc: OSError) -> str:
    status = getattr(exc, "code", None)
    if status == 404:
        token = urlparse(url).path.lstrip("/")
        return f"GSB error: endpoint address not found: /public/gftp/{token}"
    return f"gftp transfer {url} failed: {exc}"


def _error(ident: Any, code: int, message: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": ident, "error": {"code": code, "message": message}}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args in (["--version"], ["-V"], ["version"]):
        print(f"gftp {VERSION}")
        return 0
    if args != ["server"]:
        print("usage: gftp server  (the devnet's gftp speaks JSON-RPC only)", file=sys.stderr)
        return 2
    host = os.environ.get(HOST_ENV) or "127.0.0.1"
    advertise = os.environ.get(ADVERTISE_ENV) or host
    return Server(host, advertise).serve(sys.stdin.buffer, sys.stdout.buffer)


if __name__ == "__main__":
    raise SystemExit(main())
