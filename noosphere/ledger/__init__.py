"""Settle: contracts, the local chain and the web3 client.

The public API is importable from here (``from noosphere.ledger import LedgerClient``); the names
are loaded on first use, so importing ``noosphere.ledger.chain`` or ``registry_proof`` does not
pay for web3 (about 1 s)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._transactions import CONTRACT_NAMES, LedgerError, decode_revert, load_artifact, to_bytes32
    from .channels import ChannelClient, ChannelStatus, ChannelView, Voucher
    from .client import LedgerClient
    from .deployment import OWNER_ARBITER, Deployment
    from .escrow import (
        ESCROW_ROLES,
        DisputeView,
        EscrowClient,
        EscrowEntry,
        EscrowOpenedEntry,
        EscrowStatus,
        EscrowView,
    )
    from .registry import FeedbackEntry, RegistryClient
    from .registry_proof import RegistryEntry
    from .token import Permit, TokenClient

_EXPORTS = {
    "CONTRACT_NAMES": "_transactions",
    "LedgerError": "_transactions",
    "decode_revert": "_transactions",
    "load_artifact": "_transactions",
    "to_bytes32": "_transactions",
    "ChannelClient": "channels",
    "ChannelStatus": "channels",
    "ChannelView": "channels",
    "Voucher": "channels",
    "LedgerClient": "client",
    "OWNER_ARBITER": "deployment",
    "Deployment": "deployment",
    "ESCROW_ROLES": "escrow",
    "DisputeView": "escrow",
    "EscrowClient": "escrow",
    "EscrowEntry": "escrow",
    "EscrowOpenedEntry": "escrow",
    "EscrowStatus": "escrow",
    "EscrowView": "escrow",
    "FeedbackEntry": "registry",
    "RegistryClient": "registry",
    "RegistryEntry": "registry_proof",
    "Permit": "token",
    "TokenClient": "token",
}

__all__ = [
    "CONTRACT_NAMES",
    "ESCROW_ROLES",
    "OWNER_ARBITER",
    "ChannelClient",
    "ChannelStatus",
    "ChannelView",
    "Deployment",
    "DisputeView",
    "EscrowClient",
    "EscrowEntry",
    "EscrowOpenedEntry",
    "EscrowStatus",
    "EscrowView",
    "FeedbackEntry",
    "LedgerClient",
    "LedgerError",
    "Permit",
    "RegistryClient",
    "RegistryEntry",
    "TokenClient",
    "Voucher",
    "decode_revert",
    "load_artifact",
    "to_bytes32",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)
