"""Actors: the named, typed units of work (agents, tools, LLMs) that events invoke."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from rh_parallel.model.enums import EventType

__all__ = ["LLM", "Agent", "BaseActor", "Handler", "Tool"]

Handler = Callable[[Any, Any, Any], Awaitable[Any]]
"""``async def handler(input_data, extra_context, state)``."""


class BaseActor(BaseModel):
    """A named unit of work with a typed input.

    ``handler`` is ``async def handler(input_data, extra_context, state)``; ``input_data`` is
    validated against ``input_model`` (a dict or an instance is accepted) and, when
    ``output_model`` is given, the handler's return value is validated against it.
    ``cacheable=True`` lets the state's cache serve calls with an equal input (for
    ``cache_ttl`` seconds, or the cache's default): use it for pure calls only.
    """

    model_config = ConfigDict(
        arbitrary_types_allowed=True, frozen=True, extra="forbid", defer_build=True
    )

    name: str = Field(min_length=1)
    """What the actor is called: records, spans and addresses show it."""
    description: str = ""
    """What the actor does, in a sentence (tools and agents put it on their spans)."""
    input_model: type[BaseModel]
    """The pydantic model the input is validated against before the handler runs."""
    handler: Handler
    """``async def handler(input_data, extra_context, state)``: the work itself."""
    output_model: type[BaseModel] | None = None
    """The pydantic model the handler's return value is validated against (``None``: taken
    as it is)."""
    event_type: EventType = EventType.TASK
    """The kind of work; ``Agent``, ``Tool`` and ``LLM`` set it (span names, ``kind`` label)."""
    cacheable: bool = False
    """Whether the state's cache may serve calls with an equal input (pure calls only)."""
    cache_ttl: float | None = None
    """Seconds a cached value of this actor stays valid (``None``: the cache's default)."""

    @model_validator(mode="before")
    @classmethod
    def _known_fields(cls, data: Any) -> Any:
        """An unknown field is an error, never silently dropped: RH-Agents' fields
        (``preconditions``, ``version``, ...) name what to use instead, others list the
        fields."""
        if isinstance(data, dict) and not data.keys() <= cls.model_fields.keys():
            from rh_parallel import _migration

            return _migration.check_fields(cls, data, cls.model_fields)
        return data

    @field_validator("cache_ttl")
    @classmethod
    def _finite_ttl(cls, ttl: float | None) -> float | None:
        if ttl is not None and not (0 < ttl < math.inf):
            raise ValueError(
                f"cache_ttl={ttl!r} must be a finite number of seconds > 0, or None for the "
                "cache's own default"
            )
        return ttl

    def validate_input(self, input_data: Any) -> Any:
        """Coerce ``input_data`` to ``input_model`` (instances pass through untouched)."""
        if isinstance(input_data, self.input_model):
            return input_data
        return self.input_model.model_validate(input_data)

    def validate_output(self, output: Any) -> Any:
        """Coerce the handler's return value to ``output_model`` when there is one."""
        if self.output_model is None or isinstance(output, self.output_model):
            return output
        return self.output_model.model_validate(output)


class Tool(BaseActor):
    """An actor whose events are tool calls: spans ``execute_tool {name}`` (kind INTERNAL);
    ``description`` becomes ``gen_ai.tool.description``."""

    event_type: EventType = EventType.TOOL_CALL


class LLM(BaseActor):
    """An actor whose events are LLM calls: spans ``chat {model}`` (kind CLIENT).

    ``model`` is the model the calls request (``gen_ai.request.model``), the actor's ``name``
    when not given; ``provider`` is the GenAI provider (``gen_ai.provider.name``), best as one
    of the conventions' well-known values (``openai``, ``anthropic``, ``aws.bedrock``,
    ``gcp.vertex_ai``, ...); spans say ``_OTHER`` when it is not given.

    >>> LLM(name="summarizer", model="gpt-4o-mini", provider="openai", ...)
    """

    event_type: EventType = EventType.LLM_CALL
    model: str | None = Field(default=None, min_length=1)
    """The model the calls request (``gen_ai.request.model``); the actor's ``name`` when not
    given."""
    provider: str | None = Field(default=None, min_length=1)
    """The GenAI provider (``gen_ai.provider.name``), e.g. ``openai``."""

    @model_validator(mode="before")
    @classmethod
    def _model_defaults_to_name(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("model") is None and "name" in data:
            data = {**data, "model": data["name"]}
        return data


class Agent(BaseActor):
    """An actor whose events are agent calls: spans ``invoke_agent {name}`` (kind INTERNAL).

    ``provider`` is the GenAI provider the agent runs on (``gen_ai.provider.name``, ``_OTHER``
    on spans when not given); ``model`` the model it requests, if one (no default: an agent's
    name is not a model). ``description`` becomes ``gen_ai.agent.description``.
    """

    event_type: EventType = EventType.AGENT_CALL
    model: str | None = Field(default=None, min_length=1)
    """The model the agent requests, if one (no default)."""
    provider: str | None = Field(default=None, min_length=1)
    """The GenAI provider the agent runs on (``gen_ai.provider.name``), e.g. ``openai``."""
