"""The Discord worker: one discord.py client per token, one HUMA agent per (user, guild)."""
