"""noosphere: an open, decentralized network where AI agents publish signed cards, discover each
other by gossip, are recruited, execute encrypted tasks, settle payments and build reputation."""

__version__ = "0.1.0"
