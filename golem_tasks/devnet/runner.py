"""``Devnet``: start the whole local network in this event loop and stop it cleanly.

Usage::

    async with Devnet(providers=5, seed=1, port=0, time_scale=1.0) as net:
        os.environ.update(net.env())      # YAGNA_API_URL, YAGNA_APPKEY, ...
        async with GolemNode() as golem:
            ...
"""

from __future__ import annotations

import ipaddress
import logging
import os
import secrets
from pathlib import Path
from typing import Any

from aiohttp import web

from golem_tasks.devnet.clock import Clock
from golem_tasks.devnet.exports import export_lines
from golem_tasks.devnet.network import RETENTION, Network
from golem_tasks.devnet.platform import PaymentPlatform
from golem_tasks.devnet.profile import Profile, default_profile, load_profile
from golem_tasks.devnet.server import Recorder, build_app
from golem_tasks.devnet.shims import install_shims, path_with

logger = logging.getLogger(__name__)

DEFAULT_PORT = 7465


#: How long stopping waits for requests in flight (a long poll would hold it for seconds).
SHUTDOWN_TIMEOUT_S = 0.5


class Devnet:
    """A running devnet: REST API on ``host:port``, simulated providers behind it."""

    def __init__(
        self,
        providers: int = 5,
        seed: int = 1,
        port: int = 0,
        profile: str | Path | Profile | None = None,
        time_scale: float = 1.0,
        *,
        host: str = "127.0.0.1",
        app_key: str | None = None,
        payment_network: str | None = None,
        payment_driver: str | None = None,
        workdir: str | Path | None = None,
        recorder: Recorder | None = None,
        retention: float = RETENTION,
        debit_note_rejection: bool = True,
    ) -> None:
        if isinstance(profile, Profile):
            self.profile = profile
        elif profile is not None:
            self.profile = load_profile(profile)
        else:
            self.profile = default_profile(providers, seed)
        self.seed = seed
        self.host = host
        self.requested_port = port
        self.clock = Clock(time_scale)
        self.platform = PaymentPlatform.from_env(payment_network, payment_driver)
        self.app_key = app_key or secrets.token_hex(16)
        self._workdir = Path(workdir) if workdir is not None else None
        self._recorder = recorder
        self.retention = retention
        #: False answers debit-note rejections with 501 as yagna 0.17.6 does.
        self.debit_note_rejection = debit_note_rejection
        self.network: Network | None = None
        self.bin_dir: Path | None = None
        self.port: int | None = None
        self._runner: web.AppRunner | None = None

    # ------------------------------------------------------------------ lifecycle
    async def __aenter__(self) -> Devnet:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.stop()

    async def start(self) -> None:
        if not is_loopback(self.host):
            logger.warning(
                "devnet listening on %s, reachable from other machines: anyone with the app "
                "key can run commands here as this user",
                self.host,
            )
        self.network = Network(
            self.profile, self.seed, self.clock, self.platform, self._workdir, self.retention
        )
        self.network.debit_note_rejection = self.debit_note_rejection
        self.network.start()
        #: Programs requestor tools run by name (gftp), first on the PATH of ``env()``.
        self.bin_dir = install_shims(self.network.workdir / "bin")
        app = build_app(self.network, self.app_key, self._recorder)
        # Long polls hold requests for seconds: do not wait them out when stopping.
        self._runner = web.AppRunner(
            app, access_log=None, handle_signals=False, shutdown_timeout=SHUTDOWN_TIMEOUT_S
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.requested_port, backlog=1024)
        try:
            await site.start()
        except OSError:
            await self._runner.cleanup()
            await self.network.close()
            raise
        self.port = self._runner.addresses[0][1]
        logger.info(
            "devnet up at %s with %d providers (seed %d, time scale %g, %s)",
            self.api_url,
            len(self.network.providers),
            self.seed,
            self.clock.scale,
            self.platform.name,
        )

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self.network is not None:
            await self.network.close()
            self.network = None

    # ------------------------------------------------------------------ what clients need
    @property
    def api_url(self) -> str:
        if self.port is None:
            raise RuntimeError("the devnet is not running")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def image_repo(self) -> str:
        """Base URL of the image repository the devnet serves (``GOLEM_TASKS_IMAGE_REPO``)."""
        return self.api_url

    @property
    def subnet(self) -> str:
        subnets = {group.spec.subnet for group in self.profile.groups}
        return next(iter(subnets)) if len(subnets) == 1 else "public"

    def env(self) -> dict[str, str]:
        """The environment variables a client of this devnet needs."""
        return {
            "YAGNA_API_URL": self.api_url,
            "YAGNA_APPKEY": self.app_key,
            "YAGNA_PAYMENT_NETWORK": self.platform.network,
            "YAGNA_PAYMENT_DRIVER": self.platform.driver,
            "YAGNA_SUBNET": self.subnet,
            "GOLEM_TASKS_IMAGE_REPO": self.image_repo,
            "PATH": path_with(self.bin_dir) if self.bin_dir else os.environ.get("PATH", ""),
        }

    def export_lines(self) -> str:
        return export_lines(self.env())


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` keeps the devnet on this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
