"""The models every phase shares (Publish, Recruit, Execute): sentence embeddings
(all-MiniLM-L6-v2, offline, one per process), the OpenAI-compatible chat backend, and which part
of a request's text to embed. ``agents``, ``mars`` and ``node`` use them; they use nothing of ours
but ``protocol``."""
