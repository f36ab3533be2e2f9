"""The payment platform the devnet pretends to use (driver, network, token)."""

from __future__ import annotations

import os
from dataclasses import dataclass

#: Networks whose token is real GLM; every other network pays in test GLM.
MAINNETS = frozenset({"mainnet", "polygon"})
#: Each network's gas currency, short and long name, as yagna's erc20 driver names them.
GAS_CURRENCIES = {
    "mainnet": ("ETH", "Ether"),
    "polygon": ("POL", "Polygon"),
    "holesky": ("tETH", "Holesky Ether"),
    "hoodi": ("tETH", "Hoodi Ether"),
    "sepolia": ("tETH", "Sepolia Ether"),
    "goerli": ("tETH", "Goerli Ether"),
    "rinkeby": ("tETH", "Rinkeby Ether"),
    "amoy": ("POL", "Test POL"),
    "mumbai": ("POL", "Test POL"),
}


@dataclass(frozen=True)
class PaymentPlatform:
    driver: str = "erc20"
    network: str = "holesky"

    @property
    def token(self) -> str:
        return "GLM" if self.network in MAINNETS else "tGLM"

    @property
    def name(self) -> str:
        """yagna's platform string, e.g. ``erc20-holesky-tglm``."""
        return f"{self.driver}-{self.network}-{self.token.lower()}"

    @property
    def gas_currency(self) -> tuple[str, str]:
        """(short, long) name of the network's gas currency."""
        return GAS_CURRENCIES.get(self.network, ("tETH", f"{self.network.title()} Ether"))

    @classmethod
    def from_env(cls, network: str | None = None, driver: str | None = None) -> PaymentPlatform:
        """Explicit values, else ``YAGNA_PAYMENT_NETWORK`` / ``YAGNA_PAYMENT_DRIVER``."""
        return cls(
            driver=(driver or os.environ.get("YAGNA_PAYMENT_DRIVER") or "erc20").lower(),
            network=(network or os.environ.get("YAGNA_PAYMENT_NETWORK") or "holesky").lower(),
        )
