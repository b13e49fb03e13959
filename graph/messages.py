"""LangChain messages to the OpenAI chat format the gateway speaks.

Written out rather than delegated so that malformed tool calls (kept by
LangChain as ``invalid_tool_calls``) still reach the model with their ids, and
every tool result keeps a matching call: providers reject orphans.

Each tool result reaches the model inside ``<tool_output>`` … ``</tool_output>``, and the system prompt
says what is inside is data, never instructions. A result cannot close or open that delimiter itself: the
``<`` of any ``<tool_output``/``</tool_output`` in it is escaped. The tag carries no attributes: with a tool
name or a trust flag in it the embedded 0.5B model stops reading the result (it answered its few-shot
example instead, measured); the gate, not the model, acts on trust (``TRUSTED_OUTPUT``, stamped by ``act``).
"""

from __future__ import annotations

import json
import re
from typing import Any

from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.messages.tool import InvalidToolCall
from langchain_core.messages.tool import ToolCall as ToolCallDict

from app.gateway import ToolCall

TRUSTED_OUTPUT = "trusted_output"  # a ToolMessage's additional_kwargs key: its tool declared trusted_output
# A delimiter inside a result, however spaced, cased or split by invisible characters: "</ tool_output>",
# "<TOOL OUTPUT trusted=...", "</tool\u200b_output>". Its "<" is escaped.
_FORGED_DELIMITER = re.compile("<(?=" + "".join(rf"[\W_]*{c}" for c in "tooloutput") + ")", re.IGNORECASE)


def is_trusted(message: ToolMessage) -> bool:
    """Whether the result came from a tool that declared its output trusted (a result not stamped did not)."""
    return message.additional_kwargs.get(TRUSTED_OUTPUT) is True


def delimited(text: str) -> str:
    """A tool result as the model reads it: delimited as data, with any delimiter inside it escaped."""
    return f"<tool_output>\n{_FORGED_DELIMITER.sub('&lt;', text)}\n</tool_output>"


def to_openai(messages: list[AnyMessage], system_prompt: str | None = None) -> list[dict[str, Any]]:
    converted: list[dict[str, Any]] = []
    if system_prompt:
        converted.append({"role": "system", "content": system_prompt})
    for message in messages:
        if isinstance(message, SystemMessage):
            converted.append({"role": "system", "content": message.text})
        elif isinstance(message, HumanMessage):
            converted.append({"role": "user", "content": message.text})
        elif isinstance(message, ToolMessage):
            converted.append({"role": "tool", "tool_call_id": message.tool_call_id, "content": delimited(message.text)})
        elif isinstance(message, AIMessage):
            calls = [
                {
                    "id": call["id"],
                    "type": "function",
                    "function": {"name": call["name"], "arguments": json.dumps(call["args"])},
                }
                for call in message.tool_calls
            ] + [
                {
                    "id": call["id"],
                    "type": "function",
                    "function": {"name": call["name"] or "", "arguments": call["args"] or ""},
                }
                for call in message.invalid_tool_calls
            ]
            entry: dict[str, Any] = {"role": "assistant", "content": message.text or None}
            if calls:
                entry["tool_calls"] = calls
            converted.append(entry)
    return converted


def ai_message(text: str, calls: tuple[ToolCall, ...]) -> AIMessage:
    """The model's reply as an AIMessage; arguments that are not a JSON object become invalid calls."""
    valid: list[ToolCallDict] = []
    invalid: list[InvalidToolCall] = []
    for call in calls:
        try:
            args = json.loads(call.arguments) if call.arguments.strip() else {}
        except json.JSONDecodeError as exc:
            args, error = None, f"arguments are not valid JSON: {exc.msg}"
        else:
            error = "arguments must be a JSON object"
        if isinstance(args, dict):
            valid.append(ToolCallDict(id=call.id, name=call.name, args=args, type="tool_call"))
        else:
            invalid.append(
                InvalidToolCall(id=call.id, name=call.name, args=call.arguments, error=error, type="invalid_tool_call")
            )
    return AIMessage(content=text, tool_calls=valid, invalid_tool_calls=invalid)
