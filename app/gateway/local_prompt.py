"""How a conversation reads to the local 0.5B model: plain turns, the tool list with examples, phase notes.

The model never sees OpenAI's tool-call format: tool calls and results become plain text turns, and the tool list,
with its parameters and one example question per tool, goes into the system message (``local_model`` explains
how a reply is generated).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from app.tools.registry import EXAMPLES_KEY

PROVIDER = "local"
MODEL_NAME = "qwen2.5-coder-0.5b-instruct"
LOCAL_MODEL = f"{PROVIDER}/{MODEL_NAME}"
ANSWER = "answer"  # the decision option that means "no tool: reply"
# A reply opens with the decision, {"next": <option>}; the answer or the tool's arguments go on from it.
DECISION_OPENING = '{"next": "'
ARGUMENTS_OPENING = '", "arguments": '  # after the chosen tool's name, before its arguments


def decision_line(option: str) -> str:
    """The decision as the model writes it (the grammar spells the option out; no JSON escaping)."""
    return f'{DECISION_OPENING}{option}"}}'


ANSWER_OPENING = decision_line(ANSWER) + "\n"  # what an answer's reply holds before the answer itself
# The answer goes on from the decision in the same reply, so the examples show both (see ``with_tool_note``).
HAIKU = "Rain taps on the roof,\nthe garden drinks the grey sky,\npuddles hold the light."
ANSWER_EXAMPLES = (
    ("What is the capital of Italy?", f"{ANSWER_OPENING}Rome is the capital of Italy."),
    ("Write a haiku about rain.", f"{ANSWER_OPENING}{HAIKU}"),
)

# Few-shot examples matter: without them the 0.5B model picks the first listed tool for almost anything.
TOOL_NOTE = (
    "Tools:\n{tools}\n\n"
    'Before each reply, choose the next step: "answer" unless the user asks for data that only a tool has.\n\n'
    "Examples:\n{examples}"
)
RESULT_PREFIX = "Result of tool "  # how a tool result reads to the model (see chat_messages)
# Said only right after a tool result: without it the 0.5B model calls tool after tool on data it already has.
AFTER_RESULT_NOTE = 'If the results above hold what the user asked for, the next step is "answer".'
ANSWER_NOTE = "Reply to the user now, in plain text (no JSON)."
EMPTY_PARAMETERS: dict[str, Any] = {"type": "object", "properties": {}}

Messages = list[dict[str, str]]


def tool_spec(tool: Mapping[str, Any]) -> dict[str, Any]:
    """An OpenAI tool as name, description, parameter schema and the questions it is chosen for."""
    function = tool.get("function", tool)
    description = function.get("description") or f"Use {function['name']}."
    return {
        "name": function["name"],
        "description": description,
        "parameters": function.get("parameters") or EMPTY_PARAMETERS,
        # Without examples of its own, a tool is shown chosen for its description.
        "examples": list(function.get(EXAMPLES_KEY) or [description]),
    }


def chat_messages(messages: list) -> Messages:
    """OpenAI messages as plain role/content pairs that any chat template renders."""
    tool_names: dict[str, str] = {}
    converted: Messages = []
    for raw in messages:
        message = raw.model_dump() if hasattr(raw, "model_dump") else dict(raw)
        role, content = message.get("role", "user"), _text(message.get("content"))
        if role == "assistant" and message.get("tool_calls"):
            calls = []
            for call in message["tool_calls"]:
                name = call["function"]["name"]
                tool_names[call.get("id") or name] = name
                calls.append(json.dumps({"tool": name, "arguments": _parsed(call["function"].get("arguments"))}))
            converted.append({"role": "assistant", "content": "\n".join(filter(None, [content, *calls]))})
        elif role in ("tool", "function"):
            name = message.get("name") or tool_names.get(message.get("tool_call_id") or "", "a tool")
            converted.append({"role": "user", "content": f"{RESULT_PREFIX}{name}: {content}"})
        else:
            converted.append({"role": "system" if role == "developer" else role, "content": content})
    return converted


def _text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content if isinstance(part, Mapping))


def _parsed(arguments: Any) -> Any:
    if not isinstance(arguments, str):
        return arguments or {}
    try:
        return json.loads(arguments)
    except ValueError:
        return arguments


def with_tool_note(messages: Messages, tools: list[dict[str, Any]]) -> Messages:
    """The conversation with the tool list and examples added to its system message."""
    listing = "\n".join(f"- {tool['name']}: {tool['description']}{_arguments(tool)}" for tool in tools)
    first, *others = ANSWER_EXAMPLES
    chosen = [(question, decision_line(tool["name"])) for tool in tools for question in tool["examples"]]
    examples = [first, *chosen, *others]
    shown = "\n".join(f"User: {question}\n{reply}" for question, reply in examples)
    note = TOOL_NOTE.format(tools=listing, examples=shown)
    if messages and messages[0]["role"] == "system":
        return [{"role": "system", "content": f"{messages[0]['content']}\n\n{note}"}, *messages[1:]]
    return [system_turn(note), *messages]


def _arguments(tool: Mapping[str, Any]) -> str:
    """The tool's parameters in a few words each, read before the model writes arguments (empty for none).

    Names, types, bounds, defaults and descriptions: the grammar holds the arguments to the schema's shape but
    not to its bounds, and every token here is read by every call (JSON Schema spelled out doubled the prompt).
    """
    parameters = tool["parameters"]
    required = set(parameters.get("required") or ())
    shown = [
        _parameter(name, schema, name in required) for name, schema in (parameters.get("properties") or {}).items()
    ]
    return f" Arguments: {'; '.join(shown)}." if shown else ""


def _parameter(name: str, schema: Mapping[str, Any], required: bool) -> str:
    kind = "one of " + ", ".join(map(str, schema["enum"])) if "enum" in schema else str(schema.get("type", "any"))
    if "minimum" in schema and "maximum" in schema:
        kind += f" from {schema['minimum']} to {schema['maximum']}"
    elif "minimum" in schema or "maximum" in schema:
        kind += f" at least {schema['minimum']}" if "minimum" in schema else f" at most {schema['maximum']}"
    if "default" in schema:
        kind += f", default {json.dumps(schema['default'])}"
    elif not required:
        kind += ", optional"
    description = f": {schema['description']}" if schema.get("description") else ""
    return f"{name} ({kind}){description}"


def system_turn(content: str) -> dict[str, str]:
    return {"role": "system", "content": content}
