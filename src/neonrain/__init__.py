"""Neonrain: AI community members for Discord servers."""
