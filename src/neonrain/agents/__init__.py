"""What every agent engine shares (HUMA, OpenAI-compatible): the chat surface's plug-in point
(:class:`~neonrain.agents.sending.ToolHost`), typing like a person with one pending message
(:class:`~neonrain.agents.sending.MessageSender`), and the tools' argument checks and result texts
(:mod:`neonrain.agents.tools`). Nothing here knows an engine's wire format.
"""
