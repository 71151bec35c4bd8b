"""Model gateway: one OpenAI-shaped interface over every configured provider."""

from app.gateway.base import Event, GatewayError, Message, ModelCall
from app.gateway.core import CallTrace, Gateway, MidStreamError, Summary

__all__ = ["CallTrace", "Event", "Gateway", "GatewayError", "Message", "MidStreamError", "ModelCall", "Summary"]
