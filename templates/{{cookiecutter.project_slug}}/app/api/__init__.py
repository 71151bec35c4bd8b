"""HTTP routes in the OpenAI wire format."""
