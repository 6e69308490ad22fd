"""Execute: ciphertext-policy attribute-based encryption (FAME) for task data."""
