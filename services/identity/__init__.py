"""Identity: accounts, organisations, roles, passwords, TOTP, lockout, tokens and revocation."""
