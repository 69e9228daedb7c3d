"""Discord's permission algorithm (tests/fakes/fake_discord/permissions.py) on its documented
cases, and on the fake's guilds (categories, threads)."""

from __future__ import annotations

import datetime as dt

import discord
import pytest

from tests.fakes.fake_discord import (
    ChannelType,
    FakeChannel,
    FakeGuild,
    FakeThread,
    Overwrite,
    Permission,
)
from tests.fakes.fake_discord.models import FakeMember, FakeRole, FakeUser
from tests.fakes.fake_discord.permissions import (
    ALL_PERMISSIONS,
    MEMBER,
    ROLE,
    base_permissions,
    channel_permissions,
    overwritten_permissions,
    thread_permissions,
)

GUILD = 1000
MODS = 2000
HELPERS = 3000
ANA = 4000
OWNER = 5000

VIEW = Permission.VIEW_CHANNEL
SEND = Permission.SEND_MESSAGES
HISTORY = Permission.READ_MESSAGE_HISTORY
EVERYONE = int(VIEW | SEND | HISTORY | Permission.EMBED_LINKS)


def in_channel(
    *overwrites: Overwrite,
    roles: dict[int, int] | None = None,
    member_roles: tuple[int, ...] = (),
    everyone: int = EVERYONE,
    member_id: int = ANA,
) -> Permission:
    return Permission(
        channel_permissions(
            guild_id=GUILD,
            everyone=everyone,
            roles=roles or {MODS: 0, HELPERS: 0},
            member_role_ids=member_roles,
            member_id=member_id,
            is_owner=member_id == OWNER,
            overwrites=overwrites,
        )
    )


def test_discord_py_agrees_on_every_permission_bit() -> None:
    ours = {p.name.lower(): p.value for p in Permission if p.name is not None}
    renamed = {
        "use_vad": "use_voice_activation",
        "manage_guild_expressions": "manage_expressions",
        "create_guild_expressions": "create_expressions",
        "send_polls": "create_polls",
    }
    for name, value in ours.items():
        flag = getattr(discord.Permissions, renamed.get(name, name)).flag
        assert flag == value, name
    assert discord.Permissions.all().value == ALL_PERMISSIONS


def test_base_is_everyone_or_the_member_roles() -> None:
    assert base_permissions(int(VIEW), [int(SEND)], is_owner=False) == VIEW | SEND
    assert base_permissions(int(VIEW), [], is_owner=False) == VIEW
    assert base_permissions(0, [], is_owner=True) == ALL_PERMISSIONS


def test_an_administrator_role_has_everything_whatever_the_overwrites() -> None:
    admin = int(Permission.ADMINISTRATOR)
    hidden = Overwrite(GUILD, ROLE, deny=int(VIEW | SEND))
    mine = Overwrite(ANA, MEMBER, deny=int(VIEW))
    assert base_permissions(0, [admin], is_owner=False) == ALL_PERMISSIONS
    perms = in_channel(hidden, mine, roles={MODS: admin}, member_roles=(MODS,))
    assert perms == ALL_PERMISSIONS
    # Without the role the same overwrites hide the channel.
    assert in_channel(hidden, mine) == 0


def test_the_owner_has_everything() -> None:
    hidden = Overwrite(GUILD, ROLE, deny=int(VIEW))
    assert in_channel(hidden, everyone=0, member_id=OWNER) == ALL_PERMISSIONS


def test_everyone_denied_but_a_role_allowed() -> None:
    overwrites = (
        Overwrite(GUILD, ROLE, deny=int(VIEW)),
        Overwrite(MODS, ROLE, allow=int(VIEW)),
    )
    assert in_channel(*overwrites, member_roles=(MODS,)) & VIEW
    assert in_channel(*overwrites, member_roles=(MODS,)) & SEND
    assert in_channel(*overwrites) == 0  # no VIEW_CHANNEL: nothing else counts either


def test_role_allows_win_over_role_denies() -> None:
    overwrites = (
        Overwrite(MODS, ROLE, deny=int(SEND)),
        Overwrite(HELPERS, ROLE, allow=int(SEND)),
    )
    assert in_channel(*overwrites, member_roles=(MODS, HELPERS)) & SEND
    assert not in_channel(*overwrites, member_roles=(MODS,)) & SEND


def test_the_member_overwrite_beats_role_overwrites() -> None:
    role_allows = Overwrite(MODS, ROLE, allow=int(SEND))
    member_denies = Overwrite(ANA, MEMBER, deny=int(SEND))
    assert not in_channel(role_allows, member_denies, member_roles=(MODS,)) & SEND

    role_denies = Overwrite(MODS, ROLE, deny=int(VIEW))
    member_allows = Overwrite(ANA, MEMBER, allow=int(VIEW))
    assert in_channel(role_denies, member_allows, member_roles=(MODS,)) & VIEW


def test_an_overwrite_for_another_member_or_role_does_not_apply() -> None:
    others = (Overwrite(ANA + 1, MEMBER, deny=int(VIEW)), Overwrite(HELPERS, ROLE, deny=int(VIEW)))
    assert in_channel(*others, member_roles=(MODS,)) & VIEW
    # A member overwrite is matched by type as well as id: a role with the member's id is not it.
    assert in_channel(Overwrite(ANA, ROLE, deny=int(VIEW))) & VIEW


def test_the_order_is_everyone_then_roles_then_member() -> None:
    value = overwritten_permissions(
        int(VIEW | SEND),
        [
            Overwrite(ANA, MEMBER, allow=int(Permission.ATTACH_FILES)),
            Overwrite(MODS, ROLE, allow=int(SEND)),
            Overwrite(GUILD, ROLE, deny=int(SEND | Permission.ATTACH_FILES)),
        ],
        guild_id=GUILD,
        role_ids=[MODS],
        member_id=ANA,
    )
    assert value == VIEW | SEND | Permission.ATTACH_FILES


def test_without_send_messages_the_send_extras_go() -> None:
    perms = in_channel(Overwrite(GUILD, ROLE, deny=int(SEND)))
    assert perms & VIEW and perms & HISTORY
    assert not perms & SEND and not perms & Permission.EMBED_LINKS


def test_threads_follow_their_parent() -> None:
    parent = int(VIEW | HISTORY | Permission.SEND_MESSAGES_IN_THREADS)
    assert thread_permissions(parent, private=False, is_thread_member=False) == parent
    assert thread_permissions(0, private=False, is_thread_member=True) == 0
    # A private thread: its members, or whoever may manage threads.
    assert thread_permissions(parent, private=True, is_thread_member=False) == 0
    assert thread_permissions(parent, private=True, is_thread_member=True) == parent
    manager = parent | Permission.MANAGE_THREADS
    assert thread_permissions(manager, private=True, is_thread_member=False) == manager


def test_sending_in_a_thread_needs_send_messages_in_threads() -> None:
    parent = int(VIEW | SEND | Permission.EMBED_LINKS)
    perms = thread_permissions(parent, private=False, is_thread_member=True)
    assert not perms & Permission.SEND_MESSAGES_IN_THREADS
    assert not perms & Permission.EMBED_LINKS


def test_overwrite_payload_round_trip() -> None:
    overwrite = Overwrite(MODS, ROLE, allow=int(VIEW), deny=int(SEND))
    assert overwrite.payload() == {"id": "2000", "type": 0, "allow": "1024", "deny": "2048"}
    assert Overwrite.from_payload(overwrite.payload()) == overwrite
    assert Overwrite.from_payload({"id": "1", "type": "member", "allow": 0, "deny": 0}).type == 1


# --------------------------------------------------------------------------- on the fake's guilds


@pytest.fixture
def guild() -> FakeGuild:
    now = dt.datetime.now(dt.UTC)
    guild = FakeGuild(id=GUILD, name="g", owner_id=OWNER)
    guild.roles = [FakeRole(GUILD, "@everyone", EVERYONE), FakeRole(MODS, "mods", 0, position=1)]
    guild.members = {
        ANA: FakeMember(FakeUser(ANA, "ana"), now),
        ANA + 1: FakeMember(FakeUser(ANA + 1, "mod"), now, role_ids=[MODS]),
    }
    staff_only = [Overwrite(GUILD, ROLE, deny=int(VIEW)), Overwrite(MODS, ROLE, allow=int(VIEW))]
    category = FakeChannel(10, GUILD, "Staff", ChannelType.GUILD_CATEGORY)
    category.permission_overwrites = list(staff_only)
    synced = FakeChannel(11, GUILD, "staff-chat", parent_id=10)
    synced.permission_overwrites = list(staff_only)
    unsynced = FakeChannel(12, GUILD, "staff-lobby", parent_id=10)
    guild.channels = [category, synced, unsynced]
    return guild


def test_a_category_synced_channel_has_the_category_permissions(guild: FakeGuild) -> None:
    category, synced, unsynced = guild.channels
    for user_id in (ANA, ANA + 1):
        assert guild.permissions_in(synced, user_id) == guild.permissions_in(category, user_id)
    assert not guild.can(ANA, synced, VIEW)
    assert guild.can(ANA + 1, synced, VIEW | SEND)
    # Overwrites are the channel's own: a channel that is not synced does not inherit them.
    assert guild.can(ANA, unsynced, VIEW)


def test_a_thread_in_a_hidden_channel_is_hidden(guild: FakeGuild) -> None:
    thread = FakeThread(20, GUILD, "t", ChannelType.PUBLIC_THREAD, parent_id=11, owner_id=ANA + 1)
    guild.threads = [thread]
    assert guild.permissions_in(thread, ANA) == 0
    assert guild.can(ANA + 1, thread, VIEW | Permission.READ_MESSAGE_HISTORY)
    assert guild.visible_threads(ANA) == []
    assert guild.visible_threads(ANA + 1) == [thread]


def test_strangers_have_no_permissions(guild: FakeGuild) -> None:
    assert guild.permissions_of(999) == 0
    assert guild.permissions_in(guild.channels[2], 999) == 0
