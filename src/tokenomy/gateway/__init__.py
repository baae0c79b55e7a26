"""The gateway: an OpenAI- and Anthropic-compatible HTTP endpoint in front of every agent."""
