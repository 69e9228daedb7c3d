"""The worker's view of the configuration: the last tokens answer (``contract.TokensAnswer``),
kept per account and grouped by token."""

from __future__ import annotations

from dataclasses import dataclass, field

from neonrain.contract import TokenEntry, TokensAnswer


@dataclass
class ConfigSnapshot:
    """Every account's configuration as last read, with the generation it describes."""

    generation: int | None = None
    by_user: dict[str, TokenEntry] = field(default_factory=dict)

    def apply(self, answer: TokensAnswer, *, delta: bool) -> None:
        """Take a full answer, or a ``since`` delta (changed entries + ``removedUserIds``).
        Accounts a delta does not mention keep their objects, so an unchanged connection sees
        an identical configuration and returns at once."""
        if not delta:
            self.by_user = {entry.user_id: entry for entry in answer.tokens}
        else:
            for user_id in answer.removed_user_ids:
                self.by_user.pop(user_id, None)
            for entry in answer.tokens:
                self.by_user[entry.user_id] = entry
        self.generation = answer.generation

    def tokens(self) -> dict[str, list[TokenEntry]]:
        """Accounts grouped by token: one Discord connection serves every account using it."""
        grouped: dict[str, list[TokenEntry]] = {}
        for config in self.by_user.values():
            grouped.setdefault(config.discord_token, []).append(config)
        return grouped
