"""Talking to Neon's API: a rate-limited, retrying client over the neon-api package."""
