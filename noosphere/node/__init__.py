"""Publish, Discover and Execute: the node daemon (p2p is the only trio/libp2p module)."""
