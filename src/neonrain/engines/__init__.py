"""Agent engines an account can use besides HUMA: its own OpenAI-compatible endpoint."""
