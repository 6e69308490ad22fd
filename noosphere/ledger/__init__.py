"""Settle: contracts, the local chain and the web3 client."""
