"""Discord's permission algorithm (discord_link/permissions.py) on Discord's documented cases,
and against the fake Discord's own implementation on random guilds."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from neonrain.discord_link.permissions import (
    ALL_PERMISSIONS,
    CAN_READ,
    CAN_SEND,
    MEMBER,
    ROLE,
    Member,
    Overwrite,
    Permission,
    base_permissions,
    channel_permissions,
    has_all,
)
from tests.fakes.fake_discord import permissions as fake_permissions

GUILD = "100"
OWNER = "900"
BOT = "500"
MODS = "201"
HELPERS = "202"
ADMINS = "203"

VIEW = Permission.VIEW_CHANNEL
SEND = Permission.SEND_MESSAGES
HISTORY = Permission.READ_MESSAGE_HISTORY
EVERYONE_DEFAULT = VIEW | SEND | HISTORY | Permission.CHANGE_NICKNAME


def bot(*roles: str) -> Member:
    return Member(user_id=BOT, role_ids=frozenset(roles))


def in_channel(
    member: Member,
    overwrites: list[Overwrite],
    roles: dict[str, int] | None = None,
    owner: str | None = OWNER,
) -> int:
    return channel_permissions(
        guild_id=GUILD,
        owner_id=owner,
        roles={GUILD: EVERYONE_DEFAULT} if roles is None else roles,
        member=member,
        overwrites=overwrites,
    )


def everyone(allow: int = 0, deny: int = 0) -> Overwrite:
    return Overwrite(id=GUILD, type=ROLE, allow=allow, deny=deny)


# ------------------------------------------------------------------------------ base permissions


def test_base_is_everyone_or_the_members_roles() -> None:
    roles = {GUILD: VIEW, MODS: SEND, HELPERS: HISTORY}
    assert base_permissions(guild_id=GUILD, owner_id=OWNER, roles=roles, member=bot()) == VIEW
    assert base_permissions(guild_id=GUILD, owner_id=OWNER, roles=roles, member=bot(MODS)) == (
        VIEW | SEND
    )
    assert base_permissions(
        guild_id=GUILD, owner_id=OWNER, roles=roles, member=bot(MODS, HELPERS)
    ) == (VIEW | SEND | HISTORY)


def test_unknown_roles_of_the_member_are_ignored() -> None:
    roles = {GUILD: VIEW}
    assert base_permissions(guild_id=GUILD, owner_id=None, roles=roles, member=bot("999")) == VIEW


def test_an_administrator_role_grants_everything_and_no_overwrite_takes_it_away() -> None:
    roles = {GUILD: 0, ADMINS: Permission.ADMINISTRATOR}
    assert base_permissions(guild_id=GUILD, owner_id=OWNER, roles=roles, member=bot(ADMINS)) == (
        ALL_PERMISSIONS
    )
    denied = [
        everyone(deny=VIEW | SEND | HISTORY),
        Overwrite(id=ADMINS, type=ROLE, deny=VIEW),
        Overwrite(id=BOT, type=MEMBER, deny=SEND),
    ]
    assert in_channel(bot(ADMINS), denied, roles) == ALL_PERMISSIONS
    # Administrator on @everyone counts too.
    assert in_channel(bot(), denied, {GUILD: Permission.ADMINISTRATOR}) == ALL_PERMISSIONS


def test_the_guild_owner_has_every_permission() -> None:
    nothing = {GUILD: 0}
    owner = Member(user_id=OWNER, role_ids=frozenset())
    assert base_permissions(guild_id=GUILD, owner_id=OWNER, roles=nothing, member=owner) == (
        ALL_PERMISSIONS
    )
    overwrites = [everyone(deny=VIEW), Overwrite(id=OWNER, type=MEMBER, deny=SEND | VIEW)]
    assert in_channel(owner, overwrites, nothing) == ALL_PERMISSIONS
    # Without an owner id, the same member is just a member.
    assert in_channel(owner, overwrites, nothing, owner=None) == 0


# ------------------------------------------------------------------------------ overwrites


def test_everyone_deny_with_a_role_allow_lets_the_role_in() -> None:
    overwrites = [everyone(deny=VIEW), Overwrite(id=MODS, type=ROLE, allow=VIEW)]
    assert not in_channel(bot(), overwrites) & VIEW
    assert in_channel(bot(MODS), overwrites) & VIEW
    assert has_all(in_channel(bot(MODS), overwrites), CAN_READ | CAN_SEND)


def test_role_allows_beat_role_denies_whatever_the_roles() -> None:
    # All the member's role denies are applied first, then all their allows.
    overwrites = [
        Overwrite(id=MODS, type=ROLE, deny=SEND),
        Overwrite(id=HELPERS, type=ROLE, allow=SEND),
    ]
    assert in_channel(bot(MODS, HELPERS), overwrites) & SEND
    assert not in_channel(bot(MODS), overwrites) & SEND


def test_a_role_overwrite_beats_the_everyone_overwrite() -> None:
    overwrites = [everyone(allow=SEND), Overwrite(id=MODS, type=ROLE, deny=SEND)]
    assert in_channel(bot(), overwrites, {GUILD: VIEW}) & SEND
    assert not in_channel(bot(MODS), overwrites, {GUILD: VIEW}) & SEND


def test_the_members_own_overwrite_beats_its_roles_overwrites() -> None:
    denied_by_member = [
        Overwrite(id=MODS, type=ROLE, allow=SEND),
        Overwrite(id=BOT, type=MEMBER, deny=SEND),
    ]
    assert not in_channel(bot(MODS), denied_by_member) & SEND
    allowed_by_member = [
        everyone(deny=VIEW),
        Overwrite(id=MODS, type=ROLE, deny=VIEW),
        Overwrite(id=BOT, type=MEMBER, allow=VIEW),
    ]
    assert in_channel(bot(MODS), allowed_by_member) & VIEW


def test_a_member_overwrite_for_someone_else_does_not_apply() -> None:
    overwrites = [Overwrite(id="777", type=MEMBER, deny=VIEW)]
    assert in_channel(bot(), overwrites) & VIEW


def test_an_overwrite_is_matched_by_its_type_too() -> None:
    # A member overwrite whose id happens to equal a role of the bot is not a role overwrite.
    overwrites = [Overwrite(id=MODS, type=MEMBER, deny=SEND)]
    assert in_channel(bot(MODS), overwrites) & SEND


def test_without_view_channel_nothing_else_is_left() -> None:
    overwrites = [everyone(deny=VIEW)]
    assert in_channel(bot(), overwrites) == 0
    assert not has_all(in_channel(bot(), overwrites), CAN_READ)


def test_read_and_send_need_their_own_bits() -> None:
    no_history = [everyone(deny=HISTORY)]
    assert not has_all(in_channel(bot(), no_history), CAN_READ)
    assert has_all(in_channel(bot(), no_history), CAN_SEND)
    no_send = [everyone(deny=SEND)]
    assert has_all(in_channel(bot(), no_send), CAN_READ)
    assert not has_all(in_channel(bot(), no_send), CAN_SEND)


def test_a_channel_synced_with_its_category_has_the_categorys_permissions() -> None:
    """Discord copies a category's overwrites onto its synced channels; a channel that is not
    synced keeps its own and inherits nothing."""
    category = [everyone(deny=VIEW), Overwrite(id=MODS, type=ROLE, allow=VIEW | SEND)]
    synced = list(category)
    not_synced: list[Overwrite] = []
    for member in (bot(), bot(MODS)):
        assert in_channel(member, synced) == in_channel(member, category)
    assert not in_channel(bot(), synced) & VIEW
    assert in_channel(bot(), not_synced) & VIEW


# ------------------------------------------------------------------------------ versus the fake

BITS = [VIEW, SEND, HISTORY, 1 << 13, 1 << 40]
BITFIELD = st.lists(st.sampled_from([*BITS, Permission.ADMINISTRATOR]), max_size=3).map(
    lambda bits: sum(set(bits))
)
#: Discord does not accept ADMINISTRATOR in a channel overwrite (it is a guild-wide permission).
OVERWRITE_BITFIELD = st.lists(st.sampled_from(BITS), max_size=3).map(lambda bits: sum(set(bits)))
ROLE_IDS = ["201", "202", "203", "204"]


@st.composite
def guilds(draw: st.DrawFn) -> tuple[dict[str, int], frozenset[str], list[Overwrite], bool]:
    roles = {GUILD: draw(BITFIELD)} | {r: draw(BITFIELD) for r in ROLE_IDS}
    held = frozenset(draw(st.lists(st.sampled_from(ROLE_IDS), max_size=3)))
    targets = st.sampled_from([(ROLE, GUILD), *((ROLE, r) for r in ROLE_IDS), (MEMBER, BOT)])
    overwrites = {
        target: Overwrite(
            id=target[1],
            type=target[0],
            allow=draw(OVERWRITE_BITFIELD),
            deny=draw(OVERWRITE_BITFIELD),
        )
        for target in draw(st.lists(targets, max_size=5))
    }
    return roles, held, list(overwrites.values()), draw(st.booleans())


@settings(max_examples=300, deadline=None)
@given(guilds())
def test_the_product_and_the_fake_agree_on_read_and_send(
    guild: tuple[dict[str, int], frozenset[str], list[Overwrite], bool],
) -> None:
    roles, held, overwrites, is_owner = guild
    ours = channel_permissions(
        guild_id=GUILD,
        owner_id=BOT if is_owner else OWNER,
        roles=roles,
        member=Member(user_id=BOT, role_ids=held),
        overwrites=overwrites,
    )
    theirs = fake_permissions.channel_permissions(
        guild_id=int(GUILD),
        everyone=roles[GUILD],
        roles={int(r): bits for r, bits in roles.items()},
        member_role_ids={int(r) for r in held},
        member_id=int(BOT),
        is_owner=is_owner,
        overwrites=[
            fake_permissions.Overwrite(id=int(o.id), type=o.type, allow=o.allow, deny=o.deny)
            for o in overwrites
        ],
    )
    for wanted in (CAN_READ, CAN_SEND):
        assert has_all(ours, wanted) == has_all(theirs, wanted)
