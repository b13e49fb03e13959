"""The LLM gateway: the only package that imports litellm."""

from app.gateway.gateway import CallContext, Gateway, ModelReply, TokenSink, ToolCall, Usage

__all__ = ["CallContext", "Gateway", "ModelReply", "TokenSink", "ToolCall", "Usage"]
