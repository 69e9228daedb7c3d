"""The prompt builder: metadata and context fields from a server configuration."""

from __future__ import annotations

from datetime import UTC, datetime

from neonrain.huma import (
    ChannelRef,
    ServerConfig,
    Website,
    agent_identity,
    build_agent_metadata,
    build_context,
    build_webchat_context,
    describe_new_message,
    discord_agent_name,
    format_history_line,
    join_history,
    tool_definitions,
    webchat_agent_name,
)

CONFIG = ServerConfig(
    bot_name="Nova",
    server_name="Rust Lovers",
    personality="Speaks like a pirate.",
    rules="No self-promotion outside #showcase.",
    information="Our crate is called ferrisbox; docs at docs.ferrisbox.dev.",
    websites=(
        Website(
            "Docs",
            "https://docs.ferrisbox.dev",
            "# Docs",
            datetime(2024, 5, 1, 12, 0, tzinfo=UTC),
        ),
    ),
)


def test_metadata_shape_and_texts_where_they_belong() -> None:
    metadata = build_agent_metadata(CONFIG)
    assert set(metadata) == {"className", "personality", "instructions", "tools", "routerType"}
    assert metadata["className"] == "Nova"
    assert metadata["routerType"] == "conversational"
    personality, instructions = metadata["personality"], metadata["instructions"]
    # the bot and server are named in the background line and the role
    assert "You are Nova" in personality and "Rust Lovers" in personality
    assert "You are Nova" in instructions and "Rust Lovers" in instructions
    # custom personality closes the personality, custom rules close the instructions
    assert personality.rstrip().endswith("## Custom Personality\n\nSpeaks like a pirate.")
    assert instructions.rstrip().endswith("## Custom Rules\n\nNo self-promotion outside #showcase.")
    assert "Speaks like a pirate" not in instructions
    assert "No self-promotion" not in personality
    # the structure the spec asks for
    for heading in ("## Core traits", "## Background", "## Speech patterns", "## Mood"):
        assert heading in personality
    for phrase in ("<#channel_id>", "<@user_id>", "untrusted", "Do not reveal", "two messages"):
        assert phrase in instructions


def test_instructions_forbid_claiming_to_be_human() -> None:
    instructions = build_agent_metadata(CONFIG)["instructions"]
    assert "never claim to be human" in instructions
    assert "you are an AI" in instructions


def test_empty_custom_texts_leave_no_empty_section() -> None:
    metadata = build_agent_metadata(ServerConfig(bot_name="Nova", server_name="S"))
    assert "## Custom Personality" not in metadata["personality"]
    assert "## Custom Rules" not in metadata["instructions"]


def test_tool_definitions_shape() -> None:
    discord = tool_definitions("discord")
    assert [t["name"] for t in discord] == ["send_message", "fetch_channel_messages"]
    for tool in discord:
        assert set(tool) == {"name", "description", "parameters"}
        for param in tool["parameters"]:
            assert set(param) == {"name", "type", "description", "required"}
    send = {p["name"]: p for p in discord[0]["parameters"]}
    assert send["channel_id"]["type"] == "string" and send["channel_id"]["required"] is True
    assert send["message"]["type"] == "string" and send["message"]["required"] is True
    fetch = {p["name"]: p for p in discord[1]["parameters"]}
    assert fetch["limit"] == {**fetch["limit"], "type": "number", "required": False}
    assert [t["name"] for t in tool_definitions("webchat")] == ["send_message"]
    assert build_agent_metadata(CONFIG, "webchat")["tools"] == tool_definitions("webchat")


def test_names_and_identity() -> None:
    assert discord_agent_name("Rust Lovers") == "Discord-Rust Lovers"
    assert webchat_agent_name(42) == "WebChat-42"
    edited = ServerConfig(bot_name="Nova", server_name="Rust Lovers", rules="changed")
    assert agent_identity(edited) == agent_identity(CONFIG)
    renamed = ServerConfig(bot_name="Vega", server_name="Rust Lovers")
    assert agent_identity(renamed) != agent_identity(CONFIG)


def test_context_shape() -> None:
    general = ChannelRef("c1", "general")
    news = ChannelRef("c2", "news", "news")
    history = [
        format_history_line(datetime(2024, 1, 1, 10, 0, tzinfo=UTC), "bob", "hi"),
        format_history_line(datetime(2024, 1, 1, 10, 1, tzinfo=UTC), "alice", "is it down?"),
    ]
    context = build_context(
        CONFIG,
        guild_id="g1",
        you="Nova",
        current_channel=general,
        history=history,
        monitored_channels=[general, news],
        recent_messages={"c2": ["[t] carol: release!\n"], "c1": ["ignored\n"]},
        all_channels=[general, news, ChannelRef("v1", "Voice", "voice")],
    )
    assert context["guild"] == {"id": "g1", "name": "Rust Lovers"}
    assert context["you"] == {"name": "Nova"}
    assert context["currentChannel"] == {
        "id": "c1",
        "name": "general",
        "conversationHistory": "[2024-01-01T10:00:00Z] bob: hi\n"
        "[2024-01-01T10:01:00Z] alice: is it down?\n",
    }
    assert context["monitoredChannels"] == [
        {"id": "c1", "name": "general"},
        {"id": "c2", "name": "news", "recentMessages": "[t] carol: release!\n"},
    ]
    assert context["allChannels"][2] == {"id": "v1", "name": "Voice", "type": "voice"}
    assert context["userInformation"] == CONFIG.information
    assert context["customRules"] == CONFIG.rules
    assert context["customPersonality"] == CONFIG.personality
    assert context["importantWebsites"] == [
        {
            "name": "Docs",
            "url": "https://docs.ferrisbox.dev",
            "scrapedAt": "2024-05-01T12:00:00+00:00",
            "content": "# Docs",
        }
    ]


def test_context_leaves_out_empty_texts_and_keeps_50_lines() -> None:
    config = ServerConfig(bot_name="Nova", server_name="S", rules="  ")
    lines = [f"[t] u: message {i}\n" for i in range(80)]
    context = build_context(
        config, guild_id="g", you="Nova", current_channel=ChannelRef("c", "x"), history=lines
    )
    assert "customRules" not in context
    assert "userInformation" not in context
    assert "customPersonality" not in context
    history = context["currentChannel"]["conversationHistory"].splitlines()
    assert len(history) == 50
    assert history[0] == "[t] u: message 30" and history[-1] == "[t] u: message 79"


def test_webchat_context_uses_synthetic_guild() -> None:
    context = build_webchat_context(CONFIG, conversation_id=7, history=["[t] Me: hello"])
    assert context["guild"] == {"id": "webchat-7", "name": "Rust Lovers"}
    assert context["currentChannel"]["id"] == "webchat-7"
    assert context["currentChannel"]["name"] == "general"
    assert context["currentChannel"]["conversationHistory"] == "[t] Me: hello\n"
    assert context["allChannels"] == [{"id": "webchat-7", "name": "general", "type": "text"}]


def test_description_cuts_the_message_to_100_characters() -> None:
    text = "word " * 60
    description = describe_new_message("alice", "general", text)
    quoted = description.split('"')[1]
    assert len(quoted) == 100 and quoted.endswith("…")
    assert description.startswith("User alice sent a new message in channel #general: ")
    assert description.endswith(
        "Review the conversationHistory field to see the full conversation context before "
        "responding."
    )
    short = describe_new_message("bob", "help", "is the server down?")
    assert '"is the server down?"' in short


def test_join_history_adds_missing_newlines() -> None:
    assert join_history(["a", "b\n"]) == "a\nb\n"
    assert join_history([]) == ""
