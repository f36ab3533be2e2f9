"""A ``yagna`` command for the devnet: the subcommands requestor tools run by name.

Tools and golem-core's examples call ``yagna payment status``, ``yagna app-key list`` and
``yagna id show`` (with or without ``--json``); the devnet puts this program first on
``PATH`` (see :mod:`golem_tasks.devnet.shims`). It answers in the output shapes of yagna
0.17.6 (recorded in ``tests/conformance/yagna-0.17.6.json``; ``payment status`` follows
yagna's source, as an offline yagna cannot answer it), and asks the devnet over its REST
API (``YAGNA_API_URL``, ``YAGNA_APPKEY``), so it works from another host too.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from decimal import Decimal
from typing import Any

DEFAULT_API_URL = "http://127.0.0.1:7465"
TIMEOUT_S = 30.0


class CliError(Exception):
    """A failure reported on stderr with exit status 1, as yagna does."""


# ---------------------------------------------------------------------- the devnet


def _get(path: str, query: dict[str, str] | None = None) -> Any:
    base = os.environ.get("YAGNA_API_URL") or DEFAULT_API_URL
    key = os.environ.get("YAGNA_APPKEY")
    if not key:
        raise CliError("YAGNA_APPKEY is not set: eval the devnet's export lines first")
    url = base.rstrip("/") + path
    if query:
        url += "?" + urllib.parse.urlencode(query)
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"})
    # No proxy: the devnet is reached directly, wherever it runs.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=TIMEOUT_S) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        body = exc.read().decode("utf-8", errors="replace")
        try:
            message = json.loads(body).get("message") or body
        except (ValueError, AttributeError):
            message = body
        raise CliError(f"{message} (HTTP {exc.code} from {url})") from None
    except (urllib.error.URLError, OSError) as exc:
        raise CliError(f"cannot reach the devnet at {base}: {exc}") from None


# ---------------------------------------------------------------------- yagna's output


def print_json(value: Any) -> None:
    """serde_json's pretty printing of a Value: two-space indent, keys sorted."""
    print(json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True))


def _yaml_scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def print_yaml(value: dict[str, Any], indent: int = 0) -> None:
    """A nested object as yagna prints one without ``--json`` (serde_yaml, then a blank
    line)."""
    for key, item in value.items():
        if isinstance(item, dict):
            print(" " * indent + f"{key}:")
            print_yaml(item, indent + 2)
        else:
            print(" " * indent + f"{key}: {_yaml_scalar(item)}")
    if indent == 0:
        print()


def render_table(columns: list[str], rows: list[list[str]]) -> str:
    """yagna's table: box-drawing borders, two spaces of padding, a rule under the titles."""
    if not rows:
        rows = [["" for _ in columns]]
    widths = [max(len(str(cell)) for cell in column) for column in zip(columns, *rows, strict=True)]

    def rule(left: str, middle: str, right: str) -> str:
        return left + middle.join("─" * (w + 4) for w in widths) + right

    def line(cells: list[str]) -> str:
        return (
            "│" + "│".join(f"  {cell:<{w}}  " for cell, w in zip(cells, widths, strict=True)) + "│"
        )

    out = [rule("┌", "┬", "┐"), line(columns), rule("├", "┼", "┤")]
    out += [line([str(c) for c in row]) for row in rows]
    out.append(rule("└", "┴", "┘"))
    return "\n".join(out)


def print_json_table(columns: list[str], rows: list[list[Any]]) -> None:
    """A table under ``--json``: one object per row, keys sorted (yagna's)."""
    print_json([dict(sorted(zip(columns, row, strict=True))) for row in rows])


# ---------------------------------------------------------------------- subcommands


def id_show(as_json: bool) -> None:
    me = _get("/me")
    identity = {
        "alias": None,
        "deleted": False,
        "isDefault": True,
        "isLocked": False,
        "nodeId": me["identity"],
    }
    if as_json:
        print_json({"Ok": identity})
    else:
        print_yaml({"Ok": identity})


APP_KEY_COLUMNS = ["name", "key", "id", "role", "created"]


def app_key_list(as_json: bool) -> None:
    keys = _get("/devnet-api/v1/appKeys")
    rows = [[k[c] for c in APP_KEY_COLUMNS] for k in keys]
    if as_json:
        print_json_table(APP_KEY_COLUMNS, rows)
    else:
        print(render_table(APP_KEY_COLUMNS, rows))


def _amount(value: str, precise: bool) -> str:
    return value if precise else f"{Decimal(value):.4f}"


def payment_status(args: argparse.Namespace, as_json: bool) -> None:
    query = {name: value for name in ("network", "driver") if (value := getattr(args, name))}
    status = _get("/devnet-api/v1/payments/status", query)
    if as_json:
        print_json(status)
        return
    me = _get("/me")
    address = args.account or me["identity"]
    token = status["token"]
    gas = status.get("gas")
    gas_info = (
        f"{_amount(gas['balance'], args.precise)} {gas['currency_short_name']}" if gas else "N/A"
    )
    out, inc = status["outgoing"], status["incoming"]

    def pair(kind: str) -> list[str]:
        return [
            f"{inc[kind]['totalAmount']} {token}",
            f"{out[kind]['totalAmount']} {token}",
        ]

    rows = [
        [
            f"driver: {status['driver']}",
            f"{_amount(status['amount'], args.precise)} {token}",
            f"{status['reserved']} {token}",
            "accepted",
            *pair("accepted"),
            gas_info,
        ],
        [f"network: {status['network']}", "", "", "confirmed", *pair("confirmed"), ""],
        [f"token: {token}", "", "", "requested", *pair("requested"), ""],
    ]
    columns = ["platform", "total amount", "reserved", "amount", "incoming", "outgoing", "gas"]
    print(f"\nStatus for account: {address}\nPayment Driver status: OK\n")
    print(render_table(columns, rows))


# ---------------------------------------------------------------------- main


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="yagna",
        description="The devnet's yagna command: id show, app-key list, payment status.",
    )
    commands = root.add_subparsers(dest="command", required=True)
    identity = commands.add_parser("id", help="Identity management")
    identity.add_subparsers(dest="action", required=True).add_parser("show")
    keys = commands.add_parser("app-key", help="Application keys management")
    keys.add_subparsers(dest="action", required=True).add_parser("list")
    payment = commands.add_parser("payment", help="Payment management")
    status = payment.add_subparsers(dest="action", required=True).add_parser("status")
    status.add_argument("--network")
    status.add_argument("--driver")
    status.add_argument("--account")
    status.add_argument("--last")
    status.add_argument("--precise", action="store_true")
    return root


def main(argv: list[str] | None = None) -> int:
    args_in = list(sys.argv[1:] if argv is None else argv)
    # yagna takes --json before or after the subcommand.
    as_json = "--json" in args_in
    args_in = [a for a in args_in if a != "--json"]
    known = {("id", "show"), ("app-key", "list"), ("payment", "status")}
    if len(args_in) >= 2 and (args_in[0], args_in[1]) not in known and args_in[0] != "-h":
        print(
            f"yagna (golem-tasks devnet): '{' '.join(args_in[:2])}' is not provided by the "
            "devnet; it has: id show, app-key list, payment status",
            file=sys.stderr,
        )
        return 1
    args = parser().parse_args(args_in)
    try:
        if args.command == "id":
            id_show(as_json)
        elif args.command == "app-key":
            app_key_list(as_json)
        else:
            payment_status(args, as_json)
        sys.stdout.flush()  # here, so that a closed pipe is caught below
    except CliError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # `yagna payment status | head`: the reader had enough
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


if __name__ == "__main__":
    sys.exit(main())
