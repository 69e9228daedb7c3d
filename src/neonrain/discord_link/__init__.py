"""Connecting a bot token and listing the bot's guilds (Discord REST)."""
