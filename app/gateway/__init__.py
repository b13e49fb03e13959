"""The LLM gateway: the only package that imports litellm."""

from app.gateway.calls import CallContext, ModelReply, TokenSink, ToolCall, Usage
from app.gateway.gateway import Gateway

__all__ = ["CallContext", "Gateway", "ModelReply", "TokenSink", "ToolCall", "Usage"]
