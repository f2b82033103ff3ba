"""The gateway: the only door for people and partners. Authenticates, authorises, enforces
single-record queries and purposes, filters what a reader may see, and audits every request
before any data leaves."""
